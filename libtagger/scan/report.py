"""Turn rows (scan reports, query results) into a table, JSON or CSV text."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

FORMATS = ("table", "json", "csv")


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else value


def render(rows: Sequence[dict[str, Any]], *, fmt: str = "table",
           columns: Sequence[str] | None = None) -> str:
    """Render rows as text in ``fmt`` (``table``, ``json`` or ``csv``).

    ``columns`` picks and orders the columns (all keys of the first row by
    default). JSON keeps every key and full float precision.

    Examples
    --------
    >>> print(render([{"path": "a.mp3", "genre": "Jazz", "confidence": 0.91234}], fmt="csv"))
    path,genre,confidence
    a.mp3,Jazz,0.91234
    <BLANKLINE>
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps(list(rows), indent=2, ensure_ascii=False, default=str) + "\n"
    cols = list(columns) if columns else (list(rows[0]) if rows else [])
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    from tabulate import tabulate

    return tabulate([[_cell(row.get(c)) for c in cols] for row in rows], headers=cols,
                    disable_numparse=True) + "\n"
