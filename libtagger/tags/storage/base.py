"""What every storage class does: the genre, libtagger's marker and the fields the index reads.

A storage class knows one tag format (the beets/mediafile way): it opens a file with mutagen
and reads and sets the genre and the marker on the loaded file; :mod:`.write` does the rest
(the checked copy, the snapshot, the restore). One instance serves every file of its format.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from libtagger.tags.storage.snapshots import Snapshot


#: Between the values of a multi-valued marker in :attr:`Snapshot.marker` (genres never hold a NUL;
#: in the file each value is a value of its own: ID3 text list, repeated key, MP4 list).
MARKER_SEP = "\x00"


def marker_text(values: Any) -> str | None:
    """A marker tag's values (strings) as one :attr:`Snapshot.marker` text; None when there are none.

    >>> marker_text(["Rock", "Metal"]) == "Rock" + MARKER_SEP + "Metal", marker_text(["Jazz"]), marker_text([])
    (True, 'Jazz', None)
    """
    values = [str(v) for v in values or []]
    return MARKER_SEP.join(values) if values else None


def marker_values(marker: str | None) -> list[str]:
    """The values a :attr:`Snapshot.marker` text stands for (inverse of :func:`marker_text`).

    >>> marker_values("Jazz"), marker_values(None)
    (['Jazz'], [])
    """
    return [] if marker is None else marker.split(MARKER_SEP)


def digest(value: Any) -> str:
    """A short stable fingerprint of a tag value (covers can be megabytes)."""
    return hashlib.sha1(repr(value).encode("utf-8", "surrogatepass")).hexdigest()


def first_text(values: Any) -> str | None:
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


def flag_value(values: Any) -> int | None:
    """A mutagen yes/no tag value (``"1"``, ``True``, a one-item list of either) as 1 or 0; None when absent.

    The way beets/mediafile reads ``comp``: a true value or a non-zero number is 1, any other
    value present is 0 (so a file read once never stays unknown).

    >>> flag_value(["1"]), flag_value(True), flag_value(["0"]), flag_value(["yes"]), flag_value(None)
    (1, 1, 0, 1, None)
    """
    if values is None:
        return None
    if hasattr(values, "text"):  # an ID3 text frame
        values = values.text
    if isinstance(values, (bool, int)):  # MP4's cpil
        return int(bool(values))
    value = values[0] if isinstance(values, (list, tuple)) and values else values
    value = getattr(value, "value", value)  # an ASF attribute
    if isinstance(value, (bool, int)):
        return int(bool(value))
    text = str(value).strip().lower()
    if text in ("true", "yes"):
        return 1
    try:
        return int(int(text) != 0)
    except ValueError:
        return 0


class Storage:
    """How one tag format stores the genre. Subclasses work on a loaded mutagen file."""

    kind: str = ""
    #: Snapshot fields of this format's own state, checked after a write and put back by restore.
    extra_keys: tuple[str, ...] = ()
    #: Where the format keeps the artist, album artist and album (read only, for the index).
    text_keys: dict[str, str] = {}
    #: Where the format keeps the compilation flag, in the order read (the first present counts).
    compilation_keys: tuple[str, ...] = ()

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
        key = self.text_keys[field]
        values = f.tags.get(key) if f.tags is not None else None
        return first_text(values)

    def compilation(self, f: Any) -> int:
        """1 when the file is flagged part of a compilation, else 0 (no flag: players read it so)."""
        for key in self.compilation_keys:
            flag = flag_value(f.tags.get(key)) if f.tags is not None else None
            if flag is not None:
                return flag
        return 0

    def set_raw(self, f: Any, values: list[str]) -> None:
        raise NotImplementedError

    def marker(self, f: Any) -> str | None:
        """libtagger's marker as one text (several values joined by :data:`MARKER_SEP`), or None."""
        raise NotImplementedError

    def is_ours(self, f: Any) -> bool:
        """The genre is the one libtagger wrote: its values equal the marker's, in order."""
        mark = self.marker(f)
        return mark is not None and self.raw(f) == marker_values(mark)

    def write_target(self, current: Snapshot, genres: tuple[str, ...]) -> Snapshot:
        """The state a write of ``genres`` (one value or several) gives a file now in state ``current``."""
        return replace(current, genres=list(genres), marker=marker_text(genres), mp4_gnre=None, has_tags=True)

    def set_marker(self, f: Any, value: str | None) -> None:
        """Set the marker to ``value`` (a :func:`marker_text`: each value a value of its own), or remove it."""
        raise NotImplementedError

    def others(self, f: Any) -> dict[str, str]:
        """Fingerprints of everything but the genre and marker (to check they stay)."""
        raise NotImplementedError

    def extra_state(self, f: Any, path: Path) -> dict[str, Any]:
        """This format's own :class:`Snapshot` fields (``id3_version``, ``riff_info``, ...)."""
        return {}

    def set_extra_state(self, f: Any, snap: Snapshot) -> None:
        pass

    def is_empty(self, f: Any) -> bool:
        return f.tags is None or len(f.tags) == 0

    def save(self, f: Any, snap_version: list[int] | None = None) -> None:
        f.save()

    def delete_tags(self, f: Any) -> None:
        f.delete()

    def outside_fields(self, path: Path) -> dict[str, str | None]:
        """Text fields the file keeps outside the tag this class reads, by field name.

        They fill what :meth:`text` finds nothing for (a WAV's RIFF INFO, see
        :class:`~libtagger.tags.storage.wave.WaveStorage`); empty for most formats.
        """
        return {}
