"""The RIFF ``LIST``/``INFO`` chunk of a WAV file: read its fields, replace it, add it or remove it.

mutagen writes a WAV's ID3 chunk but not its INFO chunk, and many players (ffmpeg/ffprobe,
Windows Explorer, foobar2000's WAV reader, libsndfile) show the INFO genre ``IGNR`` and
ignore the ID3 chunk. This module is the small, careful part that edits INFO.

A RIFF/WAVE file is ``RIFF <size u32 LE> WAVE`` followed by chunks: a 4-byte id, a u32 LE body
size, the body and one pad byte when the size is odd (the size never counts the pad). A
``LIST`` chunk's body starts with a form type; ``INFO`` holds sub-chunks of the same shape
whose bodies are NUL-terminated strings (``IGNR``: genre, ``IART``: artist, ``IPRD``: album,
``INAM``: title, ...).

What a write changes, and what it leaves alone:

* Only the ``LIST``/``INFO`` chunk is rewritten, where it is. With none, a new one is put at
  the end of the RIFF data (after ``data`` and any other chunk), where mutagen also puts a
  new ID3 chunk and where ffmpeg, libsndfile and Windows read it. Every other chunk
  (``fmt ``, ``data``, ``bext``, ``cue ``, ``LIST``/``adtl``, ``id3 ``, ...) keeps its bytes;
  chunks after the INFO chunk move by the change in its length. Inside INFO, every field
  but the one written keeps its bytes, in its place.
* The RIFF size field is set to the real length of the chunks. Bytes after the RIFF data
  (an ID3v1 trailer some tools append) are kept after it.
* A last chunk whose pad byte is missing at the end of the file, and a RIFF size field that
  is 0, too big, or leaves out the last pad byte (common writer slips) are tolerated; the
  pad is added and the size field fixed when a chunk has to follow (:func:`tidy_for_append`).
* Refused with :class:`RiffError` (nothing written): RF64/BW64 files (over 4 GiB), a result
  that would not fit the 32-bit RIFF size, chunks that run past the end of the file, stray
  bytes between chunks, more than one ``LIST``/``INFO`` chunk, a damaged INFO chunk.

The edit is in place on the file it is given: :mod:`libtagger.tags.storage.wave` gives it the
hidden copy that :func:`libtagger.tags.safe_write.atomic_update` renames over the original
only once everything is written and checked, so a crash never leaves a half-edited file.

>>> body = with_field(None, "IGNR", "Jazz")
>>> body
b'INFOIGNR\\x05\\x00\\x00\\x00Jazz\\x00\\x00'
>>> info_fields(with_field(body, "INAM", "Abc"))
{'IGNR': 'Jazz', 'INAM': 'Abc'}
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["RiffError", "Chunk", "RiffLayout", "parse_layout", "read_layout", "read_info_chunk",
           "info_fields", "with_field", "read_info", "tidy_for_append", "write_info_chunk"]

#: The largest value of the 32-bit RIFF size field.
_MAX_RIFF_SIZE = 0xFFFFFFFF
#: Block size when chunks after the INFO chunk have to move.
_MOVE_BLOCK = 1 << 20


class RiffError(ValueError):
    """The file is not a RIFF/WAVE file whose INFO chunk can be read or edited safely."""


@dataclass(frozen=True)
class Chunk:
    """One top-level chunk: ``offset`` of its 8-byte header, ``size`` of its body as stated."""

    id: bytes
    offset: int
    size: int
    form: bytes = b""  #: a ``LIST`` chunk's form type (``INFO``, ``adtl``, ...), else empty

    @property
    def end(self) -> int:
        """Where the next chunk starts (after the pad byte of an odd-sized body)."""
        return self.offset + 8 + self.size + (self.size & 1)

    @property
    def is_info(self) -> bool:
        return self.id == b"LIST" and self.form == b"INFO"


@dataclass(frozen=True)
class RiffLayout:
    """The chunks of a RIFF/WAVE file, in file order."""

    chunks: tuple[Chunk, ...]
    riff_end: int  #: where the RIFF data ends: the last chunk's end (its pad included)
    file_size: int
    missing_pad: bool  #: the last chunk's pad byte is missing at the end of the file

    @property
    def info(self) -> Chunk | None:
        """The ``LIST``/``INFO`` chunk, or None."""
        found = [c for c in self.chunks if c.is_info]
        if len(found) > 1:
            raise RiffError(f"{len(found)} LIST/INFO chunks (players disagree on which one counts)")
        return found[0] if found else None


def parse_layout(fh: BinaryIO) -> RiffLayout:
    """Walk the top-level chunks of the open file ``fh``; raises :class:`RiffError` when malformed."""
    fh.seek(0, os.SEEK_END)
    file_size = fh.tell()
    fh.seek(0)
    head = fh.read(12)
    if head[:4] in (b"RF64", b"BW64"):
        raise RiffError("RF64/BW64 WAV (over 4 GiB): libtagger does not edit its tags")
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise RiffError("not a RIFF/WAVE file")
    stated_end = 8 + struct.unpack("<I", head[4:8])[0]
    # Trust the RIFF size when it is plausible (bytes after it, e.g. an ID3v1 trailer, are not
    # chunks); a size field left at 0 or too big by a careless writer is ignored and fixed on write.
    limit = stated_end if 12 <= stated_end <= file_size else file_size
    chunks: list[Chunk] = []
    pos, missing_pad = 12, False
    while limit - pos >= 8:
        fh.seek(pos)
        cid, size = struct.unpack("<4sI", fh.read(8))
        if pos + 8 + size > limit:
            raise RiffError(f"chunk {_fourcc(cid)} at byte {pos} runs past the end of the RIFF data "
                            "(truncated or damaged file)")
        form = fh.read(4) if cid == b"LIST" and size >= 4 else b""
        chunk = Chunk(cid, pos, size, form)
        chunks.append(chunk)
        if chunk.end > limit:  # only the pad byte lies past the limit (checked above)
            if chunk.end <= file_size:
                pos = limit = chunk.end  # it is there: the RIFF size field did not count it
            else:
                missing_pad, pos = True, limit
            break
        pos = chunk.end
    if pos != limit:
        raise RiffError(f"{limit - pos} stray bytes after the last chunk at byte {pos}")
    if not any(c.id == b"fmt " for c in chunks) or not any(c.id == b"data" for c in chunks):
        raise RiffError("no fmt or data chunk: not a WAV file libtagger can edit")
    return RiffLayout(tuple(chunks), pos, file_size, missing_pad)


def read_layout(path: str | os.PathLike[str]) -> RiffLayout:
    """:func:`parse_layout` of the file at ``path``."""
    with open(path, "rb") as fh:
        return parse_layout(fh)


def read_info_chunk(path: str | os.PathLike[str]) -> bytes | None:
    """The body of the file's ``LIST``/``INFO`` chunk (starting with ``b"INFO"``), or None."""
    with open(path, "rb") as fh:
        chunk = parse_layout(fh).info
        if chunk is None:
            return None
        fh.seek(chunk.offset + 8)
        return fh.read(chunk.size)


def _fourcc(cid: bytes) -> str:
    """A chunk or field id as the user reads it: ``'data'``, not Python's ``b'data'``.

    Bytes that are not printable ASCII (a damaged id) are shown escaped.

    >>> print(_fourcc(b"data"), _fourcc(b"\\x00\\xffab"))
    'data' '\\x00\\xffab'
    """
    return repr(cid)[1:]  # bytes' repr without its b prefix escapes what is not printable


def _sub_chunks(body: bytes) -> list[tuple[bytes, bytes]]:
    """``(field id, raw bytes)`` of each INFO field, header and pad included, in order.

    Bytes after the last field that cannot hold one (fewer than 8) come last with id ``b""``.
    """
    if body[:4] != b"INFO":
        raise RiffError("the LIST chunk is not an INFO list")
    out: list[tuple[bytes, bytes]] = []
    pos = 4
    while len(body) - pos >= 8:
        fid, size = struct.unpack("<4sI", body[pos:pos + 8])
        if pos + 8 + size > len(body):
            raise RiffError(f"INFO field {_fourcc(fid)} runs past the end of its LIST chunk")
        end = min(pos + 8 + size + (size & 1), len(body))  # a last pad byte may be missing
        out.append((fid, body[pos:end]))
        pos = end
    if pos < len(body):
        out.append((b"", body[pos:]))
    return out


def _text(raw_field: bytes) -> str:
    value = raw_field[8:8 + struct.unpack("<I", raw_field[4:8])[0]].split(b"\x00", 1)[0]
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("cp1252", "replace")  # INFO predates UTF-8: Windows' code page


def info_fields(body: bytes | None) -> dict[str, str]:
    """The text of each field of an INFO body (the first one of a repeated id wins)."""
    out: dict[str, str] = {}
    for fid, raw in _sub_chunks(body) if body is not None else []:
        if fid:
            out.setdefault(fid.decode("latin-1"), _text(raw))
    return out


def _field(fid: bytes, value: str) -> bytes:
    data = value.encode("utf-8") + b"\x00"
    return struct.pack("<4sI", fid, len(data)) + data + b"\x00" * (len(data) & 1)


def with_field(body: bytes | None, field: str, value: str) -> bytes:
    """``body`` (None: a new INFO list) with ``field`` set to ``value``; every other field's bytes kept.

    The first ``field`` sub-chunk is replaced where it is and repeats of it are dropped (one
    value for players to show); without one, the field is appended.
    """
    fid = field.encode("ascii")
    if len(fid) != 4 or "\x00" in value:
        raise ValueError(f"an INFO field id has 4 ASCII characters and no NUL in its value: {field!r}")
    parts = _sub_chunks(body if body is not None else b"INFO")
    stray = [raw for pid, raw in parts if not pid]  # bytes too short for a field stay last
    out, done = [b"INFO"], False
    for pid, raw in parts:
        if pid == fid:
            if not done:
                out.append(_field(fid, value))
                done = True
        elif pid:
            out.append(raw)
    if not done:
        if sum(map(len, out)) & 1:
            out.append(b"\x00")  # the last field's missing pad byte
        out.append(_field(fid, value))
    result = b"".join(out + stray)
    if info_fields(result).get(field) != value:  # a reader must find exactly what was meant
        raise RiffError(f"INFO field {field} does not read back as written (damaged INFO chunk)")
    return result


def read_info(path: str | os.PathLike[str]) -> dict[str, str]:
    """The INFO fields of the WAV at ``path``: ``{"IGNR": "Jazz", "IART": ..., "IPRD": ...}``.

    Raises
    ------
    RiffError
        RF64, not RIFF/WAVE, or damaged chunks.
    OSError
        The file cannot be read.
    """
    return info_fields(read_info_chunk(path))


def _move_tail(fh: BinaryIO, start: int, end: int, delta: int) -> None:
    """Move the bytes ``[start, end)`` by ``delta`` (either sign), block by block."""
    if delta == 0 or start >= end:
        return
    if delta > 0:  # growing: copy from the end backwards so nothing is overwritten before it moved
        pos = end
        while pos > start:
            n = min(_MOVE_BLOCK, pos - start)
            pos -= n
            fh.seek(pos)
            block = fh.read(n)
            fh.seek(pos + delta)
            fh.write(block)
    else:
        pos = start
        while pos < end:
            n = min(_MOVE_BLOCK, end - pos)
            fh.seek(pos)
            block = fh.read(n)
            fh.seek(pos + delta)
            fh.write(block)
            pos += n


def tidy_for_append(path: str | os.PathLike[str]) -> bool:
    """Add the last chunk's missing pad byte and set the RIFF size to the chunks' real length.

    mutagen appends its ID3 chunk right after the last chunk's bytes and adds its size to the
    RIFF size field as found: without the pad the new chunk sits at an odd offset, and with a
    size field that was off it stays off, and no player finds the chunk. Call this before
    mutagen saves. Edits ``path`` in place (a copy, see the module docstring); True when it
    changed something.
    """
    with open(path, "r+b") as fh:
        layout = parse_layout(fh)
        riff_end = layout.riff_end
        if layout.missing_pad:
            fh.seek(riff_end)  # missing only at the end of the file: nothing follows it
            fh.write(b"\x00")
            riff_end += 1
        fh.seek(4)
        stated = struct.unpack("<I", fh.read(4))[0]
        if stated == riff_end - 8 and not layout.missing_pad:
            return False
        fh.seek(4)
        fh.write(struct.pack("<I", riff_end - 8))
        fh.flush()
    return True


def write_info_chunk(path: str | os.PathLike[str], body: bytes | None) -> None:
    """Give the file at ``path`` exactly this INFO body (None: no ``LIST``/``INFO`` chunk).

    Edits ``path`` in place: call it on a copy (see the module docstring).

    Raises
    ------
    RiffError
        The file is refused (see the module docstring); ``path`` is unchanged.
    """
    if body is not None:
        _sub_chunks(body)  # refuse a damaged body before touching anything
    with open(path, "r+b") as fh:
        layout = parse_layout(fh)
        old = layout.info
        if old is None and body is None:
            return
        new = b"" if body is None else (struct.pack("<4sI", b"LIST", len(body)) + body
                                        + b"\x00" * (len(body) & 1))
        if old is not None:
            at, old_len = old.offset, min(old.end, layout.riff_end) - old.offset
        else:
            at, old_len = layout.riff_end, 0
            if layout.missing_pad:
                new = b"\x00" + new  # the last chunk's pad byte, now that a chunk follows it
        delta = len(new) - old_len
        riff_end = layout.riff_end + delta  # a pad byte that was missing is part of `new`
        if riff_end - 8 > _MAX_RIFF_SIZE:
            raise RiffError("the file would be over 4 GiB, too large for a RIFF size field")
        _move_tail(fh, at + old_len, layout.file_size, delta)
        fh.seek(at)
        fh.write(new)
        if delta < 0:
            fh.truncate(layout.file_size + delta)
        fh.seek(4)
        fh.write(struct.pack("<I", riff_end - 8))
        fh.flush()
