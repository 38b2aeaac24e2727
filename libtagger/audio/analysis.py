"""The work done for one file inside a worker process: decode, features, MSD_musicnn taggrams.

The MSD_musicnn front-end runs here, where the audio is decoded, with the NumPy forward pass
(:mod:`libtagger.audio.musicnn_numpy`, loaded once per worker process): only the taggrams,
(n_patches, 50) per segment, cross the process boundary, and nothing here imports
TensorFlow (the scanning process runs the head). Every file problem comes back as an
:class:`AnalysisFailure` value instead of an exception, so one bad file never stops a run.
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from libtagger.errors import FileError, ModelError, TooShortError
from libtagger.audio.segments import DEFAULT_MAX_SEGMENTS, MIN_SECONDS, plan_segments

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
    from libtagger.audio import features
    from libtagger.audio import fingerprint
    from libtagger.audio import musicnn
    from libtagger.audio.pulse import pulse_clarity

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
    rows: list[np.ndarray] = []
    pulse: list[float] = []
    segments: list[np.ndarray] = []
    peak = 0.0
    for start, end in windows:
        y = decode.load(job.path, sr=features.SAMPLE_RATE, offset=start, duration=end - start)
        if y.size < MIN_SECONDS * features.SAMPLE_RATE * 0.9:
            raise TooShortError(job.path, f"only {y.size / features.SAMPLE_RATE:.1f} s of audio could be decoded at {start:.0f} s")
        invalid = ~np.isfinite(y)
        if invalid.any():
            # A float file can hold NaN or infinite samples: a few are a glitch and are zeroed,
            # many mean there is no audio to judge (zeroed, they would pass for silence).
            if invalid.mean() > MAX_INVALID_SHARE:
                raise FileError(job.path, f"invalid audio: {invalid.mean():.0%} of the samples from {start:.0f} s "
                                          "are NaN or infinite")
            y = np.where(invalid, 0.0, y).astype(y.dtype, copy=False)
        peak = max(peak, float(np.max(np.abs(y))))
        rows.append(features.segment_features(y, sr=features.SAMPLE_RATE))
        pulse.append(pulse_clarity(y, sr=features.SAMPLE_RATE))
        segments.append(y)
    if peak < SILENCE_PEAK:
        raise FileError(job.path, f"silence: the analysed audio never rises above {20 * np.log10(SILENCE_PEAK):.0f} dBFS,"
                                  " there is no music to tell a genre from")
    taggrams: list[np.ndarray] | None = None
    if job.want_taggrams:
        from libtagger.audio.musicnn_numpy import load_runtime

        runtime = load_runtime()
        gain = frontend_gain(float(np.mean([r[features.FEATURE_NAMES.index("rms_mean")] for r in rows])))
        taggrams = [runtime.taggrams_of_logmel(musicnn.log_mel(y * gain, sr=features.SAMPLE_RATE),
                                               musicnn.INFERENCE_PATCH_HOP)
                    for y in segments]
    return TrackAnalysis(
        path=job.path, size=st.st_size, mtime_ns=st.st_mtime_ns,
        fingerprint=fingerprint.audio_fingerprint(job.path), format=info.format,
        duration=float(info.duration), samplerate=int(info.samplerate), channels=int(info.channels),
        windows=windows, features=np.vstack(rows).astype(np.float32), taggrams=taggrams,
        content_check=check, pulse=np.array(pulse, dtype=np.float32))


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
