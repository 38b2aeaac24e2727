"""What a file's own bytes say about its length, and whether to believe it.

Headers state a length the decoders trust: libsndfile stops reading where an MP3's Xing/Info
frame count ends, and a damaged header can promise centuries. These pure functions read a few
header bytes of an open file (no decoding) and say when :mod:`libtagger.audio.decode` should
measure the length instead:

* :func:`plausible`: no codec fits a second in fewer than :data:`MIN_BYTES_PER_SECOND` bytes;
* :func:`ogg_is_chained`: ``cat a.ogg b.ogg``, whose first stream libsndfile takes for the whole;
* :func:`mp3_length_header`: whether an MP3's Xing/Info/VBRI header accounts for all its audio,
  or only for the first part of ``cat a.mp3 b.mp3`` (audiobook parts, mixes).
"""

from __future__ import annotations

import os
import struct
from typing import Literal

from libtagger.formats import id3v2_length

#: No codec libtagger reads stores a second of audio in fewer bytes (Speex's lowest mode
#: needs 269, Opus 750, MP3 1000): a header promising more seconds than size / this is wrong
#: (a 3-MB file cannot hold 26 hours), so its length is measured by decoding instead.
MIN_BYTES_PER_SECOND = 32


def plausible(seconds: float, size: int) -> bool:
    """Whether ``size`` bytes can hold ``seconds`` of audio in any codec libtagger reads."""
    return seconds * MIN_BYTES_PER_SECOND <= size


def ogg_is_chained(fd: int, size: int) -> bool:
    """True when the Ogg file open as ``fd`` (``size`` bytes) holds streams one after another.

    A chain starts a new logical stream (a page with the beginning-of-stream flag) after the
    pages of the first one; streams multiplexed side by side all begin on the first pages.
    Only the 27-byte page headers and lacing tables are read (about 5 ms for a 30-minute file).
    A page that does not parse (damage) ends the walk: the decoders judge the rest.
    """
    pos, in_first = 0, True
    while pos + 27 <= size:
        head = os.pread(fd, 27, pos)
        if len(head) < 27 or head[:4] != b"OggS":
            return False
        lacing = os.pread(fd, head[26], pos + 27)
        if len(lacing) < head[26]:
            return False
        if head[5] & 0x02:  # beginning of a stream
            if not in_first:
                return True
        else:
            in_first = False
        pos += 27 + head[26] + sum(lacing)
    return False


#: No MP3 stores a second in more bytes (320 kbit/s, MPEG-1's top rate): the bound used when a
#: Xing header states the frame count but not the stream's size.
_MAX_MP3_BYTES_PER_SECOND = 40000

#: Samples per MPEG audio frame by (version bits, layer bits); version 3 is MPEG-1.
_MPEG_SAMPLES = {(3, 3): 384, (3, 2): 1152, (3, 1): 1152, (2, 3): 384, (2, 2): 1152, (2, 1): 576,
                 (0, 3): 384, (0, 2): 1152, (0, 1): 576}


def mp3_length_header(fd: int) -> Literal["missing", "whole", "part"]:
    """What the first MPEG frame's Xing/Info (LAME) or VBRI header says about the file's length.

    ``"missing"``: no such header (libsndfile only guesses the length). ``"whole"``: the header
    accounts for the file's audio. ``"part"``: the file holds more audio than the header states,
    as ``cat a.mp3 b.mp3`` makes (joined audiobook parts, mixes): the header is a's, and a
    decoder that believes it stops where a ends. The header's stream size (or, without one, its
    frame count at 320 kbit/s) is compared with the bytes between the first frame and the tags
    at the end; a few reads of the file's head and tail, no decoding.
    """
    size = os.fstat(fd).st_size
    head = os.pread(fd, 10, 0)
    start = 0
    if head[:3] == b"ID3" and len(head) == 10:  # skip the ID3v2 tag
        start = id3v2_length(head)
    data = os.pread(fd, 8192, start)
    sync = next((i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0), None)
    if sync is None:
        return "missing"
    first = data[sync:sync + 200]  # the tags sit 13-36 bytes into the first frame
    frames = stream_bytes = None
    if (at := first.find(b"VBRI")) >= 0 and len(first) >= at + 18:
        stream_bytes, frames = struct.unpack_from(">II", first, at + 10)
    elif (at := first.find(b"Xing") if b"Xing" in first else first.find(b"Info")) >= 0 \
            and len(first) >= at + 16:
        flags, pos = struct.unpack_from(">I", first, at + 4)[0], at + 8
        if flags & 1:
            frames, pos = struct.unpack_from(">I", first, pos)[0], pos + 4
        if flags & 2:
            stream_bytes = struct.unpack_from(">I", first, pos)[0]
    else:
        return "missing"
    version, layer, rate_bits = (first[1] >> 3) & 3, (first[1] >> 1) & 3, (first[2] >> 2) & 3
    if not frames or (version, layer) not in _MPEG_SAMPLES or rate_bits == 3:
        return "whole"  # nothing to compare: trust it as before
    rate = (44100, 48000, 32000)[rate_bits] >> {3: 0, 2: 1, 0: 2}[version]
    seconds = frames * _MPEG_SAMPLES[version, layer] / rate
    stated = stream_bytes or seconds * _MAX_MP3_BYTES_PER_SECOND
    extra = size - _mp3_trailing_tags(fd, size) - (start + sync) - stated
    # Over 1 % and over 2 s of audio more than stated: encoders' counts differ by a frame or
    # two, and a part shorter than that would barely move the analysis windows.
    return "part" if extra > max(0.01 * stated, 2.0 * stated / seconds) else "whole"


def _mp3_trailing_tags(fd: int, size: int) -> int:
    """Bytes of the tags after an MP3's last frame: ID3v1, APEv2 (with its header), Lyrics3v2 and
    an appended ID3v2.4 tag (with its "3DI" footer)."""
    end = size
    if size >= 128 and os.pread(fd, 3, size - 128) == b"TAG":
        end -= 128
    for _ in range(3):  # the others, in any order
        if end >= 32 and os.pread(fd, 8, end - 32) == b"APETAGEX":
            footer = os.pread(fd, 32, end - 32)
            length, flags = struct.unpack_from("<I", footer, 12)[0], struct.unpack_from("<I", footer, 20)[0]
            end -= length + (32 if flags & 0x80000000 else 0)
        elif end >= 15 and os.pread(fd, 9, end - 9) == b"LYRICS200":
            digits = os.pread(fd, 6, end - 15)
            end -= (int(digits) + 15) if digits.isdigit() else 0
        elif end >= 10 and (footer := os.pread(fd, 10, end - 10))[:3] == b"3DI":
            end -= id3v2_length(footer)  # a footer's flags say it has one: header, body, footer
        else:
            break
    return size - max(end, 0)
