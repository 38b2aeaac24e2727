"""The ``tracks`` row as a record: :class:`TrackRow`, and its genre verdict, :class:`Verdict`.

The fields of :class:`TrackRow` ARE the ``tracks`` table: :mod:`libtagger.store.index` makes
the table, and adds a missing column to an older index in place, from these fields and their
annotations (``str``, ``int``, ``float``, ``bytes``, each optional). A new column is one field
with a default here; ``show --json``, ``query -f json`` and the beets plugin's
``libtagger_<field>`` attributes follow from the record (README, "Where to make the common
changes").

Dicts exist only at the edges: :meth:`TrackRow.from_row` reads an SQL row (a column an older
index lacks takes the field's default), :meth:`TrackRow.as_dict` gives the JSON of ``show`` and
``query``, and :meth:`TrackRow.changes` / :meth:`Verdict.columns` name the columns a write sets.

>>> row = TrackRow.from_row({"id": 1, "path": "/m/a.flac", "genre": "Jazz", "confidence": 0.9})
>>> row.verdict
Verdict(genre='Jazz', confidence=0.9, runner_up=None, runner_up_confidence=None)
>>> row.with_changes(Verdict.CLEARED.columns()).verdict == Verdict.CLEARED
True
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from functools import cache
from typing import Any, ClassVar, TypeAlias

#: Some columns of a track and their new values, by :class:`TrackRow` field name: what a write
#: sets (:meth:`TrackRow.changes` checks the names; the other columns keep what they hold).
TrackChanges: TypeAlias = dict[str, Any]


@dataclass(frozen=True)
class Verdict:
    """The vote's answer in a track's row: the genre written, its confidence and the runner-up.

    ``genre`` and ``runner_up`` as the model's labels are written (``"Hip-Hop"``), confidences
    between 0 and 1. :attr:`CLEARED` (every field None) is the row of a track that keeps no
    genre: an error, a rejection, a file changed since its analysis.
    """

    genre: str | None = None
    confidence: float | None = None
    runner_up: str | None = None
    runner_up_confidence: float | None = None

    #: No genre kept (set below the class).
    CLEARED: ClassVar[Verdict]

    def columns(self) -> TrackChanges:
        """The ``tracks`` columns this verdict sets (a write's changes; see :meth:`TrackRow.changes`)."""
        return asdict(self)


Verdict.CLEARED = Verdict()


@dataclass(frozen=True)
class ContextVerdict:
    """How a track's verdict came about: its own verdict, and the group whose other tracks pooled with it.

    ``own_*``: the track judged alone (its segments voted), ``own_probabilities`` a JSON list in
    the model's label order. ``context_level``: ``album`` or ``artist`` when the verdict pooled
    ``context_size`` other tracks of the group ``context_key`` (:mod:`libtagger.classify.context`),
    with ``context_probabilities`` the pooled result; None when the track was judged alone (no
    group, or the scan's ``--context none``). :attr:`CLEARED`: a track with no verdict at all.
    """

    own_genre: str | None = None
    own_confidence: float | None = None
    own_probabilities: str | None = None
    context_level: str | None = None
    context_key: str | None = None
    context_size: int | None = None
    context_probabilities: str | None = None

    #: No verdict, own or pooled (set below the class).
    CLEARED: ClassVar[ContextVerdict]

    def columns(self) -> TrackChanges:
        """The ``tracks`` columns this record sets."""
        return asdict(self)

    def alone(self) -> ContextVerdict:
        """The same own verdict, judged alone (no group pooled with it)."""
        return ContextVerdict(self.own_genre, self.own_confidence, self.own_probabilities)


ContextVerdict.CLEARED = ContextVerdict()


@dataclass(frozen=True)
class TrackRow:
    """One ``tracks`` row: a file libtagger has seen, what it concluded, and what the file holds.

    Field order is the column order of a new index; every field has a default, so a row of an
    older index (without the columns added since) reads as one with those columns empty.
    """

    id: int | None = None
    path: str = ""  # as stored: see libtagger.store.index.path_key
    path_bytes: bytes | None = None  # the exact name when it is not valid UTF-8
    size: int | None = None
    mtime_ns: int | None = None
    fingerprint: str | None = None  # the audio fingerprint (finds a moved file)
    format: str | None = None
    duration: float | None = None
    samplerate: int | None = None
    channels: int | None = None
    #: tagged, would-tag, kept, unsure, rejected, error, undone, or pending (waiting for its group; see store.index.STATUSES)
    status: str | None = None
    error: str | None = None
    genre: str | None = None
    confidence: float | None = None
    runner_up: str | None = None
    runner_up_confidence: float | None = None
    previous_genre: str | None = None  # the file's genres before the verdict, "; "-joined
    written: int = 0  # 1: the file holds libtagger's genre
    written_genre: str | None = None
    model_id: str | None = None
    missing: int = 0  # 1: the file is gone
    analysed_at: str | None = None
    updated_at: str | None = None
    run_id: int | None = None
    #: a hash of the file's size and a few fixed blocks when analysed or last written
    #: (libtagger.audio.analysis.content_check; None: a row of an older libtagger)
    content_check: str | None = None
    reason: str | None = None  # why a rejected track gets no genre ("not music: speech")
    detector_id: str | None = None  # the music detector that judged it (None: the check was off)
    #: JSON list of the genres a person set in the file (None: none, or libtagger's own)
    person_genres: str | None = None
    artist: str | None = None
    albumartist: str | None = None
    album: str | None = None
    tags_read_at: str | None = None  # when the four fields above were read (None: not yet)
    #: 1: the file is flagged part of a compilation (TCMP, cpil, COMPILATION...); 0: not (read with
    #: the fields above); None: not read yet (a row of an older libtagger: the next scan reads it)
    compilation: int | None = None
    #: The track judged alone and the group that pooled with it (see :class:`ContextVerdict`):
    #: ``genre``/``confidence`` above are the pooled verdict when ``context_level`` is set.
    own_genre: str | None = None
    own_confidence: float | None = None
    own_probabilities: str | None = None  # JSON list in the model's label order
    context_level: str | None = None  # album, artist, or None: judged alone
    context_key: str | None = None  # the group (libtagger.classify.groups keys)
    context_size: int | None = None  # other tracks of the group that pooled with this one
    context_probabilities: str | None = None  # JSON list, the pooled probabilities
    #: the runner-up written as a second genre value (scan --second-genre; None: one genre)
    second_genre: str | None = None

    @property
    def verdict(self) -> Verdict:
        """The vote's columns of this row."""
        return Verdict(self.genre, self.confidence, self.runner_up, self.runner_up_confidence)

    @property
    def context(self) -> ContextVerdict:
        """The own-and-context columns of this row."""
        return ContextVerdict(self.own_genre, self.own_confidence, self.own_probabilities, self.context_level,
                              self.context_key, self.context_size, self.context_probabilities)

    @property
    def real_path(self) -> str:
        """The file-system path of the row (inverse of :func:`libtagger.store.index.path_key`)."""
        return os.fsdecode(self.path_bytes) if self.path_bytes else self.path

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TrackRow:
        """The record of an SQL row; a column the row lacks (an older index) takes its default."""
        return cls(**{name: row[name] for name in column_names() if name in row})

    def as_dict(self, *, raw_path: bool = False) -> dict[str, Any]:
        """Every column by name, in column order (the JSON of ``show`` and ``query``).

        ``path_bytes`` only with ``raw_path``: bytes are no JSON, and ``path`` names the file.
        """
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if not raw_path:
            del values["path_bytes"]
        return values

    @staticmethod
    def changes(**columns: Any) -> TrackChanges:
        """Columns a write sets, by field name: an unknown name raises TypeError (a misspelt column).

        >>> TrackRow.changes(status="error", error="x")
        {'status': 'error', 'error': 'x'}
        """
        check_columns(columns)
        return columns

    def with_changes(self, columns: Mapping[str, Any]) -> TrackRow:
        """This row with some columns changed (``dataclasses.replace`` by column name)."""
        return replace(self, **columns)


def no_verdict() -> TrackChanges:
    """The columns of a track that keeps no verdict (rejected, failed, or changed under it): its
    verdict, the second genre written beside it, its own and pooled verdicts, all None.

    >>> sorted(no_verdict())[:3]
    ['confidence', 'context_key', 'context_level']
    """
    return TrackRow.changes(second_genre=None, **Verdict.CLEARED.columns(), **ContextVerdict.CLEARED.columns())


@cache
def column_names() -> tuple[str, ...]:
    """The ``tracks`` columns, in the order of a new index."""
    return tuple(f.name for f in fields(TrackRow))


@cache
def column_types() -> dict[str, type]:
    """``{column: str | int | float | bytes}``, from the annotations of :class:`TrackRow`."""
    hints = typing.get_type_hints(TrackRow)
    return {name: _storage_type(hints[name]) for name in column_names()}


def check_columns(columns: Mapping[str, Any]) -> None:
    """Raise TypeError when a name in ``columns`` is no ``tracks`` column."""
    unknown = set(columns) - set(column_names())
    if unknown:
        raise TypeError(f"no such tracks column: {', '.join(sorted(unknown))}")


def _storage_type(annotation: Any) -> type:
    """``str`` of ``str | None``: the one storable type of an (optional) annotation."""
    kinds = [a for a in typing.get_args(annotation) or (annotation,) if a is not type(None)]
    if len(kinds) != 1 or kinds[0] not in (str, int, float, bytes):
        raise TypeError(f"a tracks column holds str, int, float or bytes (or None), not {annotation}")
    return kinds[0]
