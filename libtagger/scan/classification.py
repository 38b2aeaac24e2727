"""Classifying tracks in the scan's main process: batches of analysed tracks, or stored rows.

An analysed batch arrives with its MSD_musicnn taggrams, computed in the workers where the
audio was decoded (:mod:`libtagger.audio.analysis`); it goes through the classifier in one
call over every segment of every track, and each track's segment probabilities are then
voted into one verdict. A track
classified by another model can be classified again from the features and taggrams the
index stored for its segments, without decoding the file.

What the model needs is asked of its kind (:func:`libtagger.classify.classifier.kind_class`)
from meta.json, so planning the run (taggrams or not) never loads TensorFlow; the head is
loaded in a background thread once the workers are busy (:meth:`TrackClassifier.load_in_background`),
or on the first batch.

Every track is also put to the music detector (:mod:`libtagger.classify.openset`) unless
the scan turned that check off: speech, noise, tones and music unlike the ten genres get a
rejection reason instead of a genre. The detector reads taggrams, so with it on they are
computed and stored whatever the genre model reads.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from libtagger.classify.classifier import Classifier, kind_class, label_spellings
from libtagger.classify.openset import DetectorParams, OpenSetVerdict, openset_verdict, pulse_could_matter
from libtagger.classify.vote import Vote, vote
from libtagger.genres import GENRES, display_name, parse_genre
from libtagger.audio.analysis import TrackAnalysis
from libtagger.store.index import now, pack_array, unpack_array
from libtagger.store.records import TrackChanges, TrackRow
from libtagger.tf_quiet import import_tensorflow_quietly

#: Tracks classified together in one call of the head.
BATCH_TRACKS = 16

#: A track as stored: its index row and its segment rows.
StoredTrack = tuple[TrackRow, list[dict[str, Any]]]


@dataclass
class Classified:
    """One track's verdict and what to save with it.

    ``values``: track columns known before the vote, by :class:`TrackRow` field name (size,
    mtime_ns, and for a freshly analysed file its fingerprint, format, duration...);
    ``segments``: the segment rows, each with its own genre, confidence and probabilities.
    """

    path: str
    values: TrackChanges
    segments: list[dict[str, Any]]
    verdict: Vote
    #: The music detector's verdict (None when the check is off); ``rejection.reason`` set: no genre.
    rejection: OpenSetVerdict | None = None


class TrackClassifier:
    """The run's model: its declared needs, loaded on first use, applied to batches of tracks.

    ``detector``: the music detector's parameters, or None to give every track a genre.
    """

    def __init__(self, model_name: str, meta: dict[str, Any], detector: DetectorParams | None = None) -> None:
        from libtagger.audio.musicnn import TAGS

        declared = kind_class(meta["kind"])
        self.model_name = model_name
        self.model_id: str = meta["model_id"]
        #: The model's label columns and the genre written for each (a learned model's own spelling).
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.spellings: tuple[str, ...] = label_spellings(meta)
        self.detector = detector
        self.detector_id: str | None = detector.model_id if detector is not None else None
        #: Whether the genre model itself reads taggrams.
        self.model_reads_taggrams: bool = declared.needs_taggrams
        #: Whether analysis must compute taggrams and the index keep each segment's taggram.
        self.needs_taggrams: bool = declared.needs_taggrams or detector is not None
        self.n_tags: int = declared.n_tags or (len(TAGS) if detector is not None else 0)
        self._classifier: Classifier | None = None
        self._loading = threading.Lock()
        self._loader: threading.Thread | None = None

    def classifier(self) -> Classifier:
        """The loaded model (imports TensorFlow on first call; waits for a background load)."""
        with self._loading:
            if self._classifier is None:
                from libtagger.classify.classifier import load_classifier

                import_tensorflow_quietly()
                self._classifier = load_classifier(self.model_name)
            return self._classifier

    def load_in_background(self) -> None:
        """Start importing TensorFlow and loading the model in a daemon thread, once.

        The scan calls it when its workers are already decoding, so start-up costs no wall
        time before the first file. A failure is not lost: :meth:`classifier` tries again
        on the first batch and raises it there.
        """
        if self._loader is not None or self._classifier is not None:
            return

        def load() -> None:
            try:
                self.classifier()
            except Exception:  # noqa: BLE001 - raised again, in the caller's thread, by classifier()
                pass

        self._loader = threading.Thread(target=load, name="libtagger-load-model", daemon=True)
        self._loader.start()

    @contextlib.contextmanager
    def loading(self) -> Iterator[None]:
        """Scope of a :meth:`load_in_background`: on leaving it, wait for the loading thread.

        A thread still importing TensorFlow when the interpreter exits (every file failed, or
        Ctrl-C) can crash the exit; waiting costs at most the rest of the import.
        """
        try:
            yield
        finally:
            if self._loader is not None:
                self._loader.join()

    # -- freshly analysed tracks ----------------------------------------------------------

    def analysed(self, batch: Sequence[TrackAnalysis]) -> list[Classified]:
        """Classify a batch of analysed tracks with one classifier call."""
        taggrams = [a.taggrams or [] for a in batch] if self.needs_taggrams else None
        per_track = self._probabilities([a.features for a in batch], taggrams)
        out = []
        for t, (analysis, probs) in enumerate(zip(batch, per_track)):
            segments = [{
                "idx": i, "start": start, "end": end, **segment_verdict(p, self.spellings),
                "features": pack_array(analysis.features[i], "float32"),
                "taggram": pack_array(taggrams[t][i] if taggrams is not None else None, "float16"),
                "pulse": float(analysis.pulse[i]) if analysis.pulse is not None else None,
            } for i, ((start, end), p) in enumerate(zip(analysis.windows, probs))]
            values = TrackRow.changes(
                size=analysis.size, mtime_ns=analysis.mtime_ns, fingerprint=analysis.fingerprint,
                format=analysis.format, duration=analysis.duration, samplerate=analysis.samplerate,
                channels=analysis.channels, analysed_at=now())
            out.append(Classified(analysis.path, values, segments, vote(probs, labels=self.labels),
                                  self._rejection(analysis.features, taggrams[t] if taggrams else None,
                                                  analysis.pulse)))
        return out

    def spell(self, label: str) -> str:
        """The genre written for one of the model's labels (``hiphop`` -> ``Hip-Hop``; a learned model's own)."""
        return self.spellings[self.labels.index(label)]

    def label_of(self, written: str | None) -> str | None:
        """The model label a stored genre was written for, or None (inverse of :meth:`spell`)."""
        if written in self.spellings:
            return self.labels[self.spellings.index(written)]
        label = parse_genre(written)
        return label if label in self.labels else None

    # -- tracks classified by another model -----------------------------------------------

    def has_stored_inputs(self, segments: Sequence[dict[str, Any]]) -> bool:
        """Whether the stored segment rows hold everything this model and the music detector read
        (else: analyse again).

        Rows stored before the pulse was lack it. Only a track whose verdict the pulse could
        change needs it (:func:`~libtagger.classify.openset.pulse_could_matter`: the detector
        doubts it is music but does not refuse it), so only such a track is analysed again: an
        upgrade decodes the few doubtful tracks of a library, not all of it.
        """
        if not (segments and segments[0]["features"] is not None
                and (not self.needs_taggrams or segments[0]["taggram"] is not None)):
            return False
        if self.detector is None or stored_pulse(segments) is not None:
            return True
        features, taggrams = self._stored_inputs(segments)  # a detector makes the scan store taggrams
        return taggrams is None or not pulse_could_matter(features, taggrams, self.detector)

    def stored(self, tracks: Sequence[StoredTrack]) -> Iterator[Classified]:
        """Classify tracks from their stored rows, :data:`BATCH_TRACKS` per network call.

        Lazy: a chunk is classified when the previous one has been consumed, so the caller
        saves each track before the next call (a killed run keeps what was done).
        """
        for start in range(0, len(tracks), BATCH_TRACKS):
            chunk = tracks[start:start + BATCH_TRACKS]
            inputs = [self._stored_inputs(segs) for _, segs in chunk]
            features = [f for f, _ in inputs]
            taggrams = [t for _, t in inputs] if self.needs_taggrams else None
            per_track = self._probabilities(features, taggrams)
            for t, ((row, segs), probs) in enumerate(zip(chunk, per_track)):
                segments = [{k: v for k, v in s.items() if k != "track_id"} | segment_verdict(p, self.spellings)
                            for s, p in zip(segs, probs)]
                yield Classified(row.real_path, TrackRow.changes(size=row.size, mtime_ns=row.mtime_ns),
                                 segments, vote(probs, labels=self.labels),
                                 self._rejection(features[t], taggrams[t] if taggrams is not None else None,
                                                 stored_pulse(segs)))

    def _stored_inputs(self, segments: Sequence[dict[str, Any]]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """A track's stored features (n_segments, 57) and taggrams (n_patches_i, 50) per segment,
        or None when this run reads no taggrams."""
        # The width of a stored feature row is what analysis computes (imported here: librosa).
        from libtagger.audio.features import FEATURE_NAMES

        features = np.vstack([unpack_array(s["features"], "float32", len(FEATURE_NAMES)) for s in segments])
        taggrams = ([unpack_array(s["taggram"], "float16", self.n_tags).astype(np.float32) for s in segments]
                    if self.needs_taggrams else None)
        return features, taggrams

    # -- both -----------------------------------------------------------------------------

    def _probabilities(self, features: list[np.ndarray],
                       taggrams: list[list[np.ndarray]] | None) -> list[np.ndarray]:
        """Segment probabilities per track from one batched network call over all tracks.

        ``features``: per track (n_segments_i, 57); ``taggrams``: per track, per segment
        (n_patches, 50), or None. Returns per track (n_segments_i, 10).
        """
        counts = [f.shape[0] for f in features]
        flat = ([t for track in taggrams for t in track]
                if taggrams is not None and self.model_reads_taggrams else None)
        probs = self.classifier().predict(np.vstack(features), flat)
        return np.split(probs, np.cumsum(counts)[:-1])


    def _rejection(self, features: np.ndarray, taggrams: list[np.ndarray] | None,
                   pulse: Sequence[float] | None) -> OpenSetVerdict | None:
        """The music detector's verdict on one track: features (n_segments, 57), one taggram and
        one pulse clarity per segment (None: not measured)."""
        if self.detector is None or taggrams is None:
            return None
        return openset_verdict(features, taggrams, self.detector, pulse)


def stored_pulse(segments: Sequence[dict[str, Any]]) -> list[float] | None:
    """The segments' stored pulse clarity, or None when a segment was stored without it (an
    index an older libtagger filled: the detector then skips its pulse rule)."""
    values = [s.get("pulse") for s in segments]
    return None if any(v is None for v in values) else [float(v) for v in values]


def segment_verdict(probs: np.ndarray,
                    spellings: Sequence[str] = tuple(display_name(g) for g in GENRES)) -> dict[str, Any]:
    """A segment row's verdict columns from its probabilities (k,): genre (as ``spellings`` writes the
    label columns), confidence, probabilities."""
    best = int(np.argmax(probs))
    return {"genre": spellings[best], "confidence": float(probs[best]),
            "probabilities": json.dumps([round(float(x), 6) for x in probs])}
