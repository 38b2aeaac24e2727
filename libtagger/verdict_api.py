"""The verdict API for programs that write the genre themselves, e.g. the beets plugin.

:func:`classify_paths` is a dry-run scan of exactly the files given: new or changed files
are analysed, classified and put to the music detector; an unchanged file's verdict is
read back from the index without decoding it again. Every verdict is recorded in the
index as a dry run records it, and no audio file is written; the caller gets each file's
:class:`~libtagger.store.records.TrackRow` (every column, a new one included). The caller decides what to
do with each verdict (beets sets its own genre field and writes the file with its own
tag code); after such a write, :func:`note_rewritten` tells the index that the audio is
still the one analysed, so the next call reuses the verdict instead of decoding again.

Nothing here imports beets: the plugin depends on libtagger, never the other way round.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from libtagger.scan.classification import TrackClassifier
from libtagger.scan.library_context import DEFAULT_CONTEXT, pool_as_album
from libtagger.scan.pipeline import ScanOptions, Scanner, run_classifier
from libtagger.scan.policy import DEFAULT_MIN_CONFIDENCE
from libtagger.store.index import Index, path_key
from libtagger.store.records import TrackRow
from libtagger.store.run_context import locked_index

__all__ = ["classify_paths", "note_rewritten"]


#: Loaded classifiers kept between calls, keyed by (model name, model id, detector id): an
#: import calls once per album, and loading the network each time would cost seconds per album.
_CLASSIFIERS: dict[tuple[str, str, str | None], TrackClassifier] = {}


def classify_paths(paths: Iterable[str | bytes | os.PathLike], *, index_path: str | os.PathLike,
                   model: str | None = None, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                   music_check: bool = True, jobs: int = 0, wait: bool = False,
                   context: str = DEFAULT_CONTEXT, album: str | None = None) -> dict[str, TrackRow]:
    """Classify ``paths`` without writing any of them; ``{path as given, decoded: its row}``.

    Each file's :class:`~libtagger.store.records.TrackRow` as the index holds it after the
    dry run. Its ``status``: ``would-tag``, ``kept`` (the file holds a genre a person set),
    ``unsure`` (``confidence`` below the threshold), ``rejected`` (not music the ten genres
    describe: ``reason`` says why, ``genre`` is None) or ``error`` (``error`` says why; ``genre``
    may still be set when only the writing is impossible, e.g. a format with no genre tag).
    ``genre`` is a display name (``"Hip-Hop"``). A path that does not exist, or is no audio
    file, gets a row (not stored) with status ``error``.

    ``context``: as ``scan --context``; the files given are pooled with the other indexed tracks
    of their album (else artist), so an album classified in one call is judged as an album.
    ``album``: the files given ARE one album, named so (a beets import task matched to one
    release, whose files' own tags may still be a ripper's): each verdict is pooled with the
    others given instead (:func:`~libtagger.scan.library_context.pool_as_album`), unless
    ``context`` is ``none``. The index keeps these verdicts too.

    Holds the index's run lock (raises :class:`~libtagger.errors.IndexLockedError` when a
    scan has it, unless ``wait``). The run is recorded in the index as a dry-run scan of
    those files.

    Examples
    --------
    >>> verdicts = classify_paths(["/music/a.flac"], index_path="index.db")  # doctest: +SKIP
    >>> verdicts["/music/a.flac"].genre, verdicts["/music/a.flac"].confidence  # doctest: +SKIP
    ('Jazz', 0.87)
    """
    wanted = {os.fsdecode(p): os.path.abspath(os.fsdecode(p)) for p in paths}
    verdicts: dict[str, TrackRow] = {}
    present = {given: absolute for given, absolute in wanted.items() if os.path.exists(absolute)}
    for given in wanted.keys() - present.keys():
        verdicts[given] = _no_row(wanted[given], "file not found")
    if not present:
        return verdicts
    options = ScanOptions(roots=[Path(p) for p in sorted(set(present.values()))],
                          index_path=Path(index_path), model=model, dry_run=True,
                          min_confidence=min_confidence, jobs=jobs, wait=wait,
                          # the caller named these files: a hidden one is still wanted
                          include_hidden=True, music_check=music_check, context=context)
    classifier = _cached(run_classifier(options))
    with locked_index(options.index_path, wait=wait) as index:
        Scanner(index, options, classifier=classifier).run()
        for given, absolute in present.items():
            row = index.track_by_path(absolute)
            verdicts[given] = row if row is not None else _no_row(absolute, "not a supported audio file")
        if album is not None and context != "none":
            _pool_as_album(index, verdicts, album, classifier, min_confidence)
    return verdicts


def _pool_as_album(index: Index, verdicts: dict[str, TrackRow], album: str, classifier: TrackClassifier,
                   min_confidence: float) -> None:
    """Replace the verdicts of ``verdicts`` (in place, and in the index) by their pooled-as-one-album ones.

    ``would-tag`` and ``unsure`` follow the pooled confidence; ``kept`` (a person's genre) stays.
    """
    by_id = {row.id: given for given, row in verdicts.items() if row.id is not None}
    rows = [verdicts[given] for given in by_id.values()]
    for pooled in pool_as_album(rows, key=album, labels=classifier.labels, spellings=classifier.spellings,
                                label_of=classifier.label_of):
        changes = {**pooled.verdict.columns(), **pooled.context.columns()}
        if pooled.row.status in ("would-tag", "unsure"):
            changes["status"] = "would-tag" if (pooled.verdict.confidence or 0.0) >= min_confidence else "unsure"
        index.update_track(pooled.row.id, changes)
        verdicts[by_id[pooled.row.id]] = pooled.row.with_changes(changes)


def _no_row(absolute: str, error: str) -> TrackRow:
    """The verdict on a file the index has no row for: an ``error`` with its reason."""
    return TrackRow(path=path_key(absolute)[0], status="error", error=error)


def _cached(fresh: TrackClassifier) -> TrackClassifier:
    """The classifier kept for ``fresh``'s model and detector, else ``fresh`` (kept from now on).

    ``fresh`` has loaded nothing yet (its model loads on first use), so handing back the kept
    one means the network is loaded once per process, not once per call.
    """
    key = (fresh.model_name, fresh.model_id, fresh.detector_id)
    return _CLASSIFIERS.setdefault(key, fresh)


def note_rewritten(index_path: str | os.PathLike, old_path: str | bytes | os.PathLike,
                   new_path: str | bytes | os.PathLike | None = None, *, genre: str | None = None,
                   second_genre: str | None = None) -> bool:
    """Tell the index that another program rewrote the tags of an analysed file (and maybe moved it).

    The audio is the one analysed, so the track keeps its verdict under the file's new
    size and modification time (and at ``new_path`` when the file was copied or moved
    there), and the next :func:`classify_paths` or scan reuses it. Returns False when the
    index has no track at ``old_path``, the file is gone, or another track already sits at
    ``new_path`` (nothing changed then).

    ``genre``: the genre the caller wrote from libtagger's verdict. The file carries no
    libtagger marker then, so it is recorded as libtagger's written genre: the library
    context never takes it for a genre a person set. ``second_genre``: the second value written
    beside it (a close runner-up), recorded the same way; with ``genre`` and no second value,
    the file holds one value and any second one recorded earlier is forgotten.
    """
    target = new_path if new_path is not None else old_path
    try:
        st = os.stat(target)
    except OSError:
        return False
    # No run lock: this is one row's update, not a run (SQLite serialises it), and an import
    # judging its next album in another thread holds the lock meanwhile.
    index = Index(index_path)
    try:
        row = index.track_by_path(os.path.abspath(os.fsdecode(old_path)))
        if row is None:
            return False
        absolute = os.path.abspath(os.fsdecode(target))
        if genre is not None:
            index.update_track(row.id, TrackRow.changes(written_genre=genre, second_genre=second_genre))
        if path_key(absolute)[0] == row.path:
            index.update_track(row.id, TrackRow.changes(size=st.st_size, mtime_ns=st.st_mtime_ns))
        elif index.track_by_path(absolute) is None:
            index.move_track(row.id, absolute, size=st.st_size, mtime_ns=st.st_mtime_ns)
        else:
            return False
        return True
    finally:
        index.close()

