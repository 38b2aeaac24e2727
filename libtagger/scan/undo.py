"""``undo``: put back the genre tags libtagger replaced, from the index's journal.

Before every write, the file's tag state was journaled (:mod:`libtagger.store.index`),
with the bytes the write changed. Undo restores it, and journals the state it replaces in
its own run, so an undo can itself be undone with ``libtagger undo --run <that run's id>``.

What undo keeps:

* **A person's genre.** When the file's genre is no longer what libtagger's last write left
  (someone set ``Thrash`` with another program since), the file is skipped with its reason
  and counted as ``skipped``; ``force=True`` (``--force``) restores it anyway.
* **The exact bytes.** When the file still holds exactly the bytes libtagger wrote, its
  original bytes are rebuilt from the journal (checked against their SHA-256) and swapped in.
  When something else in the file changed since (other tags edited), or the write was
  journaled by an older libtagger, only the genre values are put back, and the result says so.
* **Moves.** A file not found where it was journaled is found by its audio fingerprint: under
  the folders the undone run scanned (``undo --run``), or, for ``undo FILE``, by the
  fingerprint of FILE itself. The index then follows the file to its new path, as a scan does.

* **What was never written.** A write that failed and left the file as it was (a read-only
  file: the journal entry says ``not_written``) is no change of its run: undo neither lists nor
  counts it, and passes it over in a file's history. A write stopped by a crash or a kill is
  another matter: the file may hold either state, so its entry is undone like any other.
* **Links.** ``undo FILE`` finds the track of a file the index knows under another path that
  reaches the same file (a symbolic link, either way round: :meth:`Index.track_of_file`).

An undone track is marked ``undone`` in the index: later scans leave its genre
alone (unless ``--overwrite``), so a nightly cron job does not re-tag it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from libtagger.errors import FileError, LibtaggerError
from libtagger.audio.analysis import content_check
from libtagger.scan.journaled_write import NotWritten, RestoreSnapshot, journaled_write
from libtagger.scan.inventory import closest_track
from libtagger.store.index import Index, JournalEntry, path_key
from libtagger.store.records import TrackRow
from libtagger.tags import exact
from libtagger.tags import storage as tags

#: What an undo result says when only the tag values could be put back.
NOTE_CHANGED = "tag values only: the file changed since libtagger wrote it, its other bytes stay"
NOTE_UNRECORDED = "tag values only: no byte record of libtagger's write (an older libtagger, or a large change)"


@dataclass(frozen=True)
class UndoResult:
    """One file's outcome: ``restored`` genres, or ``skipped`` / ``error`` with the reason.

    ``note`` says when the genre was restored but not the exact bytes (:data:`NOTE_CHANGED`).
    """

    path: str
    restored: list[str] | None
    error: str | None = None
    skipped: str | None = None
    note: str | None = None


@dataclass
class _Target:
    """A file to restore: the entry whose ``before`` it gets back, and its later history."""

    entry: JournalEntry  # whose ``before`` state the file gets back
    history: list[JournalEntry]  # entry and every later one of the same file, oldest first
    path: str | None  # where the file is now (None: not found yet)
    moved: bool = False  # found by fingerprint: the index follows it after the restore
    fingerprint: str | None = field(default=None, repr=False)


def _changes(entries: list[JournalEntry]) -> list[JournalEntry]:
    """The entries whose write may have reached the file: not those that failed cleanly
    (``not_written``), whose file was left as it was."""
    return [e for e in entries if e.not_written is None]


def _history(index: Index, entry: JournalEntry) -> list[JournalEntry]:
    """``entry`` and every later change of its file (by track when known), oldest first."""
    every = (index.journal_entries(track_id=entry.track_id) if entry.track_id is not None
             else index.journal_entries(path=entry.real_path))
    return [e for e in _changes(every) if e.id >= entry.id] or [entry]


def _run_targets(index: Index, run_id: int) -> list[_Target]:
    journaled = index.journal_entries(run_id=run_id)
    if not journaled:
        raise LibtaggerError(f"run {run_id} changed no file (no journal entries)")
    entries = _changes(journaled)
    if not entries:
        raise LibtaggerError(f"run {run_id} changed no file (every write it tried failed)")
    # The first entry of a file in that run holds its state before the run.
    first: dict[Any, JournalEntry] = {}
    for entry in entries:
        first.setdefault(entry.track_id if entry.track_id is not None else entry.path, entry)
    targets = []
    for entry in first.values():
        path = entry.real_path
        if not os.path.lexists(path) and entry.track_id is not None:
            # moved or renamed since, and a scan recognised it: restore it where it is now
            path = index.present_path(entry.track_id) or path
        targets.append(_Target(entry, _history(index, entry), path if os.path.lexists(path) else None))
    return targets


def _path_target(index: Index, path: str) -> _Target:
    wanted = os.path.abspath(path)
    # indexed under this path, or under a link that reaches the same file (or the file it links to)
    row = index.track_of_file(wanted)
    # By track when indexed: the file may have had another name when libtagger wrote to it.
    entries = _changes(index.journal_entries(track_id=row.id) if row is not None
                       else index.journal_entries(path=wanted))
    writes = [e for e in entries if e.action == "write"]
    moved = False
    if not writes and os.path.isfile(wanted):
        # Moved or renamed, and no scan has seen it yet: its audio names the track.
        track = _gone_track_with_audio_of(index, wanted)
        if track is not None:
            entries = _changes(index.journal_entries(track_id=track))
            writes, moved = [e for e in entries if e.action == "write"], True
    if not writes:
        raise LibtaggerError(f"{path}: libtagger never wrote a tag to this file")
    # the state before libtagger's first write (the original), put back where the file is now
    first = writes[0]
    return _Target(first, [e for e in entries if e.id >= first.id], wanted, moved=moved)


def _track_here(index: Index, path: str, track_id: int | None) -> TrackRow | None:
    """The track of the file at ``path``, to update after its restore.

    Indexed under ``path``, or under a link that reaches the same file (or the file it links
    to: :meth:`Index.track_of_file`); else the entry's own track, when its path reaches
    this file (the index's size of it may be old, which track_of_file relies on).
    """
    row = index.track_of_file(path)
    if row is None and track_id is not None:
        present = index.present_path(track_id)
        try:
            if present is not None and os.path.samefile(present, path):
                row = index.track(track_id)
        except OSError:  # gone or unreadable: not this file
            pass
    return row


def _gone_track_with_audio_of(index: Index, path: str) -> int | None:
    """The track whose file is gone and whose audio fingerprint is that of ``path``."""
    from libtagger.audio.fingerprint import audio_fingerprint

    try:
        fingerprint = audio_fingerprint(path)
    except FileError:
        return None
    rows = index.missing_candidates([fingerprint]).get(fingerprint)
    return None if not rows else closest_track(rows, path, os.path.getsize(path)).id


def _run_roots(index: Index, run_id: int, depth: int = 0) -> list[str]:
    """The folders (or files) the run worked on: a scan's roots; an undo's, through what it undid."""
    row = index.run(run_id)
    if row is None or depth > 20:
        return []
    arguments = json.loads(row["arguments"] or "{}")
    if arguments.get("roots"):
        return [str(r) for r in arguments["roots"]]
    if arguments.get("run") is not None:
        return _run_roots(index, int(arguments["run"]), depth + 1)
    return [os.path.dirname(os.path.abspath(p)) for p in arguments.get("paths") or []]


def _candidates(index: Index, roots: list[str], extensions: set[str]) -> list[str]:
    """Files under ``roots`` with one of ``extensions`` that the index does not know (sorted)."""
    found: set[str] = set()
    for root in roots:
        if os.path.isfile(root):
            walked = [(os.path.dirname(root), [], [os.path.basename(root)])]
        else:
            walked = os.walk(root)
        for top, dirs, files in walked:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in files:
                if name.startswith(".") or os.path.splitext(name)[1].lower() not in extensions:
                    continue
                path = os.path.join(top, name)
                row = index.track_by_path(path)
                if row is None or row.missing:
                    found.add(path)
    return sorted(found)


def _find_moved(index: Index, run_id: int, targets: list[_Target]) -> None:
    """Find the files of ``targets`` not found where journaled, by fingerprint under the run's roots."""
    from libtagger.audio.fingerprint import audio_fingerprint

    # Several targets may share a fingerprint (two copies of one file): each finds its own file.
    lost: dict[str, list[_Target]] = {}
    for t in targets:
        if t.path is None and t.entry.track_id is not None:
            t.fingerprint = index.track(t.entry.track_id).fingerprint
            if t.fingerprint:
                lost.setdefault(t.fingerprint, []).append(t)
    if not lost:
        return
    every = [t for same in lost.values() for t in same]
    extensions = {os.path.splitext(t.entry.real_path)[1].lower() for t in every}
    sizes = {_written_size(t) for t in every}
    # A file only moved keeps the size libtagger wrote: those are fingerprinted first.
    paths = sorted(_candidates(index, _run_roots(index, run_id), extensions),
                   key=lambda p: os.path.getsize(p) not in sizes)
    for path in paths:
        try:
            same = lost.get(audio_fingerprint(path))
        except FileError:
            continue
        if not same:
            continue
        size, ext = os.path.getsize(path), os.path.splitext(path)[1].lower()
        target = min(same, key=lambda t: (_written_size(t) != size,
                                          os.path.splitext(t.entry.real_path)[1].lower() != ext))
        same.remove(target)
        target.path, target.moved = path, True
        if not any(lost.values()):
            return


def _written_size(target: _Target) -> int | None:
    recipe = _recipe(target.history[-1])
    return None if recipe is None else recipe.written_size


def _recipe(entry: JournalEntry) -> exact.ByteRecipe | None:
    return None if not entry.exact else exact.ByteRecipe.from_journal(entry.exact, entry.exact_bytes)


def _original_bytes(target: _Target, current_sha256: str) -> tuple[exact.ByteRecipe | None, str | None]:
    """The recipe rebuilding the target's original from the file's current bytes, or a note why not.

    Walks the file's writes from the latest back: each must have produced the bytes the
    next one started from (a write that never reached the file is passed over).
    """
    recipes = [_recipe(e) for e in target.history]
    if recipes[0] is None:
        return None, NOTE_UNRECORDED
    goal, have = recipes[0].original_sha256, current_sha256
    combined: exact.ByteRecipe | None = None
    for recipe in reversed(recipes):
        if have == goal:
            break
        if recipe is None:
            return None, NOTE_UNRECORDED
        if have == recipe.written_sha256:
            combined = recipe if combined is None else exact.compose(combined, recipe)
            have = recipe.original_sha256
        elif have != recipe.original_sha256:
            return None, NOTE_CHANGED
    if have != goal:
        return None, NOTE_CHANGED
    return combined, None  # combined None: the file already holds the original bytes


def _genre_change(target: _Target, path: str) -> str | None:
    """Why the file's genre is not libtagger's to undo (a person set another since), or None."""
    current = tags.genre_fields(tags.snapshot(path))
    last = target.history[-1]
    # restoring would not change the genre
    allowed = [tags.genre_fields(tags.Snapshot.from_json(target.entry.before))]
    if last.after is not None:
        allowed.append(tags.genre_fields(tags.Snapshot.from_json(last.after)))
    elif last.action == "write" and last.genre:  # journaled by an older libtagger
        allowed.append(dict(current, genres=[last.genre]))
    if not last.completed:  # the write may not have reached the file
        allowed.append(tags.genre_fields(tags.Snapshot.from_json(last.before)))
    if current in allowed or tags.written_by_libtagger(path):
        return None
    now = "; ".join(tags.read_genres(path)) or "no genre"
    return f"genre changed since libtagger wrote it (now {now!r}); kept (use --force to restore anyway)"


def undo(index: Index, *, run_id: int | None = None, paths: list[str] | None = None,
         preserve_mtime: bool = False, force: bool = False) -> tuple[int, list[UndoResult]]:
    """Restore the tag state journaled for a run, or the original state of some files.

    Returns the id of the undo run and one result per file. A file that cannot
    be restored is reported with its reason, one whose genre a person changed since
    libtagger wrote it is skipped (unless ``force``); the others are still restored.

    Examples
    --------
    >>> run, results = undo(Index("index.db"), run_id=3)  # doctest: +SKIP
    """
    if run_id is not None:
        targets = _run_targets(index, run_id)
        _find_moved(index, run_id, targets)
    elif paths:
        targets = [_path_target(index, p) for p in paths]
    else:
        raise LibtaggerError("say what to undo: --run ID, or one or more paths")
    undo_run = index.start_run(kind="undo", arguments={"run": run_id, "paths": paths, "force": force})
    results: list[UndoResult] = []
    outcome = "interrupted"
    try:
        for target in targets:
            results.append(_restore_one(index, target, undo_run, preserve_mtime, force))
        outcome = "finished"
    finally:
        index.finish_run(undo_run, outcome=outcome, counts={
            "restored": sum(r.restored is not None for r in results),
            "skipped": sum(r.skipped is not None for r in results),
            "error": sum(r.error is not None for r in results)})
    return undo_run, results


def _restore_one(index: Index, target: _Target, undo_run: int, preserve_mtime: bool,
                 force: bool) -> UndoResult:
    entry = target.entry
    path = target.path or entry.real_path
    shown = path_key(path)[0]
    if target.path is None:
        return UndoResult(shown, None, "file not found (not where it was, nor found by its audio "
                                       "under the folders that run scanned)")
    try:
        before = tags.Snapshot.from_json(entry.before)  # any libtagger version's journal
        changed = None if force else _genre_change(target, path)
        if changed is not None:
            return UndoResult(shown, None, skipped=changed)
        recipe, note = _original_bytes(target, exact.file_sha256(path))
    except FileError as exc:
        return UndoResult(shown, None, exc.reason)
    except tags.SnapshotError as exc:  # a journal of a newer libtagger: nothing is written
        return UndoResult(shown, None, str(exc))
    except OSError as exc:
        return UndoResult(shown, None, f"cannot read the file: {exc.strerror or exc}")
    row = _track_here(index, path, entry.track_id)
    # Journaled in the undo run itself, so that the undo can be undone with --run.
    result = journaled_write(index, run_id=undo_run, track_id=entry.track_id, path=path,
                             action=RestoreSnapshot(before, recipe), preserve_mtime=preserve_mtime)
    if isinstance(result, NotWritten):
        return UndoResult(shown, None, result.reason)
    if target.moved and entry.track_id is not None and row is None:
        index.move_track(entry.track_id, path, size=result.size, mtime_ns=result.mtime_ns)
        row = index.track(entry.track_id)
    if row is not None:
        # Undoing an undo puts libtagger's own genre back: the track is tagged again.
        ours = bool(before.genres) and tags.written_by_libtagger(path)
        index.update_track(row.id, TrackRow.changes(
            status="tagged" if ours else "undone", written=int(ours), size=result.size,
            mtime_ns=result.mtime_ns,
            # the restored bytes are the reference for the next write
            content_check=content_check(path), run_id=undo_run))
    return UndoResult(shown, list(before.genres), note=note)
