"""The one way libtagger changes a file's tags: snapshot, journal, write, mark completed.

Both ``scan`` (write a genre) and ``undo`` (restore a journaled state) go through
:func:`journaled_write`, so every change to a file can be undone:

1. :func:`libtagger.tags.storage.snapshot` the file's genre state (a
   :class:`~libtagger.tags.storage.Snapshot`);
2. journal it in the index (as JSON, durably, ``synchronous=FULL``) before touching the file;
3. write through :mod:`libtagger.tags.safe_write` (a checked copy renamed over the file);
   once the copy is checked, and before it replaces the file, journal the bytes that
   differ (:func:`libtagger.tags.exact.record`: the changed regions' old bytes and the
   hashes of both versions), so that undo can give the file back its exact bytes;
4. mark the journal entry completed, with the state the write left (``after``: what
   undo compares with, to leave alone a genre a person set since).

A run killed between 2 and 4 leaves an entry that is not completed: the file
either still has its old tags or already has the new ones, and ``undo`` restores
the journaled state in both cases. A write that fails cleanly instead (a read-only file,
a full disk: :func:`libtagger.tags.safe_write.atomic_update` raises only with the file as it
was) leaves its entry not completed too, but marked ``not_written`` with the reason, so that
``undo`` does not take it for a change of the run (:class:`NotWritten`).

Example
-------
>>> outcome = journaled_write(index, run_id=run, track_id=7, path="song.flac",
...                           action=WriteGenre("Jazz"))              # doctest: +SKIP
>>> isinstance(outcome, Written), outcome.before.genres           # doctest: +SKIP
(True, ['Rock'])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from libtagger.errors import FileError
from libtagger.store.index import Index
from libtagger.tags import exact
from libtagger.tags import storage as tags


@dataclass(frozen=True)
class WriteGenre:
    """Set the genre to ``genres`` (display spellings, one or two) with libtagger's marker (``scan``).

    Two genres are written as a real multi-valued tag (see :func:`libtagger.tags.storage.write_genre`).
    One genre may be given as a plain string.

    >>> WriteGenre("Jazz").genres, WriteGenre(("Rock", "Metal")).genre
    (('Jazz',), 'Rock')
    """

    genres: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.genres, str):
            object.__setattr__(self, "genres", (self.genres,))  # frozen: the one normalisation
        else:
            object.__setattr__(self, "genres", tuple(self.genres))

    @property
    def genre(self) -> str:
        """The first genre (the verdict's)."""
        return self.genres[0]

    @property
    def journal_text(self) -> str:
        """The journal's ``genre`` column: the genres ``"; "``-joined, as ``previous_genre`` is."""
        return "; ".join(self.genres)


@dataclass(frozen=True)
class RestoreSnapshot:
    """Put back a state taken by :func:`libtagger.tags.storage.snapshot` (``undo``).

    With ``original_bytes``, the file gets back the exact bytes that recipe rebuilds
    (their genre state is ``snapshot``); without, the tag values of ``snapshot``.
    """

    snapshot: tags.Snapshot
    original_bytes: exact.ByteRecipe | None = None


WriteAction = Union[WriteGenre, RestoreSnapshot]


@dataclass(frozen=True)
class Written:
    """The file now has the new state; its journal entry is completed.

    ``before`` is the state journaled (what an undo of this write puts back);
    ``size`` and ``mtime_ns`` are the file's right after the write.
    """

    entry_id: int
    before: tags.Snapshot
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class NotWritten:
    """The file was left as it was (read-only, vanished, unparsable, disk full...).

    ``entry_id`` is the journal entry left not completed and marked ``not_written`` with
    ``reason``, or None when the snapshot failed before anything was journaled.
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
        kind, genre = "write", action.journal_text
    else:
        kind, genre = "undo", None
    try:
        before = tags.snapshot(path)
    except FileError as exc:  # vanished or unparsable: nothing journaled, nothing changed
        return NotWritten(exc.reason, None)
    entry_id = index.journal_before_write(track_id=track_id, path=path, run_id=run_id,
                                          action=kind, before=before.to_json(), genre=genre)
    recorded: list[bool] = []

    def journal_bytes(old: Path, new: Path) -> None:
        # Both versions exist only now, before the rename: journal what differs, durably.
        recipe = exact.record(old, new)
        if recipe is not None:  # None: too many changed bytes to keep; undo restores values
            index.journal_recipe(entry_id, *recipe.to_journal())
        recorded.append(True)

    try:
        if isinstance(action, WriteGenre):
            result = tags.write_genre(path, action.genres, preserve_mtime=preserve_mtime,
                                      watch=journal_bytes)
        else:
            result = tags.restore(path, action.snapshot, preserve_mtime=preserve_mtime,
                                  original_bytes=action.original_bytes, watch=journal_bytes)
    except FileError as exc:
        # The file is untouched (atomic_update raises only so): the entry stays not completed,
        # and says so, or undo would count this file among the run's changes. A crash or a kill
        # mid-write (KeyboardInterrupt, SIGKILL) never gets here: its entry is left unmarked,
        # and undo restores the journaled state whichever state the file was left in.
        index.journal_not_written(entry_id, exc.reason)
        return NotWritten(exc.reason, entry_id)
    after = _state_after(index, entry_id, path, recorded=bool(recorded))
    index.journal_completed(entry_id, after=None if after is None else after.to_json())
    return Written(entry_id, before, result.size, result.mtime_ns)


def _state_after(index: Index, entry_id: int, path: str | os.PathLike[str], *,
                 recorded: bool) -> tags.Snapshot | None:
    """The snapshot the write left (None when the file cannot be read any more).

    A write that found the state already there changed no byte: its recipe is the identity,
    so that a later undo can still follow the chain of writes back to the original bytes.
    """
    try:
        if not recorded:
            index.journal_recipe(entry_id, *exact.identity(path).to_journal())
        return tags.snapshot(path)
    except (FileError, OSError):  # vanished or replaced right after the write: undo compares less
        return None
