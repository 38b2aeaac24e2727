"""Byte-exact undo: what a tag write changed in a file, and how to put the old bytes back.

A tag write changes a few small regions of a file (the tag block, a size field, a
chunk-offset table) and moves the audio as one block. :func:`record` compares the file
before and after a write and keeps a :class:`ByteRecipe`: the old file as a list of
pieces, each either a range of the *written* file (the audio, unchanged tags) or literal
old bytes (only what differs), plus the SHA-256 and size of both files. :func:`rebuild`
follows the recipe to write the old file again from the written one, and checks its hash.

Recipes of successive writes compose (:func:`compose`): the original of a file written
twice is rebuilt from its current bytes in one pass.

Memory: files are read with positional reads in 1 MiB windows (not mapped: the pages of a
mapping would count in the process's memory for the whole file); only the literal bytes
(the changed regions, typically a few KiB) are kept. A write whose changed regions exceed
:data:`MAX_LITERAL_BYTES` gets no recipe (its undo restores tag values).

>>> recipe = record("old.mp3", "new.mp3")             # doctest: +SKIP
>>> rebuild(recipe, "new.mp3", "again.mp3")          # doctest: +SKIP
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import numpy as np

__all__ = ["ByteRecipe", "RebuildError", "file_sha256", "record", "identity", "compose", "rebuild",
           "MAX_LITERAL_BYTES"]

#: A recipe keeping more changed bytes than this is not stored (the journal stays small).
MAX_LITERAL_BYTES = 4 * 1024 * 1024
#: Changed regions up to this size are kept literally, without looking for moved blocks in them.
_SMALL_REGION = 64 * 1024
#: Length of the block of old bytes looked for in the new file to find the moved audio.
_PROBE = 4096
#: Comparison window (bytes) for the common prefix, suffix and the growth of a match.
_WINDOW = 1 << 20
#: How deep the search for moved blocks recurses into what is left on either side.
_MAX_DEPTH = 12
#: Occurrences of a probe tried by search, for audio that repeats itself.
_SEARCHES = 8

#: A piece of the old file: ("w", offset, length) copies from the written file,
#: ("l", offset, length) from the recipe's literal bytes.
Piece = tuple[str, int, int]


class RebuildError(Exception):
    """The old bytes could not be rebuilt (the source is not the written file, a bad recipe)."""


@dataclass(frozen=True)
class ByteRecipe:
    """How to turn the written file back into the original, byte for byte.

    ``pieces`` cover the original in order; ``literal`` holds the bytes of its ``"l"``
    pieces. ``original_*`` and ``written_*`` identify the two files (SHA-256 hex, size).
    """

    original_sha256: str
    original_size: int
    written_sha256: str
    written_size: int
    pieces: tuple[Piece, ...]
    literal: bytes

    def to_journal(self) -> tuple[str, bytes]:
        """The JSON text and the literal bytes the journal stores (see :meth:`from_journal`)."""
        head = {"original_sha256": self.original_sha256, "original_size": self.original_size,
                "written_sha256": self.written_sha256, "written_size": self.written_size,
                "pieces": [list(p) for p in self.pieces]}
        return json.dumps(head), self.literal

    @classmethod
    def from_journal(cls, text: str, literal: bytes | None) -> ByteRecipe:
        head = json.loads(text)
        return cls(head["original_sha256"], head["original_size"], head["written_sha256"],
                   head["written_size"], tuple((str(k), int(o), int(n)) for k, o, n in head["pieces"]),
                   bytes(literal or b""))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes, read in blocks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class _Reader:
    """A file read by slices (``reader[a:b]``) and searched (``find``), a window at a time."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = os.fstat(fd).st_size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, span: slice) -> bytes:
        start, stop, _ = span.indices(self.size)
        return os.pread(self.fd, max(stop - start, 0), start) if stop > start else b""

    def find(self, probe: bytes, start: int, end: int) -> int:
        """The first offset in ``[start, end)`` where ``probe`` starts and ends, or -1."""
        at = start
        while at < end:
            window = self[at:min(at + _WINDOW + len(probe) - 1, end)]
            hit = window.find(probe)
            if hit >= 0:
                return at + hit
            at += _WINDOW
        return -1

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for at in range(0, self.size, _WINDOW):
            digest.update(self[at:at + _WINDOW])
        return digest.hexdigest()


@contextmanager
def _opened(path: str | os.PathLike[str]) -> Iterator[_Reader]:
    fd = os.open(path, os.O_RDONLY)
    try:
        yield _Reader(fd)
    finally:
        os.close(fd)


def _first_difference(a: bytes, b: bytes) -> int:
    """Index of the first differing byte of two equal-length byte strings (len when equal)."""
    if a == b:
        return len(a)
    diff = np.frombuffer(a, dtype=np.uint8) != np.frombuffer(b, dtype=np.uint8)
    return int(np.argmax(diff))


def _forward_match(old, new, i: int, j: int, old_end: int, new_end: int) -> int:
    """How many bytes ``old[i:]`` and ``new[j:]`` share from the start (within the ends)."""
    matched = 0
    while True:
        n = min(_WINDOW, old_end - i - matched, new_end - j - matched)
        if n <= 0:
            return matched
        a, b = old[i + matched:i + matched + n], new[j + matched:j + matched + n]
        same = _first_difference(a, b)
        matched += same
        if same < n:
            return matched


def _backward_match(old, new, i: int, j: int, old_start: int, new_start: int) -> int:
    """How many bytes end both at ``old[:i]`` and ``new[:j]`` (within the starts)."""
    matched = 0
    while True:
        n = min(_WINDOW, i - matched - old_start, j - matched - new_start)
        if n <= 0:
            return matched
        a = old[i - matched - n:i - matched][::-1]
        b = new[j - matched - n:j - matched][::-1]
        same = _first_difference(a, b)
        matched += same
        if same < n:
            return matched


def _places(new, probe: bytes, at: int, o0: int, o1: int, n0: int, n1: int) -> Iterator[int]:
    """Where ``probe`` (old bytes at ``at``) may sit in ``new[n0:n1]``, likeliest first.

    A tag write moves the audio by the size change of the tag before it (aligned with the
    region's end) or not at all (aligned with its start): those two are tried first. Audio
    repeats itself (loops, silence), so a few more occurrences found by search follow.
    """
    for j in (at + (n1 - o1), at + (n0 - o0)):
        if n0 <= j <= n1 - len(probe) and new[j:j + len(probe)] == probe:
            yield j
    j = n0 - 1
    for _ in range(_SEARCHES):
        j = new.find(probe, j + 1, n1)
        if j < 0:
            return
        yield j


def _find_moved(old, new, o0: int, o1: int, n0: int, n1: int) -> tuple[int, int, int] | None:
    """The longest block of ``old[o0:o1]`` found in ``new[n0:n1]``: (old, new, length)."""
    best: tuple[int, int, int] | None = None
    for fraction in (0.5, 0.25, 0.75):
        at = o0 + int((o1 - o0 - _PROBE) * fraction)
        probe = old[at:at + _PROBE]
        for j in _places(new, probe, at, o0, o1, n0, n1):
            back = _backward_match(old, new, at, j, o0, n0)
            ahead = _forward_match(old, new, at, j, o1, n1)
            if best is None or back + ahead > best[2]:
                best = (at - back, j - back, back + ahead)
            if best[2] >= (o1 - o0) // 2:  # the audio block: no need to look further
                return best
    return best


def _pieces(old, new, o0: int, o1: int, n0: int, n1: int, depth: int = 0) -> list[Piece]:
    """Pieces rebuilding ``old[o0:o1]`` from ``new[n0:n1]`` (literal offsets are into ``old``)."""
    if o1 <= o0:
        return []
    if o1 - o0 > _SMALL_REGION and n1 - n0 >= _PROBE and depth < _MAX_DEPTH:
        found = _find_moved(old, new, o0, o1, n0, n1)
        if found is not None:
            i, j, n = found
            return (_pieces(old, new, o0, i, n0, j, depth + 1) + [("w", j, n)]
                    + _pieces(old, new, i + n, o1, j + n, n1, depth + 1))
    return [("l", o0, o1 - o0)]


def _common_ends(old, new) -> tuple[int, int]:
    """Lengths of the common prefix and of the common suffix (not overlapping the prefix)."""
    prefix = _forward_match(old, new, 0, 0, len(old), len(new))
    suffix = _backward_match(old, new, len(old), len(new), prefix, prefix)
    return prefix, suffix


def _with_literal(old, pieces: list[Piece]) -> tuple[tuple[Piece, ...], bytes]:
    """Pieces whose literal offsets point into the returned literal bytes instead of ``old``."""
    out: list[Piece] = []
    literal = bytearray()
    for kind, offset, length in pieces:
        if kind == "l":
            out.append(("l", len(literal), length))
            literal += old[offset:offset + length]
        elif length:
            out.append((kind, offset, length))
    return tuple(out), bytes(literal)


def record(old_path: str | os.PathLike[str], new_path: str | os.PathLike[str]) -> ByteRecipe | None:
    """The recipe that rebuilds ``old_path`` from ``new_path``; None when it would be too large.

    Parameters
    ----------
    old_path, new_path
        The file before and after a tag write (both still exist while the write is checked).
    """
    with _opened(old_path) as old, _opened(new_path) as new:
        prefix, suffix = _common_ends(old, new)
        middle = _pieces(old, new, prefix, len(old) - suffix, prefix, len(new) - suffix)
        if sum(n for kind, _, n in middle if kind == "l") > MAX_LITERAL_BYTES:
            return None
        pieces = [("w", 0, prefix), *middle, ("w", len(new) - suffix, suffix)]
        pieces_out, literal = _with_literal(old, pieces)
        return ByteRecipe(old.sha256(), len(old), new.sha256(), len(new), pieces_out, literal)


def identity(path: str | os.PathLike[str]) -> ByteRecipe:
    """The recipe of a write that left the file as it was (the original is the written file)."""
    size = os.path.getsize(path)
    digest = file_sha256(path)
    return ByteRecipe(digest, size, digest, size, (("w", 0, size),) if size else (), b"")


def _slice(recipe: ByteRecipe, start: int, length: int) -> list[tuple[Piece, bytes]]:
    """Bytes ``[start, start+length)`` of ``recipe``'s original, as pieces over its written file.

    Literal pieces come with their bytes (the literal offset of each is then 0).
    """
    starts, pos = [], 0
    for piece in recipe.pieces:
        starts.append(pos)
        pos += piece[2]
    out: list[tuple[Piece, bytes]] = []
    k = max(bisect.bisect_right(starts, start) - 1, 0)
    end = start + length
    while start < end and k < len(recipe.pieces):
        kind, offset, n = recipe.pieces[k]
        skip = start - starts[k]
        take = min(n - skip, end - start)
        if kind == "w":
            out.append((("w", offset + skip, take), b""))
        else:
            out.append((("l", 0, take), recipe.literal[offset + skip:offset + skip + take]))
        start += take
        k += 1
    if start < end:
        raise RebuildError(f"recipe covers {pos} bytes, asked for bytes up to {end}")
    return out


def compose(later: ByteRecipe, earlier: ByteRecipe) -> ByteRecipe:
    """One recipe rebuilding ``earlier``'s original from ``later``'s written file.

    ``earlier`` was a write whose result ``later`` then changed: ``earlier.written_sha256``
    must equal ``later.original_sha256``.
    """
    if earlier.written_sha256 != later.original_sha256:
        raise RebuildError("the two writes do not follow each other")
    pieces: list[Piece] = []
    literal = bytearray()
    for kind, offset, n in earlier.pieces:
        parts = ([(("l", 0, n), earlier.literal[offset:offset + n])] if kind == "l"
                 else _slice(later, offset, n))
        for (k, o, m), data in parts:
            if k == "l":
                pieces.append(("l", len(literal), m))
                literal += data
            else:
                pieces.append((k, o, m))
    return ByteRecipe(earlier.original_sha256, earlier.original_size, later.written_sha256,
                      later.written_size, tuple(pieces), bytes(literal))


def _write_pieces(recipe: ByteRecipe, source, out: BinaryIO) -> None:
    for kind, offset, n in recipe.pieces:
        if kind == "l":
            out.write(recipe.literal[offset:offset + n])
            continue
        if offset + n > len(source):
            raise RebuildError(f"the file is {len(source)} bytes, the recipe reads up to {offset + n}")
        for at in range(offset, offset + n, _WINDOW):
            out.write(source[at:min(at + _WINDOW, offset + n)])


def rebuild(recipe: ByteRecipe, source: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Write ``recipe``'s original to ``dest`` from ``source`` (the written file), checked.

    Raises
    ------
    RebuildError
        ``source`` is not the written file, or the result does not hash to the original.
    """
    with _opened(source) as src:
        if len(src) != recipe.written_size:
            raise RebuildError(f"the file is {len(src)} bytes, libtagger wrote {recipe.written_size}")
        with open(dest, "wb") as out:
            _write_pieces(recipe, src, out)
    if os.path.getsize(dest) != recipe.original_size or file_sha256(dest) != recipe.original_sha256:
        raise RebuildError("the rebuilt bytes do not hash to the original's")
