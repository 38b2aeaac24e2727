"""Questions asked of the index: ``query``, ``stats`` and ``show``. No TensorFlow here.

Examples
--------
>>> from libtagger.store.index import Index
>>> index = Index(":memory:")
>>> find_tracks(index, genre="jazz", min_confidence=0.8)
[]
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from libtagger.errors import LibtaggerError
from libtagger.genres import GENRES, display_name, parse_genre
from libtagger.store.index import STATUSES, Index, TrackFilter, path_key
from libtagger.store.records import TrackRow

#: Columns shown by ``query`` unless asked otherwise.
QUERY_COLUMNS = ("path", "status", "genre", "confidence", "runner_up", "previous_genre", "error", "reason")

#: The SQL name of :func:`genre_disagrees`, which the "disagrees" canned query of ``libtagger
#: browse`` calls (Datasette's plugin, :mod:`libtagger.integrations.datasette_plugin`, adds it).
DISAGREES_FUNCTION = "libtagger_genre_disagrees"


def find_tracks(index: Index, *, genre: str | None = None, status: str | None = None,
                min_confidence: float | None = None, max_confidence: float | None = None,
                path_glob: str | None = None, disagrees: bool = False,
                missing: bool | None = None, reason: str | None = None,
                album: str | None = None, artist: str | None = None,
                limit: int | None = None) -> list[TrackRow]:
    """Tracks of the index that match every filter given, ordered by path.

    Parameters
    ----------
    genre : str
        A genre in any common spelling (``"hip hop"``, ``"Hip-Hop"``).
    status : str
        One of ``tagged``, ``would-tag``, ``kept``, ``unsure``, ``rejected``, ``error``, ``undone``.
    min_confidence, max_confidence : float
        Inclusive bounds on the voted confidence (0 to 1).
    path_glob : str
        A shell pattern matched against the whole path, e.g. ``"*/Jazz/*"``.
    disagrees : bool
        Only tracks whose previous genre names a different genre than the verdict.
    missing : bool
        Only tracks whose file is gone (True), or only present ones (False).
    reason : str
        Only rejected tracks whose reason contains this text (``speech``, ``noise``, ``tone``,
        ``silence``, ``beat`` (``not music: no steady beat``), ``unlike``, or the whole reason
        such as ``not music: speech``).
    album : str
        Only tracks of this album: the whole album tag, case ignored (ASCII letters: SQLite's
        ``lower``), e.g. ``"illmatic"``.
    artist : str
        Only tracks whose artist or album artist tag is this, whole and case ignored as ``album``.
    """
    stored_genre = None
    if genre is not None:
        label = parse_genre(genre)
        if label is None:
            raise LibtaggerError(f"unknown genre {genre!r}; expected one of {', '.join(GENRES)}")
        stored_genre = display_name(label)
    if status is not None and status not in (*STATUSES, "undone", "pending"):
        raise LibtaggerError(
            f"unknown status {status!r}; expected one of {', '.join((*STATUSES, 'undone', 'pending'))}")
    for bound in (min_confidence, max_confidence):
        if bound is not None and not 0.0 <= bound <= 1.0:
            raise LibtaggerError(f"confidence bounds are between 0 and 1, got {bound!r}")
    if path_glob is not None and not ("/" in path_glob or path_glob.startswith("*")):
        path_glob = f"*{path_glob}*"  # a bare name matches anywhere in the path
    # A previous genre spelled exactly as the verdict agrees: SQL drops those rows, so only
    # the few left are parsed (at 100,000 tracks, fetching them all took over a second).
    rows = index.tracks_matching(TrackFilter(
        genre=stored_genre, status=status, min_confidence=min_confidence,
        max_confidence=max_confidence, path_glob=path_glob, missing=missing,
        previous_genre_differs=disagrees, reason_contains=reason, album=album, artist=artist),
        limit=limit if limit and reason is None and not disagrees else None)
    if reason is not None:  # SQL folds ASCII case only: Python's lower() has the last word
        rows = [r for r in rows if r.reason and reason.lower() in r.reason.lower()]
    if disagrees:
        # Whether "Rock; Alternative" agrees with "Rock" needs the genre parser, not SQL.
        rows = [r for r in rows if not _agrees(r.previous_genre, r.genre)]
    return rows[:limit] if limit else rows


@functools.lru_cache(maxsize=4096)  # a library holds a few hundred distinct (previous, verdict) pairs
def _agrees(previous: str, genre: str) -> bool:
    label = parse_genre(genre)
    return any(parse_genre(value.strip()) == label for value in previous.split(";"))


def genre_disagrees(previous: str | None, genre: str | None) -> int | None:
    """1 when the file's previous genre names no value of the verdict ``genre``, else 0.

    The rule of ``libtagger query --disagrees`` (``"Rock; Alternative"`` agrees with
    ``"Rock"``), as an SQL function (:data:`DISAGREES_FUNCTION`) for the canned query of
    ``libtagger browse``; None when either side is empty.

    >>> genre_disagrees("Rock; Alternative", "Rock"), genre_disagrees("Jazz", "Rock")
    (0, 1)
    """
    if not previous or not genre:
        return None
    return int(not _agrees(previous, genre))


def stats(index: Index) -> dict[str, Any]:
    """Counts of present tracks per genre and per status, plus missing files and runs.

    >>> stats(Index(":memory:"))["tracks"]
    0
    """
    counts = index.counts()
    return {
        "tracks": sum(counts.by_status.values()),
        "by_genre": {genre or "(none)": n for genre, n in counts.by_genre.items()},
        "by_status": counts.by_status,
        "rejected_by_reason": counts.by_reason or {},
        # tracks pooled with their album or artist, and how many of them the pooling changed
        "context": {level: {"tracks": n, "changed": changed}
                    for level, (n, changed) in (counts.by_context or {}).items()},
        "missing": counts.missing,
        "runs": counts.runs,
    }


def show_track(index: Index, path: str | os.PathLike) -> dict[str, Any]:
    """One track's columns (:meth:`TrackRow.as_dict <libtagger.store.records.TrackRow.as_dict>`)
    with its segments, as ``show`` prints them; raises LibtaggerError when the file is not indexed.

    A file indexed under a symbolic link to it (or a link to a file indexed under its own
    path) is found too (:meth:`Index.track_of_file <libtagger.store.index.Index.track_of_file>`):
    its ``path`` says under which name."""
    row = index.track_of_file(os.path.abspath(path))
    if row is None:
        raise LibtaggerError(f"{path_key(path)[0]}: not in the index (scan it first)")
    track: dict[str, Any] = row.as_dict()
    track["segments"] = [{
        "start": s["start"], "end": s["end"], "genre": s["genre"], "confidence": s["confidence"],
        "probabilities": _named(json.loads(s["probabilities"])) if s["probabilities"] else None,
        "pulse": s["pulse"],  # the music detector's beat check (None: analysed before it was stored)
    } for s in index.segments(row.id)]
    return track


def _named(probabilities: list[float]) -> dict[str, float] | list[float]:
    """The ten genres' probabilities by name; a learned model's (libtagger learn: its own labels,
    in its meta.json) stay a list in its label order rather than take the ten genres' names."""
    if len(probabilities) != len(GENRES):
        return probabilities
    return dict(zip((display_name(g) for g in GENRES), probabilities))
