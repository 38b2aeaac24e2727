"""WAV: the genre in the ID3 chunk and in the RIFF ``LIST``/``INFO`` chunk's ``IGNR``.

Players that ignore the ID3 chunk (ffprobe, Windows, most DAWs) read ``IGNR``, so a write sets
both, through :mod:`libtagger.tags.riff_info`, which keeps every other chunk and INFO field byte
for byte. A genre found only in ``IGNR`` is read like any other (a person's genre, kept by
default); the snapshot holds the whole INFO chunk (or its absence), so undo puts it back byte
for byte. (AIFF has no genre field in its own text chunks: its ID3 chunk is the one players
read, so AIFF is plain :class:`~libtagger.tags.storage.id3.ID3Storage`.)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from mutagen.wave import WAVE

from libtagger.tags import riff_info
from libtagger.tags.storage.base import digest, marker_values
from libtagger.tags.storage.id3 import ID3Storage
from libtagger.tags.storage.snapshots import Snapshot


class WaveStorage(ID3Storage):
    """A WAV's ID3 chunk (as :class:`ID3Storage`) plus the RIFF ``LIST``/``INFO`` ``IGNR`` genre.

    The marker lives in the ID3 chunk only (INFO has no place for it). The snapshot field
    ``riff_info`` holds the INFO chunk's body, or None when the file had none.
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
        if ignr is None or id3 == [ignr] or (super().is_ours(f) and id3[:1] == [ignr]):
            return id3  # IGNR holds one value: libtagger's first of several genres agrees with them
        if not id3:
            return [ignr]  # a genre set in INFO only (Windows, a DAW): a person's genre like any other
        # Both, and they differ. When the ID3 genre is libtagger's own, the INFO one was changed
        # after libtagger wrote both: it is a person's newer choice and wins. Otherwise the ID3
        # genre wins (multi-valued, what tag editors show and edit). Either way is_ours() is
        # False, so the default policy keeps the file instead of overwriting the person's INFO.
        return [ignr] if super().is_ours(f) else id3

    def is_ours(self, f: Any) -> bool:
        # Ours only when every genre the file holds is the marker's: its values in the ID3 chunk,
        # its first in INFO (IGNR holds one value).
        marks = marker_values(self.marker(f))
        ignr = self._ignr(f)
        held = [(v, want) for v, want in ((self.raw(f), marks), ([ignr] if ignr else [], marks[:1])) if v]
        return bool(marks) and bool(held) and all(v == want for v, want in held)

    def others(self, f: Any) -> dict[str, str]:
        out = super().others(f)
        fields = riff_info.info_fields(f.libtagger_info)
        out["riff:info"] = digest(sorted((k, v) for k, v in fields.items() if k != "IGNR"))
        out["riff:chunks"] = digest([(c.id, c.size, c.form) for c in f.libtagger_layout.chunks
                                     if not c.is_info and c.id.lower() != b"id3 "])
        return out

    def extra_state(self, f: Any, path: Path) -> dict[str, Any]:
        return dict(super().extra_state(f, path), riff_info=f.libtagger_info)

    def outside_fields(self, path: Path) -> dict[str, str | None]:
        # INFO's artist (IART) and album (IPRD) fill what the ID3 chunk lacks (read_tag_state puts
        # ID3's values first). No genre here: genres() already reads IGNR, and whether it is a
        # person's is decided there with the marker (is_ours); INFO has no album artist.
        info = riff_info.read_info(path)
        return {"artist": info.get("IART") or None, "album": info.get("IPRD") or None}

    def write_target(self, current: Snapshot, genres: tuple[str, ...]) -> Snapshot:
        # IGNR holds one genre: the first (the one ffprobe and Windows show).
        body = riff_info.with_field(current.riff_info, "IGNR", genres[0])
        return replace(super().write_target(current, genres), riff_info=body)

    def set_extra_state(self, f: Any, snap: Snapshot) -> None:
        f.libtagger_info_target = snap.riff_info

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
