"""The one way libtagger changes a file's tags: snapshot, journal, write, mark completed.

Both ``scan`` (write a genre) and ``undo`` (restore a journaled state) go through
:func:`journaled_write`, so every change to a file can be undone:

1. :func:`libtagger.tags.storage.snapshot` the file's genre state;
2. journal it in the index (durably, ``synchronous=FULL``) before touching the file;
3. write through :mod:`libtagger.tags.safe_write` (a checked copy renamed over the file);
4. mark the journal entry completed.

A run killed between 2 and 4 leaves an entry that is not completed: the file
either still has its old tags or already has the new ones, and ``undo`` restores
the journaled state in both cases.

Example
-------
>>> outcome = journaled_write(index, run_id=run, track_id=7, path="song.flac",
...                           action=WriteGenre("Jazz"))              # doctest: +SKIP
>>> isinstance(outcome, Written), outcome.before["genres"]         # doctest: +SKIP
(True, ['Rock'])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Union

from libtagger.errors import FileError
from libtagger.store.index import Index
from libtagger.tags import storage as tags


@dataclass(frozen=True)
class WriteGenre:
    """Set the genre to ``genre`` (display spelling) with libtagger's marker (``scan``)."""

    genre: str


@dataclass(frozen=True)
class RestoreSnapshot:
    """Put back a state taken by :func:`libtagger.tags.storage.snapshot` (``undo``)."""

    snapshot: dict[str, Any]


WriteAction = Union[WriteGenre, RestoreSnapshot]


@dataclass(frozen=True)
class Written:
    """The file now has the new state; its journal entry is completed.

    ``before`` is the state journaled (what an undo of this write puts back);
    ``size`` and ``mtime_ns`` are the file's right after the write.
    """

    entry_id: int
    before: dict[str, Any]
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class NotWritten:
    """The file was left as it was (read-only, vanished, unparsable, disk full...).

    ``entry_id`` is the journal entry left not completed, or None when the
    snapshot failed before anything was journaled.
    """

    reason: str
    entry_id: int | None


JournaledWriteResult = Union[Written, NotWritten]


def journaled_write(index: Index, *, run_id: int, track_id: int | None, path: str | os.PathLike[str],
                    action: WriteAction, preserve_mtime: bool = False) -> JournaledWriteResult:
    """Journal the file's tag state, apply ``action`` crash-safely, mark the entry completed.

    Parameters
    ----------
    index : Index
        Where the journal entry goes.
    run_id : int
        The run (scan or undo) the change belongs to; ``undo --run`` finds it by this id.
    track_id : int or None
        The file's track, so that undo finds the file again after a move.
    path : path-like
        The file to change.
    action : WriteGenre or RestoreSnapshot
        What to write. The journal's ``action`` column says ``write`` or ``undo``.
    preserve_mtime : bool
        Keep the file's modification time.

    Returns
    -------
    Written or NotWritten
        A file error is returned, not raised: the caller records it on the track.
    """
    if isinstance(action, WriteGenre):
        kind, genre = "write", action.genre
    else:
        kind, genre = "undo", None
    try:
        before = tags.snapshot(path)
    except FileError as exc:  # vanished or unparsable: nothing journaled, nothing changed
        return NotWritten(exc.reason, None)
    entry_id = index.journal_before_write(track_id=track_id, path=path, run_id=run_id,
                                          action=kind, before=before, genre=genre)
    try:
        if isinstance(action, WriteGenre):
            result = tags.write_genre(path, action.genre, preserve_mtime=preserve_mtime)
        else:
            result = tags.restore(path, action.snapshot, preserve_mtime=preserve_mtime)
    except FileError as exc:  # the file is untouched; the entry stays not completed
        return NotWritten(exc.reason, entry_id)
    index.journal_completed(entry_id)
    return Written(entry_id, before, result.size, result.mtime_ns)
