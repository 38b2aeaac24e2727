"""``scan``: the whole path from a folder to tagged files and an up-to-date index.

1. find the audio files under the roots and compare them with the index: unchanged,
   changed, moved (same audio fingerprint as a track whose file is gone), missing
   (:mod:`libtagger.scan.inventory`);
2. analyse in joblib workers (:mod:`libtagger.audio.analysis`, through
   :mod:`libtagger.parallel`), with a progress bar on a terminal
   (:mod:`libtagger.scan.progress`: it counts files as their analysis finishes);
3. classify in the main process, batched over tracks, and vote
   (:mod:`libtagger.scan.classification`);
4. apply the write policy (:mod:`libtagger.scan.policy`), write the new genre through
   :mod:`libtagger.scan.journaled_write` (old tags journaled first), and save the track
   in one transaction (:mod:`libtagger.store.index`). A track with an album or artist is
   saved ``pending`` instead, with its own verdict;
5. the library context (:mod:`libtagger.scan.library_context`): once every file is analysed,
   the run's tracks and the other tracks of their albums and artists are pooled from the
   stored rows, and each changed or pending verdict goes through step 4.

This module drives the run: options, workers and progress, policy, writes, reports and
the summary. Each file is committed as soon as it is done, so a killed run loses at most
the files in flight, and the next run skips everything already finished.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from libtagger.tags import storage as tags
from libtagger.audio.analysis import AnalysisFailure, AnalysisJob, TrackAnalysis, analyze_file, content_check
from libtagger.classify.openset import DetectorParams
from libtagger.scan.classification import BATCH_TRACKS, Classified, TrackClassifier
from libtagger.scan.inventory import Move, find_moves, take_inventory, without_moves
from libtagger.scan.outcomes import FileReport, RunRecorder, ScanSummary, library_columns
from libtagger.errors import FileError
from libtagger.scan.journaled_write import NotWritten, WriteGenre, journaled_write
from libtagger.store.index import Index
from libtagger.store.records import TrackChanges, TrackRow, Verdict, no_verdict
from libtagger.scan import library_context
from libtagger.scan.library_context import DEFAULT_CONTEXT, Pooled
from libtagger.classify.vote import vote
from libtagger.store.run_context import locked_index
from libtagger.parallel import WorkerCrash, map_unordered
from libtagger.scan.progress import FilesBar
from libtagger.scan.policy import DEFAULT_MIN_CONFIDENCE, Decision, decide, genres_to_write
from libtagger.audio.segments import DEFAULT_MAX_SEGMENTS

__all__ = ["BATCH_TRACKS", "FileReport", "ScanOptions", "ScanSummary", "Scanner", "run_classifier", "scan"]


@dataclass
class ScanOptions:
    """Everything ``libtagger scan`` can be told. See ``libtagger scan --help``."""

    roots: list[Path]
    index_path: Path
    model: str | None = None
    dry_run: bool = False
    overwrite: bool = False
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    max_segments: int = DEFAULT_MAX_SEGMENTS
    jobs: int = 0
    backend: str = "loky"
    scheduler: str | None = None
    rescan: bool = False
    include_hidden: bool = False
    preserve_mtime: bool = False
    wait: bool = False
    progress: bool = False
    #: Put every track to the music detector first: speech, noise, tones and music unlike
    #: the ten genres are ``rejected`` with a reason and get no genre.
    music_check: bool = True
    #: Pool each verdict with the other tracks of its ``album`` (else its artist), its ``artist``,
    #: or ``none`` (:mod:`libtagger.scan.library_context`).
    context: str = DEFAULT_CONTEXT
    #: A track without an album tag takes its folder as its album (see libtagger.classify.groups).
    folder_as_album: bool = False
    #: Write the runner-up as a second genre value when it is close (policy.genres_to_write).
    second_genre: bool = False


def model_meta(name: str) -> dict[str, Any]:
    """The checked ``meta.json`` of model ``name``, the first one on the models search path
    (user folder, ``$LIBTAGGER_MODELS``, shipped), read without importing TensorFlow."""
    from libtagger.classify.classifier import locate_model, read_meta

    return read_meta(locate_model(name).folder)


def default_model_name() -> str:
    from libtagger.classify.classifier import DEFAULT_MODEL

    return DEFAULT_MODEL


def run_classifier(options: ScanOptions) -> TrackClassifier:
    """The classifier a scan with ``options`` uses: its model (not loaded yet) and music detector.

    ModelError when the model or the detector cannot be read.
    """
    model_name = options.model or default_model_name()
    return TrackClassifier(model_name, model_meta(model_name), _detector(options.music_check))


class Scanner:
    """One scan run over an open index. Use :func:`scan` unless you need the pieces.

    ``classifier``: the run's :func:`run_classifier` for ``options``, when the caller keeps one
    between runs (the verdict API: its model is loaded once per process); built here otherwise.
    """

    def __init__(self, index: Index, options: ScanOptions,
                 on_report: Callable[[FileReport], None] | None = None, *,
                 classifier: TrackClassifier | None = None) -> None:
        self.index = index
        self.options = options
        self.on_report = on_report
        self.classifier = classifier if classifier is not None else run_classifier(options)
        self.model_name = self.classifier.model_name
        self.model_id: str = self.classifier.model_id
        self.run_id = 0
        self.record = RunRecorder(index, self.run_id, on_report)  # run() starts a fresh one
        self._cleaned_dirs: set[str] = set()
        #: Files whose stored verdict was about other bytes (see _changed_since): analysed again.
        self._stale: list[tuple[str, os.stat_result]] = []
        #: Tracks analysed this run that wait for the context stage under their ``undone`` mark
        #: (``pending`` ones are found by their status).
        self._awaiting: set[int] = set()

    # -- driver ---------------------------------------------------------------------------

    def run(self) -> ScanSummary:
        opts = self.options
        self.run_id = self.index.start_run(
            kind="scan", model_id=self.model_id, dry_run=opts.dry_run,
            arguments={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()
                       if k != "roots"} | {"roots": [os.fsdecode(r) for r in opts.roots]})
        self.record = RunRecorder(self.index, self.run_id, self.on_report)
        outcome = "interrupted"
        try:
            self._run()
            outcome = "finished"
        finally:
            self.index.finish_run(self.run_id, outcome=outcome, counts=self.record.counts)
        return self.record.summary()

    def _run(self) -> None:
        opts = self.options
        states = self.index.file_states()
        todo = take_inventory(
            opts.roots, states, model_id=self.model_id, detector_id=self.classifier.detector_id,
            rescan=opts.rescan,
            min_confidence=opts.min_confidence, overwrite=opts.overwrite,
            include_hidden=opts.include_hidden, file_error=self.record.file_error,
            unchanged=lambda track_id: self.record.report_stored(self.index.track(track_id), "unchanged"))
        if todo.gone and todo.to_analyse:
            moves = find_moves(todo, states, self.index, jobs=opts.jobs, backend=opts.backend,
                               scheduler=opts.scheduler)
            for move in moves:
                self._move(move)
            without_moves(todo, moves)
        self.index.mark_missing(todo.gone.values())
        for track_id in todo.redecide:
            self._redecide(self.index.track(track_id))
        self._reclassify_stored(todo.reclassify, todo.to_analyse)
        self._analyse(todo.to_analyse + self._stale)
        self._read_tags_of_older_rows()
        previous = self.index.previous_scan_arguments(self.run_id)
        # A scan of an older libtagger judged every track alone: as --context none.
        switched = previous is not None and previous.get("context", "none") != opts.context
        # A run that saved no track (nothing new, changed or re-decided) has no group to re-vote.
        if switched or (opts.context != "none" and self.index.run_saved_tracks(self.run_id)):
            self._vote_in_context(everything=switched)

    def _vote_in_context(self, *, everything: bool = False) -> None:
        """Pool the run's tracks (and their groups') verdicts from the stored rows, then decide them.

        ``everything``: this run's ``--context`` differs from the last scan's, so every indexed
        track of the model is pooled (or, with ``none``, goes back to its own verdict) and the
        changed ones decided. A stored verdict whose file changed since its analysis is analysed
        again once (:meth:`_analyse_again`) and the groups pooled again; a file that changes once
        more meanwhile gets an error row instead of a verdict about other audio.
        """
        self._fill_own_verdicts()
        for attempt in range(2):
            self._stale = []
            for pooled in self._pooled_to_decide(everything):
                self._decide_pooled(pooled, may_analyse_again=attempt == 0)
            if not self._stale:
                return
            self._analyse(self._stale)

    def _fill_own_verdicts(self) -> None:
        """Give rows of an older libtagger their own-verdict columns from their stored segment
        probabilities (their verdict was that vote), once, so they lend their album a voice."""
        labels, spellings = self.classifier.labels, self.classifier.spellings
        for track_id in self.index.tracks_without_own_verdict(self.model_id):
            probs = [json.loads(s["probabilities"]) for s in self.index.segments(track_id) if s["probabilities"]]
            if probs and all(len(p) == len(labels) for p in probs):
                own = library_context.own_context(vote(np.array(probs), labels=labels), spellings, labels)
                self.index.update_track(track_id, own.columns())

    def _pooled_to_decide(self, everything: bool) -> list[Pooled]:
        opts = self.options
        if everything:
            rows = self.index.voting_rows(self.model_id)
        else:  # only the groups this run touched: a new album costs its own tracks, not the library
            members = library_context.touched_members(self.index.voting_group_fields(self.model_id), self.run_id,
                                                      folder_as_album=opts.folder_as_album)
            rows = self.index.voting_rows(self.model_id, ids=members)
        pooled = library_context.pool(
            rows, level=opts.context, labels=self.classifier.labels, spellings=self.classifier.spellings,
            label_of=self.classifier.label_of, folder_as_album=opts.folder_as_album)
        chosen = library_context.to_decide(pooled, self.run_id, folder_as_album=opts.folder_as_album,
                                           everything=everything)
        decided = {p.row.id for p in chosen}
        return chosen + [p for p in pooled if p.row.id in self._awaiting and p.row.id not in decided]

    def _decide_pooled(self, pooled: Pooled, *, may_analyse_again: bool) -> None:
        """Decide (and write) one pooled verdict, as for a stored verdict; counts ``re-voted``
        when the genre of a track decided in an earlier run changes."""
        row = pooled.row
        if row.status in _SETTLED and row.genre == pooled.verdict.genre and row.id not in self._awaiting:
            # Same genre, other confidence or group size: the decision stands; only the row learns.
            self.index.update_track(row.id, {**pooled.verdict.columns(), **pooled.context.columns()})
            return
        if row.status != "pending" and row.genre != pooled.verdict.genre:
            self.record.count("re-voted")
        values = {**pooled.verdict.columns(), **pooled.context.columns(), **TrackRow.changes(
            size=row.size, mtime_ns=row.mtime_ns, content_check=row.content_check, run_id=self.run_id)}
        self._decide_and_write(row.real_path, pooled.label, values, None, stored=may_analyse_again,
                               n_segments=len(self.index.segments(row.id)))

    def _move(self, move: Move) -> None:
        """Point a gone track at the file it moved to, then bring its verdict up to date."""
        row = move.row
        self.index.move_track(row.id, move.path, size=move.stat.st_size, mtime_ns=move.stat.st_mtime_ns)
        # Its audio fingerprint just matched, so the verdict is about this file: its bytes (new
        # tags, maybe) are what a write from the stored verdict is checked against.
        self.index.update_track(row.id, TrackRow.changes(content_check=_content_check_or_none(move.path)))
        self.record.count("moved")
        if row.model_id != self.model_id or row.detector_id != self.classifier.detector_id:
            self._reclassify_stored([row.id], [])
        else:
            self._redecide(self.index.track(row.id))

    def _read_tags_of_older_rows(self) -> None:
        """Index the person genres, artist, album and compilation flag of unchanged files read before.

        A track is re-read whenever it is analysed or decided again; only rows an older
        libtagger made (``tags_read_at`` or ``compilation`` empty: a row read before the flag
        was, is read once more) and whose file is still the one analysed are read here, once,
        without decoding.
        """
        for row in self.index.tracks_without_tags_read():
            path = row.real_path
            try:
                st = os.stat(path)
                if (st.st_size, st.st_mtime_ns) != (row.size, row.mtime_ns):
                    continue  # changed: the next run analyses it and reads its tags then
                fields = tags.read_library_fields(path)
            except (OSError, FileError):
                continue
            self.index.update_track(row.id, library_columns(fields))

    # -- analysis and classification ------------------------------------------------------

    def _analyse(self, to_analyse: list[tuple[str, os.stat_result]]) -> None:
        if not to_analyse:
            return
        opts = self.options
        jobs = [AnalysisJob(p, max_segments=opts.max_segments, want_taggrams=self.classifier.needs_taggrams)
                for p, _ in to_analyse]
        batch: list[TrackAnalysis] = []
        # Messages printed meanwhile (cli's on_report) go through progress.write_line.
        with FilesBar(len(jobs), shown=opts.progress) as bar, self.classifier.loading():
            for job, result in map_unordered(analyze_file, jobs, jobs=opts.jobs,
                                             backend=opts.backend, scheduler=opts.scheduler,
                                             on_done=bar.analysed):
                # The workers are decoding: TensorFlow and the head load meanwhile.
                self.classifier.load_in_background()
                bar.received()
                if isinstance(result, WorkerCrash):
                    self.record.save_failure(AnalysisFailure(job.path, result.reason))
                elif isinstance(result, AnalysisFailure):
                    self.record.save_failure(result)
                else:
                    batch.append(result)
                    if len(batch) >= BATCH_TRACKS:
                        self._classify_and_apply(batch)
                        batch = []
            if batch:
                self._classify_and_apply(batch)

    def _classify_and_apply(self, batch: list[TrackAnalysis]) -> None:
        checks = {analysis.path: analysis.content_check for analysis in batch}
        for track in self.classifier.analysed(batch):
            track.values.update(TrackRow.changes(content_check=checks[track.path]))
            self._apply(track)

    def _reclassify_stored(self, track_ids: list[int], to_analyse: list[tuple[str, os.stat_result]]) -> None:
        """Classify tracks again with the current model from the rows stored in the index.

        A track whose rows lack what the model reads is appended to ``to_analyse`` instead.
        """
        ready = []
        for track_id in track_ids:
            row = self.index.track(track_id)
            segs = self.index.segments(track_id)
            if not self.classifier.has_stored_inputs(segs):
                path = row.real_path
                try:
                    to_analyse.append((path, os.stat(path)))
                except OSError as exc:
                    self.record.report_error(path, f"cannot stat: {exc.strerror}")
                continue
            ready.append((row, segs))
        checks = {row.real_path: row.content_check for row, _ in ready}
        for track in self.classifier.stored(ready):
            track.values.update(TrackRow.changes(content_check=checks[track.path]))
            self._apply(track, stored=True)

    # -- decisions and writes -------------------------------------------------------------

    def _apply(self, track: Classified, stored: bool = False) -> None:
        """Decide, journal, write and save one classified track (``stored``: from the index's rows)."""
        verdict = track.verdict
        spelt = Verdict(self.classifier.spell(verdict.genre), verdict.confidence,
                        self.classifier.spell(verdict.runner_up), verdict.runner_up_confidence)
        values = {**track.values, **spelt.columns(), **TrackRow.changes(
            model_id=self.model_id, detector_id=self.classifier.detector_id, run_id=self.run_id,
            error=None, reason=None)}
        if track.rejection is not None and track.rejection.reason is not None:
            # Not music the ten genres describe: no genre is kept or written, whatever the
            # head would have said (its per-segment guesses stay in the segment rows).
            try:
                values |= library_columns(tags.read_library_fields(track.path))
            except FileError:
                pass  # a tag block mutagen cannot parse: the rejection stands, no fields
            self.record.save(track.path, {**values, **TrackRow.changes(
                status="rejected", reason=track.rejection.reason), **no_verdict()}, track.segments)
            return
        values |= library_context.own_context(verdict, self.classifier.spellings, self.classifier.labels).columns()
        state: tags.TagState | None = None
        if self.options.context != "none":
            # The fields that say which album and artist it belongs to. A track with a group is
            # decided at the end of the run, which reads its tags again (its genre as it is
            # then); one without is decided now, from this read. A read that fails is made again
            # by the decision, which reports why.
            try:
                state = tags.read_tag_state(track.path)
                values |= library_columns(state.fields)
            except FileError:
                pass
            if self._in_a_group(values, track.path):
                # Its group decides with it once the run has analysed every file (_vote_in_context).
                # A file whose genre the user gave back with undo keeps that mark in the index
                # meanwhile (a killed run must not lose it); the pass decides it all the same.
                existing = self.index.track_by_path(track.path)
                undone = existing is not None and existing.status == "undone" and not self.options.overwrite
                track_id = self.record.save(track.path, {**values, **TrackRow.changes(
                    status="undone" if undone else "pending")}, track.segments, report=False)
                if undone:
                    self._awaiting.add(track_id)
                return
        # No group (or --context none): decided now, so a long run writes as it goes.
        self._decide_and_write(track.path, verdict.genre, values, track.segments, stored=stored, state=state)

    def _in_a_group(self, values: TrackChanges, path: str) -> bool:
        """Whether a track with these library columns has an album or artist to pool with."""
        keys = library_context.keys_of(TrackRow(path=path).with_changes(
            {k: values.get(k) for k in ("artist", "albumartist", "album", "compilation")}),
            folder_as_album=self.options.folder_as_album)
        return keys.album is not None or keys.artist is not None

    def _redecide(self, row: TrackRow) -> None:
        """Apply the policy again to a stored verdict (a dry run's, or after --overwrite)."""
        if row.status == "pending" and self.options.context != "none":
            # An interrupted run's track waiting for its group: this run's context stage decides it.
            self.index.update_track(row.id, TrackRow.changes(run_id=self.run_id))
            return
        label = self.classifier.label_of(row.genre)
        if label is None:
            self.record.report_stored(row, "unchanged")
            return
        values = {**row.verdict.columns(), **TrackRow.changes(
            size=row.size, mtime_ns=row.mtime_ns, content_check=row.content_check, run_id=self.run_id)}
        self._decide_and_write(row.real_path, label, values, None, stored=True)

    def _decide_and_write(self, path: str, label: str, values: TrackChanges,
                          segments: list[dict[str, Any]] | None, stored: bool = False, n_segments: int = 0,
                          state: tags.TagState | None = None) -> None:
        """Apply the policy to one verdict and write it; ``stored``: a verdict from the index.

        ``segments`` None keeps the stored segment rows (``n_segments`` of them, for the report).
        ``state``: the file's tags read just before (:meth:`_apply`), else they are read here.
        """
        n_segments = len(segments) if segments is not None else n_segments
        opts = self.options
        if not tags.can_hold_genre(path):
            # Analysed and indexed, but nothing can ever be written: say so whatever the verdict.
            reason = tags.cannot_hold(Path(path)).reason
            self.record.save(path, {**values, **library_columns(tags.LibraryFields()),
                                    **TrackRow.changes(status="error", error=reason)}, segments,
                             n_segments=n_segments)
            return
        try:
            # One read gives the decision its current genre and the index the file's own fields
            # (as they are before any write of this run: a person's genre libtagger replaces
            # with --overwrite stays in person_genres).
            state = state if state is not None else tags.read_tag_state(path)
        except FileError as exc:
            self.record.save(path, {**values, **TrackRow.changes(status="error", error=exc.reason)}, segments,
                             n_segments=n_segments)
            return
        current, ours = state.genres, state.ours
        values |= library_columns(state.fields) | TrackRow.changes(previous_genre="; ".join(current) or None)
        wanted, tested = genres_to_write(values["genre"], values["confidence"], values.get("runner_up"),
                                         values.get("runner_up_confidence"), second_genre=opts.second_genre,
                                         min_confidence=opts.min_confidence)
        values |= TrackRow.changes(second_genre=wanted[1] if len(wanted) > 1 else None)
        decision = decide(genre_label=label, written=wanted, confidence=tested, current=current,
                          ours=ours, min_confidence=opts.min_confidence, overwrite=opts.overwrite,
                          dry_run=opts.dry_run)
        existing = self.index.track_by_path(path)
        if existing is not None and existing.status == "undone" and not opts.overwrite:
            # The user undid libtagger's tag on this file: keep their choice, and keep the
            # mark even when this verdict would not write (unsure, kept), or a later run would.
            decision = Decision("undone", False)
        if not decision.write:
            self.record.save(path, {**values, **TrackRow.changes(
                status=decision.status, written=int(ours and current == list(wanted)))}, segments,
                n_segments=n_segments)
            return
        changed = _changed_since(path, values)
        if changed and stored and self._analyse_again(path):
            return  # the stored verdict is about other bytes: this run analyses the file itself
        if changed:
            # the verdict is about audio that is gone: not kept as this file's genre
            self.record.save(path, {**values, **TrackRow.changes(status="error", error=changed), **no_verdict()},
                             segments, n_segments=n_segments)
            return
        track_id = self.record.save(path, {**values, **TrackRow.changes(status="would-tag")}, segments,
                                    report=False)
        self._remove_stale_temporaries(path)
        outcome = journaled_write(self.index, run_id=self.run_id, track_id=track_id, path=path,
                                  action=WriteGenre(wanted), preserve_mtime=opts.preserve_mtime)
        if isinstance(outcome, NotWritten):
            self.record.save(path, {**values, **TrackRow.changes(status="error", error=outcome.reason)}, None,
                             n_segments=n_segments)
            return
        self.record.save(path, {**values, **TrackRow.changes(
            status="tagged", written=1, written_genre=values["genre"], size=outcome.size,
            mtime_ns=outcome.mtime_ns,
            # the write changed the bytes: a later write from this verdict checks these
            content_check=_content_check_or_none(path))}, None, n_segments=n_segments)

    def _analyse_again(self, path: str) -> bool:
        """Queue ``path`` for this run's analysis; False when it cannot be stat'ed (gone)."""
        try:
            self._stale.append((path, os.stat(path)))
        except OSError:
            return False
        return True

    def _remove_stale_temporaries(self, path: str) -> None:
        folder = os.path.dirname(path) or "."
        if folder not in self._cleaned_dirs:
            self._cleaned_dirs.add(folder)
            try:
                tags.remove_stale_temporaries(folder)
            except OSError:
                pass


#: Stored statuses a pooled verdict of the same genre leaves as they are (``unsure`` may now pass
#: the threshold, ``pending`` waits for its decision: both are decided again).
_SETTLED = frozenset({"tagged", "would-tag", "kept", "undone"})


def _detector(music_check: bool) -> DetectorParams | None:
    """The shipped music detector when the check is on (ModelError when it cannot be read)."""
    if not music_check:
        return None
    from libtagger.classify.openset import load_detector

    return load_detector()


def _changed_since(path: str, values: TrackChanges) -> str | None:
    """Why the file is no longer the one the verdict is about, or None.

    Analysis happens in workers, a batch of tracks before the writes, and a stored verdict
    (a dry run's, a re-vote) may be days old: a file replaced in between (a re-rip, a sync
    tool) must not get the old audio's genre. Worse, the write would record the new file's
    size and time as analysed, and no later run would look at its audio again. Besides size
    and mtime, the file's :func:`~libtagger.audio.analysis.content_check` must be the one
    ``values`` holds.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "file vanished after it was analysed"
    except OSError:
        return None  # the write reports it, with its reason
    if (st.st_size, st.st_mtime_ns) != (values.get("size"), values.get("mtime_ns")):
        return "file changed after it was analysed; not tagged (the next run analyses it again)"
    # Same size and time prove little (a sync tool or `cp -p` can put other audio of the same
    # length there): the bytes must still be the ones analysed. NULL (a row of an older
    # libtagger) cannot be checked, so it counts as changed: the file is analysed again.
    now = _content_check_or_none(path)
    if now is not None and now != values.get("content_check"):
        return ("file content changed since it was analysed (same size and modification time);"
                " not tagged (the next run analyses it again)")
    return None


def _content_check_or_none(path: str) -> str | None:
    """:func:`~libtagger.audio.analysis.content_check` of ``path``, None when it cannot be read
    (the write that follows reports why)."""
    try:
        return content_check(path)
    except OSError:
        return None


def scan(options: ScanOptions, *, on_report: Callable[[FileReport], None] | None = None) -> ScanSummary:
    """Scan ``options.roots``: analyse, tag and index every supported file.

    Holds the index's run lock for the whole run (:func:`~libtagger.store.run_context.locked_index`);
    raises :class:`~libtagger.errors.IndexLockedError` when another run has it.

    Examples
    --------
    >>> summary = scan(ScanOptions(roots=[Path("~/Music").expanduser()],
    ...                            index_path=Path("index.db"), dry_run=True))  # doctest: +SKIP
    >>> summary.counts  # doctest: +SKIP
    {'would-tag': 118, 'unsure': 4}
    """
    for root in options.roots:
        if not os.path.exists(root):
            raise FileNotFoundError(f"{os.fsdecode(root)}: no such file or folder")
    # The index keys tracks by path: relative roots would give paths that mean another file
    # from another working folder (cron runs in $HOME), and never match the missing-file check.
    # abspath, not resolve: a root reached through a symbolic link keeps the name the user gave.
    options = replace(options, roots=[Path(os.path.abspath(root)) for root in options.roots])
    with locked_index(options.index_path, wait=options.wait) as index:
        return Scanner(index, options, on_report).run()
