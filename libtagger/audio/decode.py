"""Probe and decode audio files: mono float32, only the window asked for.

Two decoders, chosen per file (the route of each extension is a column of
:data:`libtagger.formats.FORMATS`):

* **soundfile** (libsndfile 1.2.2) for WAV, AIFF/AIFF-C, AU, FLAC, Ogg Vorbis, Opus and MP3. It
  runs in-process and seeks, so a 30-s window from a two-hour file costs about what a 30-s file does.
* **ffmpeg** (a subprocess) for MP4/M4A/M4B (AAC, ALAC), raw AAC, WMA/ASF, Ogg Speex, MP3s without
  a Xing/Info header (libsndfile only guesses their length) and anything else libsndfile refuses
  (Ogg FLAC, ...). Its header facts come
  from ffprobe (cached per file version). ffmpeg is asked for raw float32 at the file's *native*
  rate and channel count; the down-mix (mean of channels) and the resampling (librosa, soxr_hq)
  are then done here, exactly as for the soundfile path, so the samples a model sees do not
  depend on which decoder happened to read the file.

Seeking precision: libsndfile and ffmpeg's AAC/ALAC land on the exact sample; ffmpeg's WMA
decoder is up to one 2048-sample frame (46 ms) off, even when decoding from the start.

Truncation is caught when the container states a length (WAV/AIFF chunk sizes, FLAC
STREAMINFO, MP3 Xing frame count, MP4, WMA) and the decoded window reaches the missing part;
Ogg files and bitrate-estimated lengths cannot tell a cut file from a short one.

Damage is worked around where players work around it:

* A corrupt patch in the middle (a few KB of garbage in an old MP3, a FLAC frame that lost
  sync) stops libsndfile; the window is then decoded again by ffmpeg, which skips the bad
  frames, and only refused when ffmpeg fails too. Healthy files never pay for this.
* A chained Ogg file (``cat a.ogg b.ogg``) is decoded by ffmpeg from its start: libsndfile
  stops after the first stream and states no sane length for the whole, and ffmpeg can
  neither seek in nor state the length of such a file, so its length is measured once by
  decoding it.
* Joined MP3s (``cat a.mp3 b.mp3``: audiobook parts, mixes) hold more audio than the first
  part's Xing/Info/VBRI header states (its stream size, against the file's size less its tags):
  they go to ffmpeg, and the length is measured once by decoding. Other MP3s pay a few reads.
* A length no file of this size can hold (less than :data:`~libtagger.audio.stated_length.MIN_BYTES_PER_SECOND` bytes
  per second of audio) is not believed: the length is measured by decoding instead.

Memory stays bounded by the size of the window: both paths read in blocks of
``_BLOCK_FRAMES`` frames and down-mix each block before keeping it.

>>> y = load("song.flac", sr=22050, offset=30.0, duration=30.0)   # doctest: +SKIP
>>> y.shape, y.dtype                                                # doctest: +SKIP
((661500,), dtype('float32'))
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from libtagger.errors import ReadError
from libtagger.audio.stated_length import mp3_length_header, ogg_is_chained, plausible
from libtagger.formats import FFMPEG_EXTENSIONS, content_format

__all__ = ["AudioInfo", "probe", "load", "duration_is_exact", "FFMPEG_EXTENSIONS"]

# FFMPEG_EXTENSIONS (from the formats table): sent straight to ffmpeg, libsndfile cannot read
# these at all. Any other file libsndfile refuses still reaches ffmpeg, by content.

#: Container names libsndfile reports (``SoundFile.format``).
_SOUNDFILE_FORMATS = frozenset(sf.available_formats())

#: Frames decoded per block. 65536 frames x 8 channels x 4 bytes = 2 MiB of scratch at most.
_BLOCK_FRAMES = 65536

# libsndfile notes in its log when a WAV/AIFF data chunk claims more bytes than the file holds.
_SHORT_CHUNK = re.compile(r"^\s*(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


#: How long the fallback may take to measure a length by decoding a whole file.
_MEASURE_TIMEOUT = 300.0

# ffmpeg's log lines start with "[demuxer or codec @ 0x55df89df1940] " and may name a stream
# and a byte offset; the user's line keeps only the words.
_FFMPEG_NOISE = re.compile(r"\[[^\]]*@ 0x[0-9a-fA-F]+\]\s*"
                           r"|stream #?\d+(:\d+)?, offset 0x[0-9a-fA-F]+:\s*"
                           r"|Error while decoding stream #\d+:\d+:\s*")


@dataclass(frozen=True)
class AudioInfo:
    """What the file's header says: duration in seconds, native rate and channel count."""

    path: str
    duration: float
    samplerate: int
    channels: int
    format: str


# --------------------------------------------------------------------------- public API


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read only the header of ``path``.

    Raises
    ------
    ReadError
        The file is missing, unreadable, empty, not audio, damaged in its header, or holds
        zero samples. ``str(err)`` is ``"<path>: <reason>"``.
    """
    spath, fd = _open_checked(path)
    try:
        f, why = _soundfile_or_reason(spath, fd)
        if f is None:
            return _probe_other(spath, fd, sf_reason=why)
        with f:
            return _nonzero(_sf_info(spath, f))
    finally:
        os.close(fd)


def load(path: str | os.PathLike, *, sr: int | None = None, offset: float = 0.0,
         duration: float | None = None) -> np.ndarray:
    """Decode ``[offset, offset + duration)`` seconds of ``path`` as mono float32.

    Parameters
    ----------
    path : path-like
        Any file :func:`probe` accepts.
    sr : int or None
        Output sample rate; ``None`` keeps the native rate. Resampled with
        :func:`librosa.resample` (soxr_hq).
    offset, duration : float
        The window, in seconds. ``duration=None`` reads to the end. A window reaching past the
        end of the audio is cut short (the result may be empty if ``offset`` is past the end).

    Returns
    -------
    y : np.ndarray, shape (n_samples,), float32
        The mean of all channels.

    Raises
    ------
    ReadError
        As :func:`probe`, plus "truncated …" when the audio ends before the header says it
        should (detected only when the window reaches the missing part) and "decoder failed: …".
    """
    if offset < 0 or (duration is not None and duration < 0):
        raise ValueError(f"offset and duration must be >= 0, got offset={offset}, duration={duration}")
    if sr is not None and sr <= 0:
        raise ValueError(f"sr must be a positive number of samples per second, got {sr}")
    spath, fd = _open_checked(path)
    try:
        f, why = _soundfile_or_reason(spath, fd)
        if f is None:
            info = _probe_other(spath, fd, sf_reason=why)
            seek = not (_sniff(fd) == "Ogg" and _ogg_is_chained(spath, fd))
            y, native = _read_ffmpeg(spath, info, offset, duration, seek=seek), info.samplerate
        else:
            with f:
                info = _nonzero(_sf_info(spath, f))
                try:
                    y = _read_soundfile(spath, f, offset, duration)
                except _SoundfileFailed as failed:
                    y = _ffmpeg_instead(spath, info, offset, duration, failed)
                native = info.samplerate
    finally:
        os.close(fd)
    if sr is not None and sr != native and y.size:
        from libtagger.audio import numba_cache

        numba_cache.install()  # before librosa compiles its cached kernels
        import librosa  # heavy import, only when resampling is really needed

        y = librosa.resample(y, orig_sr=native, target_sr=sr).astype(np.float32, copy=False)
    return y


def duration_is_exact(info: AudioInfo) -> bool:
    """Whether ``info.duration`` is stated by the file rather than estimated from its bitrate.

    Exact for everything libsndfile reads (sample counts in WAV/AIFF/AU/FLAC headers, the last
    Ogg granule, the Xing/Info frame count of an MP3) and for MP4 and ASF (WMA) headers.
    Estimated for the rest (MP3 without a Xing header, ADTS AAC, ...): such an estimate can even
    move when tags are added, because it depends on where the audio starts.
    """
    # libsndfile's format names have no space ("FLAC", "MP3") except "OGG <codec>"; ffprobe's
    # are "CONTAINER CODEC" ("MP3 MP3", "AAC AAC"), so the name says which decoder probed it.
    return info.format in _SOUNDFILE_FORMATS or info.format.startswith(("OGG ", "MP4 ", "ASF "))


# --------------------------------------------------------------------------- opening


def _open_checked(path: str | os.PathLike) -> tuple[str, int]:
    """Open ``path`` read-only, turning OS errors into the reasons users understand.

    Holding the descriptor (rather than re-opening by name) means a file that passes these
    checks cannot vanish or change permissions under the decoder.
    """
    spath = os.fsdecode(path)  # bytes and surrogate-escaped names both become str
    try:
        # O_NONBLOCK: opening a FIFO named like audio must not wait for a writer forever.
        fd = os.open(spath, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ReadError(spath, "file vanished") from None
    except PermissionError:
        raise ReadError(spath, "permission denied") from None
    except OSError as exc:
        raise ReadError(spath, f"cannot open: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ReadError(spath, "not a regular file")
    if st.st_size == 0:
        os.close(fd)
        raise ReadError(spath, "file is empty")
    os.set_blocking(fd, True)
    return spath, fd


def _suffix(spath: str) -> str:
    return os.path.splitext(spath)[1].lower()


def _soundfile_or_reason(spath: str, fd: int) -> tuple[sf.SoundFile | None, str | None]:
    """An open SoundFile when libsndfile should decode the file; else (None, why libsndfile refused).

    MP3s without a Xing/Info/VBRI header go to ffmpeg too: libsndfile then only estimates the
    length from the first frame's bitrate, and stops reading at that estimate (a 20-s VBR file
    decodes as 11 s), or promises a few frames more than there are (a CBR file looks truncated).
    So do MP3s holding more audio than their header states (``cat a.mp3 b.mp3``): libsndfile
    stops where a ends, and :func:`_probe_ffprobe` measures the whole.
    """
    if _suffix(spath) in FFMPEG_EXTENSIONS:
        return None, None
    try:
        f = sf.SoundFile(fd, closefd=False)
    except sf.LibsndfileError as exc:
        return None, _sf_reason(exc)
    if f.format == "MP3" and mp3_length_header(fd) != "whole":
        f.close()
        return None, None
    if f.format == "OGG" and _ogg_is_chained(spath, fd):
        f.close()  # libsndfile reads only the first stream of the chain
        return None, None
    if not plausible(f.frames / f.samplerate, os.fstat(fd).st_size):
        f.close()  # e.g. libsndfile's "unknown length" (2**63 - 1 frames): ffmpeg measures it
        return None, None
    return f, None


def _file_key(spath: str, fd: int) -> tuple:
    """Names one version of a file: a file replaced or edited in between gets a new key."""
    st = os.fstat(fd)
    return (spath, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _ogg_is_chained(spath: str, fd: int) -> bool:
    """:func:`~libtagger.audio.stated_length.ogg_is_chained`, kept for the most recent files
    (:func:`load` asks once per window)."""
    key = _file_key(spath, fd)
    with _FFPROBE_LOCK:
        known = _CHAINED_CACHE.get(key)
    if known is not None:
        return known
    chained = ogg_is_chained(fd, key[3])
    _remember(_CHAINED_CACHE, key, chained)
    return chained


def _sniff(fd: int) -> str | None:
    """The container named by the first bytes (:func:`libtagger.formats.content_format`), to tell
    "damaged audio" from "not audio at all"; an ID3v2 tag followed by nothing we know is an
    MP3's (cut in or after its tag). None when they look like no audio we know."""
    return content_format(fd) or ("MP3" if os.pread(fd, 3, 0) == b"ID3" else None)


def _nonzero(info: AudioInfo) -> AudioInfo:
    if info.duration <= 0:
        raise ReadError(info.path, "zero-length audio (the file holds no samples)")
    return info


def _sf_words(text: str) -> str:
    """libsndfile's message in plain words, or "" when it says nothing a user can act on."""
    text = text.strip().removeprefix("Error :").strip().rstrip(".")
    return "" if text.lower() in ("unspecified internal error", "") else text


def _sf_reason(exc: sf.LibsndfileError) -> str:
    # libsndfile's text for "I do not know this format" is misleading ("File does not exist").
    msg = exc.error_string.strip().rstrip(".")
    return "unrecognised format" if "does not exist" in msg else msg


# --------------------------------------------------------------------------- soundfile path


def _sf_info(spath: str, f: sf.SoundFile) -> AudioInfo:
    m = _SHORT_CHUNK.search(f.extra_info)
    if m and int(m.group(2)) > int(m.group(3)):
        raise ReadError(spath, f"truncated: the {m.group(1)} chunk says {m.group(2)} bytes, "
                               f"the file holds {m.group(3)}")
    fmt = f.format if f.format != "OGG" else f"OGG {f.subtype}"
    return AudioInfo(spath, f.frames / f.samplerate, int(f.samplerate), int(f.channels), fmt)


def _read_soundfile(spath: str, f: sf.SoundFile, offset: float, duration: float | None) -> np.ndarray:
    native, total = f.samplerate, f.frames
    start = int(round(offset * native))
    if start >= total:
        return np.zeros(0, np.float32)
    want = total - start if duration is None else min(int(round(duration * native)), total - start)
    out = np.empty(want, np.float32)
    block = np.empty((min(_BLOCK_FRAMES, want), f.channels), np.float32)
    pos = 0
    try:
        if start:
            f.seek(start)
        while pos < want:
            n = min(len(block), want - pos)
            got = f.read(n, dtype="float32", always_2d=True, out=block[:n])
            if len(got) == 0:
                break
            _downmix_into(got, out[pos:pos + len(got)])
            pos += len(got)
    except sf.LibsndfileError as exc:
        raise _SoundfileFailed((start + pos) / native, _sf_words(exc.error_string)) from None
    if pos < want:
        # Cut, or a corrupt patch that made libsndfile's seek or read stop early.
        raise _SoundfileFailed((start + pos) / native, "", short=True)
    return out


class _SoundfileFailed(Exception):
    """libsndfile stopped inside the window, ``at`` seconds into the file.

    ``words``: its error in plain words ("" when it had none); ``short``: it raised no error,
    the audio just ended before the header says it should.
    """

    def __init__(self, at: float, words: str, *, short: bool = False) -> None:
        super().__init__(at, words)
        self.at, self.words, self.short = at, words, short


#: A window ffmpeg decodes after libsndfile failed may come out this much short: ffmpeg drops
#: the corrupt frames instead of filling them, so the rest of the file moves earlier.
_FALLBACK_SLACK_SECONDS = 2.0


def _ffmpeg_instead(spath: str, info: AudioInfo, offset: float, duration: float | None,
                    failed: _SoundfileFailed) -> np.ndarray:
    """The window decoded by ffmpeg, after libsndfile failed inside it (``failed``).

    Old MP3 collections hold files with a few KB of garbage in the middle, which players and
    ffmpeg skip over with a warning. The file is refused only when ffmpeg fails too, when both
    decoders end at the same place (a cut file: "truncated", as before), or when ffmpeg's window
    is more than :data:`_FALLBACK_SLACK_SECONDS` short (more damage than a glitch). Garbage or
    a cut file fails fast: ffmpeg gives up within a fraction of a second, and there is no
    second retry.

    Returns
    -------
    y : np.ndarray, shape (n_samples,), float32, at ``info.samplerate``.
    """
    def refuse(near: float, words: str) -> ReadError:
        return ReadError(spath, f"truncated or corrupt audio near {near:.1f} s" + (f" ({words})" if words else ""))

    try:
        y = _read_ffmpeg(spath, info, offset, duration, strict=False)
    except ReadError as exc:
        if exc.reason == "file vanished":
            raise
        words = exc.reason.removeprefix("decoder failed: ")
        raise refuse(failed.at, words if "ffmpeg" not in words else failed.words) from None
    native = info.samplerate
    span = max(0.0, info.duration - offset if duration is None else min(duration, info.duration - offset))
    end = offset + y.size / native
    if y.size >= (span - 0.5) * native:  # whole, with the slack of a healthy file
        return y
    if failed.short and end <= failed.at + 0.5:
        # Both decoders end at the same place without an error: the file is cut.
        raise ReadError(spath, f"truncated: the header promises {info.duration:.1f} s "
                               f"but the audio ends at {max(end, failed.at):.1f} s")
    if y.size < (span - _FALLBACK_SLACK_SECONDS) * native:
        raise refuse(max(end, failed.at), failed.words)
    return y


def _downmix_into(block: np.ndarray, out: np.ndarray) -> None:
    """Mean over channels of ``block`` (frames, channels) written into ``out`` (frames,)."""
    if block.shape[1] == 1:
        out[:] = block[:, 0]
    else:
        np.mean(block, axis=1, out=out)


# --------------------------------------------------------------------------- ffmpeg path


def _probe_other(spath: str, fd: int, *, sf_reason: str | None) -> AudioInfo:
    """Header info for files libsndfile does not read, from ffprobe.

    Not mutagen: its MP4 channel count comes from the sample entry, which encoders set to 2
    even for mono AAC, and the ffmpeg decode below needs the true layout.

    An ffprobe run costs a process start (tens of ms) and the pipeline probes, loads several
    windows of, and fingerprints each file, so results are kept for the few most recent files.
    The key includes inode, size and mtime: a file replaced or edited in between is probed again.
    """
    key = _file_key(spath, fd)
    with _FFPROBE_LOCK:
        info = _FFPROBE_CACHE.get(key)
    if info is None:
        info = _nonzero(_probe_ffprobe(spath, fd, sf_reason))  # failures are never cached
        _remember(_FFPROBE_CACHE, key, info)
    return info


_FFPROBE_CACHE: dict[tuple, AudioInfo] = {}  # insertion-ordered: the oldest entry goes first
_FFPROBE_CACHE_SIZE = 32
_FFPROBE_LOCK = threading.Lock()
_CHAINED_CACHE: dict[tuple, bool] = {}  # answers of _ogg_is_chained, same keys and size


def _remember(cache: dict, key: tuple, value: object) -> None:
    """Keep ``value`` under ``key`` in one of the per-file caches, dropping the oldest entries
    beyond :data:`_FFPROBE_CACHE_SIZE` (worker threads share the caches: one lock for both)."""
    with _FFPROBE_LOCK:
        cache[key] = value
        while len(cache) > _FFPROBE_CACHE_SIZE:
            cache.pop(next(iter(cache)))


def _ffmpeg_exe(name: str, spath: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise ReadError(spath, f"decoder failed: {name} is not installed (needed for this format)")
    return exe


def _probe_ffprobe(spath: str, fd: int, sf_reason: str | None) -> AudioInfo:
    cmd = [_ffmpeg_exe("ffprobe", spath), "-v", "error", "-of", "json", "-select_streams", "a:0",
           "-show_entries", "stream=codec_name,sample_rate,channels,duration:format=format_name,duration",
           "file:" + spath]
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise ReadError(spath, "decoder failed: ffprobe timed out") from None
    data = json.loads(r.stdout or b"{}") if r.returncode == 0 else {}
    streams = data.get("streams") or []
    if r.returncode == 0 and not streams:
        raise ReadError(spath, "not an audio file (no audio stream in it)")
    if not streams or not int(streams[0].get("channels") or 0):
        reason = _last_line(r.stderr, spath) or "no audio channels"
        known = _sniff(fd)
        if known:
            raise ReadError(spath, f"truncated or corrupt {known} file ({reason})")
        detail = "; ".join(x for x in (sf_reason and f"libsndfile: {sf_reason}", f"ffmpeg: {reason}") if x)
        raise ReadError(spath, f"not an audio file ({detail})")
    s, fmt = streams[0], data.get("format") or {}
    dur = s.get("duration") or fmt.get("duration") or 0
    rate = int(s.get("sample_rate") or 0)
    if rate <= 0:
        raise ReadError(spath, "decoder failed: ffprobe found no sample rate")
    names = str(fmt.get("format_name", "?")).split(",")
    container = "mp4" if "mp4" in names else names[0]
    if container == "asf":
        # ffprobe estimates ASF durations from the bytes present, so a truncated WMA looks
        # whole; the header's play duration (read by mutagen) says what there should be.
        dur = _asf_header_duration(spath) or dur
    chained = container == "ogg" and _ogg_is_chained(spath, fd)
    joined = container == "mp3" and mp3_length_header(fd) == "part"
    if chained or joined or not plausible(float(dur), os.fstat(fd).st_size):
        # ffprobe gives the last stream's length for a chain, for joined MP3s a guess from the
        # first frame's bitrate (148 s for a 52-s VBR pair), and a damaged header can promise
        # centuries: decoding the whole file is the one length to trust.
        dur = _measured_duration(spath, rate)
    return AudioInfo(spath, float(dur), rate, int(s["channels"]),
                     f"{container} {s.get('codec_name', '?')}".upper())


def _measured_duration(spath: str, rate: int) -> float:
    """Seconds of audio ffmpeg decodes from the whole file, whose header's length is wrong.

    Decoded as 16-bit mono at the native rate and only counted, so memory stays small.
    """
    cmd = [_ffmpeg_exe("ffmpeg", spath), "-nostdin", "-hide_banner", "-v", "error",
           "-i", "file:" + spath, "-map", "0:a:0", "-vn", "-f", "s16le", "-c:a", "pcm_s16le",
           "-ac", "1", "-ar", str(rate), "pipe:1"]
    n_bytes = 0

    def count(raw: bytes) -> None:
        nonlocal n_bytes
        n_bytes += len(raw)

    rc, reason, timed_out = _run_ffmpeg(spath, cmd, _MEASURE_TIMEOUT, count)
    if timed_out:
        raise ReadError(spath, "decoder failed: the header's length cannot be trusted and decoding "
                               f"the whole file to measure it took over {_MEASURE_TIMEOUT:.0f} s")
    if rc != 0 and not n_bytes:
        raise ReadError(spath, f"truncated or corrupt audio ({reason or f'ffmpeg exit status {rc}'})")
    return n_bytes / 2 / rate


def _asf_header_duration(spath: str) -> float | None:
    from mutagen.asf import ASF

    try:
        return float(ASF(spath).info.length) or None
    except Exception:  # damaged header: keep ffprobe's estimate
        return None


def _last_line(raw: bytes, spath: str) -> str:
    """ffmpeg's last complaint in plain words: without the file name (the ReadError already
    carries it) and without the "[mov,mp4,... @ 0x55df89df1940]" and byte-offset noise.

    >>> _last_line(b"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55df89df1940] stream 0, offset 0x46f5a: partial file", "x")
    'partial file'
    """
    text = raw.decode("utf-8", "replace").replace(f"file:{spath}: ", "")
    lines = [_FFMPEG_NOISE.sub("", ln).strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    return lines[-1][:200] if lines else ""


def _run_ffmpeg(spath: str, cmd: list[str], timeout: float,
                sink: Callable[[bytes], None]) -> tuple[int, str, bool]:
    """Run ffmpeg's ``cmd`` on ``spath``, handing its stdout to ``sink`` block by block.

    Returns
    -------
    rc : int
        ffmpeg's exit status (negative when it was killed).
    reason : str
        Its last complaint (see :func:`_last_line`), "" when it said nothing.
    timed_out : bool
        True when it was killed after ``timeout`` seconds.
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            assert proc.stdout is not None
            while True:
                raw = proc.stdout.read(_BLOCK_FRAMES * 16)
                if not raw:
                    break
                sink(raw)
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout and proc.stdout.close()
        err.seek(0)
        return rc, _last_line(err.read(), spath), timed_out.is_set()


def _read_ffmpeg(spath: str, info: AudioInfo, offset: float, duration: float | None, *,
                 seek: bool = True, strict: bool | None = None) -> np.ndarray:
    """Stream raw float32 frames out of ffmpeg, down-mixing block by block.

    ffmpeg gets the native rate and channel count explicitly, so the byte stream has a known
    layout and no resampling or channel mixing happens inside ffmpeg.

    ``seek=False`` decodes from the start and drops what comes before ``offset``: for files
    ffmpeg cannot seek in (a chained Ogg, where its seek lands in the wrong stream).
    ``strict`` (default: :func:`duration_is_exact`) refuses a window that ends well before the
    header says the audio does.
    """
    native, ch = info.samplerate, info.channels
    # Only MP4 (mdhd) and ASF (play duration) headers state the length; other containers here
    # (MP3 without a Xing header, ADTS AAC, ...) have it estimated from the bitrate, so there
    # the estimate neither ends the window early nor makes a short decode count as damage.
    exact = duration_is_exact(info)
    strict = exact if strict is None else strict
    if exact and offset >= info.duration:
        return np.zeros(0, np.float32)
    window: list[str] = []
    if offset:
        # Before -i it seeks the input instead of decoding up to the offset; after -i (when
        # the input cannot seek) ffmpeg decodes up to the offset and drops that part.
        window += ["-ss", f"{offset:.6f}"]
    if duration is not None:
        # Ask for a little more, then cut to the exact length: after a seek some decoders (WMA)
        # drop their first frame, which would leave the window a few ms short.
        window += ["-t", f"{duration + 1.0:.6f}"]
    cmd = [_ffmpeg_exe("ffmpeg", spath), "-nostdin", "-hide_banner", "-v", "error"]
    cmd += window if seek else []
    cmd += ["-i", "file:" + spath]  # file: keeps names with ':' or a leading '-' literal
    cmd += [] if seek else window
    cmd += ["-map", "0:a:0", "-vn", "-f", "f32le", "-c:a", "pcm_f32le",
            "-ac", str(ch), "-ar", str(native), "pipe:1"]
    span = max(0.0, info.duration - offset if duration is None else min(duration, info.duration - offset))
    # Generous: decoding runs at tens of times real time (and from the start without a seek).
    timeout = 60.0 + span + (0.0 if seek else offset)
    frame_bytes = 4 * ch
    chunks: list[np.ndarray] = []
    tail = b""

    def keep(raw: bytes) -> None:
        nonlocal tail
        raw = tail + raw
        cut = len(raw) - len(raw) % frame_bytes
        raw, tail = raw[:cut], raw[cut:]
        block = np.frombuffer(raw, np.float32).reshape(-1, ch)
        mono = np.empty(len(block), np.float32)
        _downmix_into(block, mono)
        chunks.append(mono)

    rc, reason, timed_out = _run_ffmpeg(spath, cmd, timeout, keep)
    if rc != 0:
        if not os.path.lexists(spath):
            raise ReadError(spath, "file vanished")
        if timed_out:
            raise ReadError(spath, f"decoder failed: ffmpeg timed out after {timeout:.0f} s")
        raise ReadError(spath, f"decoder failed: {reason or f'ffmpeg exit status {rc}'}")
    y = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if duration is not None:
        y = y[: int(round(duration * native))]
    # Stated lengths are exact to a frame or two: 0.5 s of slack.
    if strict and y.size < (span - 0.5) * native:
        why = f" ({reason})" if reason else ""
        raise ReadError(spath, f"truncated: the header promises {info.duration:.1f} s but the audio "
                               f"ends at {offset + y.size / native:.1f} s{why}")
    return y
