"""The work done for one file inside a worker process: decode, features, MSD_musicnn taggrams.

The MSD_musicnn front-end runs here, where the audio is decoded, with the NumPy forward pass
(:mod:`libtagger.audio.musicnn_numpy`, loaded once per worker process): only the taggrams,
(n_patches, 50) per segment, cross the process boundary, and nothing here imports
TensorFlow (the scanning process runs the head). Every file problem comes back as an
:class:`AnalysisFailure` value instead of an exception, so one bad file never stops a run.

The steps over a file's windows are functions of their own (:func:`analyse_windows`: decode,
checks, features, pulse; :func:`segment_taggrams`: the front-end gain and MSD_musicnn) so that
benchmarks trying other windows or another checkpoint run the scan's own code.
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from libtagger.errors import FileError, ModelError, TooShortError
from libtagger.audio.segments import DEFAULT_MAX_SEGMENTS, MIN_SECONDS, plan_segments

if TYPE_CHECKING:
    from libtagger.audio.musicnn_numpy import MusicnnRuntime

#: A track whose analysed segments never get louder than this (-80 dBFS, below the
#: dither of 16-bit audio) is silence: no genre can be told, so it is reported, not tagged.
SILENCE_PEAK = 1e-4

#: The largest share of NaN or infinite samples in a segment that is zeroed and analysed; above
#: it the file is an error ("invalid audio").
MAX_INVALID_SHARE = 0.01

#: GTZAN's interquartile range of clip RMS (``rms_mean`` of features_30_sec.csv): the level the
#: front-end's input is brought into (see :func:`frontend_gain`).
FRONTEND_RMS_RANGE = (0.087, 0.176)

#: The content check (:func:`content_check`) hashes this many bytes at each of its places.
CHECK_BLOCK_BYTES = 4096


@dataclass(frozen=True)
class AnalysisJob:
    """What a worker should do with one file."""

    path: str
    max_segments: int = DEFAULT_MAX_SEGMENTS
    #: Run the MSD_musicnn front-end (the genre model or the music detector reads taggrams).
    want_taggrams: bool = True


@dataclass
class TrackAnalysis:
    """Everything the main process needs to classify and index one track.

    ``features`` has shape (n_segments, 57); ``taggrams`` holds one float32 array of
    shape (n_patches, 50) per segment (MSD_musicnn's tag likelihoods of its patches, cut
    every :data:`~libtagger.audio.musicnn.INFERENCE_PATCH_HOP` frames), or is None when
    neither the model nor the music detector reads taggrams.
    """

    path: str
    size: int
    mtime_ns: int
    fingerprint: str
    format: str
    duration: float
    samplerate: int
    channels: int
    windows: list[tuple[float, float]]
    features: np.ndarray
    taggrams: list[np.ndarray] | None = None
    seconds: float = 0.0
    #: Shape (n_segments,): each segment's :func:`~libtagger.audio.pulse.pulse_clarity` (the
    #: music detector's beat check); None from an analysis made without it.
    pulse: np.ndarray | None = None
    #: :func:`content_check` of the file, taken before its audio was decoded.
    content_check: str | None = None


@dataclass
class AnalysisFailure:
    """A file that could not be analysed, with a one-line reason."""

    path: str
    reason: str
    size: int | None = None
    mtime_ns: int | None = None
    too_short: bool = field(default=False)


def frontend_gain(rms_mean: float) -> float:
    """The gain that brings a track's analysed audio into GTZAN's usual level for the front-end.

    MSD_musicnn's input, log10(10000 x + 1) of the mel power, moves with the playback level,
    and the heads learnt from GTZAN clips, half of which have an ``rms_mean`` (the mean frame
    RMS, as in ``features_30_sec.csv``) between 0.087 and 0.176 (25th and 75th percentile). A
    track mastered louder or quieter than that is scaled to the nearest end of the range, by
    at most 12 dB; a track inside it is left exactly as it is, so GTZAN-like audio still gives
    the reference taggrams. The 57 features are computed before this gain (the models read
    level-invariant ones).

    Parameters
    ----------
    rms_mean : float
        The mean of the analysed segments' ``rms_mean`` feature.

    Returns
    -------
    float, in [10**(-12/20), 10**(12/20)].

    >>> frontend_gain(0.12), round(frontend_gain(0.5), 3), round(frontend_gain(0.02), 3)
    (1.0, 0.352, 3.981)
    """
    if not rms_mean > 0.0:
        return 1.0
    wanted = min(max(rms_mean, FRONTEND_RMS_RANGE[0]), FRONTEND_RMS_RANGE[1])
    return float(np.clip(wanted / rms_mean, 10 ** (-12 / 20), 10 ** (12 / 20)))


def analyze_file(job: AnalysisJob) -> TrackAnalysis | AnalysisFailure:
    """Decode the planned windows of one file and compute what the classifier needs.

    Runs in a joblib worker. Returns a failure value for any problem with the
    file (including ones nobody foresaw), never raises for one.
    """
    # A crashing decoder is handled by the parent (libtagger.parallel); the
    # worker's own traceback dump would only clutter the user's terminal.
    faulthandler.disable()
    started = time.perf_counter()
    path = job.path
    try:
        before = os.stat(path)
    except OSError as exc:
        return AnalysisFailure(path, _os_reason(exc))
    try:
        with _native_stderr_muted():
            result = _analyze(job, before)
    except FileError as exc:
        return AnalysisFailure(path, exc.reason, before.st_size, before.st_mtime_ns,
                               too_short=isinstance(exc, TooShortError))
    except MemoryError:
        return AnalysisFailure(path, "out of memory while analysing", before.st_size, before.st_mtime_ns)
    except ModelError:  # missing or unreadable MSD_musicnn weights: no file can succeed, stop the run
        raise
    except Exception as exc:  # noqa: BLE001 - one unforeseen failure must not end a night's run
        return AnalysisFailure(path, f"unexpected error: {type(exc).__name__}: {exc}",
                               before.st_size, before.st_mtime_ns)
    try:
        after = os.stat(path)
    except OSError:
        return AnalysisFailure(path, "file vanished while it was being read",
                               before.st_size, before.st_mtime_ns)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        return AnalysisFailure(path, "file changed while it was being read; the next run analyses it again",
                               after.st_size, after.st_mtime_ns)
    result.seconds = time.perf_counter() - started
    return result


def _analyze(job: AnalysisJob, st: os.stat_result) -> TrackAnalysis:
    from libtagger.audio import decode
    from libtagger.audio import fingerprint

    info = decode.probe(job.path)
    if not info.duration >= MIN_SECONDS:
        # Cut, not rounded, to two places: 2.999 s must not read "3.0 s ... at least 3 s needed".
        shown = math.floor(info.duration * 100) / 100
        raise TooShortError(job.path, f"too short: {shown:.2f} s of audio (at least {MIN_SECONDS:.0f} s needed)")
    try:
        # Before decoding: a file swapped during the analysis then fails the check at write time.
        check = content_check(job.path)
    except OSError as exc:
        raise FileError(job.path, _os_reason(exc)) from exc
    windows = plan_segments(info.duration, max_segments=job.max_segments)
    runtime = None
    if job.want_taggrams:
        from libtagger.audio.musicnn_numpy import load_runtime

        # Before the features: loading limits BLAS to one thread, which moves the last bits of
        # the features, so the first file a worker analyses would differ from a later one.
        runtime = load_runtime()
    analysed = analyse_windows(job.path, windows)
    taggrams: list[np.ndarray] | None = None
    if runtime is not None:
        taggrams = segment_taggrams(analysed.segments, analysed.features, runtime)
    return TrackAnalysis(
        path=job.path, size=st.st_size, mtime_ns=st.st_mtime_ns,
        fingerprint=fingerprint.audio_fingerprint(job.path), format=info.format,
        duration=float(info.duration), samplerate=int(info.samplerate), channels=int(info.channels),
        windows=windows, features=analysed.features.astype(np.float32), taggrams=taggrams,
        content_check=check, pulse=analysed.pulse.astype(np.float32))


@dataclass
class WindowAnalysis:
    """The decoded segments of a file's windows and what the models read of them.

    ``segments`` holds one float32 array of shape (n_samples,) per window, mono at
    :data:`~libtagger.audio.features.SAMPLE_RATE`, checked as :func:`decode_windows` checks
    them; ``features`` has shape (n_windows, 57), float64 as
    :func:`~libtagger.audio.features.segment_features` computes them (:class:`TrackAnalysis`
    keeps float32; the front-end gain is taken from these); ``pulse`` has shape (n_windows,),
    float64, or is None when it was not asked for.
    """

    windows: list[tuple[float, float]]
    segments: list[np.ndarray]
    features: np.ndarray
    pulse: np.ndarray | None = None


def decode_windows(path: str, windows: Sequence[tuple[float, float]]) -> list[np.ndarray]:
    """Decode the given windows of a file, as the scan analyses them, and check the audio.

    The scan's windows come from :func:`~libtagger.audio.segments.plan_segments`; a benchmark
    may pass others (any (start, end) in seconds).

    Parameters
    ----------
    path : str
        Any file :func:`~libtagger.audio.decode.probe` accepts.
    windows : sequence of (start, end)
        In seconds, at least one.

    Returns
    -------
    list of np.ndarray
        One (n_samples,) float32 mono array per window at
        :data:`~libtagger.audio.features.SAMPLE_RATE`, a few NaN or infinite samples zeroed.

    Raises
    ------
    TooShortError
        A window decodes to less than 90 % of :data:`~libtagger.audio.segments.MIN_SECONDS`.
    FileError
        More than :data:`MAX_INVALID_SHARE` of a window's samples are NaN or infinite, or no
        window rises above :data:`SILENCE_PEAK`; and whatever decoding raises.
    """
    from libtagger.audio import decode
    from libtagger.audio.features import SAMPLE_RATE

    segments: list[np.ndarray] = []
    peak = 0.0
    for start, end in windows:
        y = decode.load(path, sr=SAMPLE_RATE, offset=start, duration=end - start)
        if y.size < MIN_SECONDS * SAMPLE_RATE * 0.9:
            raise TooShortError(path, f"only {y.size / SAMPLE_RATE:.1f} s of audio could be decoded at {start:.0f} s")
        invalid = ~np.isfinite(y)
        if invalid.any():
            # A float file can hold NaN or infinite samples: a few are a glitch and are zeroed,
            # many mean there is no audio to judge (zeroed, they would pass for silence).
            if invalid.mean() > MAX_INVALID_SHARE:
                raise FileError(path, f"invalid audio: {invalid.mean():.0%} of the samples from {start:.0f} s "
                                      "are NaN or infinite")
            y = np.where(invalid, 0.0, y).astype(y.dtype, copy=False)
        peak = max(peak, float(np.max(np.abs(y))))
        segments.append(y)
    if peak < SILENCE_PEAK:
        raise FileError(path, f"silence: the analysed audio never rises above {20 * np.log10(SILENCE_PEAK):.0f} dBFS,"
                              " there is no music to tell a genre from")
    return segments


def analyse_windows(path: str, windows: Sequence[tuple[float, float]], *, pulse: bool = True) -> WindowAnalysis:
    """Decode and check the given windows of a file, and compute their 57 features and pulse clarity.

    The scan's analysis of a file's audio (:func:`analyze_file` adds the file's checks and the
    taggrams); benchmarks that try other windows call it too, so they measure what the scan does.

    Parameters
    ----------
    path, windows
        As :func:`decode_windows`.
    pulse : bool
        Also compute each segment's :func:`~libtagger.audio.pulse.pulse_clarity` (the music
        detector's beat check).

    Returns
    -------
    WindowAnalysis
        ``features`` (n_windows, 57) float64, ``pulse`` (n_windows,) float64 or None.

    Raises
    ------
    TooShortError, FileError
        As :func:`decode_windows`.
    """
    from libtagger.audio import features
    from libtagger.audio.pulse import pulse_clarity

    segments = decode_windows(path, windows)
    rows = np.vstack([features.segment_features(y, sr=features.SAMPLE_RATE) for y in segments])
    clarity = np.array([pulse_clarity(y, sr=features.SAMPLE_RATE) for y in segments]) if pulse else None
    return WindowAnalysis(windows=list(windows), segments=segments, features=rows, pulse=clarity)


def frontend_log_mels(segments: Sequence[np.ndarray], features: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The MSD_musicnn front-end's input: each segment at the track's :func:`frontend_gain`, as log-mel.

    The gain is one for the track, from the mean ``rms_mean`` of the segments' feature rows.

    Parameters
    ----------
    segments : sequence of np.ndarray
        (n_samples,) mono float audio at :data:`~libtagger.audio.features.SAMPLE_RATE`.
    features : (n_segments, 57) array, or a sequence of (57,) rows
        The segments' features in :data:`~libtagger.audio.features.FEATURE_NAMES` order, as
        computed (float64: the gain of float32 rows can differ in its last bit).

    Returns
    -------
    list of np.ndarray
        One :func:`~libtagger.audio.musicnn.log_mel` spectrogram per segment, (n_frames, 96)
        float32.
    """
    from libtagger.audio import musicnn
    from libtagger.audio.features import FEATURE_NAMES, SAMPLE_RATE

    rms = FEATURE_NAMES.index("rms_mean")
    gain = frontend_gain(float(np.mean([row[rms] for row in features])))
    return [musicnn.log_mel(y * gain, sr=SAMPLE_RATE) for y in segments]


def segment_taggrams(segments: Sequence[np.ndarray], features: Sequence[np.ndarray],
                     runtime: MusicnnRuntime | None = None) -> list[np.ndarray]:
    """MSD_musicnn's taggrams of each segment at the track's front-end gain, as the scan makes them.

    Parameters
    ----------
    segments, features
        As :func:`frontend_log_mels`: (n_samples,) segments and their (57,) feature rows.
    runtime : MusicnnRuntime or None
        The NumPy network; None is this process's MSD_musicnn
        (:func:`~libtagger.audio.musicnn_numpy.load_runtime`).

    Returns
    -------
    list of np.ndarray
        One float32 array of shape (n_patches, 50) per segment.

    Raises
    ------
    ModelError
        The default weights are missing or unreadable.
    """
    from libtagger.audio.musicnn_numpy import load_runtime

    # Loaded before the spectrograms: loading limits BLAS to one thread, and the mel of the
    # first file in a worker would otherwise differ from the others' in its last bits.
    if runtime is None:
        runtime = load_runtime()
    return taggrams_of_log_mels(frontend_log_mels(segments, features), runtime)


def taggrams_of_log_mels(log_mels: Sequence[np.ndarray], runtime: MusicnnRuntime) -> list[np.ndarray]:
    """A network's taggrams of each spectrogram, a patch every :data:`~libtagger.audio.musicnn.INFERENCE_PATCH_HOP` frames.

    For a benchmark that runs several checkpoints over the same :func:`frontend_log_mels`
    (load them first, as :func:`segment_taggrams` does).

    Parameters
    ----------
    log_mels : sequence of np.ndarray
        (n_frames, 96) spectrograms from :func:`frontend_log_mels`.
    runtime : MusicnnRuntime
        From :func:`~libtagger.audio.musicnn_numpy.load_runtime`, of any checkpoint of
        MSD_musicnn's graph.

    Returns
    -------
    list of np.ndarray
        One float32 array of shape (n_patches, 50) per spectrogram.
    """
    from libtagger.audio import musicnn

    return [runtime.taggrams_of_logmel(m, musicnn.INFERENCE_PATCH_HOP) for m in log_mels]


def content_check(path: str | os.PathLike[str]) -> str:
    """A cheap check that a file still holds the bytes a verdict was made from.

    Size and mtime do not prove it: a sync tool or ``cp -p`` can put other audio of the same
    length (every 30-s 16-bit WAV has the same size) under the same time. This hashes the size
    and :data:`CHECK_BLOCK_BYTES` at the start, at one and two thirds, and at the end: 16 KiB
    read however large the file, covering the audio and where tags live (ID3 and FLAC metadata
    at the start, APEv2 and ID3v1 at the end). Any write changes it, libtagger's own included,
    so the index stores it again after each write.

    Returns
    -------
    str
        ``"v1:"`` and a BLAKE2b hex digest (the prefix names the scheme, should it change).

    Raises
    ------
    OSError
        The file cannot be opened or read.
    """
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        digest.update(size.to_bytes(8, "little"))
        last = max(size - CHECK_BLOCK_BYTES, 0)
        for offset in sorted({0, size // 3, 2 * size // 3, last}):
            fh.seek(min(offset, last))
            digest.update(fh.read(CHECK_BLOCK_BYTES))
    return "v1:" + digest.hexdigest()


def fingerprint_file(path: str) -> str | AnalysisFailure:
    """The audio fingerprint of one file, for recognising moved files (worker function)."""
    from libtagger.audio.fingerprint import audio_fingerprint

    faulthandler.disable()
    try:
        with _native_stderr_muted():
            return audio_fingerprint(path)
    except FileError as exc:
        return AnalysisFailure(path, exc.reason)
    except Exception as exc:  # noqa: BLE001
        return AnalysisFailure(path, f"unexpected error: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def _native_stderr_muted() -> Iterator[None]:
    """Send what C decoders print on file descriptor 2 to /dev/null for a while.

    libmpg123 (inside libsndfile) prints warnings such as "Xing stream size off by more
    than 1%" for damaged MP3s straight to the worker's stderr, which is the user's
    terminal or cron's mail. The reason that matters reaches the user as the failure value.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no standard error: nothing to protect
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _os_reason(exc: OSError) -> str:
    import errno

    if exc.errno == errno.ENOENT:
        return "file vanished before it could be read"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or str(exc)
