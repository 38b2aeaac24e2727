"""A fingerprint of a file's audio, blind to its tags, name and location.

The index uses it to recognise a track it has already analysed after the file was renamed,
moved, or re-tagged (libtagger itself re-tags every file it classifies), so the expensive
analysis is not repeated and a file's history is not lost.

>>> audio_fingerprint("song.mp3")                                    # doctest: +SKIP
'3f1c…'  # 64 hex characters

What is hashed, and why:

* **The decoded samples**, never the file bytes: tags and cover art (ID3, Vorbis comments,
  MP4 atoms, FLAC metadata blocks) change the bytes but not the audio.
* **A window at the start** (``seconds``, at the native rate, no resampling) **and a short
  window in the middle**: decoding ~22 s costs a fraction of decoding the track, while the
  middle window separates tracks that share an intro (a radio edit and the album version, two
  tracks opening with silence).
* **Native sample rate, channel count and the duration rounded to the second**: cheap header
  facts that separate a mono or down-sampled copy, or an extended version, from the original.
  Rounding absorbs the frame-level jitter of lossy headers. Where the length is only estimated
  from the bitrate (MP3 without a Xing header: the estimate moves when an ID3 tag grows; see
  :func:`libtagger.audio.decode.duration_is_exact`) it is left out and the second window sits at a
  fixed 60 s instead of the middle.
* **Samples quantised to 16 bits** before hashing: float output of lossy decoders can differ in
  the last bits between decoder builds (SIMD paths); 16-bit is what the ear and the model get.

Not hashed: the container. A WAV re-saved as FLAC holds the same samples and keeps its
fingerprint, on purpose. A different decoder *version* may still change a lossy file's
fingerprint; the cost is one re-analysis, never a wrong match.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from libtagger.audio.decode import duration_is_exact, load, probe

__all__ = ["audio_fingerprint", "FINGERPRINT_VERSION"]

#: Bumped whenever what is hashed changes, so old and new fingerprints never compare equal.
FINGERPRINT_VERSION = 1

#: Length of the second window, taken in the middle of the track.
_MIDDLE_SECONDS = 2.0

#: Where the second window starts when the file only estimates its length (s).
_FALLBACK_MIDDLE = 60.0


def audio_fingerprint(path: str | os.PathLike, *, seconds: float = 20.0) -> str:
    """sha256 (hex) of the audio of ``path``; identical after any change of tags or cover art.

    Parameters
    ----------
    path : path-like
        Any file :func:`libtagger.audio.decode.probe` accepts.
    seconds : float
        Length of the window at the start that is decoded and hashed.

    Raises
    ------
    ReadError
        When the file cannot be probed or decoded (see :mod:`libtagger.audio.decode`).
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    info = probe(path)
    exact = duration_is_exact(info)
    h = hashlib.sha256()
    h.update(f"libtagger-audio-v{FINGERPRINT_VERSION}|{info.samplerate}|{info.channels}|"
             f"{round(info.duration) if exact else '~'}|".encode())
    h.update(_pcm16(load(path, offset=0.0, duration=seconds)))
    if exact:
        if info.duration > seconds + _MIDDLE_SECONDS:
            middle = round(info.duration / 2 - _MIDDLE_SECONDS / 2, 1)
        else:
            middle = None
    else:
        # An estimated length can move when tags change: take the second window at a fixed
        # place instead (empty when the track is shorter, which hashes the same every time).
        middle = _FALLBACK_MIDDLE
    if middle is not None:
        h.update(b"|middle|")
        h.update(_pcm16(load(path, offset=middle, duration=_MIDDLE_SECONDS)))
    return h.hexdigest()


def _pcm16(y: np.ndarray) -> bytes:
    """Little-endian int16 bytes of ``y`` (float in [-1, 1]); clipping keeps overs defined."""
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype("<i2").tobytes()
