"""ID3v2: the genre of MP3 and AIFF files (and of a WAV's ID3 chunk, see :mod:`.wave`).

The genre is ``TCON``, libtagger's marker ``TXXX:LIBTAGGER_GENRE``. The file keeps its ID3v2
version (v2.3 stays v2.3, frames are not converted); a new tag is v2.4; a v2.2 tag (which
mutagen cannot write) becomes v2.3. An existing ID3v1 trailer is kept and updated by mutagen
from the v2 tag. Reading turns ID3v1 style references such as ``(17)`` into names (``Rock``).

An MP3 may also hold an APEv2 tag (foobar2000, mp3gain): :class:`MP3Storage` reads its
``Genre`` like an ID3 one and, when it is there, writes the new genre into it too. A second
ID3v2 tag right after the first (left by taggers that prepend a new tag) is read for its genre
only, when the first has none: ffmpeg-based players show it then, so it is a person's genre.
"""

from __future__ import annotations

import io
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import mutagen
from mutagen.apev2 import APENoHeaderError, APEv2, TEXT as APE_TEXT, error as APEError
from mutagen.id3 import ID3, TCON, TXXX
from mutagen.mp3 import MP3

from libtagger.formats import id3v2_length
from libtagger.tags.storage.base import Storage, digest, marker_text, marker_values
from libtagger.tags.storage.snapshots import Snapshot


class ID3Storage(Storage):
    """The ID3v2 tag of a file of class ``cls`` (mutagen's MP3, WAVE or AIFF)."""

    kind = "id3"
    MARKER = "LIBTAGGER_GENRE"
    text_keys = {"artist": "TPE1", "albumartist": "TPE2", "album": "TALB"}
    compilation_keys = ("TCMP",)  # iTunes' frame, read by every common player

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

    def raw(self, f: Any) -> list[str]:
        frame = f.tags.get("TCON") if f.tags is not None else None
        return [str(t) for t in frame.text] if frame is not None else []

    def set_raw(self, f: Any, values: list[str]) -> None:
        f.tags.delall("TCON")
        if values:
            f.tags.add(TCON(encoding=3, text=list(values)))

    def marker(self, f: Any) -> str | None:
        frame = f.tags.get("TXXX:" + self.MARKER) if f.tags is not None else None
        return marker_text(frame.text) if frame is not None else None

    def set_marker(self, f: Any, value: str | None) -> None:
        f.tags.delall("TXXX:" + self.MARKER)
        if value is not None:
            f.tags.add(TXXX(encoding=3, desc=self.MARKER, text=marker_values(value)))

    def others(self, f: Any) -> dict[str, str]:
        if f.tags is None:
            return {}
        skip = {"TCON", "TXXX:" + self.MARKER}
        return {k: digest(v) for k, v in f.tags.items() if k not in skip}

    def extra_state(self, f: Any, path: Path) -> dict[str, Any]:
        return {"id3_version": list(f.tags.version) if f.tags is not None else None}

    def write_target(self, current: Snapshot, genres: tuple[str, ...]) -> Snapshot:
        # ID3v2.3 has no multi-value text: the null separator is v2.4's, and v2.3 readers (Windows,
        # older iTunes and players) show only the first value or a run-together one, while a "/"
        # joined "Rock/Metal" reads as one genre of that name. A v2.3 tag (v2.2 is saved as v2.3)
        # keeps its version and gets the first genre only; a v2.4 or new tag gets every value.
        version = tuple((current.id3_version or [2, 4])[:2]) if current.has_tags else (2, 4)
        return super().write_target(current, genres if version == (2, 4) else genres[:1])

    def save(self, f: Any, snap_version: list[int] | None = None) -> None:
        version = list(f.tags.version) if snap_version is None else snap_version
        v2 = 3 if tuple(version[:2]) in ((2, 2), (2, 3)) else 4
        if v2 == 3 and tuple(f.tags.version[:2]) == (2, 4):
            f.tags.update_to_v23()
        elif v2 == 4 and tuple(f.tags.version[:2]) == (2, 3):
            f.tags.update_to_v24()
        # v23_sep=None: multi-valued text stays null-separated, as it was read. An MP3's ID3v1
        # trailer is updated when there (v1=1, mutagen's default); MP3Storage asks for v1=2 when
        # its APEv2 write dropped the trailer. WAV and AIFF have no trailer (their save takes no v1).
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


def _stacked_genres(path: str | os.PathLike[str], first: Any) -> list[str]:
    """The genres of a second ID3v2 tag right after the first one (``first``), as a person reads them.

    Some taggers put a new tag in front of an old one instead of updating it. mutagen reads only
    the first tag (and writes only it); ffmpeg-based players read both and show the second tag's
    genre when the first has none. A damaged second tag reads as no genre, as before.
    """
    if first is None or not getattr(first, "size", 0):
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(first.size)
            header = fh.read(10)
            if len(header) < 10 or header[:3] != b"ID3":
                return []
            second = ID3(io.BytesIO(header + fh.read(id3v2_length(header) - len(header))))
    except (OSError, mutagen.MutagenError, ValueError, EOFError):
        return []
    frame = second.get("TCON")
    return [g for g in frame.genres if g.strip()] if frame is not None else []


def _has_id3v1(path: str | os.PathLike[str]) -> bool:
    with open(path, "rb") as fh:
        if fh.seek(0, os.SEEK_END) < 128:
            return False
        fh.seek(-128, os.SEEK_END)
        return fh.read(3) == b"TAG"


class MP3Storage(ID3Storage):
    """An MP3's ID3v2 tag (as :class:`ID3Storage`) plus the ``Genre`` of an APEv2 tag beside it.

    foobar2000, mp3gain and older taggers keep an APEv2 tag at the end of MP3s, and players that
    read it show its genre. A genre there is a person's genre like an ID3 one: kept unless
    ``--overwrite``. With ``--overwrite`` an existing APE ``Genre`` item gets the new genre too,
    so the file never says two genres; libtagger never adds an APE tag or item. The marker lives
    in the ID3 tag only. The snapshot field ``ape_genre`` holds the APE genre values as stored
    (None: no such item), and restore puts them back.
    """

    extra_keys = ("ape_genre",)

    def __init__(self) -> None:
        super().__init__(MP3)

    def open(self, path: Path) -> Any:
        f = super().open(path)
        f.libtagger_stacked = _stacked_genres(path, f.tags)
        f.libtagger_ape = _read_ape(path)
        f.libtagger_ape_target = _ape_genre(f.libtagger_ape)
        return f

    def _ape(self, f: Any) -> list[str]:
        return [v for v in _ape_genre(f.libtagger_ape) or [] if v.strip()]

    def genres(self, f: Any) -> list[str]:
        # A second ID3v2 tag's genre shows where the first tag has none (see _stacked_genres).
        id3, ape = super().genres(f) or f.libtagger_stacked, self._ape(f)
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
            out["ape:items"] = digest(sorted((k.lower(), v.kind, v.value) for k, v in ape.items()
                                             if k != genre_key))
        out["id3v1"] = str(_has_id3v1(f.filename))
        return out

    def extra_state(self, f: Any, path: Path) -> dict[str, Any]:
        return dict(super().extra_state(f, path), ape_genre=_ape_genre(f.libtagger_ape))

    def write_target(self, current: Snapshot, genres: tuple[str, ...]) -> Snapshot:
        target = super().write_target(current, genres)
        ape = list(target.genres) if current.ape_genre is not None else None  # APEv2 items are multi-valued
        return replace(target, ape_genre=ape)

    def set_extra_state(self, f: Any, snap: Snapshot) -> None:
        f.libtagger_ape_target = snap.ape_genre

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
