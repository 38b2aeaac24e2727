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
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from libtagger.errors import ReadError
from libtagger.formats import FFMPEG_EXTENSIONS

__all__ = ["AudioInfo", "probe", "load", "duration_is_exact", "FFMPEG_EXTENSIONS"]

# FFMPEG_EXTENSIONS (from the formats table): sent straight to ffmpeg, libsndfile cannot read
# these at all. Any other file libsndfile refuses still reaches ffmpeg, by content.

#: Container names libsndfile reports (``SoundFile.format``).
_SOUNDFILE_FORMATS = frozenset(sf.available_formats())

#: Frames decoded per block. 65536 frames x 8 channels x 4 bytes = 2 MiB of scratch at most.
_BLOCK_FRAMES = 65536

#: Leading bytes of the containers we know, to tell "damaged audio" from "not audio at all".
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"RIFF", "WAV"), (0, b"RF64", "WAV"), (0, b"FORM", "AIFF"), (0, b"fLaC", "FLAC"),
    (0, b"OggS", "Ogg"), (0, b"ID3", "MP3"), (0, b".snd", "AU"), (4, b"ftyp", "MP4"),
    (0, bytes.fromhex("3026b2758e66cf11"), "WMA"),
)

# libsndfile notes in its log when a WAV/AIFF data chunk claims more bytes than the file holds.
_SHORT_CHUNK = re.compile(r"^\s*(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


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
            y, native = _read_ffmpeg(spath, info, offset, duration), info.samplerate
        else:
            with f:
                _nonzero(_sf_info(spath, f))
                y, native = _read_soundfile(spath, f, offset, duration), f.samplerate
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
    """
    if _suffix(spath) in FFMPEG_EXTENSIONS:
        return None, None
    try:
        f = sf.SoundFile(fd, closefd=False)
    except sf.LibsndfileError as exc:
        return None, _sf_reason(exc)
    if f.format == "MP3" and not _mp3_has_length_header(fd):
        f.close()
        return None, None
    return f, None


def _mp3_has_length_header(fd: int) -> bool:
    """True when the first MPEG frame carries a Xing/Info (LAME) or VBRI frame count."""
    head = os.pread(fd, 10, 0)
    start = 0
    if head[:3] == b"ID3" and len(head) == 10:  # skip the ID3v2 tag: syncsafe size, maybe a footer
        start = 10 + ((head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9])
        start += 10 if head[5] & 0x10 else 0
    data = os.pread(fd, 8192, start)
    sync = next((i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0), None)
    if sync is None:
        return False
    first = data[sync:sync + 200]  # the tags sit 13-36 bytes into the first frame
    return any(tag in first for tag in (b"Xing", b"Info", b"VBRI"))


def _sniff(fd: int) -> str | None:
    """The container named by the first bytes, or None when they look like no audio we know."""
    head = os.pread(fd, 16, 0)
    for at, magic, name in _MAGIC:
        if head[at:at + len(magic)] == magic:
            return name
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "MP3"  # bare MPEG frame sync, no ID3 tag
    return None


def _nonzero(info: AudioInfo) -> AudioInfo:
    if info.duration <= 0:
        raise ReadError(info.path, "zero-length audio (the file holds no samples)")
    return info


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
        raise ReadError(spath, f"truncated or corrupt audio near {(start + pos) / native:.1f} s "
                               f"({exc.error_string.strip()})") from None
    if pos < want:
        raise ReadError(spath, f"truncated: the header promises {total / native:.1f} s "
                               f"but the audio ends at {(start + pos) / native:.1f} s")
    return out


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
    st = os.fstat(fd)
    key = (spath, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _FFPROBE_LOCK:
        info = _FFPROBE_CACHE.get(key)
    if info is None:
        info = _nonzero(_probe_ffprobe(spath, fd, sf_reason))  # failures are never cached
        with _FFPROBE_LOCK:
            _FFPROBE_CACHE[key] = info
            while len(_FFPROBE_CACHE) > _FFPROBE_CACHE_SIZE:
                _FFPROBE_CACHE.pop(next(iter(_FFPROBE_CACHE)))
    return info


_FFPROBE_CACHE: dict[tuple, AudioInfo] = {}  # insertion-ordered: the oldest entry goes first
_FFPROBE_CACHE_SIZE = 32
_FFPROBE_LOCK = threading.Lock()


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
    return AudioInfo(spath, float(dur), rate, int(s["channels"]),
                     f"{container} {s.get('codec_name', '?')}".upper())


def _asf_header_duration(spath: str) -> float | None:
    from mutagen.asf import ASF

    try:
        return float(ASF(spath).info.length) or None
    except Exception:  # damaged header: keep ffprobe's estimate
        return None


def _last_line(raw: bytes, spath: str) -> str:
    """ffmpeg's last complaint, without the file name (the ReadError already carries it)."""
    text = raw.decode("utf-8", "replace").replace(f"file:{spath}: ", "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def _read_ffmpeg(spath: str, info: AudioInfo, offset: float, duration: float | None) -> np.ndarray:
    """Stream raw float32 frames out of ffmpeg, down-mixing block by block.

    ffmpeg gets the native rate and channel count explicitly, so the byte stream has a known
    layout and no resampling or channel mixing happens inside ffmpeg.
    """
    native, ch = info.samplerate, info.channels
    # Only MP4 (mdhd) and ASF (play duration) headers state the length; other containers here
    # (MP3 without a Xing header, ADTS AAC, ...) have it estimated from the bitrate, so there
    # the estimate neither ends the window early nor makes a short decode count as damage.
    strict = duration_is_exact(info)
    if strict and offset >= info.duration:
        return np.zeros(0, np.float32)
    cmd = [_ffmpeg_exe("ffmpeg", spath), "-nostdin", "-hide_banner", "-v", "error"]
    if offset:
        cmd += ["-ss", f"{offset:.6f}"]  # before -i: seeks the input instead of decoding up to it
    if duration is not None:
        # Ask for a little more, then cut to the exact length: after a seek some decoders (WMA)
        # drop their first frame, which would leave the window a few ms short.
        cmd += ["-t", f"{duration + 1.0:.6f}"]
    cmd += ["-i", "file:" + spath,  # file: keeps names with ':' or a leading '-' literal
            "-map", "0:a:0", "-vn", "-f", "f32le", "-c:a", "pcm_f32le",
            "-ac", str(ch), "-ar", str(native), "pipe:1"]
    span = max(0.0, info.duration - offset if duration is None else min(duration, info.duration - offset))
    timeout = 60.0 + span  # generous: decoding runs at tens of times real time
    frame_bytes = 4 * ch
    chunks: list[np.ndarray] = []
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
            tail = b""
            while True:
                raw = proc.stdout.read(_BLOCK_FRAMES * frame_bytes)
                if not raw:
                    break
                raw = tail + raw
                cut = len(raw) - len(raw) % frame_bytes
                raw, tail = raw[:cut], raw[cut:]
                block = np.frombuffer(raw, np.float32).reshape(-1, ch)
                mono = np.empty(len(block), np.float32)
                _downmix_into(block, mono)
                chunks.append(mono)
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout and proc.stdout.close()
        err.seek(0)
        reason = _last_line(err.read(), spath)
    if rc != 0:
        if not os.path.lexists(spath):
            raise ReadError(spath, "file vanished")
        if timed_out.is_set():
            raise ReadError(spath, f"decoder failed: ffmpeg timed out after {timeout:.0f} s")
        raise ReadError(spath, f"decoder failed: {reason or f'ffmpeg exit status {rc}'}")
    y = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if duration is not None:
        y = y[: int(round(duration * native))]
    # Stated lengths are exact to a frame or two: 0.5 s of slack.
    if strict and y.size < (span - 0.5) * native:
        why = f"; {reason}" if reason else ""
        raise ReadError(spath, f"truncated: the header promises {info.duration:.1f} s but the audio "
                               f"ends at {offset + y.size / native:.1f} s{why}")
    return y
