"""MP4 (AAC, ALAC): the genre in ``©gen``, the marker in ``----:org.libtagger:genre``.

Several genres are several ``data`` values of the one ``©gen`` atom (as iTunes-style taggers
and mutagen read them), and so is the marker.

The old numeric ``gnre`` atom (an ID3v1 genre code) is read as a genre too (mutagen turns a
valid one into ``©gen`` text). Writing ``©gen`` removes it so the two cannot disagree; the
snapshot keeps its raw codes (``mp4_gnre``), read here by a small atom walk, and restore puts
the atom back byte for byte.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import mutagen
from mutagen.id3 import TCON
from mutagen.mp4 import MP4, Atoms, AtomDataType, MP4FreeForm

from libtagger.tags.storage.base import Storage, digest, marker_text, marker_values
from libtagger.tags.storage.snapshots import Snapshot


class MP4Storage(Storage):
    kind = "mp4"
    GENRE = "\xa9gen"
    MARKER = "----:org.libtagger:genre"
    text_keys = {"artist": "\xa9ART", "albumartist": "aART", "album": "\xa9alb"}
    compilation_keys = ("cpil",)

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
        return marker_text(bytes(v).decode("utf-8", "replace") for v in vals) if vals else None

    def set_marker(self, f: Any, value: str | None) -> None:
        f.tags.pop(self.MARKER, None)
        if value is not None:
            f.tags[self.MARKER] = [MP4FreeForm(v.encode("utf-8"), dataformat=AtomDataType.UTF8)
                                   for v in marker_values(value)]

    def others(self, f: Any) -> dict[str, str]:
        if f.tags is None:
            return {}
        skip = {self.GENRE, self.MARKER}
        out = {k: digest(v) for k, v in f.tags.items() if k not in skip}
        out.update({f"raw:{k}": digest(v) for k, v in f.tags._failed_atoms.items() if k != "gnre"})
        return out

    def extra_state(self, f: Any, path: Path) -> dict[str, Any]:
        return {"mp4_gnre": _read_gnre(path)}

    def set_extra_state(self, f: Any, snap: Snapshot) -> None:
        codes = snap.mp4_gnre
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
