"""Reading a file's tags: its genre, whether libtagger wrote it, and what the index keeps.

:func:`read_tag_state` is the scan's one read per decision (a track of an album is also read
when analysed, to find its album, then decided at the end of the run). Besides the genre it
gives what the index keeps for learning (:class:`LibraryFields`): every genre value a person set (None when
the genre is libtagger's own), artist, album artist and album (ID3 ``TPE1``/``TPE2``/``TALB``,
Vorbis ``ARTIST``/``ALBUMARTIST``/``ALBUM``, MP4 ``©ART``/``aART``/``©alb``, ASF
``Author``/``WM/AlbumArtist``/``WM/AlbumTitle``; a WAV's RIFF INFO ``IART``/``IPRD`` fill what
its ID3 chunk lacks), and the compilation flag (ID3 ``TCMP``, MP4 ``cpil``, Vorbis
``COMPILATION`` or ``ITUNESCOMPILATION``, ASF ``WM/IsCompilation``); read only, never written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from libtagger.tags.storage.table import open_path, open_tags, storage_for

_TEXT_FIELDS = ("artist", "albumartist", "album")


@dataclass(frozen=True)
class LibraryFields:
    """What a file says about itself besides the audio, as the index keeps it.

    ``person_genres``: every genre value in the file in its order and spelling (multi-valued
    fields included; ID3v1 references such as ``(17)`` as names), or None when the file has no
    genre or holds the one libtagger wrote (its marker; a genre a person changed since counts
    as theirs). ``artist``, ``albumartist``, ``album``: the first value, or None.
    ``compilation``: 1 when the file is flagged part of a compilation, 0 when it is not (no
    flag, or a format without tags). Never None: the index's NULL means "not read yet".
    """

    person_genres: list[str] | None = None
    artist: str | None = None
    albumartist: str | None = None
    album: str | None = None
    compilation: int = 0


@dataclass(frozen=True)
class TagState:
    """One read of a file's tags: what a scan decides with and what it indexes."""

    genres: list[str]  # the genre values as a person reads them (read_genres)
    ours: bool  # the genre is the one libtagger wrote (written_by_libtagger)
    fields: LibraryFields


def read_tag_state(path: str | os.PathLike[str]) -> TagState:
    """The file's genre, whether libtagger wrote it, and its :class:`LibraryFields`, in one read.

    Raises
    ------
    ReadError
        The file is missing or its tags cannot be parsed.
    """
    p = Path(path)
    opened = open_path(p)
    if opened is None:
        return TagState([], False, LibraryFields())
    storage, f = opened
    genres = storage.genres(f)
    ours = bool(genres) and storage.is_ours(f)
    person = [g for g in genres if g.strip()]
    texts = {name: storage.text(f, name) for name in _TEXT_FIELDS}
    # The tag's own values first; what it lacks, from outside it (a WAV's RIFF INFO).
    outside = storage.outside_fields(p)
    texts = {name: value if value is not None else outside.get(name) for name, value in texts.items()}
    return TagState(genres, ours, LibraryFields(None if ours or not person else person, **texts,
                                                compilation=storage.compilation(f)))


def read_library_fields(path: str | os.PathLike[str]) -> LibraryFields:
    """The person's genres, artist, album artist and album of a file (see :class:`LibraryFields`).

    Raises
    ------
    ReadError
        The file is missing or its tags cannot be parsed.
    """
    return read_tag_state(path).fields


def read_genres(path: str | os.PathLike[str]) -> list[str]:
    """The file's current genre values (``[]`` when it has none or cannot hold one).

    Raises
    ------
    ReadError
        The file is missing or its tags cannot be parsed.
    """
    opened = open_path(Path(path))
    return [] if opened is None else opened[0].genres(opened[1])


def written_by_libtagger(path: str | os.PathLike[str]) -> bool:
    """True when the file's genre is the one libtagger wrote (it equals our marker)."""
    p = Path(path)
    storage = storage_for(p)
    if storage is None:
        return False
    return storage.is_ours(open_tags(storage, p))
