"""A file's genre state as one record: what undo puts back, and what it compares.

:class:`Snapshot` is what :func:`~libtagger.tags.storage.snapshot` reads,
:func:`~libtagger.tags.storage.restore` puts back and a write is checked against. The journal
in the index keeps it as JSON: :meth:`Snapshot.to_json` and :meth:`Snapshot.from_json` are used
there only (:mod:`libtagger.scan.journaled_write`, :mod:`libtagger.scan.undo`), and read every
journal libtagger ever wrote.

A format's own fields (``riff_info`` of a WAV, ``ape_genre`` of an MP3) are :data:`ABSENT` in
the snapshots of other formats, and in journals written before the field existed: restore
leaves that part of the file alone, and the JSON has no such key.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass
from typing import Any, Union

from libtagger.tags import riff_info

#: The ``version`` of the JSON a snapshot is journaled as; a newer one is refused.
SNAPSHOT_VERSION = 1


class _Absent(enum.Enum):
    ABSENT = "absent"


#: A format's own field that the snapshot does not hold (another format, or an older journal).
ABSENT = _Absent.ABSENT


class SnapshotError(ValueError):
    """A journaled dict that is no genre snapshot this version of libtagger understands."""


@dataclass(frozen=True)
class Snapshot:
    """Everything needed to put a file's genre state back exactly.

    Attributes
    ----------
    format : str or None
        ``id3``, ``vorbis``, ``mp4``, ``asf``; None: a format that cannot hold a genre.
    genres : list of str
        The genre values as stored.
    has_tags : bool
        A tag block existed.
    marker : str or None
        libtagger's marker value.
    id3_version : list of int or None
        The ID3v2 version, e.g. ``[2, 3, 0]``.
    mp4_gnre : list of int or None
        The numeric codes of an old MP4 ``gnre`` atom.
    riff_info : bytes, None or ABSENT
        WAV only: the RIFF INFO chunk's body; None when the file had none.
    ape_genre : list of str, None or ABSENT
        MP3 only: the APEv2 ``Genre`` values as stored; None when there is no such item.
    """

    format: str | None
    genres: list[str]
    has_tags: bool
    marker: str | None
    id3_version: list[int] | None = None
    mp4_gnre: list[int] | None = None
    riff_info: Union[bytes, None, _Absent] = ABSENT
    ape_genre: Union[list[str], None, _Absent] = ABSENT

    def to_json(self) -> dict[str, Any]:
        """The journal's JSON form (``riff_info`` in base64; absent fields left out)."""
        out: dict[str, Any] = {"version": SNAPSHOT_VERSION, "format": self.format, "genres": self.genres,
                               "has_tags": self.has_tags, "marker": self.marker,
                               "id3_version": self.id3_version, "mp4_gnre": self.mp4_gnre}
        if self.riff_info is not ABSENT:
            out["riff_info"] = None if self.riff_info is None else base64.b64encode(self.riff_info).decode("ascii")
        if self.ape_genre is not ABSENT:
            out["ape_genre"] = self.ape_genre
        return out

    @classmethod
    def from_json(cls, data: Any) -> Snapshot:
        """A snapshot from the journal's JSON (any libtagger version's; a missing field: None).

        Raises
        ------
        SnapshotError
            Not a dict with ``genres``, or of a newer snapshot version.
        """
        if not isinstance(data, dict) or data.get("version", 0) > SNAPSHOT_VERSION or "genres" not in data:
            raise SnapshotError("not a genre snapshot this version of libtagger understands")
        try:
            info = ABSENT if "riff_info" not in data else (
                None if data["riff_info"] is None else base64.b64decode(data["riff_info"]))
        except (binascii.Error, TypeError, ValueError) as exc:
            raise SnapshotError(f"not a genre snapshot: its riff_info is not base64 ({exc})") from exc
        return cls(format=data.get("format"), genres=list(data["genres"] or []),
                   has_tags=bool(data.get("has_tags")), marker=data.get("marker"),
                   id3_version=data.get("id3_version"), mp4_gnre=data.get("mp4_gnre"),
                   riff_info=info, ape_genre=data.get("ape_genre", ABSENT))


def genre_fields(snap: Snapshot) -> dict[str, Any]:
    """The part of a :class:`Snapshot` that is the genre a person sees, for comparing two states.

    Every genre-holding field (``genres``, ``mp4_gnre``, a format's own ones it holds); of a
    WAV's ``riff_info`` only its ``IGNR`` field (a person may edit the title there freely).
    """
    out: dict[str, Any] = {"genres": list(snap.genres), "mp4_gnre": snap.mp4_gnre}
    if snap.riff_info is not ABSENT:
        out["riff_info"] = riff_info.info_fields(snap.riff_info).get("IGNR")
    if snap.ape_genre is not ABSENT:
        out["ape_genre"] = snap.ape_genre
    return out
