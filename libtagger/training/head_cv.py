"""Nested artist-grouped cross-validation of the ``musicnn-head`` recipe against the linear baseline.

The protocol behind every validation figure of the shipped head (``benchmarks/head_cv.py``
runs it and prints the table):

* groups: the artist of each clip (``metadata/GTZANindex.txt``); an unidentified clip is its
  own group, so no artist is ever on both sides of a split;
* outer: ``StratifiedGroupKFold(5, shuffle=True, random_state=1000)`` over the 443 train clips;
* inner: ``StratifiedGroupKFold(3, shuffle=True, random_state=2000 + outer fold)`` inside each
  outer-train set. Every choice is made there: the epoch count (one seed per inner fold,
  inner OOF accuracy every 5 epochs, argmax of its 3-point moving average) and the
  temperature (NLL fit on the inner OOF probabilities of the whole recipe);
* the outer model (3 seeds at that epoch count + the linear branch) is fit on the outer-train
  set and scores the outer-test clips once. The outer-test clips take no part in any choice.

Candidates, on the same folds: ``lr_baseline`` (logistic regression C=0.03 on the pooled
taggram + the 57 raw features, the best linear model of earlier searches) and ``recipe``
(the shipped head: CNN-RNN ensemble on level-invariant features averaged 50/50 with the same
logistic regression on level-invariant features, then temperature).

>>> cv = run_nested_cv(load_clipset(npz, csv, split), artist_groups(keys, gtzan))   # doctest: +SKIP
>>> print(format_cv_table(cv))                                                        # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from libtagger.classify.head import apply_temperature, predict_members
from libtagger.genres import GENRES
from libtagger.training.evaluate import expected_calibration_error
from libtagger.training.head_training import (ClipSet, HeadConfig, build_head, fit_head, fit_linear, linear_inputs,
                                              tag_stats)

OUTER_FOLDS, OUTER_SEED = 5, 1000
INNER_FOLDS, INNER_SEED = 3, 2000
#: Epochs at which the inner curve is read, and the seeds of the outer ensemble.
CHECK_EVERY, MAX_EPOCHS, OUTER_SEEDS = 5, 60, (0, 1, 2)


def artist_groups(keys: Sequence[str], gtzan_dir: str | Path) -> np.ndarray:
    """(n,) group ids: one per artist of ``metadata/GTZANindex.txt``, one per clip it does not name."""
    from libtagger.training.dataset import load_artists

    artist = load_artists(gtzan_dir)
    labels = [f"artist:{artist[k]}" if artist.get(k) else f"clip:{k}" for k in keys]
    return np.unique(labels, return_inverse=True)[1]


def grouped_folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``StratifiedGroupKFold(k, shuffle=True, random_state=seed)`` as a list of (train, test) index arrays."""
    from sklearn.model_selection import StratifiedGroupKFold

    return list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """T minimising the NLL of :func:`apply_temperature` (probs (n, 10), y (n,)); bounded search on log T."""
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        return -float(np.mean(np.log(np.clip(apply_temperature(probs, np.exp(log_t))[rows, y], 1e-12, 1))))

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def thin_rows(seqs: Sequence[np.ndarray], stride: int) -> list[np.ndarray]:
    """Every ``stride``-th taggram row (from the first): the taggram the scan computes with a patch
    hop of ``stride`` x 61 frames, since ``musicnn.mel_patches`` starts patches at frames 0, hop, 2 hop ..."""
    return [s[::stride] for s in seqs]


def _cnn_probs(data: ClipSet, tr: np.ndarray, te: np.ndarray, cfg: HeadConfig, seeds: Sequence[int],
               epochs: int, checks: Sequence[int], transform: str,
               strides: Sequence[int] = (1,)) -> dict[tuple[int, int], np.ndarray]:
    """Fit ``len(seeds)`` heads on clips ``tr`` (full taggrams); their mean probabilities on ``te``
    at each epoch of ``checks``, with the test taggrams thinned by each of ``strides``:
    ``{(stride, epoch): (len(te), 10)}``."""
    from libtagger.audio.level_invariant import transform_by_name
    from libtagger.classify.scaler import Scaler

    F = transform_by_name(transform)(data.features, data.feature_names)
    scaler = Scaler.fit(F[tr])
    ftr, fte = scaler.transform(F[tr]), scaler.transform(F[te])
    str_, ste = [data.seqs[i] for i in tr], [data.seqs[i] for i in te]
    views = {k: thin_rows(ste, k) for k in strides}
    mean, var = tag_stats(str_)
    out = {(k, e): np.zeros((len(te), len(GENRES))) for k in strides for e in checks}
    for s in seeds:
        model = build_head(cfg, tag_mean=mean, tag_var=var, n_features=F.shape[1], seed=s)

        def read(epoch: int, m: Any) -> None:
            if epoch in checks:
                for k, view in views.items():
                    out[k, epoch] += predict_members([m], view, fte) / len(seeds)
        fit_head(model, str_, ftr, data.y[tr], cfg=cfg, epochs=epochs, seed=s, on_epoch=read)
    return out


def _linear_probs(data: ClipSet, tr: np.ndarray, te: np.ndarray, transform: str,
                  strides: Sequence[int] = (1,)) -> dict[int, np.ndarray]:
    """Fit the linear branch on clips ``tr``; its (len(te), 10) probabilities on clips ``te`` with
    their taggrams thinned by each of ``strides``: ``{stride: probs}``."""
    branch = fit_linear(data.subset(tr), feature_transform=transform)
    test = data.subset(te)
    return {k: branch.predict_proba(linear_inputs(
        ClipSet(test.keys, thin_rows(test.seqs, k), test.features, test.y, test.feature_names), transform))
        for k in strides}


class _InnerChoice(NamedTuple):
    """What the inner folds of one outer fold choose, and the figures they chose it by."""

    epoch: int  # the outer ensemble's epoch count
    curve: np.ndarray  # (len(checks),) inner OOF accuracy of the network at each checked epoch
    temperatures: dict[str, float]  # candidate -> T fitted on the inner OOF probabilities
    inner_acc: dict[str, float]  # candidate -> inner OOF accuracy (at the chosen epoch)


def _inner_choices(both: ClipSet, y: np.ndarray, groups: np.ndarray, tr: np.ndarray, k: int,
                   extra_idx: np.ndarray, *, cfg: HeadConfig, transform: str, baseline_transform: str, seed: int,
                   max_epochs: int, checks: Sequence[int]) -> _InnerChoice:
    """The inner CV of outer fold ``k`` on its train clips ``tr`` (labels ``y``, artist ``groups``, both (n,)):
    the epoch count (argmax of the 3-point moving average of the inner OOF curve, one seed) and each
    candidate's temperature. ``extra_idx``: rows of ``both`` added to every inner-training set."""
    inner = grouped_folds(y[tr], groups[tr], INNER_FOLDS, INNER_SEED + k)
    in_cnn = {e: np.zeros((len(tr), len(GENRES))) for e in checks}
    in_lin = {c: np.zeros((len(tr), len(GENRES))) for c in (transform, baseline_transform)}
    for itr, ite in inner:
        fit_idx = np.concatenate([tr[itr], extra_idx])
        o = _cnn_probs(both, fit_idx, tr[ite], cfg, [seed], max_epochs, checks, transform)
        for e in checks:
            in_cnn[e][ite] = o[1, e]
        for t in in_lin:
            in_lin[t][ite] = _linear_probs(both, fit_idx, tr[ite], t)[1]
    curve = np.array([(in_cnn[e].argmax(1) == y[tr]).mean() for e in checks])
    smooth = np.convolve(np.pad(curve, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    epoch = checks[int(np.argmax(smooth))]
    inner_p = {"lr_baseline": in_lin[baseline_transform], "recipe": 0.5 * (in_cnn[epoch] + in_lin[transform])}
    return _InnerChoice(epoch, curve, {c: fit_temperature(p, y[tr]) for c, p in inner_p.items()},
                        {c: float((p.argmax(1) == y[tr]).mean()) for c, p in inner_p.items()})


def run_nested_cv(data: ClipSet, groups: np.ndarray, *, cfg: HeadConfig, transform: str = "level-invariant-53",
                  baseline_transform: str = "raw-57", max_epochs: int = MAX_EPOCHS, check_every: int = CHECK_EVERY,
                  seeds: Sequence[int] = OUTER_SEEDS, n_outer: int = OUTER_FOLDS,
                  extra_train: ClipSet | None = None, test_strides: Sequence[int] = (1,),
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the protocol of this module; returns out-of-fold predictions and per-fold choices.

    ``extra_train`` (optional) clips are added to every outer- and inner-training set, never
    to a test set (to measure whether more training data helps).

    ``test_strides`` (optional, e.g. ``(1, 2, 3)``): the outer models (trained as shipped, on
    full hop-61 taggrams; epochs and temperature chosen on the inner folds at hop 61) also score
    the outer-test clips with every k-th taggram row only, which is exactly what the scan
    computes with ``musicnn.INFERENCE_PATCH_HOP = k x 61``. Those candidates are named
    ``lr_baseline@hop122``, ``recipe@hop183`` etc.; their probs_T use the hop-61 temperature.

    Returns
    -------
    {"ids": [n], "y": (n,), "fold": (n,) outer fold of each clip,
     "probs": {"lr_baseline": (n, 10), "recipe": (n, 10)} raw OOF probabilities,
     "probs_T": same after the inner-fitted temperature of each outer fold,
     "folds": [{"fold", "n_test", "epoch", "inner_curve", "T": {candidate: T}, "inner_acc": {...}}]}
    """
    y, n = data.y, len(data.y)
    checks = list(range(check_every, max_epochs + 1, check_every))
    outer = grouped_folds(y, groups, OUTER_FOLDS, OUTER_SEED)[:n_outer]
    names = ("lr_baseline", "recipe")
    strides = [1] + sorted({int(k) for k in test_strides} - {1})
    if any(stride < 1 for stride in strides):
        raise ValueError(f"test strides must be >= 1, got {test_strides}")

    def named(c: str, stride: int) -> str:
        return c if stride == 1 else f"{c}@hop{61 * stride}"
    all_names = [named(c, stride) for stride in strides for c in names]
    probs = {c: np.full((n, len(GENRES)), np.nan) for c in all_names}
    probs_t = {c: np.full((n, len(GENRES)), np.nan) for c in all_names}
    fold_of = np.full(n, -1)
    folds: list[dict[str, Any]] = []
    both = data if extra_train is None else _concat(data, extra_train)
    n_extra = 0 if extra_train is None else len(extra_train.y)
    extra_idx = np.arange(n, n + n_extra)
    t0 = time.time()
    for k, (tr, te) in enumerate(outer):
        chosen = _inner_choices(both, y, groups, tr, k, extra_idx, cfg=cfg, transform=transform,
                                baseline_transform=baseline_transform, seed=seeds[0], max_epochs=max_epochs,
                                checks=checks)
        epoch, temps = chosen.epoch, chosen.temperatures

        fit_idx = np.concatenate([tr, extra_idx])
        cnn = _cnn_probs(both, fit_idx, te, cfg, seeds, epoch, [epoch], transform, strides)
        base_lin = _linear_probs(both, fit_idx, te, baseline_transform, strides)
        lin = _linear_probs(both, fit_idx, te, transform, strides)
        outer_p = {}
        for stride in strides:
            outer_p[named("lr_baseline", stride)] = base_lin[stride]
            outer_p[named("recipe", stride)] = 0.5 * (cnn[stride, epoch] + lin[stride])
            for c in names:
                probs[named(c, stride)][te] = outer_p[named(c, stride)]
                probs_t[named(c, stride)][te] = apply_temperature(outer_p[named(c, stride)], temps[c])
        fold_of[te] = k
        accs = {c: float((outer_p[c].argmax(1) == y[te]).mean()) for c in all_names}
        folds.append({"fold": k, "n_test": int(len(te)), "epoch": epoch,
                      "inner_curve": dict(zip(checks, chosen.curve.round(4).tolist())), "T": temps,
                      "inner_acc": chosen.inner_acc,
                      "outer_acc": accs})
        log(f"fold {k}: epoch {epoch}, outer acc recipe {accs['recipe']:.3f} vs LR {accs['lr_baseline']:.3f}, "
            f"T {temps['recipe']:.3f} ({time.time() - t0:.0f} s)")
    done = fold_of >= 0
    return {"ids": [data.keys[i] for i in np.flatnonzero(done)], "y": y[done], "fold": fold_of[done],
            "probs": {c: p[done] for c, p in probs.items()}, "probs_T": {c: p[done] for c, p in probs_t.items()},
            "folds": folds, "n_extra_train": n_extra}


def _concat(a: ClipSet, b: ClipSet) -> ClipSet:
    return ClipSet(a.keys + b.keys, a.seqs + b.seqs, np.vstack([a.features, b.features]),
                   np.concatenate([a.y, b.y]), a.feature_names)


def summarize(cv: dict[str, Any]) -> dict[str, Any]:
    """Per candidate: outer accuracy mean ± sd over folds, paired difference to the baseline,
    macro-F1, pooled accuracy, ECE raw / after inner T / after cross-fitted T, the T fitted on all
    pooled OOF (what ships) and the per-genre pooled accuracy."""
    from sklearn.metrics import f1_score

    y, fold = cv["y"], cv["fold"]
    ks = sorted(set(fold.tolist()))
    out: dict[str, Any] = {}
    base = np.array([(cv["probs"]["lr_baseline"][fold == k].argmax(1) == y[fold == k]).mean() for k in ks])
    for c, p in cv["probs"].items():
        pred = p.argmax(1)
        acc = np.array([(pred[fold == k] == y[fold == k]).mean() for k in ks])
        f1 = np.array([f1_score(y[fold == k], pred[fold == k], average="macro") for k in ks])
        cross = np.zeros_like(p)
        for k in ks:  # T fitted on the other outer folds' OOF: how a T fitted on all OOF behaves on new clips
            cross[fold == k] = apply_temperature(p[fold == k], fit_temperature(p[fold != k], y[fold != k]))
        d = acc - base
        sd = (lambda a: float(a.std(ddof=1)) if len(a) > 1 else 0.0)
        out[c] = {"acc_mean": float(acc.mean()), "acc_sd": sd(acc), "fold_acc": acc.round(4).tolist(),
                  "delta_vs_lr_mean": float(d.mean()), "delta_vs_lr_sd": sd(d),
                  "macro_f1_mean": float(f1.mean()), "pooled_acc": float((pred == y).mean()),
                  "ece_raw": expected_calibration_error(p, y),
                  "ece_T_inner": expected_calibration_error(cv["probs_T"][c], y),
                  "ece_T_crossfit": expected_calibration_error(cross, y),
                  "T_inner": [round(f["T"][c.split("@")[0]], 3) for f in cv["folds"]],
                  "T_all_oof": fit_temperature(p, y),
                  "per_genre_acc": {g: float((pred[y == j] == j).mean()) for j, g in enumerate(GENRES) if (y == j).any()}}
    for c, p in cv["probs"].items():  # thinned-taggram candidates: paired against the same model at hop 61
        if "@hop" in c:
            ref = cv["probs"][c.split("@")[0]]
            d = np.array([(out[c]["fold_acc"][i] - out[c.split("@")[0]]["fold_acc"][i]) for i in range(len(ks))])
            out[c] |= {"delta_vs_hop61_mean": float(d.mean()), "delta_vs_hop61_sd": sd(d),
                       "top1_same_as_hop61": float((p.argmax(1) == ref.argmax(1)).mean())}
    out["recipe"]["epochs"] = [f["epoch"] for f in cv["folds"]]
    return out


def format_hop_table(summary: dict[str, Any], cv: dict[str, Any], min_confidence: float = 0.6) -> str:
    """Markdown table of the candidates at each inference patch hop (``run_nested_cv(test_strides=...)``):
    accuracy, paired change against the same candidate at hop 61, ECE, top-1 agreement with hop 61,
    and what ``--min-confidence`` writes on the tempered probabilities."""
    lines = [f"| model | patch hop | outer acc mean ± sd | Δ vs hop 61 (paired) | pooled acc | ECE raw | "
             f"ECE after T (inner) | top-1 same as hop 61 | written at {min_confidence:g} | right of written |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c, r in sorted(summary.items(), key=lambda kv: (kv[0].split("@")[0], len(kv[0]), kv[0])):
        hop = c.split("@hop")[1] if "@hop" in c else "61"
        delta = (f"{r['delta_vs_hop61_mean']:+.3f} ± {r['delta_vs_hop61_sd']:.3f}" if "@hop" in c else "-")
        same = f"{r['top1_same_as_hop61']:.1%}" if "@hop" in c else "-"
        w = confidence_table(cv["probs_T"][c], cv["y"], (min_confidence,))[0]
        lines.append(f"| {c.split('@')[0]} | {hop} | {r['acc_mean']:.3f} ± {r['acc_sd']:.3f} | {delta} | "
                     f"{r['pooled_acc']:.3f} | {r['ece_raw']:.3f} | {r['ece_T_inner']:.3f} | {same} | "
                     f"{w['written_share']:.1%} | {w['written_accuracy']:.3f} |")
    return "\n".join(lines)


def format_cv_table(summary: dict[str, Any]) -> str:
    """Markdown table of :func:`summarize`, one row per candidate, then per-genre accuracy."""
    lines = ["| model | outer acc mean ± sd | Δ vs LR (paired) | macro-F1 | pooled acc | ECE raw | "
             "ECE after T (inner) | ECE after T (cross-fit) | T on all OOF |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c, r in summary.items():
        lines.append(f"| {c} | {r['acc_mean']:.3f} ± {r['acc_sd']:.3f} | {r['delta_vs_lr_mean']:+.3f} ± "
                     f"{r['delta_vs_lr_sd']:.3f} | {r['macro_f1_mean']:.3f} | {r['pooled_acc']:.3f} | "
                     f"{r['ece_raw']:.3f} | {r['ece_T_inner']:.3f} | {r['ece_T_crossfit']:.3f} | {r['T_all_oof']:.3f} |")
    genres = list(next(iter(summary.values()))["per_genre_acc"])
    lines += ["", "| model | " + " | ".join(genres) + " |", "|---" * (len(genres) + 1) + "|"]
    for c, r in summary.items():
        lines.append(f"| {c} | " + " | ".join(f"{r['per_genre_acc'][g]:.2f}" for g in genres) + " |")
    return "\n".join(lines)


def confidence_table(probs: np.ndarray, y: np.ndarray,
                     thresholds: Sequence[float] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)) -> list[dict[str, float]]:
    """For each ``--min-confidence`` t: share of tracks written (top-1 p >= t) and accuracy of those written."""
    conf, right = probs.max(axis=1), probs.argmax(axis=1) == y
    rows = []
    for t in thresholds:
        w = conf >= t
        rows.append({"min_confidence": t, "written_share": float(w.mean()), "n_written": int(w.sum()),
                     "written_accuracy": float(right[w].mean()) if w.any() else float("nan")})
    return rows


def validation_metrics(summary: dict[str, Any], table: list[dict[str, float]], n_tracks: int) -> dict[str, Any]:
    """The ``metrics["validation"]`` block of the shipped meta.json, from :func:`summarize` and
    :func:`confidence_table` (each figure says what it is measured on)."""
    def block(r: dict[str, Any]) -> dict[str, Any]:
        return {"track_accuracy_mean": r["acc_mean"], "track_accuracy_sd": r["acc_sd"], "fold_accuracy": r["fold_acc"],
                "paired_delta_vs_lr_mean": r["delta_vs_lr_mean"], "paired_delta_vs_lr_sd": r["delta_vs_lr_sd"],
                "macro_f1_mean": r["macro_f1_mean"], "pooled_accuracy": r["pooled_acc"],
                "ece_raw": r["ece_raw"], "ece_after_T": r["ece_T_inner"], "ece_after_T_crossfit": r["ece_T_crossfit"],
                "T_inner": r["T_inner"], "T_all_oof": r["T_all_oof"],
                "per_genre_accuracy": {g: round(v, 4) for g, v in r["per_genre_acc"].items()}}
    return {
        "scheme": "nested artist-grouped 5-fold CV on the fault-filtered train split (443 clips, artists from "
                  "GTZANindex.txt, unidentified clips alone); figures are on the outer folds, whose clips took "
                  "no part in any choice (epochs, temperature: inner 3-fold CV); libtagger.training.head_cv",
        "track_accuracy": summary["recipe"]["acc_mean"],
        "n_tracks": n_tracks,
        "note": (f"track_accuracy = mean outer-fold accuracy of the shipped recipe (sd "
                 f"{summary['recipe']['acc_sd']:.3f}); the LR baseline scores {summary['lr_baseline']['acc_mean']:.3f} "
                 f"on the same folds (paired gain {summary['recipe']['delta_vs_lr_mean']:+.3f} ± "
                 f"{summary['recipe']['delta_vs_lr_sd']:.3f}); ECE {summary['recipe']['ece_raw']:.3f} raw, "
                 f"{summary['recipe']['ece_T_inner']:.3f} after temperature"),
        "recipe": block(summary["recipe"]) | {"epochs_chosen_inner": summary["recipe"]["epochs"]},
        "lr_baseline": block(summary["lr_baseline"]) | {
            "model": "logistic regression C=0.03 on standardised [taggram mean, max, std + 57 raw features]"},
        "ece": "15 equal-width bins of top-1 confidence over the pooled out-of-fold predictions; after_T = each "
               "outer fold tempered with the T fitted on its inner folds; crossfit = T fitted on the other outer folds",
        "min_confidence": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in table],
        "min_confidence_note": "top-1 calibrated out-of-fold probability >= threshold: share of tracks written and "
                               "accuracy of the written tags (one clip = one segment = one track)",
        "files": "cv_oof.json (every clip's out-of-fold probabilities), cv_summary.json, reliability.png",
        "reproduce": ".venv/bin/python benchmarks/head_cv.py --out models/musicnn-head",
    }
