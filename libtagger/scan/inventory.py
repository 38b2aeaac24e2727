"""What a scan has to do: the files found under the roots compared with the index.

Every supported file found is sorted into exactly one of

* ``to_analyse``: new to the index, changed (size or mtime), or last seen with an error
  (or every file with ``--rescan``): decode and classify it;
* ``reclassify``: unchanged, but classified by another model or judged by another music
  detector: classify the stored features and taggrams;
* ``redecide``: unchanged, and its stored verdict could now be written (see
  :func:`verdict_may_change`): apply the policy again;
* unchanged otherwise: reported as stored, the file is not opened.

Indexed tracks under the roots that were not found are ``gone``; :func:`find_moves` matches
them by audio fingerprint with the new files, which are then moves, not new tracks.
Nothing here writes to the index; the caller acts on the inventory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from libtagger.audio.analysis import fingerprint_file
from libtagger.parallel import map_unordered
from libtagger.store.index import FileState, Index, path_key
from libtagger.store.records import TrackRow

#: A file to analyse, with the stat result that the analysis compares against later.
Found = tuple[str, os.stat_result]


@dataclass
class Inventory:
    """The scan's work list, see the module docstring. Track ids refer to the index."""

    to_analyse: list[Found] = field(default_factory=list)
    reclassify: list[int] = field(default_factory=list)
    redecide: list[int] = field(default_factory=list)
    gone: dict[str, int] = field(default_factory=dict)  # stored path -> track id


@dataclass(frozen=True)
class Move:
    """A file new to the index whose audio is that of a gone track (``row``: the track's index row)."""

    path: str
    stat: os.stat_result
    row: TrackRow


def index_key(path: str) -> str:
    """The index's key of ``path`` (see :func:`libtagger.store.index.path_key`)."""
    return path_key(path)[0]


def verdict_may_change(status: str | None, confidence: float | None, *, min_confidence: float,
                       overwrite: bool) -> bool:
    """Whether this run's options could write a stored verdict the last run did not.

    Everything else unchanged is skipped without opening the file, so a nightly
    run over a library of person-set genres ("kept") stays a no-op.

    >>> verdict_may_change("unsure", 0.4, min_confidence=0.35, overwrite=False)
    True
    >>> verdict_may_change("kept", 0.9, min_confidence=0.35, overwrite=False)
    False
    """
    if status in ("would-tag", "pending"):
        return True  # a dry run's verdict waiting for a real run; a killed run's, for its group
    if status == "unsure":
        return confidence is not None and confidence >= min_confidence
    if status in ("kept", "undone"):
        return overwrite
    return False


def take_inventory(roots: Sequence[Path], states: dict[str, FileState], *, model_id: str,
                   detector_id: str | None = None, rescan: bool, min_confidence: float, overwrite: bool, include_hidden: bool,
                   file_error: Callable[[str, str], bool],
                   unchanged: Callable[[int], None]) -> Inventory:
    """Find the audio files under ``roots`` and sort them against ``states`` (:meth:`Index.file_states`).

    ``file_error(path, reason)`` is called for a path that cannot be listed or stat'ed and
    returns True when the file is still there (so it is not counted as gone);
    ``unchanged(track_id)`` is called, in discovery order, for each file left alone.
    """
    from libtagger.scan.discover import iter_audio_files

    inventory = Inventory()
    seen: set[str] = set()

    def on_error(path: os.PathLike, why: str) -> None:
        path_str = os.fspath(path)
        if file_error(path_str, why):
            seen.add(index_key(path_str))  # still there: not a missing file

    found = list(iter_audio_files(roots, include_hidden=include_hidden, on_error=on_error))
    for path in found:
        path_str = os.fspath(path)
        k = index_key(path_str)
        seen.add(k)
        try:
            st = os.stat(path_str)
        except OSError as exc:
            if not file_error(path_str, f"cannot stat: {exc.strerror}"):
                seen.discard(k)  # vanished since it was found: a missing file
            continue
        state = states.get(k)
        same = (state is not None and (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns)
                and state.status != "error")
        if not same or rescan:
            inventory.to_analyse.append((path_str, st))
        elif state.model_id != model_id or state.detector_id != detector_id:
            # another genre model, or another music detector (or the check turned on or off)
            inventory.reclassify.append(state.track_id)
        elif verdict_may_change(state.status, state.confidence, min_confidence=min_confidence,
                                overwrite=overwrite):
            inventory.redecide.append(state.track_id)
        else:
            unchanged(state.track_id)
    inventory.gone = gone_tracks(roots, states, seen)
    return inventory


def gone_tracks(roots: Sequence[Path], states: dict[str, FileState], seen: set[str]) -> dict[str, int]:
    """Indexed tracks under ``roots`` that were not found this time: {stored path: track id}."""
    files, folders = set(), []
    for root in roots:
        text = index_key(os.path.abspath(root))
        if os.path.isfile(root):
            files.add(text)  # only that file: not "song.flac.d/x.flac" beside it
        else:
            folders.append(text.rstrip(os.sep) + os.sep)
    return {p: s.track_id for p, s in states.items()
            if p not in seen and (p in files or any(p.startswith(pre) for pre in folders))}


def find_moves(inventory: Inventory, states: dict[str, FileState], index: Index, *, jobs: int,
               backend: str, scheduler: str | None) -> list[Move]:
    """Files new to the index whose audio fingerprint matches a gone track, in discovery order.

    Fingerprints the new files of ``inventory.to_analyse`` in workers; each gone track
    matches at most one file. Changes nothing: the caller moves the tracks, then drops the
    moved files from ``to_analyse`` and the tracks from ``gone`` (:func:`without_moves`).
    """
    gone_ids = set(inventory.gone.values())
    new = [(p, st) for p, st in inventory.to_analyse if index_key(p) not in states]
    fingerprints = {p: fp for p, fp in map_unordered(
        fingerprint_file, [p for p, _ in new], jobs=jobs, backend=backend, scheduler=scheduler)
        if isinstance(fp, str)}
    candidates = index.missing_candidates(fingerprints.values())
    moves = []
    for path, st in new:
        rows = [r for r in candidates.get(fingerprints.get(path, ""), []) if r.id in gone_ids]
        if rows:
            row = closest_track(rows, path, st.st_size)
            candidates[row.fingerprint or ""].remove(row)
            moves.append(Move(path, st, row))
    return moves


def closest_track(rows: Sequence[TrackRow], path: str, size: int) -> TrackRow:
    """Of gone tracks with the audio of the file at ``path``, the one it most likely is.

    The same audio can be in the library more than once (two copies of a file, a WAV beside
    its FLAC), each copy with its own track and journal. A moved file keeps its size, then its
    extension; among equals, the oldest track.
    """
    ext = os.path.splitext(path)[1].lower()
    return min(rows, key=lambda r: (r.size != size, os.path.splitext(r.path)[1].lower() != ext, r.id))


def without_moves(inventory: Inventory, moves: Sequence[Move]) -> None:
    """Drop the moved files from ``to_analyse`` and their tracks from ``gone``."""
    moved = {m.path for m in moves}
    for m in moves:
        inventory.gone.pop(m.row.path, None)
    inventory.to_analyse = [(p, st) for p, st in inventory.to_analyse if p not in moved]
