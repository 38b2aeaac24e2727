"""``undo``: put back the genre tags libtagger replaced, from the index's journal.

Before every write, the file's tag state was journaled (:mod:`libtagger.store.index`).
Undo restores it, and journals the state it replaces in its own run, so an undo
can itself be undone with ``libtagger undo --run <that run's id>``.

An undone track is marked ``undone`` in the index: later scans leave its genre
alone (unless ``--overwrite``), so a nightly cron job does not re-tag it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from libtagger.errors import LibtaggerError
from libtagger.scan.journaled_write import NotWritten, RestoreSnapshot, journaled_write
from libtagger.store.index import Index, JournalEntry, path_key
from libtagger.tags import storage as tags


@dataclass(frozen=True)
class UndoResult:
    path: str
    restored: list[str] | None
    error: str | None = None


def _targets(index: Index, *, run_id: int | None,
             paths: list[str] | None) -> list[JournalEntry]:
    """The journal entry whose ``before`` state each file should get back."""
    if run_id is not None:
        entries = index.journal_entries(run_id=run_id)
        if not entries:
            raise LibtaggerError(f"run {run_id} changed no file (no journal entries)")
        # The first entry of a file in that run holds its state before the run.
        first: dict[str, JournalEntry] = {}
        for entry in entries:
            first.setdefault(entry.path, entry)
        return list(first.values())
    if not paths:
        raise LibtaggerError("say what to undo: --run ID, or one or more paths")
    targets = []
    for path in paths:
        wanted = os.path.abspath(path)
        row = index.track_by_path(wanted)
        # By track when indexed: the file may have had another name when libtagger wrote to it.
        entries = (index.journal_entries(track_id=row["id"]) if row is not None
                   else index.journal_entries(path=wanted))
        entries = [e for e in entries if e.action == "write"]
        if not entries:
            raise LibtaggerError(f"{path}: libtagger never wrote a tag to this file")
        text, raw = path_key(wanted)
        # the state before libtagger's first write (the original), put back where the file is now
        targets.append(replace(entries[0], path=text, path_bytes=raw))
    return targets


def undo(index: Index, *, run_id: int | None = None, paths: list[str] | None = None,
         preserve_mtime: bool = False) -> tuple[int, list[UndoResult]]:
    """Restore the tag state journaled for a run, or the original state of some files.

    Returns the id of the undo run and one result per file. A file that cannot
    be restored is reported with its reason; the others are still restored.

    Examples
    --------
    >>> run, results = undo(Index("index.db"), run_id=3)  # doctest: +SKIP
    """
    targets = _targets(index, run_id=run_id, paths=paths)
    undo_run = index.start_run(kind="undo", arguments={"run": run_id, "paths": paths})
    results: list[UndoResult] = []
    outcome = "interrupted"
    try:
        for entry in targets:
            results.append(_restore_one(index, entry, undo_run, preserve_mtime))
        outcome = "finished"
    finally:
        index.finish_run(undo_run, outcome=outcome, counts={
            "restored": sum(r.error is None for r in results),
            "error": sum(r.error is not None for r in results)})
    return undo_run, results


def _restore_one(index: Index, entry: JournalEntry, undo_run: int,
                 preserve_mtime: bool) -> UndoResult:
    path = entry.real_path
    if not os.path.lexists(path) and entry.track_id is not None:
        # moved or renamed since (the scan recognised it): restore it where it is now
        path = index.present_path(entry.track_id) or path
    before = entry.before
    # Journaled in the undo run itself, so that the undo can be undone with --run.
    result = journaled_write(index, run_id=undo_run, track_id=entry.track_id, path=path,
                             action=RestoreSnapshot(before), preserve_mtime=preserve_mtime)
    if isinstance(result, NotWritten):
        return UndoResult(path_key(path)[0], None, result.reason)
    row = index.track_by_path(path)
    if row is not None:
        # Undoing an undo puts libtagger's own genre back: the track is tagged again.
        ours = bool(before.get("genres")) and tags.written_by_libtagger(path)
        index.update_track(row["id"], {"status": "tagged" if ours else "undone", "written": int(ours),
                                       "size": result.size, "mtime_ns": result.mtime_ns,
                                       "run_id": undo_run})
    return UndoResult(path_key(path)[0], list(before.get("genres") or []))
