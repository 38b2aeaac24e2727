"""``libtagger learn``: train a head on the genres the library's owner set, and tag the rest in their words.

Data: every indexed track whose file holds genres a person set (never libtagger's own), with
the features and MSD_musicnn taggrams the scan stored per segment
(:meth:`libtagger.store.index.Index.learning_rows`): nothing is decoded again.

Labels (:mod:`libtagger.training.labels`): spelling normalised, merged by an optional
mapping file, the first value of a multi-valued genre (or the track skipped), labels with
fewer than ``min_tracks`` tracks or a single artist left out and listed.

Validation: ``StratifiedGroupKFold`` grouped by album artist, else artist, else folder, so no
artist is on both sides. Each fold fits the recipe on the other folds and scores its tracks
once; the temperature that scores a fold is fitted on the other folds' out-of-fold
probabilities. The same folds score the linear branch alone (the baseline) and, on the
labels it shares, the shipped model. The model that is written is then fit on every track.

Recipe (:data:`LEARN_RECIPE`): the shipped head's network and 50/50 linear branch, one
member instead of three, an epoch count that keeps about :data:`SAMPLES` training samples per
fit whatever the library's size (2..40 epochs), larger batches and 3 folds for large
libraries, so 10,000 tracks take minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from libtagger.classify.head import FRONTEND, KIND, apply_temperature, predict_members
from libtagger.errors import LibtaggerError, ModelError
from libtagger.genres import GENRES
from libtagger.training.evaluate import expected_calibration_error, PlotUnavailable, plot_confusion, score_predictions
from libtagger.training.head_training import (ClipSet, HeadConfig, ensemble_model, fit_linear, fit_members,
                                              linear_inputs)
from libtagger.training.labels import label_key, mapping_targets, read_mapping, spellings, track_label

#: Training samples (segments) one fit sees in all, over its epochs: the shipped recipe sees 443 clips x
#: 40 epochs = 17,720 per member; a large library gets fewer passes over more data, so the time of a
#: fit stops growing with the library (10,000 tracks x 3 segments: 2 epochs).
SAMPLES = 40_000
MIN_EPOCHS, MAX_EPOCHS = 2, 40
#: Above this many tracks the grouped CV uses at most :data:`LARGE_FOLDS` folds (each still holds
#: thousands of tracks), which keeps a 10,000-track library to minutes on 2 cores.
LARGE_LIBRARY, LARGE_FOLDS = 4000, 3
#: Fewest groups (artists) a label needs: with one, grouped validation can never score it.
MIN_GROUPS_PER_LABEL = 2
CARD_FILE, CONFUSION_FILE, OOF_FILE = "card.md", "confusion.png", "cv_oof.json"


class LearnRefused(LibtaggerError):
    """Too little to learn from; the message says what is missing. Nothing was written."""


@dataclass
class LearnOptions:
    """What ``libtagger learn`` takes besides the model name (defaults = the CLI's)."""

    min_tracks: int = 20
    mapping: Path | None = None
    multi: str = "first"  # "first" value of a multi-valued genre, or "skip" such tracks
    folds: int = 5
    members: int = 1
    seed: int = 0
    feature_transform: str = "level-invariant-53"
    config: HeadConfig = field(default_factory=lambda: HeadConfig(skip_pool=False))
    linear_C: float = 0.03
    linear_weight: float = 0.5
    threads: int = 2


@dataclass
class LearnTrack:
    """One track to learn from: its person-set genre values, group and stored inputs."""

    track_id: int
    path: str
    genres: list[str]
    artist: str | None
    albumartist: str | None
    features: np.ndarray  # (n_segments, 57) raw
    taggrams: list[np.ndarray]  # per segment (n_patches, 50)
    album: str | None = None

    @property
    def group(self) -> str:
        """Album artist, else artist, else the folder: what validation keeps on one side."""
        for prefix, value in (("albumartist", self.albumartist), ("artist", self.artist)):
            if value and value.strip():
                return f"{prefix}:{value.strip().casefold()}"
        return f"folder:{os.path.dirname(self.path)}"


@dataclass
class LearnPlan:
    """The labels and tracks a learn run uses, and what it left out (all before any training)."""

    labels: list[str]  # label keys, sorted
    spellings: dict[str, str]  # label -> written genre
    tracks: list[LearnTrack]
    y: np.ndarray  # (n,) index into labels
    groups: list[str]  # (n,) group of each track
    left_out: dict[str, str]  # written genre -> why it was left out
    skipped: dict[str, int]  # reason -> tracks not used


def tracks_from_index(index: Any) -> list[LearnTrack]:
    """The index's learning rows (person-set genres, features, taggrams) as :class:`LearnTrack`."""
    out = []
    for row in index.learning_rows():
        if row.taggrams is None:
            continue  # scanned with a model that reads no taggrams and the music check off
        out.append(LearnTrack(row.track_id, row.path, list(row.person_genres), row.artist, row.albumartist,
                              np.asarray(row.features, dtype=np.float64), list(row.taggrams), row.album))
    return out


def make_plan(tracks: Sequence[LearnTrack], options: LearnOptions) -> LearnPlan:
    """Labels, groups and exclusions; LearnRefused (saying what is missing) when too little is left."""
    mapping = read_mapping(options.mapping) if options.mapping else {}
    labelled = [(t, track_label(t.genres, mapping, multi=options.multi)) for t in tracks]
    skipped = Counter("several genres (--multi-valued skip)" if options.multi == "skip" and len(t.genres) > 1
                      else "genre left out by the mapping" for t, lab in labelled if lab is None)
    counts = Counter(lab for _, lab in labelled if lab is not None)
    artists = {lab: len({t.group for t, l2 in labelled if l2 == lab}) for lab in counts}
    fallback = mapping_targets(options.mapping) if options.mapping else {}
    spelled = spellings([t.genres for t, _ in labelled], counts, mapping, fallback)
    left_out = {}
    for lab, n in sorted(counts.items()):
        if n < options.min_tracks:
            left_out[spelled[lab]] = f"{n} tracks (fewer than --min-tracks {options.min_tracks})"
        elif artists[lab] < MIN_GROUPS_PER_LABEL:
            left_out[spelled[lab]] = f"{n} tracks but 1 artist (grouped validation needs {MIN_GROUPS_PER_LABEL})"
    labels = sorted(lab for lab in counts if spelled[lab] not in left_out)
    kept = [(t, lab) for t, lab in labelled if lab in labels]
    for t, lab in labelled:
        if lab is not None and lab not in labels:
            skipped["genre left out (too few tracks or artists)"] += 1
    n_groups = len({t.group for t, _ in kept})
    problems = []
    if len(tracks) == 0:
        problems.append("the index has no analysed track with a genre a person set (scan the library first)")
    if len(labels) < 2:
        seen = ", ".join(f"{spelled[lab]} {counts[lab]} tracks/{artists[lab]} artists"
                         for lab in sorted(counts, key=lambda k: -counts[k])) or "none"
        problems.append(f"{len(labels)} genre(s) with at least {options.min_tracks} tracks (--min-tracks) and "
                        f"{MIN_GROUPS_PER_LABEL} artists, 2 needed (seen: {seen})")
    if kept and n_groups < max(3, min(options.folds, 3)):
        problems.append(f"{n_groups} artist group(s) among the usable tracks; grouped validation needs at least 3")
    if problems:
        raise LearnRefused("too little to learn from: " + "; ".join(problems) + ". Nothing was written.")
    y = np.array([labels.index(lab) for _, lab in kept], dtype=np.int64)
    return LearnPlan(labels, {lab: spelled[lab] for lab in labels}, [t for t, _ in kept], y,
                     [t.group for t, _ in kept], left_out, dict(skipped))


# ----------------------------------------------------------------------------- data


def segment_clips(tracks: Sequence[LearnTrack], y: np.ndarray,
                  feature_names: Sequence[str]) -> tuple[ClipSet, np.ndarray]:
    """Every segment as one training clip with its track's label; also (n_segments,) track index."""
    keys, seqs, feats, ys, owner = [], [], [], [], []
    for i, t in enumerate(tracks):
        for j, tg in enumerate(t.taggrams):
            keys.append(f"{t.track_id}:{j}")
            seqs.append(np.asarray(tg, dtype=np.float32))
            feats.append(t.features[j])
            ys.append(y[i])
            owner.append(i)
    return (ClipSet(keys, seqs, np.vstack(feats), np.array(ys, dtype=np.int64), list(feature_names)),
            np.array(owner, dtype=np.int64))


def track_mean(probs: np.ndarray, owner: np.ndarray, n_tracks: int) -> np.ndarray:
    """Average segment rows (n_segments, k) into track rows (n_tracks, k): the scan's soft vote."""
    out = np.zeros((n_tracks, probs.shape[1]))
    np.add.at(out, owner, probs)
    return out / np.bincount(owner, minlength=n_tracks)[:, None]


def epochs_for(n_segments: int) -> int:
    """About :data:`SAMPLES` training samples per fit, clamped to [MIN_EPOCHS, MAX_EPOCHS] epochs.

    >>> epochs_for(443), epochs_for(3000), epochs_for(27756)
    (40, 13, 2)
    """
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, round(SAMPLES / max(1, n_segments)))))


def folds_for(n_tracks: int, n_groups: int, wanted: int) -> int:
    """``wanted`` folds, at most one per group, at most :data:`LARGE_FOLDS` above :data:`LARGE_LIBRARY` tracks."""
    return int(min(wanted, n_groups, LARGE_FOLDS if n_tracks > LARGE_LIBRARY else wanted))


def batch_size_for(n_segments: int, base: int) -> int:
    """The recipe's batch for up to 2,000 segments, then 64, then 128 (fewer, larger steps)."""
    return base if n_segments <= 2000 else 64 if n_segments <= 8000 else 128


@dataclass
class FitResult:
    models: list[Any]
    scaler: Any
    linear: Any


def fit_recipe(data: ClipSet, n_classes: int, options: LearnOptions, cfg: HeadConfig, epochs: int) -> FitResult:
    """The network member(s) and the linear branch on ``data`` (segments)."""
    seeds = list(range(options.seed, options.seed + options.members))
    models, scaler = fit_members(data, cfg, seeds=seeds, epochs=epochs, feature_transform=options.feature_transform,
                                 n_classes=n_classes)
    linear = fit_linear(data, feature_transform=options.feature_transform, C=options.linear_C,
                        weight=options.linear_weight, n_classes=n_classes)
    return FitResult(models, scaler, linear)


def predict_parts(fit: FitResult, data: ClipSet, feature_transform: str) -> tuple[np.ndarray, np.ndarray]:
    """(network, linear) segment probabilities, each (n_segments, k), before averaging and temperature."""
    from libtagger.audio.level_invariant import transform_by_name

    F = transform_by_name(feature_transform)(data.features, data.feature_names)
    net = predict_members(fit.models, data.seqs, fit.scaler.transform(F))
    return net, fit.linear.predict_proba(linear_inputs(data, feature_transform))


# ----------------------------------------------------------------------------- validation


def grouped_cv(plan: LearnPlan, data: ClipSet, owner: np.ndarray, options: LearnOptions, cfg: HeadConfig,
               epochs: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Out-of-fold track probabilities of the recipe and of the linear branch alone, same folds."""
    from libtagger.training.head_cv import fit_temperature, grouped_folds

    n, k = len(plan.tracks), len(plan.labels)
    group_ids = np.unique(plan.groups, return_inverse=True)[1]
    # Stratified folds need every fold to be able to hold a track of the largest genre.
    n_folds = min(folds_for(n, len(set(plan.groups)), options.folds), int(np.bincount(plan.y).max()))
    folds = grouped_folds(plan.y, group_ids, n_folds, 1000 + options.seed)
    probs = {"recipe": np.zeros((n, k)), "lr_baseline": np.zeros((n, k))}
    fold_of = np.full(n, -1)
    t0 = time.time()
    for f, (tr, te) in enumerate(folds):
        seg_tr, seg_te = np.flatnonzero(np.isin(owner, tr)), np.flatnonzero(np.isin(owner, te))
        fit = fit_recipe(data.subset(seg_tr), k, options, cfg, epochs)
        net, lin = predict_parts(fit, data.subset(seg_te), options.feature_transform)
        w = options.linear_weight
        local = np.searchsorted(te, owner[seg_te])
        probs["recipe"][te] = track_mean((1 - w) * net + w * lin, local, len(te))
        probs["lr_baseline"][te] = track_mean(lin, local, len(te))
        fold_of[te] = f
        acc = float((probs["recipe"][te].argmax(1) == plan.y[te]).mean())
        log(f"fold {f + 1}/{n_folds}: {len(te)} tracks, {len(set(np.array(plan.groups)[te]))} groups, "
            f"accuracy {acc:.3f} ({time.time() - t0:.0f} s)")
    # each fold tempered with the T fitted on the other folds' out-of-fold tracks: no track sets its own T
    tempered = {}
    for name, p in probs.items():
        t = np.zeros_like(p)
        for f in range(n_folds):
            inside = fold_of == f
            t[inside] = apply_temperature(p[inside], fit_temperature(p[~inside], plan.y[~inside]))
        tempered[name] = t
    return {"folds": folds, "fold_of": fold_of, "probs": probs, "probs_T": tempered, "n_folds": n_folds,
            "T_all": fit_temperature(probs["recipe"], plan.y)}


def figures(probs: np.ndarray, y: np.ndarray, fold_of: np.ndarray, labels: Sequence[str],
            calibrated: np.ndarray | None = None) -> dict[str, Any]:
    """Accuracy (pooled and per fold), per-label accuracy, macro-F1, ECE and the confusion matrix."""
    from sklearn.metrics import f1_score

    pred = probs.argmax(1)
    scored = score_predictions(y, pred, labels)
    folds = sorted(set(fold_of.tolist()))
    fold_acc = [float((pred[fold_of == f] == y[fold_of == f]).mean()) for f in folds]
    out = {"track_accuracy": scored["track_accuracy"], "n_tracks": int(len(y)),
           "fold_accuracy": [round(a, 4) for a in fold_acc],
           "accuracy_sd": float(np.std(fold_acc, ddof=1)) if len(fold_acc) > 1 else 0.0,
           "macro_f1": float(f1_score(y, pred, average="macro", labels=list(range(len(labels))), zero_division=0)),
           "per_genre_accuracy": {lab: round(float((pred[y == j] == j).mean()), 4)
                                  for j, lab in enumerate(labels) if (y == j).any()},
           "ece_raw": expected_calibration_error(probs, y), "confusion": scored["confusion"]}
    if calibrated is not None:
        out["ece_after_T"] = expected_calibration_error(calibrated, y)
    return out


def shipped_on_shared(plan: LearnPlan, mapping: dict[str, str], shipped_probs: np.ndarray) -> dict[str, Any]:
    """Score the shipped model on the tracks of the labels its genres map to. ``shipped_probs``: (n_tracks, 10).

    A GTZAN genre maps to the label its name normalises and maps to (``metal`` -> ``rock`` after
    ``Metal = Rock``), else to the label of the tracks whose own value names it (``Heavy Metal`` is
    metal to :func:`libtagger.genres.parse_genre`), the most common such label.
    """
    from libtagger.genres import parse_genre

    named: dict[int, Counter[int]] = {}
    for t, y in zip(plan.tracks, plan.y):
        g = parse_genre(t.genres[0]) if t.genres else None
        if g is not None:
            named.setdefault(GENRES.index(g), Counter())[int(y)] += 1
    to_label = {}
    for j, g in enumerate(GENRES):
        key = mapping.get(label_key(g), label_key(g))
        if key in plan.labels:
            to_label[j] = plan.labels.index(key)
        elif j in named:
            to_label[j] = named[j].most_common(1)[0][0]
    shared = sorted(set(to_label.values()))
    rows = np.flatnonzero(np.isin(plan.y, shared))
    pred = np.array([to_label.get(int(j), -1) for j in shipped_probs[rows].argmax(1)], dtype=np.int64)
    y = plan.y[rows]
    return {"shared_labels": [plan.labels[i] for i in shared], "rows": rows, "to_label": to_label,
            "track_accuracy": float((pred == y).mean()) if len(rows) else None, "n_tracks": int(len(rows)),
            "per_genre_accuracy": {plan.labels[i]: round(float((pred[y == i] == i).mean()), 4)
                                   for i in shared if (y == i).any()},
            "gtzan_to_label": {GENRES[j]: plan.labels[i] for j, i in to_label.items()}}


def shipped_track_probs(tracks: Sequence[LearnTrack], model_name: str | None = None) -> tuple[np.ndarray, str]:
    """(n_tracks, 10) probabilities of the shipped default model (segments averaged), and its model_id."""
    from libtagger.classify.classifier import DEFAULT_MODEL, load_classifier

    clf = load_classifier(model_name or DEFAULT_MODEL)
    feats = np.vstack([t.features for t in tracks])
    seqs = [tg for t in tracks for tg in t.taggrams]
    owner = np.repeat(np.arange(len(tracks)), [len(t.taggrams) for t in tracks])
    return track_mean(clf.predict(feats, seqs), owner, len(tracks)), clf.model_id


# ----------------------------------------------------------------------------- the run


def learn(name: str, tracks: Sequence[LearnTrack], *, out_root: Path, options: LearnOptions | None = None,
          shipped: tuple[np.ndarray, str] | None = None, source: str = "index", replace: bool = False,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Plan, validate, fit and write ``out_root/name``; returns the written meta.json.

    ``shipped``: the shipped model's (n_tracks, 10) probabilities for ``tracks`` and its model_id
    (default: computed with the default model; a benchmark passes out-of-fold ones). Raises
    LearnRefused (too little data) or ModelError (bad name, folder exists) before writing anything.
    """
    from libtagger.training.tf_setup import configure_tensorflow

    options = options or LearnOptions()
    plan = checked_plan(name, tracks, out_root=out_root, options=options, replace=replace)
    data, owner, cfg, epochs = training_data(plan, options, log)
    configure_tensorflow(seed=options.seed, threads=options.threads)
    started = time.time()
    cv = grouped_cv(plan, data, owner, options, cfg, epochs, log)
    scored = cv_figures(plan, cv, tracks, options, shipped)
    cv_seconds = time.time() - started

    log(f"fitting the model on all {len(plan.tracks)} tracks ({epochs} epochs)")
    final = fit_recipe(data, len(plan.labels), options, cfg, epochs)
    meta = model_meta(plan, data, cv, scored, final, options=options, cfg=cfg, epochs=epochs, source=source,
                      cv_seconds=cv_seconds, started=started)
    return write_learned_model(name, out_root, final, meta, plan=plan, cv=cv, recipe_fig=scored.recipe,
                               started=started, log=log)


# ----------------------------------------------------------------------------- the steps of learn()


def checked_plan(name: str, tracks: Sequence[LearnTrack], *, out_root: Path, options: LearnOptions,
                 replace: bool) -> LearnPlan:
    """The validate step: ModelError for a bad or taken ``name``, LearnRefused for too little data, else the plan.

    Nothing is trained or written before both checks pass.
    """
    check_name(name, out_root, replace=replace)
    return make_plan(tracks, options)


def training_data(plan: LearnPlan, options: LearnOptions,
                  log: Callable[[str], None]) -> tuple[ClipSet, np.ndarray, HeadConfig, int]:
    """The plan's segments as training clips, their (n_segments,) track index, the network config and
    epoch count for this many segments; logs what is learned and what was left out."""
    from libtagger.audio.features import FEATURE_NAMES

    data, owner = segment_clips(plan.tracks, plan.y, FEATURE_NAMES)
    cfg = HeadConfig(**{**asdict(options.config), "batch_size": batch_size_for(len(data.y), options.config.batch_size)})
    epochs = epochs_for(len(data.y))
    log(f"learning {len(plan.labels)} genres from {len(plan.tracks)} tracks ({len(data.y)} segments, "
        f"{len(set(plan.groups))} artist groups): " + ", ".join(plan.spellings[lab] for lab in plan.labels))
    for genre, why in plan.left_out.items():
        log(f"left out {genre}: {why}")
    return data, owner, cfg, epochs


class CvFigures(NamedTuple):
    """The out-of-fold figures of a learn run, beside the shipped model's on the genres it shares."""

    recipe: dict[str, Any]  # figures() of the learned recipe
    lr_baseline: dict[str, Any]  # figures() of the linear branch alone, same folds
    comparison: dict[str, Any]  # meta.json's "shipped_on_shared_genres"
    gtzan_to_label: dict[int, int]  # GTZAN genre index -> label index, for the genres the shipped model shares


def cv_figures(plan: LearnPlan, cv: dict[str, Any], tracks: Sequence[LearnTrack], options: LearnOptions,
               shipped: tuple[np.ndarray, str] | None) -> CvFigures:
    """Score the grouped CV's out-of-fold probabilities, and the shipped model on the genres it shares.

    ``shipped``: as :func:`learn` takes it (rows for every one of ``tracks``), None to compute it.
    """
    mapping = read_mapping(options.mapping) if options.mapping else {}
    labels_spelled = [plan.spellings[lab] for lab in plan.labels]
    recipe_fig = figures(cv["probs"]["recipe"], plan.y, cv["fold_of"], labels_spelled, cv["probs_T"]["recipe"])
    lr_fig = figures(cv["probs"]["lr_baseline"], plan.y, cv["fold_of"], labels_spelled, cv["probs_T"]["lr_baseline"])
    if shipped is None:
        shipped = shipped_track_probs(plan.tracks)
    else:  # given for every input track: keep the planned ones
        position = {id(t): i for i, t in enumerate(tracks)}
        shipped = (np.asarray(shipped[0])[[position[id(t)] for t in plan.tracks]], shipped[1])
    comp = shipped_on_shared(plan, mapping, shipped[0])
    rows, comp_to_label = comp.pop("rows"), comp.pop("to_label")
    learned_shared = (plan.y[rows] == cv["probs"]["recipe"][rows].argmax(1))
    comparison = {"shipped_model_id": shipped[1], **comp,
                  "shared_labels": [plan.spellings[x] for x in comp["shared_labels"]],
                  "learned_track_accuracy": float(learned_shared.mean()) if len(rows) else None,
                  "learned_per_genre_accuracy": {lab: v for lab, v in recipe_fig["per_genre_accuracy"].items()
                                                 if lab in [plan.spellings[x] for x in comp["shared_labels"]]},
                  "per_genre_accuracy": {plan.spellings[k]: v for k, v in comp["per_genre_accuracy"].items()},
                  "gtzan_to_label": {g: plan.spellings[x] for g, x in comp["gtzan_to_label"].items()}}
    if len(rows):
        comparison["note"] = (f"the shipped model {shipped[1]} on the {len(rows)} tracks of the genres it shares, its "
                              f"ten genres mapped through the same labels; the learned head scores "
                              f"{comparison['learned_track_accuracy']:.3f} on the same tracks (out of fold)")
    recipe_fig["context"] = context_figures(cv["probs_T"]["recipe"], plan.y, plan.tracks)
    return CvFigures(recipe_fig, lr_fig, comparison, comp_to_label)


def context_figures(probs: np.ndarray, y: np.ndarray, tracks: Sequence[LearnTrack]) -> dict[str, Any]:
    """Out-of-fold accuracy and ECE with the scan's library context (album, else artist).

    ``probs`` (n, k): out-of-fold probabilities; the folds keep an album artist's tracks on one
    side, so a track's album and artist siblings are out of fold with it. Siblings lend their
    model verdicts, not their person genres (those are the answers being scored).
    """
    from libtagger.classify import context
    from libtagger.classify.groups import group_keys

    keys = [group_keys(t.artist, t.albumartist, t.album, None, t.path) for t in tracks]
    pooled, n_others, tier = context.combine_tiers(
        np.log(np.maximum(probs, 1e-12)), context.group_ids([k.album for k in keys]),
        context.group_ids([k.artist for k in keys]))
    return {"track_accuracy": float((pooled.argmax(1) == y).mean()), "ece": expected_calibration_error(pooled, y),
            "n_tracks": int(len(y)), "n_pooled": int((tier > 0).sum()),
            "alone_track_accuracy": float((probs.argmax(1) == y).mean())}


def model_meta(plan: LearnPlan, data: ClipSet, cv: dict[str, Any], scored: CvFigures, final: FitResult, *,
               options: LearnOptions, cfg: HeadConfig, epochs: int, source: str, cv_seconds: float,
               started: float) -> dict[str, Any]:
    """The build step: the learned model's meta.json (before name, model_id and created): labels, scaler,
    temperature, linear branch, the recipe as run and every validation figure."""
    from libtagger.audio.features import FEATURE_NAMES

    recipe_fig, lr_fig = scored.recipe, scored.lr_baseline
    recipe_meta = {
        "data": f"{len(plan.tracks)} tracks ({len(data.y)} segments) of the {source} whose genre a person set",
        "architecture": asdict(cfg) | {"epochs": epochs},
        "ensemble": f"{options.members} member(s) (seeds {list(range(options.seed, options.seed + options.members))})",
        "epochs_rule": f"about {SAMPLES} training samples per fit, clamped to {MIN_EPOCHS}-{MAX_EPOCHS} epochs",
        "batch_rule": "32 up to 2,000 segments, 64 up to 8,000, then 128",
        "folds_rule": f"--folds (default 5), at most one per group, at most {LARGE_FOLDS} above {LARGE_LIBRARY} tracks",
        "features": options.feature_transform,
        "linear_branch": f"logistic regression (C={options.linear_C}, lbfgs) on standardised [taggram mean, max, "
                         f"std + {options.feature_transform} features]; p = {1 - options.linear_weight:g} * network "
                         f"+ {options.linear_weight:g} * linear",
        "temperature": f"p <- softmax(log p / {cv['T_all']:.3f}), fitted (NLL) on the out-of-fold predictions",
        "training_unit": "every analysed segment, labelled with its track's genre; a track = the mean of its segments",
        "labels": {"normalised": "case, spaces, hyphens, &/and and known variants ignored (libtagger.training.labels)",
                   "mapping": str(options.mapping) if options.mapping else None, "multi_valued": options.multi,
                   "min_tracks": options.min_tracks, "min_artists": MIN_GROUPS_PER_LABEL},
        "seed": options.seed,
    }
    metrics = {
        "protocol": f"learned from the {source}: grouped {cv['n_folds']}-fold CV (album artist, else artist, else folder)",
        "validation": {
            "scheme": f"StratifiedGroupKFold({cv['n_folds']}) over {len(set(plan.groups))} artist groups: no group on "
                      "both sides; every figure is on tracks the scoring model was not trained on; the temperature "
                      "scoring a fold is fitted on the other folds",
            "track_accuracy": recipe_fig["track_accuracy"], "n_tracks": len(plan.tracks),
            "note": (f"LR baseline {lr_fig['track_accuracy']:.3f} on the same folds; ECE "
                     f"{recipe_fig['ece_raw']:.3f} raw, {recipe_fig['ece_after_T']:.3f} after temperature"),
            "recipe": recipe_fig, "lr_baseline": lr_fig},
        "shipped_on_shared_genres": scored.comparison,
        "data": {"tracks": len(plan.tracks), "segments": int(len(data.y)), "groups": len(set(plan.groups)),
                 "tracks_per_genre": {plan.spellings[lab]: int((plan.y == i).sum()) for i, lab in enumerate(plan.labels)},
                 "artists_per_genre": {plan.spellings[lab]: len({g for g, yy in zip(plan.groups, plan.y) if yy == i})
                                       for i, lab in enumerate(plan.labels)},
                 "left_out": plan.left_out, "skipped": plan.skipped},
        "train_seconds": {"validation": round(cv_seconds, 1), "total": round(time.time() - started, 1)},
    }
    return {"kind": KIND, "labels": list(plan.labels), "spellings": plan.spellings,
            "feature_names": list(FEATURE_NAMES), "feature_transform": options.feature_transform,
            "scaler": final.scaler.to_meta(), "temperature": cv["T_all"], "linear": final.linear.to_meta(),
            "frontend": FRONTEND, "learned": True,
            # which GTZAN genre is which label (libtagger evaluate scores the model on GTZAN through it)
            "gtzan_labels": {GENRES[j]: plan.labels[i] for j, i in scored.gtzan_to_label.items()},
            "recipe": recipe_meta, "metrics": metrics}


def write_learned_model(name: str, out_root: Path, final: FitResult, meta_in: dict[str, Any], *, plan: LearnPlan,
                        cv: dict[str, Any], recipe_fig: dict[str, Any], started: float,
                        log: Callable[[str], None]) -> dict[str, Any]:
    """The write step: the model folder (weights, meta.json, confusion.png, card.md, cv_oof.json) is made
    in a staging folder beside ``out_root/name`` and renamed into place (replacing an old one); returns
    the written meta."""
    from libtagger.classify.classifier import write_meta, write_model_folder

    out_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_root))
    try:
        folder = staging / name
        meta = write_model_folder(folder, model=ensemble_model(final.models), meta=meta_in)
        meta["metrics"]["train_seconds"]["total"] = round(time.time() - started, 1)
        drawn = draw_confusion(recipe_fig, [plan.spellings[lab] for lab in plan.labels], folder / CONFUSION_FILE,
                               n_tracks=len(plan.tracks),
                               title=f"{name}: grouped CV, accuracy {recipe_fig['track_accuracy']:.3f} "
                                     f"({len(plan.tracks)} tracks)", log=log)
        write_meta(folder, meta)
        (folder / CARD_FILE).write_text(model_card(meta, confusion_drawn=drawn))
        (folder / OOF_FILE).write_text(json.dumps(oof_records(plan, cv), indent=1) + "\n")
        target = out_root / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(folder, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return meta


def draw_confusion(fig: dict[str, Any], labels: Sequence[str], png_path: Path, *, n_tracks: int, title: str,
                   log: Callable[[str], None]) -> bool:
    """Draw the out-of-fold confusion matrix as ``png_path``; False (and one logged line) without matplotlib.

    matplotlib is the ``plot`` extra, not a dependency: a plain install learns and writes the
    model all the same, and the model card shows the matrix as a table instead.
    """
    try:
        plot_confusion({"confusion": fig["confusion"], "labels": list(labels),
                        "track_accuracy": fig["track_accuracy"], "n_tracks": n_tracks},
                       png_path, title=title)
    except PlotUnavailable as exc:  # matplotlib, or one of its own dependencies, is not installed
        log(f"{exc}; the model card has the matrix as a table")
        return False
    return True


def confusion_table(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> list[str]:
    """The confusion matrix (rows true, columns predicted) as Markdown table lines.

    >>> confusion_table([[3, 1], [0, 4]], ["Pop", "Rock"])
    ['| true / predicted | Pop | Rock |', '|---|---|---|', '| Pop | 3 | 1 |', '| Rock | 0 | 4 |']
    """
    lines = ["| true / predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(str(int(n)) for n in row) + " |" for label, row in zip(labels, confusion)]
    return lines


def check_name(name: str, out_root: Path, *, replace: bool) -> None:
    """ModelError for a name that is not a plain folder name, names a shipped model, or exists (unless ``replace``)."""
    from libtagger.paths import shipped_models_dir

    if not name or name.startswith(".") or os.sep in name or (os.altsep and os.altsep in name):
        raise ModelError(f"{name!r} is not a model name (a plain folder name, no '/')")
    shipped = shipped_models_dir()
    if shipped is not None and (shipped / name).is_dir():
        raise ModelError(f"{name!r} is a shipped model; choose another name")
    if (out_root / name).exists() and not replace:
        raise ModelError(f"{out_root / name} exists; pass --replace to overwrite it or choose another name")


# ----------------------------------------------------------------------------- reports


def oof_records(plan: LearnPlan, cv: dict[str, Any]) -> dict[str, Any]:
    """``cv_oof.json``: per track its index id, path, group, fold, label and out-of-fold probabilities,
    so every validation figure can be recomputed and the grouping checked."""
    return {"labels": [plan.spellings[lab] for lab in plan.labels],
            "tracks": [{"track_id": t.track_id, "path": t.path, "group": g, "fold": int(f),
                        "label": plan.spellings[plan.labels[int(y)]],
                        "recipe_probs": [round(float(x), 6) for x in pr],
                        "lr_baseline_probs": [round(float(x), 6) for x in pl]}
                       for t, g, f, y, pr, pl in zip(plan.tracks, plan.groups, cv["fold_of"], plan.y,
                                                     cv["probs"]["recipe"], cv["probs"]["lr_baseline"])]}



def summary_lines(meta: dict[str, Any]) -> list[str]:
    """The figures a person reads after ``libtagger learn``: learned vs LR vs shipped, per genre."""
    m = meta["metrics"]
    v, comp = m["validation"], m["shipped_on_shared_genres"]
    r, lr = v["recipe"], v["lr_baseline"]
    lines = [f"{meta['model_id']}: {m['data']['tracks']} tracks, {m['data']['groups']} artist groups, "
             f"{len(meta['labels'])} genres",
             f"grouped {len(r['fold_accuracy'])}-fold CV (no artist on both sides):",
             f"  learned head   accuracy {r['track_accuracy']:.3f} (sd {r['accuracy_sd']:.3f}), macro-F1 "
             f"{r['macro_f1']:.3f}, ECE {r['ece_raw']:.3f} raw / {r['ece_after_T']:.3f} after T",
             f"  LR baseline    accuracy {lr['track_accuracy']:.3f} (sd {lr['accuracy_sd']:.3f}), macro-F1 "
             f"{lr['macro_f1']:.3f}, ECE {lr['ece_raw']:.3f} raw / {lr['ece_after_T']:.3f} after T"]
    if r.get("context"):
        c = r["context"]
        lines.append(f"  with its album (else artist) as scan pools it: accuracy {c['track_accuracy']:.3f}, ECE "
                     f"{c['ece']:.3f} ({c['n_pooled']} of {c['n_tracks']} tracks had a sibling)")
    if comp["n_tracks"]:
        lines.append(f"on the {comp['n_tracks']} tracks of the genres the shipped model shares "
                     f"({', '.join(comp['shared_labels'])}): learned {comp['learned_track_accuracy']:.3f}, "
                     f"shipped {comp['shipped_model_id']} {comp['track_accuracy']:.3f}")
    else:
        lines.append("the shipped model shares none of these genres: no side-by-side figure")
    width = max(len(s) for s in meta["spellings"].values())
    lines.append(f"  {'genre':<{width}} {'tracks':>6} {'learned':>7} {'LR':>5} {'shipped':>7}")
    for lab in meta["labels"]:
        s = meta["spellings"][lab]
        shipped = comp["per_genre_accuracy"].get(s)
        lines.append(f"  {s:<{width}} {m['data']['tracks_per_genre'][s]:>6} {r['per_genre_accuracy'][s]:>7.2f} "
                     f"{lr['per_genre_accuracy'][s]:>5.2f} {'-' if shipped is None else f'{shipped:.2f}':>7}")
    for genre, why in m["data"]["left_out"].items():
        lines.append(f"left out {genre}: {why}")
    return lines


def model_card(meta: dict[str, Any], *, confusion_drawn: bool = True) -> str:
    """The generated Markdown model card: data, groups, recipe and every figure.

    ``confusion_drawn``: the card links ``confusion.png``; else it holds the matrix as a table.
    """
    m = meta["metrics"]
    v = m["validation"]
    if confusion_drawn:
        confusion = [f"Confusion matrix (out of fold): [`{CONFUSION_FILE}`]({CONFUSION_FILE})."]
    else:
        confusion = [f"Confusion matrix (out of fold; `{CONFUSION_FILE}` was not drawn: "
                     "`pip install 'libtagger[plot]'`):", "",
                     *confusion_table(v["recipe"]["confusion"], [meta["spellings"][lab] for lab in meta["labels"]])]
    lines = [f"# {meta['name']} (learned)", "",
             f"**Model id:** `{meta['model_id']}` · kind `{meta['kind']}` · created {meta['created']}", "",
             "## Data", "", f"{meta['recipe']['data']}.", "",
             "| genre (as written) | label | tracks | artist groups |", "|---|---|---|---|"]
    for lab in meta["labels"]:
        s = meta["spellings"][lab]
        lines.append(f"| {s} | `{lab}` | {m['data']['tracks_per_genre'][s]} | {m['data']['artists_per_genre'][s]} |")
    for genre, why in m["data"]["left_out"].items():
        lines.append(f"\nLeft out: {genre}, {why}.")
    for why, n in m["data"]["skipped"].items():
        lines.append(f"\nNot used: {n} tracks, {why}.")
    lines += ["", "## Validation", "", v["scheme"] + ".", "", "```", *summary_lines(meta), "```", "",
              *confusion, "",
              "## Recipe", "", "```json", json.dumps(meta["recipe"], indent=2), "```", "",
              f"Time: {m['train_seconds']['validation']} s validation, {m['train_seconds']['total']} s in all.", ""]
    return "\n".join(lines)
