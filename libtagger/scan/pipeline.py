"""``scan``: the whole path from a folder to tagged files and an up-to-date index.

1. find the audio files under the roots (:mod:`libtagger.scan.discover`);
2. split them into unchanged (same size and mtime as indexed), moved (same
   audio fingerprint as a track whose file is gone) and to-analyse;
3. analyse in joblib workers (:mod:`libtagger.scan.analysis`, through
   :mod:`libtagger.scan.parallel`), with a tqdm bar;
4. classify in the main process, batched over tracks, and vote;
5. apply the write policy (:mod:`libtagger.scan.policy`), journal the old tags,
   write the new one (:mod:`libtagger.tags.storage`), and save the track in one
   transaction (:mod:`libtagger.store.index`).

Each file is committed as soon as it is done, so a killed run loses at most
the files in flight, and the next run skips everything already finished.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from libtagger.tags import storage as tags
from libtagger.scan.analysis import AnalysisFailure, AnalysisJob, TrackAnalysis, analyze_file, fingerprint_file
from libtagger.errors import FileError, ModelError
from libtagger.genres import GENRES, display_name, parse_genre
from libtagger.scan.journaled_write import NotWritten, WriteGenre, journaled_write
from libtagger.store.index import FileState, Index, now, pack_array, real_path, unpack_array
from libtagger.store.lock import RunLock
from libtagger.scan.parallel import WorkerCrash, map_unordered
from libtagger.scan.policy import DEFAULT_MIN_CONFIDENCE, Decision, decide
from libtagger.audio.segments import DEFAULT_MAX_SEGMENTS
from libtagger.tf_quiet import import_tensorflow_quietly
from libtagger.classify.vote import vote

#: Tracks classified together in one TensorFlow call.
BATCH_TRACKS = 16
N_TAGS = 50


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


@dataclass
class FileReport:
    """One line of a scan report."""

    path: str
    status: str
    genre: str | None = None
    confidence: float | None = None
    runner_up: str | None = None
    runner_up_confidence: float | None = None
    previous_genre: str | None = None
    error: str | None = None
    segments: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScanSummary:
    run_id: int
    counts: dict[str, int]
    reports: list[FileReport] = field(default_factory=list)


def model_meta(name: str) -> dict[str, Any]:
    """The checked ``meta.json`` of model ``name``, the first one on the models search path
    (user folder, ``$LIBTAGGER_MODELS``, shipped), read without importing TensorFlow."""
    from libtagger.classify.classifier import locate_model, read_meta

    return read_meta(locate_model(name).folder)


def default_model_name() -> str:
    from libtagger.classify.classifier import DEFAULT_MODEL

    return DEFAULT_MODEL


class Scanner:
    """One scan run over an open index. Use :func:`scan` unless you need the pieces."""

    def __init__(self, index: Index, options: ScanOptions,
                 on_report: Callable[[FileReport], None] | None = None) -> None:
        self.index = index
        self.options = options
        self.on_report = on_report
        self.model_name = options.model or default_model_name()
        self.meta = model_meta(self.model_name)
        self.model_id: str = self.meta["model_id"]
        self.needs_taggrams = self.meta.get("kind") != "seed"
        self._classifier: Any = None
        self.counts: dict[str, int] = {}
        self.reports: list[FileReport] = []
        self.run_id = 0
        self._cleaned_dirs: set[str] = set()

    # -- driver ---------------------------------------------------------------------------

    def run(self) -> ScanSummary:
        opts = self.options
        self.run_id = self.index.start_run(
            kind="scan", model_id=self.model_id, dry_run=opts.dry_run,
            arguments={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()
                       if k != "roots"} | {"roots": [os.fsdecode(r) for r in opts.roots]})
        outcome = "interrupted"
        try:
            self._run()
            outcome = "finished"
        finally:
            self.index.finish_run(self.run_id, outcome=outcome, counts=self.counts)
        return ScanSummary(self.run_id, self.counts, self.reports)

    def _run(self) -> None:
        from libtagger.scan.discover import iter_audio_files

        opts = self.options
        seen: set[str] = set()

        def on_error(path: os.PathLike, why: str) -> None:
            path_str = os.fspath(path)
            if self._file_error(path_str, why):
                seen.add(self._key(path_str))  # still there: not a missing file

        found = list(iter_audio_files(opts.roots, include_hidden=opts.include_hidden, on_error=on_error))
        states = self.index.file_states()
        to_analyse: list[tuple[str, os.stat_result]] = []
        redecide: list[int] = []
        reclassify: list[int] = []
        for path in found:
            path_str = os.fspath(path)
            key = self._key(path_str)
            seen.add(key)
            try:
                st = os.stat(path_str)
            except OSError as exc:
                if not self._file_error(path_str, f"cannot stat: {exc.strerror}"):
                    seen.discard(key)  # vanished since it was found: a missing file
                continue
            state = states.get(key)
            unchanged = (state is not None and (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns)
                         and state.status != "error")
            if not unchanged or opts.rescan:
                to_analyse.append((path_str, st))
            elif state.model_id != self.model_id:
                reclassify.append(state.track_id)
            elif self._verdict_may_change(state.status, state.confidence):
                redecide.append(state.track_id)
            else:
                self._report_stored(self.index.track(state.track_id), "unchanged")
        gone = self._gone_tracks(states, seen)
        if gone and to_analyse:
            to_analyse = self._detect_moves(to_analyse, gone, states)
        self.index.mark_missing(gone.values())
        for track_id in redecide:
            self._redecide(self.index.track(track_id))
        self._reclassify_stored(reclassify, to_analyse)
        self._analyse(to_analyse)

    def _verdict_may_change(self, status: str, confidence: float | None) -> bool:
        """Whether this run's options could write a stored verdict the last run did not.

        Everything else unchanged is skipped without opening the file, so a nightly
        run over a library of person-set genres ("kept") stays a no-op.
        """
        opts = self.options
        if status == "would-tag":
            return True  # a dry run's verdict, waiting for a real run
        if status == "unsure":
            return confidence is not None and confidence >= opts.min_confidence
        if status in ("kept", "undone"):
            return opts.overwrite
        return False

    # -- discovery helpers ----------------------------------------------------------------

    @staticmethod
    def _key(path: str) -> str:
        from libtagger.store.index import path_key

        return path_key(path)[0]

    def _gone_tracks(self, states: dict[str, FileState], seen: set[str]) -> dict[str, int]:
        """Indexed tracks under the scanned roots that were not found this time: {path: id}."""
        prefixes = []
        for root in self.options.roots:
            text = self._key(os.path.abspath(root))
            prefixes.append(text if os.path.isfile(root) else text.rstrip(os.sep) + os.sep)
        return {p: s.track_id for p, s in states.items()
                if p not in seen and any(p == pre or p.startswith(pre) for pre in prefixes)}

    def _detect_moves(self, to_analyse: list[tuple[str, os.stat_result]], gone: dict[str, int],
                      states: dict[str, FileState]) -> list[tuple[str, os.stat_result]]:
        """Files new to the index whose audio matches a gone track are moves, not new tracks.

        ``gone`` loses the tracks found again; ``states`` is the run's :meth:`Index.file_states`.
        """
        gone_ids = set(gone.values())
        new = [(p, st) for p, st in to_analyse if self._key(p) not in states]
        fingerprints = {p: fp for p, fp in map_unordered(
            fingerprint_file, [p for p, _ in new], jobs=self.options.jobs,
            backend=self.options.backend, scheduler=self.options.scheduler) if isinstance(fp, str)}
        candidates = self.index.missing_candidates(fingerprints.values())
        moved: set[str] = set()
        for path, st in new:
            row = candidates.pop(fingerprints.get(path, ""), None)
            if row is None or row["id"] not in gone_ids:
                continue
            self.index.move_track(row["id"], path, size=st.st_size, mtime_ns=st.st_mtime_ns)
            gone.pop(row["path"], None)
            moved.add(path)
            self._count("moved")
            if row["model_id"] != self.model_id:
                self._reclassify_stored([row["id"]], [])
            else:
                self._redecide(self.index.track(row["id"]))
        return [(p, st) for p, st in to_analyse if p not in moved]

    # -- analysis -------------------------------------------------------------------------

    def _analyse(self, to_analyse: list[tuple[str, os.stat_result]]) -> None:
        if not to_analyse:
            return
        from tqdm import tqdm

        opts = self.options
        jobs = [AnalysisJob(p, max_segments=opts.max_segments, want_patches=self.needs_taggrams)
                for p, _ in to_analyse]
        batch: list[TrackAnalysis] = []
        bar = tqdm(total=len(jobs), unit="file", desc="analysing", disable=not opts.progress,
                   file=sys.stderr, dynamic_ncols=True)
        with bar:
            for job, result in map_unordered(analyze_file, jobs, jobs=opts.jobs,
                                             backend=opts.backend, scheduler=opts.scheduler):
                bar.update(1)
                if isinstance(result, WorkerCrash):
                    self._save_failure(AnalysisFailure(job.path, result.reason))
                elif isinstance(result, AnalysisFailure):
                    self._save_failure(result)
                else:
                    batch.append(result)
                    if len(batch) >= BATCH_TRACKS:
                        self._classify_and_apply(batch)
                        batch = []
            if batch:
                self._classify_and_apply(batch)

    def classifier(self) -> Any:
        if self._classifier is None:
            from libtagger.classify.classifier import load_classifier

            import_tensorflow_quietly()
            self._classifier = load_classifier(self.model_name)
        return self._classifier

    def _probabilities(self, features: list[np.ndarray],
                       taggrams: list[list[np.ndarray]] | None) -> list[np.ndarray]:
        """Segment probabilities per track from one batched network call over all tracks."""
        counts = [f.shape[0] for f in features]
        flat = [t for track in taggrams for t in track] if taggrams is not None else None
        probs = self.classifier().predict(np.vstack(features), flat)
        return np.split(probs, np.cumsum(counts)[:-1])

    def _taggrams(self, batch: list[TrackAnalysis]) -> list[list[np.ndarray]] | None:
        """Run the musicnn front-end over every patch of the batch at once; per track, per segment."""
        if not self.needs_taggrams:
            return None
        import_tensorflow_quietly()
        from libtagger.audio.musicnn import taggrams

        flat = [p for a in batch for p in (a.patches or [])]
        rows = np.split(taggrams(np.concatenate(flat)), np.cumsum([p.shape[0] for p in flat])[:-1])
        per_track, start = [], 0
        for a in batch:
            per_track.append(rows[start:start + len(a.windows)])
            start += len(a.windows)
        return per_track

    def _classify_and_apply(self, batch: list[TrackAnalysis]) -> None:
        taggrams = self._taggrams(batch)
        per_track = self._probabilities([a.features for a in batch], taggrams)
        for t, (analysis, probs) in enumerate(zip(batch, per_track)):
            segments = [{
                "idx": i, "start": start, "end": end, **_segment_verdict(p),
                "features": pack_array(analysis.features[i], "float32"),
                "taggram": pack_array(taggrams[t][i] if taggrams is not None else None, "float16"),
            } for i, ((start, end), p) in enumerate(zip(analysis.windows, probs))]
            values = {
                "size": analysis.size, "mtime_ns": analysis.mtime_ns,
                "fingerprint": analysis.fingerprint, "format": analysis.format,
                "duration": analysis.duration, "samplerate": analysis.samplerate,
                "channels": analysis.channels, "analysed_at": now(),
            }
            self._apply(analysis.path, values, probs, segments)

    def _reclassify_stored(self, track_ids: list[int], to_analyse: list[tuple[str, os.stat_result]]) -> None:
        """Classify tracks again with the current model from the features stored in the index."""
        ready: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        for track_id in track_ids:
            row = self.index.track(track_id)
            segs = self.index.segments(track_id)
            if not segs or segs[0]["features"] is None or (self.needs_taggrams and segs[0]["taggram"] is None):
                path = real_path(row)
                try:
                    to_analyse.append((path, os.stat(path)))
                except OSError as exc:
                    self._report_error(path, f"cannot stat: {exc.strerror}")
                continue
            ready.append((row, segs))
        for start in range(0, len(ready), BATCH_TRACKS):
            chunk = ready[start:start + BATCH_TRACKS]
            features = [np.vstack([unpack_array(s["features"], "float32", 57) for s in segs])
                        for _, segs in chunk]
            taggrams = ([[unpack_array(s["taggram"], "float16", N_TAGS).astype(np.float32) for s in segs]
                         for _, segs in chunk] if self.needs_taggrams else None)
            for (row, segs), probs in zip(chunk, self._probabilities(features, taggrams)):
                segments = [{k: v for k, v in s.items() if k != "track_id"} | _segment_verdict(p)
                            for s, p in zip(segs, probs)]
                self._apply(real_path(row), {"size": row["size"], "mtime_ns": row["mtime_ns"]},
                            probs, segments)

    # -- decisions and writes -------------------------------------------------------------

    def _apply(self, path: str, values: dict[str, Any], probs: np.ndarray,
               segments: list[dict[str, Any]]) -> None:
        """Vote, decide, journal, write and save one track."""
        verdict = vote(probs)
        values = {**values, "genre": display_name(verdict.genre), "confidence": verdict.confidence,
                  "runner_up": display_name(verdict.runner_up),
                  "runner_up_confidence": verdict.runner_up_confidence,
                  "model_id": self.model_id, "run_id": self.run_id, "error": None}
        self._decide_and_write(path, verdict.genre, values, segments)

    def _redecide(self, row: dict[str, Any]) -> None:
        """Apply the policy again to a stored verdict (a dry run's, or after --overwrite)."""
        label = parse_genre(row["genre"])
        if label is None:
            self._report_stored(row, "unchanged")
            return
        values = {k: row[k] for k in ("genre", "confidence", "runner_up", "runner_up_confidence",
                                      "size", "mtime_ns")} | {"run_id": self.run_id}
        self._decide_and_write(real_path(row), label, values, None)

    def _decide_and_write(self, path: str, label: str, values: dict[str, Any],
                          segments: list[dict[str, Any]] | None) -> None:
        opts = self.options
        if not _taggable(path):
            # Analysed and indexed, but nothing can ever be written: say so whatever the verdict.
            reason = f"{Path(path).suffix or 'extension-less'} files cannot hold a genre tag"
            self._save(path, {**values, "status": "error", "error": reason}, segments)
            return
        try:
            current = tags.read_genres(path)
            ours = bool(current) and tags.written_by_libtagger(path)
        except FileError as exc:
            self._save(path, {**values, "status": "error", "error": exc.reason}, segments)
            return
        values["previous_genre"] = "; ".join(current) or None
        decision = decide(genre_label=label, confidence=values["confidence"], current=current,
                          ours=ours, min_confidence=opts.min_confidence, overwrite=opts.overwrite,
                          dry_run=opts.dry_run)
        existing = self.index.track_by_path(path)
        if existing is not None and existing["status"] == "undone" and not opts.overwrite:
            # The user undid libtagger's tag on this file: keep their choice, and keep the
            # mark even when this verdict would not write (unsure, kept), or a later run would.
            decision = Decision("undone", False)
        if not decision.write:
            self._save(path, {**values, "status": decision.status,
                              "written": int(ours and current == [values["genre"]])}, segments)
            return
        changed = _changed_since(path, values)
        if changed:
            # the verdict is about audio that is gone: not kept as this file's genre
            self._save(path, {**values, "status": "error", "error": changed, "genre": None,
                              "confidence": None, "runner_up": None, "runner_up_confidence": None},
                       segments)
            return
        track_id = self._save(path, {**values, "status": "would-tag"}, segments, report=False)
        self._remove_stale_temporaries(path)
        outcome = journaled_write(self.index, run_id=self.run_id, track_id=track_id, path=path,
                                  action=WriteGenre(values["genre"]), preserve_mtime=opts.preserve_mtime)
        if isinstance(outcome, NotWritten):
            self._save(path, {**values, "status": "error", "error": outcome.reason}, None,
                       n_segments=len(segments or []))
            return
        self._save(path, {**values, "status": "tagged", "written": 1, "written_genre": values["genre"],
                          "size": outcome.size, "mtime_ns": outcome.mtime_ns}, None,
                   n_segments=len(segments or []))

    def _remove_stale_temporaries(self, path: str) -> None:
        folder = os.path.dirname(path) or "."
        if folder not in self._cleaned_dirs:
            self._cleaned_dirs.add(folder)
            try:
                tags.remove_stale_temporaries(folder)
            except OSError:
                pass

    # -- saving and reporting -------------------------------------------------------------

    def _save(self, path: str, values: dict[str, Any], segments: list[dict[str, Any]] | None,
              report: bool = True, n_segments: int = 0) -> int:
        """Save the track (``segments`` None: keep the stored ones, ``n_segments`` of them)."""
        track_id = self.index.save_track(path, values, segments)
        if report:
            self._emit(FileReport(
                path=self._key(path), status=values["status"], genre=values.get("genre"),
                confidence=values.get("confidence"), runner_up=values.get("runner_up"),
                runner_up_confidence=values.get("runner_up_confidence"),
                previous_genre=values.get("previous_genre"), error=values.get("error"),
                segments=len(segments) if segments else n_segments))
        return track_id

    def _save_failure(self, failure: AnalysisFailure) -> None:
        values: dict[str, Any] = {"status": "error", "error": failure.reason, "run_id": self.run_id,
                                  "genre": None, "confidence": None, "runner_up": None,
                                  "runner_up_confidence": None}
        if failure.size is not None:
            values |= {"size": failure.size, "mtime_ns": failure.mtime_ns}
        self._save(failure.path, values, [])

    def _report_stored(self, row: dict[str, Any], status: str) -> None:
        self._emit(FileReport(path=row["path"], status=status, genre=row["genre"],
                              confidence=row["confidence"], runner_up=row["runner_up"],
                              runner_up_confidence=row["runner_up_confidence"],
                              previous_genre=row["previous_genre"], error=row["error"]))

    def _report_error(self, path: str, reason: str) -> None:
        self._emit(FileReport(path=self._key(path), status="error", error=reason))

    def _file_error(self, path: str, reason: str) -> bool:
        """Report a problem met before analysis; an audio file that is there (a broken or
        looping link, an unreadable entry) also gets an error row. True when it got one."""
        from libtagger.scan.discover import is_supported

        if not (is_supported(path) and os.path.lexists(path)):
            self._report_error(path, reason)
            return False
        self._save(path, {"status": "error", "error": reason, "run_id": self.run_id}, None)
        return True

    def _emit(self, report: FileReport) -> None:
        self._count(report.status)
        self.reports.append(report)
        if self.on_report is not None:
            self.on_report(report)

    def _count(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1


def _segment_verdict(probs: np.ndarray) -> dict[str, Any]:
    best = int(np.argmax(probs))
    return {"genre": display_name(GENRES[best]), "confidence": float(probs[best]),
            "probabilities": json.dumps([round(float(x), 6) for x in probs])}


def _changed_since(path: str, values: dict[str, Any]) -> str | None:
    """Why the file is no longer the one the verdict is about, or None.

    Analysis happens in workers, a batch of tracks before the writes: a file replaced in
    between (a re-rip, a sync tool) must not get the old audio's genre. Worse, the write
    would record the new file's size and time as analysed, and no later run would look
    at its audio again.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "file vanished after it was analysed"
    except OSError:
        return None  # the write reports it, with its reason
    if (st.st_size, st.st_mtime_ns) != (values.get("size"), values.get("mtime_ns")):
        return "file changed after it was analysed; not tagged (the next run analyses it again)"
    return None


def _taggable(path: str) -> bool:
    return Path(path).suffix.lower() in tags.TAGGABLE_EXTENSIONS


def scan(options: ScanOptions, *, on_report: Callable[[FileReport], None] | None = None) -> ScanSummary:
    """Scan ``options.roots``: analyse, tag and index every supported file.

    Holds the index's run lock for the whole run (:class:`~libtagger.store.lock.RunLock`);
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
    with RunLock(options.index_path, wait=options.wait):
        index = Index(options.index_path)
        try:
            index.mark_abandoned_runs()
            return Scanner(index, options, on_report).run()
        finally:
            index.close()
