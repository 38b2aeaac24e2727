"""Scoring classifiers on GTZAN: the fault-filtered split and the paper's random 67/33 protocol.

Each 30-s clip of the feature table is one track with one segment, so
track-level accuracy here is clip accuracy.

>>> result = evaluate_features(load_classifier("seed"), features_csv=csv,   # doctest: +SKIP
...                            split="../shared/gtzan/splits/test_filtered.txt")
>>> result["track_accuracy"], result["n_tracks"]                              # doctest: +SKIP
(0.4413793103448276, 290)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libtagger.classify import context
from libtagger.training.dataset import (DatasetError, clip_id, load_feature_table, load_split, load_taggrams,
                                        rows_for)
from libtagger.errors import LibtaggerError, ModelError
from libtagger.genres import GENRES


def score_predictions(y_true: np.ndarray, y_pred: np.ndarray,
                      labels: Sequence[str] = GENRES) -> dict[str, Any]:
    """Accuracy, per-genre precision/recall/support and the confusion matrix of label indices.

    Parameters
    ----------
    y_true, y_pred : (n,) label indices into ``labels`` (GENRES unless a learned model's).

    Returns
    -------
    {"track_accuracy": float, "n_tracks": int, "labels": [10 genres],
     "per_genre": {genre: {"precision", "recall", "support"}},
     "confusion": 10x10 list, rows = true genre, columns = predicted genre}
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    per_genre = {}
    for i, genre in enumerate(labels):
        predicted, support = int(confusion[:, i].sum()), int(confusion[i].sum())
        per_genre[genre] = {
            "precision": float(confusion[i, i] / predicted) if predicted else 0.0,
            "recall": float(confusion[i, i] / support) if support else 0.0,
            "support": support,
        }
    n = int(len(y_true))
    return {
        "track_accuracy": float(np.trace(confusion) / n) if n else 0.0,
        "n_tracks": n,
        "labels": list(labels),
        "per_genre": per_genre,
        "confusion": confusion.tolist(),
    }


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """ECE of the top-1 confidence: sum over equal-width bins of share x |accuracy - mean confidence|.

    Parameters
    ----------
    probs : (n, k) probabilities; y_true : (n,) label indices.
    n_bins : bins of (0, 1], each (lo, hi] (a confidence of exactly 0 falls in none; it cannot be top-1).

    >>> expected_calibration_error(np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([0, 1]))
    0.35
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true)
    if len(y) == 0:
        return 0.0
    conf, right = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ece += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
    return float(ece)


def load_groups(path: str | os.PathLike[str]) -> dict[str, str]:
    """Clip id -> group (artist) from a file in Sturm's ``GTZANindex.txt`` format.

    Each line reads ``clip ::: artist ::: title`` (the title is optional and ignored); blank
    lines and lines starting with ``#`` are skipped. The clip may be ``blues.00000``,
    ``blues.00000.wav`` (any audio extension libtagger reads) or carry a folder
    (``blues/blues.00000.au``). Artists are compared exactly, after trimming spaces; an empty
    artist leaves the clip in a group of its own.

    >>> import tempfile; f = Path(tempfile.mkdtemp()) / "index.txt"
    >>> _ = f.write_text("## Sturm\\nblues.00000.wav ::: John Lee Hooker ::: One Bourbon\\nblues.00001 :::  :::\\n")
    >>> load_groups(f)
    {'blues.00000': 'John Lee Hooker', 'blues.00001': ''}
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the groups file ({exc.strerror or exc})") from None
    groups: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [part.strip() for part in line.split(":::")]
        if len(parts) < 2 or not parts[0]:
            raise DatasetError(f"{path}: line {number} is not 'clip ::: artist ::: title': {line.strip()[:60]!r}")
        clip = clip_id(parts[0])
        if clip in groups and groups[clip] != parts[1]:
            raise DatasetError(f"{path}: line {number} gives {clip} a second artist "
                               f"({parts[1]!r} after {groups[clip]!r})")
        groups[clip] = parts[1]
    if not groups:
        raise DatasetError(f"{path}: no 'clip ::: artist ::: title' line in the groups file")
    return groups


def context_scores(probs: np.ndarray, truth: np.ndarray, clip_ids: Sequence[str],
                   groups: Mapping[str, str]) -> tuple[dict[str, Any], np.ndarray]:
    """The verdicts of :func:`libtagger.classify.context.combine` (shipped constants) with each clip's group
    being the other scored clips of its artist; a clip absent from ``groups`` is its own group.

    Parameters
    ----------
    probs : (n, k) clip-alone probabilities; truth : (n,) label indices; clip_ids : n ids.

    Returns
    -------
    ``{"track_accuracy", "ece", "n_tracks", "n_with_group", "n_groups", "rule"}`` and the (n, k)
    context probabilities.
    """
    keys = [groups.get(c) or None for c in clip_ids]
    ids = context.group_ids(keys)
    combined = context.combine(np.log(np.clip(probs, 1e-12, 1.0)), ids)
    _, n_others = context.leave_one_out_mean(np.zeros((len(ids), 1)), ids)
    n = int(len(truth))
    return {"track_accuracy": float((combined.argmax(axis=1) == truth).mean()) if n else 0.0,
            "ece": expected_calibration_error(combined, truth), "n_tracks": n,
            "n_with_group": int((n_others >= context.MIN_OTHERS).sum()),
            "n_groups": int(len({k for k in keys if k})),
            "rule": {"weight": context.WEIGHT, "min_others": context.MIN_OTHERS,
                     "size_prior": context.SIZE_PRIOR, "temperature": context.TEMPERATURE}}, combined


def evaluate_features(classifier: Any, *, features_csv: str | os.PathLike[str],
                      split: str | os.PathLike[str] | Sequence[str] | None = None,
                      taggrams: str | os.PathLike[str] | Mapping[str, np.ndarray] | None = None,
                      groups: str | os.PathLike[str] | Mapping[str, str] | None = None) -> dict[str, Any]:
    """Score ``classifier`` on the table rows of a split (all rows when ``split`` is None).

    Parameters
    ----------
    classifier : a loaded :class:`libtagger.classify.classifier.Classifier`.
    features_csv : the Kaggle-style feature table.
    split : a split list file, or a sequence of clip ids, or None.
    taggrams : a taggram npz or a dict clip id -> (n_patches, 50); required when
        ``classifier.needs_taggrams``.
    groups : a file in Sturm's index format (:func:`load_groups`) or a dict clip id -> artist
        (optional): adds the verdicts in the context of each clip's artist (:func:`context_scores`).

    Returns
    -------
    :func:`score_predictions` keys plus ``model_id``, ``split``, ``ece`` (15 bins, top-1
    confidence) and ``tracks``: per clip ``{"id", "true", "predicted", "confidence"}`` (genre
    names, top-1 probability), so accuracy and ECE can be recomputed from the output. With
    ``groups``: ``context`` (see :func:`context_scores`, plus ``groups``: the file name) and per
    clip ``context_predicted`` and ``context_confidence``; the clip-alone figures are unchanged.
    """
    ids, X, y = load_feature_table(features_csv)
    if split is None:
        wanted, split_name = ids, "all"
    elif isinstance(split, (str, os.PathLike)):
        wanted, split_name = load_split(split), Path(split).name
    else:
        wanted, split_name = [clip_id(c) for c in split], f"{len(split)} clips"
    rows = rows_for(ids, wanted)

    per_segment = None
    if classifier.needs_taggrams:
        if taggrams is None:
            raise ModelError(f"model {classifier.name!r} needs taggrams; pass a taggram npz for the split")
        table = load_taggrams(taggrams)[0] if isinstance(taggrams, (str, os.PathLike)) else taggrams
        missing = [wanted[i] for i in range(len(wanted)) if wanted[i] not in table]
        if missing:
            raise ModelError(f"{len(missing)} clip(s) of the split have no taggram, e.g. {missing[:3]}")
        per_segment = [np.asarray(table[c]) for c in wanted]

    names, truth = list(GENRES), y[rows]
    if tuple(classifier.labels) != GENRES:  # a learned model: score the clips whose genre it shares
        names, truth, keep = _learned_truth(classifier, y[rows])
        rows = rows[keep]
        per_segment = None if per_segment is None else [per_segment[i] for i in np.flatnonzero(keep)]
        split_name += f" ({len(rows)} clips of the genres {classifier.name!r} shares)"
    probs = classifier.predict(X[rows], taggrams=per_segment)
    predicted = np.argmax(probs, axis=1)
    result = score_predictions(truth, predicted, names)
    result.update(model_id=classifier.model_id, split=split_name,
                  ece=expected_calibration_error(probs, truth),
                  tracks=[{"id": ids[r], "true": names[int(t)], "predicted": names[int(p)],
                           "confidence": float(probs[i, p])}
                          for i, (r, t, p) in enumerate(zip(rows, truth, predicted))])
    if groups is not None:
        mapping = load_groups(groups) if isinstance(groups, (str, os.PathLike)) else dict(groups)
        scores, combined = context_scores(probs, truth, [ids[r] for r in rows], mapping)
        result["context"] = scores | {"groups": Path(groups).name if isinstance(groups, (str, os.PathLike))
                                      else f"{len(mapping)} clips"}
        for track, row in zip(result["tracks"], combined):
            track.update(context_predicted=names[int(row.argmax())], context_confidence=float(row.max()))
    return result


def _learned_truth(classifier: Any, y: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A learned model's written genres, the GTZAN truth ``y`` mapped into its labels, and which clips keep one.

    The mapping is meta.json's ``gtzan_labels`` (GTZAN genre -> label, written by ``libtagger
    learn`` through the same normalisation and mapping file as the library's genres).
    """
    mapping = classifier.meta.get("gtzan_labels") or {}
    to_label = {GENRES.index(g): list(classifier.labels).index(lab) for g, lab in mapping.items()
                if g in GENRES and lab in classifier.labels}
    keep = np.array([int(v) in to_label for v in y], dtype=bool)
    if not keep.any():
        raise ModelError(f"model {classifier.name!r} shares none of the clips' genres with GTZAN "
                         f"(its labels: {', '.join(classifier.spellings)}): see its model card instead")
    return list(classifier.spellings), np.array([to_label[int(v)] for v in y[keep]], dtype=np.int64), keep


def random_split_protocol(*, features_csv: str | os.PathLike[str], kind: str = "seed", test_size: float = 0.33,
                          valid_fraction: float = 0.2, seed: int = 0, epochs: int = 600,
                          batch_size: int = 128, threads: int = 2,
                          verbose: int = 0) -> dict[str, Any]:
    """The paper's protocol: random 67/33 split of all table rows, train the seed recipe, score the 33 %.

    The paper ran it on 3-s segments, where parts of one track land on both sides;
    here each row is a whole 30-s clip, but artists still repeat across the split
    (the fault-filtered split exists to stop exactly that). The seed recipe runs as
    on the filtered split: a seeded, stratified ``valid_fraction`` of the 67 % picks
    the epoch count, then the network is retrained on the whole 67 %; the 33 % is
    never used for any choice.

    Returns :func:`score_predictions` keys plus ``protocol`` details.
    """
    if kind != "seed":
        raise ModelError(f"the random-split protocol is implemented for kind 'seed' only, not {kind!r}")
    from sklearn.model_selection import train_test_split

    from libtagger.classify.seed import predict_proba
    from libtagger.training.seed_training import select_and_fit

    ids, X, y = load_feature_table(features_csv)
    rows = np.arange(len(ids))
    train_rows, test_rows = train_test_split(rows, test_size=test_size, random_state=seed)
    fit_rows, valid_rows = train_test_split(train_rows, test_size=valid_fraction, random_state=seed,
                                            stratify=y[train_rows])
    model, scaler, info = select_and_fit(X[fit_rows], y[fit_rows], X[valid_rows], y[valid_rows],
                                         epochs=epochs, batch_size=batch_size, seed=seed, threads=threads,
                                         verbose=verbose)
    probs = predict_proba(model, X[test_rows], scaler)
    result = score_predictions(y[test_rows], np.argmax(probs, axis=1))
    result["ece"] = expected_calibration_error(probs, y[test_rows])
    result.update(split=f"random {1 - test_size:.0%}/{test_size:.0%} (seed {seed})", protocol={
        "name": "random", "test_size": test_size, "seed": seed, "n_fit": int(len(fit_rows)),
        "n_valid": int(len(valid_rows)), "n_test": int(len(test_rows)), **info})
    return result


def format_result(result: Mapping[str, Any], *, title: str = "") -> str:
    """A plain-text report: accuracy (and ECE) line, then per-genre precision / recall / support."""
    ece = f", ECE {result['ece']:.3f}" if "ece" in result else ""
    lines = [f"{title or result.get('split', '')}: track accuracy {result['track_accuracy']:.4f} "
             f"({result['n_tracks']} tracks{ece})"]
    if "context" in result:
        ctx = result["context"]
        lines.append(f"  with context ({ctx.get('groups', 'groups')}): track accuracy {ctx['track_accuracy']:.4f} "
                     f"({ctx['n_tracks']} tracks, ECE {ctx['ece']:.3f}; {ctx['n_with_group']} with another "
                     f"track of their group)")
    lines.append(f"  {'genre':<10} {'precision':>9} {'recall':>7} {'support':>7}")
    for genre, row in result["per_genre"].items():
        lines.append(f"  {genre:<10} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['support']:>7d}")
    return "\n".join(lines)


class PlotUnavailable(LibtaggerError):
    """matplotlib (the ``plot`` extra) is not installed: nothing was drawn."""


def plot_confusion(result: Mapping[str, Any], png_path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Draw ``result["confusion"]`` (rows true, columns predicted) as a labelled heat map PNG.

    Raises
    ------
    PlotUnavailable
        matplotlib, or one of its own dependencies, is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never needs a display
        import matplotlib.pyplot as plt
    except ImportError as exc:  # not a dependency: a plain install evaluates, it cannot draw
        raise PlotUnavailable(f"{Path(png_path).name} not drawn: {exc.name or 'matplotlib'} is not "
                              "installed (pip install 'libtagger[plot]')") from exc

    cm = np.asarray(result["confusion"])
    labels = result["labels"]
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i, j in np.ndindex(cm.shape):
        if cm[i, j]:
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=8)
    ax.set_title(title or f"{result.get('split', '')}: accuracy {result['track_accuracy']:.3f} "
                          f"({result['n_tracks']} tracks)")
    fig.tight_layout()
    out = Path(png_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
