"""``undo``: put back the genre tags libtagger replaced, from the index's journal.

Before every write, the file's tag state was journaled (:mod:`libtagger.store.index`).
Undo restores it, and journals the state it replaces in its own run, so an undo
can itself be undone with ``libtagger undo --run <that run's id>``.

An undone track is marked ``undone`` in the index: later scans leave its genre
alone (unless ``--overwrite``), so a nightly cron job does not re-tag it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from libtagger.tags import storage as tags
from libtagger.errors import FileError, LibtaggerError
from libtagger.store.index import Index, path_key, real_path


@dataclass(frozen=True)
class UndoResult:
    path: str
    restored: list[str] | None
    error: str | None = None


def _targets(index: Index, *, run_id: int | None,
             paths: list[str] | None) -> list[dict[str, Any]]:
    """The journal entry whose ``before`` state each file should get back."""
    if run_id is not None:
        entries = index.journal_entries(run_id=run_id)
        if not entries:
            raise LibtaggerError(f"run {run_id} changed no file (no journal entries)")
        # The first entry of a file in that run holds its state before the run.
        first: dict[str, dict[str, Any]] = {}
        for entry in entries:
            first.setdefault(entry["path"], entry)
        return list(first.values())
    if not paths:
        raise LibtaggerError("say what to undo: --run ID, or one or more paths")
    targets = []
    for path in paths:
        wanted = os.path.abspath(path)
        row = index.track_by_path(wanted)
        # By track when indexed: the file may have had another name when libtagger wrote to it.
        entries = (list(index.db.query("select * from journal where track_id = ? order by id", [row["id"]]))
                   if row is not None else index.journal_entries(path=wanted))
        entries = [e for e in entries if e["action"] == "write"]
        if not entries:
            raise LibtaggerError(f"{path}: libtagger never wrote a tag to this file")
        text, raw = path_key(wanted)
        # the state before libtagger's first write (the original), put back where the file is now
        targets.append({**entries[0], "path": text, "path_bytes": raw})
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


def _restore_one(index: Index, entry: dict[str, Any], undo_run: int,
                 preserve_mtime: bool) -> UndoResult:
    path = real_path(entry)
    if not os.path.lexists(path) and entry["track_id"] is not None:
        # moved or renamed since (the scan recognised it): restore it where it is now
        row = next(index.iter_tracks("id = ?", [entry["track_id"]]), None)
        if row is not None and not row["missing"]:
            path = real_path(row)
    before = json.loads(entry["before"])
    try:
        current = tags.snapshot(path)
        journal_id = index.journal_before_write(track_id=entry["track_id"], path=path, run_id=undo_run,
                                                action="undo", before=current, genre=None)
        result = tags.restore(path, before, preserve_mtime=preserve_mtime)
    except FileError as exc:
        return UndoResult(path_key(path)[0], None, exc.reason)
    index.journal_completed(journal_id)
    row = index.track_by_path(path)
    if row is not None:
        # Undoing an undo puts libtagger's own genre back: the track is tagged again.
        ours = bool(before.get("genres")) and tags.written_by_libtagger(path)
        index.update_track(row["id"], {"status": "tagged" if ours else "undone", "written": int(ours),
                                       "size": result.size, "mtime_ns": result.mtime_ns,
                                       "run_id": undo_run})
    return UndoResult(path_key(path)[0], list(before.get("genres") or []))
