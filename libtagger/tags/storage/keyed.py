"""Formats whose tag is a plain key -> list of values map: Vorbis comments and ASF (WMA).

Both store the genre and libtagger's marker as ordinary text items, so one class,
:class:`KeyedStorage`, serves both, given its keys. What really differs is a parameter:

=====================  ===============================  ===================================
                       Vorbis comment (FLAC, Ogg)       ASF (WMA)
=====================  ===============================  ===================================
genre / marker keys    ``GENRE`` / ``LIBTAGGER_GENRE``  ``WM/Genre`` / ``LIBTAGGER/Genre``
key case               ignored (mutagen folds it)       kept (attribute names)
values                 ``str``                          ASF attributes (read with ``str()``)
blank genre value      no genre (``drop_blank_genres``) a genre value, as stored
other tags checked as  the comments in order, and       the attributes, sorted
                       FLAC's pictures
=====================  ===============================  ===================================

Several genres are several values of the one key (``GENRE=Rock``, ``GENRE=Metal``; several
``WM/Genre`` attributes), and so is the marker.

An empty or blank ``GENRE=`` (some rippers write one) is no genre: the file gets libtagger's,
and undo puts the empty value back (the snapshot keeps raw values).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import mutagen
from mutagen.asf import ASF
from mutagen.flac import FLAC
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggvorbis import OggVorbis

from libtagger.tags.storage.base import Storage, digest, marker_text, marker_values

#: ``others(f, skip)``: fingerprints of every tag item but those named in ``skip``.
OthersFingerprint = Callable[[Any, set[str]], dict[str, str]]


class KeyedStorage(Storage):
    """The genre and marker as text items ``genre_key`` and ``marker_key`` of a key -> values tag.

    Parameters
    ----------
    kind
        The snapshot's ``format`` (``vorbis``, ``asf``).
    opener
        ``opener(path)``: the loaded mutagen file.
    genre_key, marker_key
        Where the genre and libtagger's marker are kept.
    text_keys
        Where the artist, album artist and album are kept (read only, for the index).
    compilation_keys
        Where the compilation flag is kept, the first present counting (read only, for the index).
    others
        Fingerprints of every other item (see :data:`OthersFingerprint`), to check they stay.
    drop_blank_genres
        An empty or blank genre value reads as no genre (Vorbis).
    """

    def __init__(self, *, kind: str, opener: Callable[[Path], Any], genre_key: str, marker_key: str,
                 text_keys: dict[str, str], compilation_keys: tuple[str, ...], others: OthersFingerprint,
                 drop_blank_genres: bool) -> None:
        self.kind = kind
        self.opener = opener
        self.genre_key = genre_key
        self.marker_key = marker_key
        self.text_keys = text_keys
        self.compilation_keys = compilation_keys
        self.others_of = others
        self.drop_blank_genres = drop_blank_genres

    def open(self, path: Path) -> Any:
        return self.opener(path)

    def genres(self, f: Any) -> list[str]:
        raw = self.raw(f)
        return [v for v in raw if v.strip()] if self.drop_blank_genres else raw

    def raw(self, f: Any) -> list[str]:
        # str(): ASF values are attribute objects; Vorbis values already are str
        return [str(v) for v in f.tags.get(self.genre_key, [])] if f.tags is not None else []

    def set_raw(self, f: Any, values: list[str]) -> None:
        self._set(f, self.genre_key, list(values) if values else None)

    def marker(self, f: Any) -> str | None:
        # str(): ASF values are attribute objects. Several values: several genres written (repeated key).
        return marker_text(f.tags.get(self.marker_key, [])) if f.tags is not None else None

    def set_marker(self, f: Any, value: str | None) -> None:
        self._set(f, self.marker_key, None if value is None else marker_values(value))

    @staticmethod
    def _set(f: Any, key: str, values: list[str] | None) -> None:
        if key in f.tags:
            del f.tags[key]
        if values is not None:
            f.tags[key] = values

    def others(self, f: Any) -> dict[str, str]:
        return self.others_of(f, {self.genre_key, self.marker_key})


def _open_vorbis(path: Path) -> Any:
    f = mutagen.File(path, options=[FLAC, OggVorbis, OggOpus, OggFLAC, OggSpeex])
    if f is None:
        # A FLAC behind an ID3v2 tag (some rippers write one) starts "ID3", and mutagen.File
        # picks FLAC for it only by a ``.flac`` name; the journaled write edits a ``.tmp`` copy.
        # FLAC itself skips the ID3 tag (and keeps it when saving).
        try:
            return FLAC(path)
        except mutagen.MutagenError:
            raise mutagen.MutagenError("not a FLAC, Ogg Vorbis or Opus file") from None
    return f


def _vorbis_others(f: Any, skip: set[str]) -> dict[str, str]:
    """The comments in their order, keys folded to lower case (Vorbis keys ignore case)."""
    skip = {k.lower() for k in skip}
    pairs = [(k.lower(), v) for k, v in (f.tags or []) if k.lower() not in skip]
    out = {"comments": digest(pairs)}
    if isinstance(f, FLAC):
        out["pictures"] = digest([(p.type, p.mime, p.desc, p.data) for p in f.pictures])
    return out


def _asf_others(f: Any, skip: set[str]) -> dict[str, str]:
    """The attributes sorted by name (case kept), each value as its ``repr`` (its type too)."""
    if f.tags is None:
        return {}
    pairs = sorted((k, repr(v)) for k, v in f.tags.items() if k not in skip)
    return {"attributes": digest(pairs)}


VORBIS = KeyedStorage(kind="vorbis", opener=_open_vorbis, genre_key="GENRE", marker_key="LIBTAGGER_GENRE",
                      text_keys={"artist": "ARTIST", "albumartist": "ALBUMARTIST", "album": "ALBUM"},
                      # COMPILATION: the Vorbis convention (foobar2000, beets, picard); ITUNESCOMPILATION:
                      # what some taggers copy from iTunes. Vorbis keys ignore case.
                      compilation_keys=("COMPILATION", "ITUNESCOMPILATION"),
                      others=_vorbis_others, drop_blank_genres=True)

ASF_STORAGE = KeyedStorage(kind="asf", opener=ASF, genre_key="WM/Genre", marker_key="LIBTAGGER/Genre",
                           text_keys={"artist": "Author", "albumartist": "WM/AlbumArtist",
                                      "album": "WM/AlbumTitle"},
                           compilation_keys=("WM/IsCompilation",),
                           others=_asf_others, drop_blank_genres=False)
