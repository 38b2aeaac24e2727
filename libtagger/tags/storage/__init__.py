"""Read and write the genre tag of every supported audio format, safely.

One small storage class per tag format (the beets/mediafile way). Which extension uses
which one is the ``storage`` column of :data:`libtagger.formats.FORMATS`:

===========================  ==========================  ================================
storage key (formats)        genre is stored in          libtagger marker
===========================  ==========================  ================================
id3-mp3, id3-wave, id3-aiff  ID3v2 ``TCON``              ``TXXX:LIBTAGGER_GENRE``
id3-wave (WAV) also          RIFF INFO ``IGNR``          (the ID3 chunk's marker)
id3-mp3 (MP3) also           APEv2 ``Genre`` (if there)  (the ID3 tag's marker)
vorbis (FLAC, Ogg)           Vorbis comment ``GENRE``    ``LIBTAGGER_GENRE``
mp4 (AAC, ALAC)              MP4 ``©gen`` (+ old gnre)   ``----:org.libtagger:genre``
asf (WMA)                    ASF ``WM/Genre``            ``LIBTAGGER/Genre``
None (.au, raw .aac, ...)    (no genre; writing raises)
===========================  ==========================  ================================

The marker holds the value libtagger wrote, so a later run can tell its own
genre (which it may replace) from one a person set (which it keeps):
:func:`written_by_libtagger` is true when the current genre equals the marker.

Every write goes through :func:`libtagger.tags.safe_write.atomic_update`: a hidden copy
beside the file is edited, re-read and checked (the genre reads back, every other
tag, the cover art and the stream parameters are unchanged), fsynced and renamed
over the original. See that module for the permission, ownership, mtime and
hard-link policy. Only the genre, the marker and (MP4) the old numeric ``gnre``
atom are touched.

Details worth knowing:

* Apart from the genre, the marker and ``gnre``, bytes can still move: a tag
  block may be re-padded, and mutagen rewrites the whole tag it saves (values
  unchanged).
* WAV: the genre is written to the ID3 chunk and to the RIFF ``INFO`` chunk's ``IGNR``
  (what ffprobe, Windows and most players show), by :mod:`libtagger.tags.riff_info`, which
  keeps every other chunk and INFO field byte for byte. A genre found only in ``IGNR`` is
  read like any other (a person's genre, kept by default); the snapshot holds the whole
  INFO chunk (or its absence), so undo puts it back byte for byte. AIFF has no genre field
  in its own text chunks: its ID3 chunk is the one players read.

* ID3: the file keeps its ID3v2 version (v2.3 stays v2.3, frames are not
  converted); a new tag is v2.4; a v2.2 tag (which mutagen cannot write) becomes
  v2.3. An existing ID3v1 trailer is kept and updated by mutagen from the v2
  tag (so its genre byte follows the new genre). Reading turns ID3v1 style
  references such as ``(17)`` into names (``Rock``).
* MP4: the old numeric ``gnre`` atom is read as a genre; writing ``©gen`` removes
  it so the two cannot disagree, and :func:`restore` puts it back byte for byte.
* Writing a genre that is already there (with our marker) does nothing.
* :func:`read_library_fields` (and :func:`read_tag_state`, the scan's one read per file)
  also gives what the index keeps for learning: every genre value a person set (None
  when the genre is libtagger's own), artist, album artist and album (ID3 ``TPE1``/
  ``TPE2``/``TALB``, Vorbis ``ARTIST``/``ALBUMARTIST``/``ALBUM``, MP4 ``©ART``/``aART``/
  ``©alb``, ASF ``Author``/``WM/AlbumArtist``/``WM/AlbumTitle``); read only, never written.

Example
-------
>>> snap = snapshot("song.flac")                    # doctest: +SKIP
>>> write_genre("song.flac", "Hip-Hop")             # doctest: +SKIP
>>> read_genres("song.flac"), written_by_libtagger("song.flac")  # doctest: +SKIP
(['Hip-Hop'], True)
>>> restore("song.flac", snap)                      # undo        # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import mutagen
from mutagen.aiff import AIFF
from mutagen.apev2 import APENoHeaderError, APEv2, TEXT as APE_TEXT, error as APEError
from mutagen.asf import ASF
from mutagen.flac import FLAC
from mutagen.id3 import TCON, TXXX
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, Atoms, MP4FreeForm, AtomDataType
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from libtagger.errors import ReadError, WriteError
from libtagger.formats import FORMATS
from libtagger.tags import exact, riff_info
from libtagger.tags.safe_write import WriteResult, atomic_update, find_oserror, remove_stale_temporaries

__all__ = [
    "TAGGABLE_EXTENSIONS", "STORAGE_KEYS", "WriteResult", "read_genres", "snapshot", "write_genre",
    "restore", "written_by_libtagger", "remove_stale_temporaries", "LibraryFields", "TagState",
    "read_library_fields", "read_tag_state", "genre_fields", "EditWatcher",
]

SNAPSHOT_VERSION = 1


def _digest(value: Any) -> str:
    """A short stable fingerprint of a tag value (covers can be megabytes)."""
    return hashlib.sha1(repr(value).encode("utf-8", "surrogatepass")).hexdigest()


class _Storage:
    """How one tag format stores the genre. Subclasses work on a loaded mutagen file."""

    kind: str = ""
    #: Snapshot keys of this format's own state, checked after a write and put back by restore.
    extra_keys: tuple[str, ...] = ()
    #: Where the format keeps the artist, album artist and album (read only, for the index).
    TEXT_KEYS: dict[str, str] = {}

    def open(self, path: Path) -> Any:
        raise NotImplementedError

    def has_tags(self, f: Any) -> bool:
        return f.tags is not None

    def ensure_tags(self, f: Any) -> None:
        if f.tags is None:
            f.add_tags()

    def genres(self, f: Any) -> list[str]:
        """Genre values as a person would read them."""
        return self.raw(f)

    def raw(self, f: Any) -> list[str]:
        """Genre values exactly as stored."""
        raise NotImplementedError

    def text(self, f: Any, field: str) -> str | None:
        """The first value of ``field`` (``artist``, ``albumartist``, ``album``), or None."""
        key = self.TEXT_KEYS[field]
        values = f.tags.get(key) if f.tags is not None else None
        return _first_text(values)

    def set_raw(self, f: Any, values: list[str]) -> None:
        raise NotImplementedError

    def marker(self, f: Any) -> str | None:
        raise NotImplementedError

    def is_ours(self, f: Any) -> bool:
        """The genre is the one libtagger wrote: it equals the marker."""
        mark = self.marker(f)
        return mark is not None and self.raw(f) == [mark]

    def write_target(self, current: dict[str, Any], genre: str) -> dict[str, Any]:
        """The snapshot-shaped state a write of ``genre`` gives a file now in state ``current``."""
        return dict(current, genres=[genre], marker=genre, mp4_gnre=None, has_tags=True)

    def set_marker(self, f: Any, value: str | None) -> None:
        raise NotImplementedError

    def others(self, f: Any) -> dict[str, str]:
        """Fingerprints of everything but the genre and marker (to check they stay)."""
        raise NotImplementedError

    def extra_state(self, f: Any, path: Path) -> dict[str, Any]:
        return {}

    def set_extra_state(self, f: Any, snap: dict[str, Any]) -> None:
        pass

    def is_empty(self, f: Any) -> bool:
        return f.tags is None or len(f.tags) == 0

    def save(self, f: Any, snap_version: list[int] | None = None) -> None:
        f.save()

    def delete_tags(self, f: Any) -> None:
        f.delete()

    def outside_fields(self, path: Path) -> LibraryFields | None:
        """Fields the file keeps outside the tag this class reads (see :class:`_ID3`), or None."""
        return None


class _ID3(_Storage):
    kind = "id3"
    MARKER = "LIBTAGGER_GENRE"
    TEXT_KEYS = {"artist": "TPE1", "albumartist": "TPE2", "album": "TALB"}

    def __init__(self, cls: type) -> None:
        self.cls = cls  # MP3, WAVE or AIFF: chosen by the original's name (the copy ends in .tmp)

    def open(self, path: Path) -> Any:
        cls = self.cls
        # translate=False keeps a v2.3 tag's frames exactly as they are (no v2.4 upgrade).
        f = cls(path, translate=False)
        if f.tags is not None and tuple(f.tags.version[:2]) not in ((2, 3), (2, 4)):
            # v2.2 (3-letter frames) or ID3v1 only: mutagen can only write v2.3/v2.4
            if tuple(f.tags.version[:2]) == (2, 2):
                f.tags.update_to_v23()
            else:
                f.tags.update_to_v24()
        return f

    def genres(self, f: Any) -> list[str]:
        frame = f.tags.get("TCON") if f.tags is not None else None
        return list(frame.genres) if frame is not None else []

    def outside_fields(self, path: Path) -> LibraryFields | None:
        # MP3 and AIFF keep nothing outside the ID3 tag; a WAV's RIFF INFO chunk: _WAVE.
        return None

    def raw(self, f: Any) -> list[str]:
        frame = f.tags.get("TCON") if f.tags is not None else None
        return [str(t) for t in frame.text] if frame is not None else []

    def set_raw(self, f: Any, values: list[str]) -> None:
        f.tags.delall("TCON")
        if values:
            f.tags.add(TCON(encoding=3, text=list(values)))

    def marker(self, f: Any) -> str | None:
        frame = f.tags.get("TXXX:" + self.MARKER) if f.tags is not None else None
        return str(frame.text[0]) if frame is not None and frame.text else None

    def set_marker(self, f: Any, value: str | None) -> None:
        f.tags.delall("TXXX:" + self.MARKER)
        if value is not None:
            f.tags.add(TXXX(encoding=3, desc=self.MARKER, text=[value]))

    def others(self, f: Any) -> dict[str, str]:
        if f.tags is None:
            return {}
        skip = {"TCON", "TXXX:" + self.MARKER}
        return {k: _digest(v) for k, v in f.tags.items() if k not in skip}

    def extra_state(self, f: Any, path: Path) -> dict[str, Any]:
        return {"id3_version": list(f.tags.version) if f.tags is not None else None}

    def save(self, f: Any, snap_version: list[int] | None = None) -> None:
        version = list(f.tags.version) if snap_version is None else snap_version
        v2 = 3 if tuple(version[:2]) in ((2, 2), (2, 3)) else 4
        if v2 == 3 and tuple(f.tags.version[:2]) == (2, 4):
            f.tags.update_to_v23()
        elif v2 == 4 and tuple(f.tags.version[:2]) == (2, 3):
            f.tags.update_to_v24()
        # v23_sep=None: multi-valued text stays null-separated, as it was read. An MP3's ID3v1
        # trailer is updated when there (v1=1, mutagen's default); _MP3 asks for v1=2 when its
        # APEv2 write dropped the trailer. WAV and AIFF have no trailer (their save takes no v1).
        v1 = {"v1": f.libtagger_id3v1} if hasattr(f, "libtagger_id3v1") else {}
        f.save(v2_version=v2, v23_sep=None, **v1)


def _read_ape(path: Path) -> APEv2 | None:
    """The APEv2 tag of a file, or None when it has none (a damaged one raises MutagenError)."""
    try:
        return APEv2(path)
    except APENoHeaderError:
        return None
    except APEError as exc:
        raise mutagen.MutagenError(f"damaged APEv2 tag: {exc}") from exc


def _ape_genre_key(ape: APEv2 | None) -> str | None:
    """The APEv2 tag's genre item key in its own spelling (APE keys ignore case), or None."""
    return None if ape is None else next((k for k in ape.keys() if k.lower() == "genre"), None)


def _ape_genre(ape: APEv2 | None) -> list[str] | None:
    """The text values of the APEv2 ``Genre`` item as stored, or None when there is none."""
    key = _ape_genre_key(ape)
    if key is None or ape[key].kind != APE_TEXT:
        return None  # a binary "Genre" item is no genre anyone reads; left alone
    return list(ape[key])


def _has_id3v1(path: str | os.PathLike[str]) -> bool:
    with open(path, "rb") as fh:
        if fh.seek(0, os.SEEK_END) < 128:
            return False
        fh.seek(-128, os.SEEK_END)
        return fh.read(3) == b"TAG"


class _MP3(_ID3):
    """An MP3's ID3v2 tag (as :class:`_ID3`) plus the ``Genre`` of an APEv2 tag beside it.

    foobar2000, mp3gain and older taggers keep an APEv2 tag at the end of MP3s, and players that
    read it show its genre. A genre there is a person's genre like an ID3 one: kept unless
    ``--overwrite``. With ``--overwrite`` an existing APE ``Genre`` item gets the new genre too,
    so the file never says two genres; libtagger never adds an APE tag or item. The marker lives
    in the ID3 tag only. The snapshot key ``ape_genre`` holds the APE genre values as stored (None:
    no such item), and restore puts them back.
    """

    extra_keys = ("ape_genre",)

    def __init__(self) -> None:
        super().__init__(MP3)

    def open(self, path: Path) -> Any:
        f = super().open(path)
        f.libtagger_ape = _read_ape(path)
        f.libtagger_ape_target = _ape_genre(f.libtagger_ape)
        return f

    def _ape(self, f: Any) -> list[str]:
        return [v for v in _ape_genre(f.libtagger_ape) or [] if v.strip()]

    def genres(self, f: Any) -> list[str]:
        id3, ape = super().genres(f), self._ape(f)
        if not ape or ape == id3:
            return id3
        if not id3:
            return ape  # a genre set in the APE tag only: a person's genre like any other
        if super().is_ours(f):
            # libtagger wrote the ID3 genre, the APE one differs: a person's, set after (or
            # beside) libtagger's, and the one their player shows. It wins, as WAV's INFO does.
            return ape
        return id3 + [g for g in ape if g not in id3]  # both a person's: every value they set

    def is_ours(self, f: Any) -> bool:
        # Ours only when the APE genre, if any, is also the marker's value.
        ape = self._ape(f)
        return super().is_ours(f) and (not ape or ape == self.raw(f))

    def others(self, f: Any) -> dict[str, str]:
        out = super().others(f)
        ape = f.libtagger_ape
        if ape is not None:
            genre_key = _ape_genre_key(ape)
            out["ape:items"] = _digest(sorted((k.lower(), v.kind, v.value) for k, v in ape.items()
                                              if k != genre_key))
        out["id3v1"] = str(_has_id3v1(f.filename))
        return out

    def extra_state(self, f: Any, path: Path) -> dict[str, Any]:
        return dict(super().extra_state(f, path), ape_genre=_ape_genre(f.libtagger_ape))

    def write_target(self, current: dict[str, Any], genre: str) -> dict[str, Any]:
        ape = [genre] if current.get("ape_genre") is not None else None
        return dict(super().write_target(current, genre), ape_genre=ape)

    def set_extra_state(self, f: Any, snap: dict[str, Any]) -> None:
        f.libtagger_ape_target = snap["ape_genre"]

    def save(self, f: Any, snap_version: list[int] | None = None) -> None:
        self._write_ape(f)
        super().save(f, snap_version)

    def delete_tags(self, f: Any) -> None:
        self._write_ape(f)
        super().delete_tags(f)

    def _write_ape(self, f: Any) -> None:
        """Give the APE tag its target genre, before the ID3 save (which then restores ID3v1)."""
        target = f.libtagger_ape_target
        if target == _ape_genre(f.libtagger_ape):
            return
        # mutagen writes the APE tag at the very end and drops an ID3v1 trailer that followed
        # it: the ID3 save right after this one writes the trailer again (v1=2).
        if _has_id3v1(f.filename):
            f.libtagger_id3v1 = 2
        ape = f.libtagger_ape if f.libtagger_ape is not None else APEv2()
        key = _ape_genre_key(ape)
        if key is not None:
            del ape[key]
        if target is not None:
            ape[key or "Genre"] = list(target)
        if len(ape) == 0:
            ape.delete(f.filename)  # only the genre was in it
        else:
            ape.save(f.filename)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


class _WAVE(_ID3):
    """A WAV's ID3 chunk (as :class:`_ID3`) plus the RIFF ``LIST``/``INFO`` ``IGNR`` genre.

    Players that ignore the ID3 chunk (ffprobe, Windows) read ``IGNR``, so a write sets both.
    The marker lives in the ID3 chunk only (INFO has no place for it). The snapshot key
    ``riff_info`` holds the INFO chunk's body, base64, or None when the file had none.
    """

    extra_keys = ("riff_info",)

    def __init__(self) -> None:
        super().__init__(WAVE)

    def open(self, path: Path) -> Any:
        # The RIFF walk first: an RF64 or damaged file is refused with riff_info's clear reason.
        layout = riff_info.read_layout(path)
        f = super().open(path)
        f.libtagger_layout = layout
        f.libtagger_info = riff_info.read_info_chunk(path)
        f.libtagger_info_target = f.libtagger_info
        return f

    def _ignr(self, f: Any) -> str | None:
        value = riff_info.info_fields(f.libtagger_info).get("IGNR")
        return value if value and value.strip() else None

    def genres(self, f: Any) -> list[str]:
        id3, ignr = super().genres(f), self._ignr(f)
        if ignr is None or id3 == [ignr]:
            return id3
        if not id3:
            return [ignr]  # a genre set in INFO only (Windows, a DAW): a person's genre like any other
        # Both, and they differ. When the ID3 genre is libtagger's own, the INFO one was changed
        # after libtagger wrote both: it is a person's newer choice and wins. Otherwise the ID3
        # genre wins (multi-valued, what tag editors show and edit). Either way is_ours() is
        # False, so the default policy keeps the file instead of overwriting the person's INFO.
        return [ignr] if super().is_ours(f) else id3

    def is_ours(self, f: Any) -> bool:
        # Ours only when every genre the file holds (ID3 and INFO) is the marker's value.
        mark = self.marker(f)
        ignr = self._ignr(f)
        held = [v for v in (self.raw(f), [ignr] if ignr else []) if v]
        return mark is not None and bool(held) and all(v == [mark] for v in held)

    def others(self, f: Any) -> dict[str, str]:
        out = super().others(f)
        fields = riff_info.info_fields(f.libtagger_info)
        out["riff:info"] = _digest(sorted((k, v) for k, v in fields.items() if k != "IGNR"))
        out["riff:chunks"] = _digest([(c.id, c.size, c.form) for c in f.libtagger_layout.chunks
                                      if not c.is_info and c.id.lower() != b"id3 "])
        return out

    def extra_state(self, f: Any, path: Path) -> dict[str, Any]:
        return dict(super().extra_state(f, path), riff_info=_b64(f.libtagger_info))

    def outside_fields(self, path: Path) -> LibraryFields | None:
        # INFO's artist (IART) and album (IPRD) fill what the ID3 chunk lacks (read_tag_state puts
        # ID3's values first). No genre here: genres() already reads IGNR, and whether it is a
        # person's is decided there with the marker (is_ours); INFO has no album artist.
        info = riff_info.read_info(path)
        return LibraryFields(None, info.get("IART") or None, None, info.get("IPRD") or None)

    def write_target(self, current: dict[str, Any], genre: str) -> dict[str, Any]:
        body = riff_info.with_field(_unb64(current["riff_info"]), "IGNR", genre)
        return dict(super().write_target(current, genre), riff_info=_b64(body))

    def set_extra_state(self, f: Any, snap: dict[str, Any]) -> None:
        f.libtagger_info_target = _unb64(snap["riff_info"])

    def save(self, f: Any, snap_version: list[int] | None = None) -> None:
        riff_info.tidy_for_append(f.filename)  # else mutagen's ID3 chunk may land where no one finds it
        super().save(f, snap_version)
        self._write_info(f)

    def delete_tags(self, f: Any) -> None:
        riff_info.tidy_for_append(f.filename)
        super().delete_tags(f)
        self._write_info(f)

    def _write_info(self, f: Any) -> None:
        # After mutagen's save (which may move chunks): riff_info walks the file again.
        if f.libtagger_info_target != f.libtagger_info:
            riff_info.write_info_chunk(f.filename, f.libtagger_info_target)


class _Vorbis(_Storage):
    kind = "vorbis"
    MARKER = "LIBTAGGER_GENRE"
    TEXT_KEYS = {"artist": "ARTIST", "albumartist": "ALBUMARTIST", "album": "ALBUM"}
    _options = [FLAC, OggVorbis, OggOpus, OggFLAC, OggSpeex]

    def open(self, path: Path) -> Any:
        f = mutagen.File(path, options=self._options)
        if f is None:
            raise mutagen.MutagenError("not a FLAC, Ogg Vorbis or Opus file")
        return f

    def genres(self, f: Any) -> list[str]:
        # An empty or blank ``GENRE=`` (some rippers write one) is no genre: the file gets
        # libtagger's, and undo puts the empty value back (the snapshot keeps raw values).
        return [v for v in self.raw(f) if v.strip()]

    def raw(self, f: Any) -> list[str]:
        return list(f.tags.get("GENRE", [])) if f.tags is not None else []

    def set_raw(self, f: Any, values: list[str]) -> None:
        if "GENRE" in f.tags:
            del f.tags["GENRE"]
        if values:
            f.tags["GENRE"] = list(values)

    def marker(self, f: Any) -> str | None:
        vals = f.tags.get(self.MARKER, []) if f.tags is not None else []
        return vals[0] if vals else None

    def set_marker(self, f: Any, value: str | None) -> None:
        if self.MARKER in f.tags:
            del f.tags[self.MARKER]
        if value is not None:
            f.tags[self.MARKER] = [value]

    def others(self, f: Any) -> dict[str, str]:
        skip = {"genre", self.MARKER.lower()}
        pairs = [(k.lower(), v) for k, v in (f.tags or []) if k.lower() not in skip]
        out = {"comments": _digest(pairs)}
        if isinstance(f, FLAC):
            out["pictures"] = _digest([(p.type, p.mime, p.desc, p.data) for p in f.pictures])
        return out


class _MP4(_Storage):
    kind = "mp4"
    GENRE = "\xa9gen"
    MARKER = "----:org.libtagger:genre"
    TEXT_KEYS = {"artist": "\xa9ART", "albumartist": "aART", "album": "\xa9alb"}

    def open(self, path: Path) -> Any:
        return MP4(path)

    def raw(self, f: Any) -> list[str]:
        # mutagen already turns a valid numeric ``gnre`` into ``©gen`` text when loading.
        return list(f.tags.get(self.GENRE, [])) if f.tags is not None else []

    def set_raw(self, f: Any, values: list[str]) -> None:
        f.tags.pop(self.GENRE, None)
        # an unparseable gnre is kept by mutagen in _failed_atoms and written back: drop it too
        f.tags._failed_atoms.pop("gnre", None)
        if values:
            f.tags[self.GENRE] = list(values)

    def marker(self, f: Any) -> str | None:
        vals = f.tags.get(self.MARKER, []) if f.tags is not None else []
        return bytes(vals[0]).decode("utf-8", "replace") if vals else None

    def set_marker(self, f: Any, value: str | None) -> None:
        f.tags.pop(self.MARKER, None)
        if value is not None:
            f.tags[self.MARKER] = [MP4FreeForm(value.encode("utf-8"), dataformat=AtomDataType.UTF8)]

    def others(self, f: Any) -> dict[str, str]:
        if f.tags is None:
            return {}
        skip = {self.GENRE, self.MARKER}
        out = {k: _digest(v) for k, v in f.tags.items() if k not in skip}
        out.update({f"raw:{k}": _digest(v) for k, v in f.tags._failed_atoms.items() if k != "gnre"})
        return out

    def extra_state(self, f: Any, path: Path) -> dict[str, Any]:
        return {"mp4_gnre": _read_gnre(path)}

    def set_extra_state(self, f: Any, snap: dict[str, Any]) -> None:
        codes = snap.get("mp4_gnre")
        if not codes:
            return
        # The snapshot's genre list includes the gnre names mutagen derived; those go
        # back into the numeric atom, not into ©gen.
        names = list(f.tags.get(self.GENRE, []))
        for code in codes:
            name = _gnre_name(code)
            if name in names:
                names.remove(name)
        f.tags.pop(self.GENRE, None)
        if names:
            f.tags[self.GENRE] = names
        data = b"".join(_atom(b"data", struct.pack(">2I", 0, 0) + struct.pack(">H", c)) for c in codes)
        f.tags._failed_atoms["gnre"] = [data]  # mutagen writes these raw atoms back as they are


class _ASF(_Storage):
    kind = "asf"
    GENRE = "WM/Genre"
    MARKER = "LIBTAGGER/Genre"
    TEXT_KEYS = {"artist": "Author", "albumartist": "WM/AlbumArtist", "album": "WM/AlbumTitle"}

    def open(self, path: Path) -> Any:
        return ASF(path)

    def raw(self, f: Any) -> list[str]:
        return [str(v) for v in f.tags.get(self.GENRE, [])] if f.tags is not None else []

    def set_raw(self, f: Any, values: list[str]) -> None:
        if self.GENRE in f.tags:
            del f.tags[self.GENRE]
        if values:
            f.tags[self.GENRE] = list(values)

    def marker(self, f: Any) -> str | None:
        vals = f.tags.get(self.MARKER, []) if f.tags is not None else []
        return str(vals[0]) if vals else None

    def set_marker(self, f: Any, value: str | None) -> None:
        if self.MARKER in f.tags:
            del f.tags[self.MARKER]
        if value is not None:
            f.tags[self.MARKER] = [value]

    def others(self, f: Any) -> dict[str, str]:
        if f.tags is None:
            return {}
        skip = {self.GENRE, self.MARKER}
        pairs = sorted((k, repr(v)) for k, v in f.tags.items() if k not in skip)
        return {"attributes": _digest(pairs)}


#: The storage classes by the key a row of :data:`libtagger.formats.FORMATS` names them with.
_BY_KEY: dict[str, _Storage] = {
    "id3-mp3": _MP3(), "id3-wave": _WAVE(), "id3-aiff": _ID3(AIFF),
    "vorbis": _Vorbis(), "mp4": _MP4(), "asf": _ASF(),
}

#: Keys a format row may name in its ``storage`` column.
STORAGE_KEYS: frozenset[str] = frozenset(_BY_KEY)

# Extension -> storage, from the formats table (a row naming an unknown key fails the import).
_STORAGES: dict[str, _Storage] = {r.extension: _BY_KEY[r.storage] for r in FORMATS if r.storage}

#: File extensions (lower case, with the dot) whose genre can be read and written.
TAGGABLE_EXTENSIONS: frozenset[str] = frozenset(_STORAGES)


def _ext(path: Path) -> str:
    return Path(path).suffix.lower()


def _storage_for(path: Path) -> _Storage | None:
    return _STORAGES.get(_ext(path))


def _open(storage: _Storage, path: Path, error: type[ReadError] | type[WriteError] = ReadError) -> Any:
    try:
        return storage.open(path)
    except (mutagen.MutagenError, OSError, ValueError, struct.error, EOFError) as exc:
        if isinstance(exc, riff_info.RiffError):
            raise error(path, str(exc)) from exc
        os_err = find_oserror(exc)  # mutagen wraps OSError in its own errors
        if isinstance(os_err, FileNotFoundError):
            raise error(path, "file not found") from exc
        if isinstance(os_err, PermissionError):
            raise error(path, "permission denied reading the file") from exc
        if isinstance(os_err, IsADirectoryError):
            raise error(path, "is a folder, not a file") from exc
        if os_err is not None:
            raise error(path, f"cannot read the file: {os_err.strerror or os_err}") from exc
        raise error(path, f"cannot read the tags (corrupt or not a {_ext(path)} file): {exc}") from exc


def _atom(name: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), name) + payload


def _gnre_name(code: int) -> str | None:
    """Name of an MP4 ``gnre`` code: the ID3v1 genre list, counted from 1."""
    return TCON.GENRES[code - 1] if 1 <= code <= len(TCON.GENRES) else None


def _read_gnre(path: Path) -> list[int] | None:
    """The raw numeric codes of an MP4 ``gnre`` atom, or None when there is none."""
    with open(path, "rb") as fh:
        try:
            atoms = Atoms(fh)
            ilst = atoms.path(b"moov", b"udta", b"meta", b"ilst")[-1]
        except (KeyError, mutagen.MutagenError, struct.error):
            return None
        codes: list[int] = []
        found = False
        for child in ilst.children or []:
            if child.name != b"gnre":
                continue
            found = True
            ok, data = child.read(fh)
            pos = 0
            while ok and pos + 8 <= len(data):
                size, name = struct.unpack(">I4s", data[pos:pos + 8])
                if size < 8:
                    break
                body = data[pos + 16:pos + size]
                if name == b"data" and len(body) == 2:
                    codes.append(struct.unpack(">H", body)[0])
                pos += size
        return codes if found else None


def _state(storage: _Storage, f: Any, path: Path) -> dict[str, Any]:
    snap = {
        "version": SNAPSHOT_VERSION,
        "format": storage.kind,
        "genres": storage.raw(f),
        "has_tags": storage.has_tags(f),
        "marker": storage.marker(f),
        "id3_version": None,
        "mp4_gnre": None,
    }
    snap.update(storage.extra_state(f, path))
    return snap


def _open_path(p: Path) -> tuple[_Storage, Any] | None:
    """The file's storage and its opened tags; None for a format that cannot hold a genre.

    Raises
    ------
    ReadError
        The file is missing or its tags cannot be parsed.
    """
    storage = _storage_for(p)
    if storage is None:
        if not p.exists():
            raise ReadError(p, "file not found")
        return None
    return storage, _open(storage, p)


def read_genres(path: str | os.PathLike[str]) -> list[str]:
    """The file's current genre values (``[]`` when it has none or cannot hold one).

    Raises
    ------
    ReadError
        The file is missing or its tags cannot be parsed.
    """
    opened = _open_path(Path(path))
    return [] if opened is None else opened[0].genres(opened[1])


def snapshot(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Everything needed to put the file's genre state back exactly (JSON-serialisable).

    Keys: ``version``, ``format`` (``id3``/``vorbis``/``mp4``/``asf`` or None),
    ``genres`` (values as stored), ``has_tags`` (a tag block existed),
    ``marker`` (libtagger's marker value or None), ``id3_version`` (e.g.
    ``[2, 3, 0]``), ``mp4_gnre`` (numeric codes of an old ``gnre`` atom), for WAV only
    ``riff_info`` (the RIFF INFO chunk's body in base64, None when there is none) and, for MP3
    only, ``ape_genre`` (the APEv2 ``Genre`` values as stored, None when there is none).
    """
    p = Path(path)
    storage = _storage_for(p)
    if storage is None:
        if not p.exists():
            raise ReadError(p, "file not found")
        return {"version": SNAPSHOT_VERSION, "format": None, "genres": [], "has_tags": False,
                "marker": None, "id3_version": None, "mp4_gnre": None}
    return _state(storage, _open(storage, p), p)


#: Snapshot keys that do not say what genre a person sees (the marker is libtagger's own).
_NOT_GENRE_KEYS = frozenset({"version", "format", "has_tags", "id3_version", "marker"})


def genre_fields(snap: dict[str, Any]) -> dict[str, Any]:
    """The part of a :func:`snapshot` that is the genre a person sees, for comparing two states.

    Every genre-holding key (``genres``, ``mp4_gnre``, a format's own ones); of a WAV's
    ``riff_info`` only its ``IGNR`` field (a person may edit the title there freely).
    """
    out = {k: v for k, v in snap.items() if k not in _NOT_GENRE_KEYS}
    out["genres"] = list(out.get("genres") or [])
    if "riff_info" in out:
        out["riff_info"] = riff_info.info_fields(_unb64(out["riff_info"])).get("IGNR")
    return out


def written_by_libtagger(path: str | os.PathLike[str]) -> bool:
    """True when the file's genre is the one libtagger wrote (it equals our marker)."""
    p = Path(path)
    storage = _storage_for(p)
    if storage is None:
        return False
    return storage.is_ours(_open(storage, p))


@dataclass(frozen=True)
class LibraryFields:
    """What a file says about itself besides the audio, as the index keeps it.

    ``person_genres``: every genre value in the file in its order and spelling (multi-valued
    fields included; ID3v1 references such as ``(17)`` as names), or None when the file has no
    genre or holds the one libtagger wrote (its marker; a genre a person changed since counts
    as theirs). ``artist``, ``albumartist``, ``album``: the first value, or None.
    """

    person_genres: list[str] | None = None
    artist: str | None = None
    albumartist: str | None = None
    album: str | None = None


@dataclass(frozen=True)
class TagState:
    """One read of a file's tags: what a scan decides with and what it indexes."""

    genres: list[str]  # the genre values as a person reads them (read_genres)
    ours: bool  # the genre is the one libtagger wrote (written_by_libtagger)
    fields: LibraryFields


def _first_text(values: Any) -> str | None:
    """The first non-empty value of a mutagen tag value (an ID3 frame or a list), as text."""
    if values is None:
        return None
    if hasattr(values, "text"):  # an ID3 text frame
        values = values.text
    for value in values:
        text = str(value)
        if text.strip():
            return text
    return None


def _filled(first: LibraryFields, then: LibraryFields | None) -> LibraryFields:
    """``first``, each missing field taken from ``then``."""
    if then is None:
        return first
    return LibraryFields(*(a if a is not None else b for a, b in
                           zip((first.person_genres, first.artist, first.albumartist, first.album),
                               (then.person_genres, then.artist, then.albumartist, then.album))))


def read_tag_state(path: str | os.PathLike[str]) -> TagState:
    """The file's genre, whether libtagger wrote it, and its :class:`LibraryFields`, in one read.

    Raises
    ------
    ReadError
        The file is missing or its tags cannot be parsed.
    """
    p = Path(path)
    opened = _open_path(p)
    if opened is None:
        return TagState([], False, LibraryFields())
    storage, f = opened
    genres = storage.genres(f)
    ours = bool(genres) and storage.is_ours(f)
    person = [g for g in genres if g.strip()]
    fields = LibraryFields(None if ours or not person else person,
                           *(storage.text(f, name) for name in ("artist", "albumartist", "album")))
    return TagState(genres, ours, _filled(fields, storage.outside_fields(p)))


def read_library_fields(path: str | os.PathLike[str]) -> LibraryFields:
    """The person's genres, artist, album artist and album of a file (see :class:`LibraryFields`).

    Raises
    ------
    ReadError
        The file is missing or its tags cannot be parsed.
    """
    return read_tag_state(path).fields


def _cannot_hold(p: Path) -> WriteError:
    kind = p.suffix.lower().lstrip(".") or "extension-less"
    return WriteError(p, f".{kind} files cannot hold a genre tag" if p.suffix else
                      "files without an extension cannot hold a genre tag")


def _stat_result(p: Path) -> WriteResult:
    st = p.stat()
    return WriteResult(size=st.st_size, mtime_ns=st.st_mtime_ns)


def _times(p: Path) -> tuple[int, int] | None:
    """atime/mtime before we read the file (reading it moves atime on most mounts)."""
    try:
        st = p.stat()
    except OSError:
        return None  # reported properly by the read that follows
    return st.st_atime_ns, st.st_mtime_ns


#: Called as ``watch(path, checked_copy)`` after a write's copy passed its checks and before it
#: is renamed over the file: the one moment both versions exist (the journal records the
#: changed bytes then, see :mod:`libtagger.tags.exact`). Raising abandons the write.
EditWatcher = Callable[[Path, Path], None]


def _apply(p: Path, storage: _Storage, target: dict[str, Any], *, preserve_mtime: bool,
           times: tuple[int, int] | None, watch: EditWatcher | None = None) -> WriteResult:
    """Atomically give ``p`` the genre state ``target`` (a snapshot-shaped dict)."""

    def edit(tmp: Path) -> None:
        f = _open(storage, tmp, WriteError)
        before_others = storage.others(f)
        before_info = _stream_info(f)
        storage.ensure_tags(f)
        storage.set_raw(f, list(target["genres"]))
        storage.set_marker(f, target["marker"])
        storage.set_extra_state(f, target)
        if not target["has_tags"] and storage.is_empty(f):
            storage.delete_tags(f)
        else:
            storage.save(f, target.get("id3_version") if target["has_tags"] else None)
        # Read the copy back: the genre state must be the target, nothing else may differ.
        g = _open(storage, tmp, WriteError)
        got = _state(storage, g, tmp)
        for key in ("genres", "marker", "mp4_gnre", *storage.extra_keys):
            if got[key] != target[key]:
                raise WriteError(p, f"verification failed: {key} reads back as {got[key]!r}, "
                                    f"expected {target[key]!r}")
        if storage.others(g) != before_others:
            raise WriteError(p, "verification failed: other tags changed; left as it was")
        if _stream_info(g) != before_info:
            raise WriteError(p, "verification failed: audio stream parameters changed; left as it was")
        if watch is not None:
            watch(p, tmp)

    return atomic_update(p, edit, preserve_mtime=preserve_mtime, original_times_ns=times)


def _apply_bytes(p: Path, recipe: exact.ByteRecipe, *, preserve_mtime: bool,
                 watch: EditWatcher | None) -> WriteResult:
    """Atomically give ``p`` the exact bytes ``recipe`` rebuilds from it (byte-exact undo)."""
    times = _times(p)

    def edit(tmp: Path) -> None:
        try:
            exact.rebuild(recipe, p, tmp)
        except exact.RebuildError as exc:
            raise WriteError(p, f"cannot rebuild the original bytes: {exc}") from exc
        if watch is not None:
            watch(p, tmp)

    return atomic_update(p, edit, preserve_mtime=preserve_mtime, original_times_ns=times)


def _stream_info(f: Any) -> tuple:
    info = f.info
    return (round(float(getattr(info, "length", 0.0)), 3), getattr(info, "sample_rate", None),
            getattr(info, "channels", None))


def write_genre(path: str | os.PathLike[str], genre: str, *, preserve_mtime: bool = False,
                watch: EditWatcher | None = None) -> WriteResult:
    """Set the genre to ``genre`` (one value) and mark it as written by libtagger.

    Parameters
    ----------
    path
        An audio file with an extension in :data:`TAGGABLE_EXTENSIONS`.
    genre
        The display spelling, e.g. ``"Hip-Hop"``.
    preserve_mtime
        Keep the file's modification time (default: it becomes now).
    watch
        See :data:`EditWatcher`; not called when the file already holds this genre.

    Raises
    ------
    WriteError
        Nothing was changed; ``reason`` says why (read-only, disk full, ...).
    """
    p = Path(path)
    if not isinstance(genre, str) or not genre.strip() or "\x00" in genre:
        raise ValueError(f"genre must be a non-empty string without NUL characters, got {genre!r}")
    storage = _storage_for(p)
    if storage is None:
        if not p.exists():
            raise WriteError(p, "file not found")
        raise _cannot_hold(p)
    times = _times(p)
    current = _state(storage, _open(storage, p, WriteError), p)
    try:
        target = storage.write_target(current, genre)
    except riff_info.RiffError as exc:  # a damaged INFO chunk: refused before anything is written
        raise WriteError(p, str(exc)) from exc
    if current == target:
        return _stat_result(p)  # already written by us: leave the file (and its mtime) alone
    return _apply(p, storage, target, preserve_mtime=preserve_mtime, times=times, watch=watch)


def restore(path: str | os.PathLike[str], snap: dict[str, Any], *, preserve_mtime: bool = False,
            original_bytes: exact.ByteRecipe | None = None, watch: EditWatcher | None = None) -> WriteResult:
    """Put back the genre state recorded by :func:`snapshot` (undo).

    With ``original_bytes`` (the file still holds exactly what the recipe's write produced),
    the file gets back its original bytes, checked against their SHA-256. Otherwise only the
    genre, the marker and the MP4 ``gnre`` atom are set back; a tag
    block that did not exist is removed again if nothing else is in it. Restoring
    a state the file already has does not touch it, so restoring twice is
    harmless. To undo an undo, take a snapshot before restoring and restore that.
    ``watch``: see :data:`EditWatcher`.

    Raises
    ------
    WriteError
        The snapshot is for another tag format, or the write failed (file untouched).
    """
    p = Path(path)
    if not isinstance(snap, dict) or snap.get("version", 0) > SNAPSHOT_VERSION or "genres" not in snap:
        raise WriteError(p, "not a genre snapshot this version of libtagger understands")
    storage = _storage_for(p)
    fmt = snap.get("format")
    if storage is None:
        if fmt is not None:
            raise WriteError(p, f"snapshot holds {fmt} tags but {_cannot_hold(p).reason}")
        if not p.exists():
            raise WriteError(p, "file not found")
        return _stat_result(p)
    if fmt != storage.kind:
        raise WriteError(p, f"snapshot holds {fmt} tags but this file holds {storage.kind} tags")
    if original_bytes is not None:
        return _apply_bytes(p, original_bytes, preserve_mtime=preserve_mtime, watch=watch)
    times = _times(p)
    f = _open(storage, p, WriteError)
    current = _state(storage, f, p)
    target = dict(current)
    target.update({k: snap.get(k) for k in ("genres", "marker", "mp4_gnre", "has_tags")})
    # A format's own keys only when journaled (a snapshot from before a key existed leaves it alone).
    target.update({k: snap[k] for k in storage.extra_keys if k in snap})
    target["genres"] = list(target["genres"] or [])
    if snap.get("has_tags") and snap.get("id3_version"):
        target["id3_version"] = snap["id3_version"]
    same = all(current[k] == target[k] for k in ("genres", "marker", "mp4_gnre", *storage.extra_keys))
    # With the genre state already right, a write is only needed to remove a tag
    # block the file did not have, and only if nothing else is in it.
    if same and (target["has_tags"] or not current["has_tags"] or not storage.is_empty(f)):
        return _stat_result(p)
    return _apply(p, storage, target, preserve_mtime=preserve_mtime, times=times, watch=watch)
