"""Turn rows (scan reports, query results) into a table, JSON or CSV text.

A row is a dict, or a record with ``as_dict()`` (a :class:`~libtagger.store.records.TrackRow`,
a scan's :class:`~libtagger.scan.outcomes.FileReport`): its dict is what JSON and CSV hold.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Union

FORMATS = ("table", "json", "csv")

#: The widest a table cell gets, in characters; longer text ends in "...". A column is as wide as
#: its widest cell, so one file's 20,000-character genre tag padded every row of the table.
#: JSON and CSV keep every character.
MAX_CELL_CHARS = 80

#: Columns a table shows whole, however long: a path cut short names no file.
WHOLE_COLUMNS = frozenset({"path"})


class Record(Protocol):
    """A row of fixed shape that gives its columns by name, in order."""

    def as_dict(self) -> dict[str, Any]: ...


Row = Union[Mapping[str, Any], Record]


def _cell(value: Any, *, whole: bool = False) -> Any:
    """A table cell: floats to 3 decimals, None empty, text cut to :data:`MAX_CELL_CHARS` unless ``whole``.

    >>> _cell(0.91234), _cell(None), _cell("x" * 100)[-5:], len(_cell("x" * 100)), len(_cell("x" * 100, whole=True))
    ('0.912', '', 'xx...', 80, 100)
    """
    if isinstance(value, float):
        return f"{value:.3f}"
    if value is None:
        return ""
    if isinstance(value, str) and not whole and len(value) > MAX_CELL_CHARS:
        return value[:MAX_CELL_CHARS - 3] + "..."
    return value


def render(rows: Sequence[Row], *, fmt: str = "table",
           columns: Sequence[str] | None = None) -> str:
    """Render rows as text in ``fmt`` (``table``, ``json`` or ``csv``).

    ``columns`` picks and orders the columns (all keys of the first row by
    default). JSON keeps every key and full float precision; a table cuts text longer than
    :data:`MAX_CELL_CHARS` except in :data:`WHOLE_COLUMNS`.

    Examples
    --------
    >>> print(render([{"path": "a.mp3", "genre": "Jazz", "confidence": 0.91234}], fmt="csv"))
    path,genre,confidence
    a.mp3,Jazz,0.91234
    <BLANKLINE>
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    rows = [row if isinstance(row, Mapping) else row.as_dict() for row in rows]
    if fmt == "json":
        return json.dumps(list(rows), indent=2, ensure_ascii=False, default=str) + "\n"
    cols = list(columns) if columns else (list(rows[0]) if rows else [])
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    cells = [[_cell(row.get(c), whole=c in WHOLE_COLUMNS) for c in cols] for row in rows]
    fast = _text_table(cells, cols)
    if fast is not None:
        return fast + "\n"
    from tabulate import tabulate

    return tabulate(cells, headers=cols, disable_numparse=True) + "\n"


def _text_table(cells: list[list[Any]], headers: Sequence[str]) -> str | None:
    """tabulate's ``simple`` layout for cells that are all one-line text, or None.

    What tabulate prints for such cells (with ``disable_numparse``): stripped values
    left-aligned in columns as wide as the widest value or the header plus two, two spaces
    between columns, lines right-stripped. Done here because tabulate spends ~0.2 ms per
    row guessing column types: 2 s for the 10,000 rows of a ``query`` over a large index.
    Anything else (numbers, several lines, escape codes, wide characters that tabulate
    measures with wcwidth) returns None, for tabulate to lay out.
    """
    import tabulate as tabulate_module

    flat = [value for row in cells for value in row]
    if not all(type(value) is str for value in flat):
        return None
    text = "".join(flat)
    if ("\n" in text or "\r" in text or "\x1b" in text
            or (getattr(tabulate_module, "WIDE_CHARS_MODE", True) and not text.isascii())):
        return None
    stripped = [[value.strip() for value in row] for row in cells]
    columns = list(zip(*stripped)) if stripped else [()] * len(headers)
    widths = [max(len(h) + 2, max(map(len, column), default=0)) for h, column in zip(headers, columns)]
    layout = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [layout.format(*headers).rstrip(), "  ".join("-" * w for w in widths).rstrip()]
    lines += [layout.format(*row).rstrip() for row in stripped]
    return "\n".join(lines)


def context_note(row: Mapping[str, Any], *, short: bool = False) -> str:
    """How a verdict came about, from a row's ``genre``, ``own_*`` and ``context_*`` columns.

    >>> row = {"genre": "Rock", "confidence": 0.81, "own_genre": "Blues", "own_confidence": 0.52,
    ...        "context_level": "album", "context_size": 9}
    >>> context_note(row)
    'album context: 9 other tracks, Rock 0.81; alone: Blues 0.52'
    >>> context_note(row, short=True)
    'album +9; alone Blues 0.52'
    >>> context_note({**row, "context_level": None}), context_note({})
    ('alone: Blues 0.52 (no other track of its album or artist voted)', '')
    """
    own, level = row.get("own_genre"), row.get("context_level")
    if own is None:
        return ""
    alone = f"{own} {row.get('own_confidence') or 0.0:.2f}"
    if level is None:
        return f"alone {alone}" if short else f"alone: {alone} (no other track of its album or artist voted)"
    size = row.get("context_size") or 0
    if short:
        return f"{level} +{size}; alone {alone}"
    tracks = "track" if size == 1 else "tracks"
    return (f"{level} context: {size} other {tracks}, {row.get('genre')} {row.get('confidence') or 0.0:.2f}; "
            f"alone: {alone}")
