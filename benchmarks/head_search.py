"""Model selection for the ``musicnn-head`` model by grouped K-fold CV on the GTZAN train split.

Only the 443 training-split clips are used (the test split is never looked at). Folds are
stratified by genre and grouped by blocks of 10 consecutive clip numbers within a genre, an
approximation to artist filtering (GTZAN repeats artists in runs of consecutive clips).

Every candidate is trained once per fold (seed 0); its out-of-fold accuracy is measured every
5 epochs on the full-length validation clips, so the table shows the accuracy curve and the
epoch count that the final retraining uses. The best candidate is then rerun as an ensemble of
seeds. Also reported: a one-patch (3-s) accuracy (the middle patch of each validation clip) and
the linear reference model (logistic regression on pooled taggram + 57 features).

    /work/venv/bin/python benchmarks/head_search.py            # the full search (~30-50 min on 1 core)
    /work/venv/bin/python benchmarks/head_search.py --only base,lstm --folds 5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from libtagger.classify.head import predict_members
from libtagger.training.head_training import HeadConfig, clip_groups, fit_members, load_clipset
from libtagger.paths import shared_gtzan_dir

CHECK_EVERY = 5

#: name -> (config, description)
CANDIDATES: dict[str, tuple[HeadConfig, str]] = {
    "base": (HeadConfig(), "conv64 k3 + GRU64, mean+max pool, skip tag mean, 57 feats, dropout .3"),
    "lstm": (HeadConfig(rnn="lstm"), "as base, LSTM64"),
    "small": (HeadConfig(conv=32, units=32, dense=32), "as base, conv32 + GRU32, dense32"),
    "wide": (HeadConfig(conv=128, units=96, dense=128, dropout=0.4), "conv128 + GRU96, dense128, dropout .4"),
    "bigru": (HeadConfig(rnn="bigru"), "as base, bidirectional GRU 2x32"),
    "drop5": (HeadConfig(dropout=0.5), "as base, dropout .5"),
    "noskip": (HeadConfig(skip_pool=False), "as base, without the pooled-taggram skip"),
    "nofeat": (HeadConfig(use_features=False), "as base, taggrams only (no 57 features)"),
}

#: What a plain run tries (the rest only with --only, to keep the search inside ~30 min of a shared core).
DEFAULT_RUN = ("base", "lstm", "small", "wide", "noskip", "nofeat")


def set_threads(n: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def folds(data, k: int, seed: int = 0):
    from sklearn.model_selection import StratifiedGroupKFold

    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(data.y)), data.y, clip_groups(data.keys)))


def linear_reference(data, splits) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pooled = np.hstack([np.stack([s.mean(0) for s in data.seqs]),
                        np.stack([s.std(0) for s in data.seqs]), data.features])
    out, oof = {}, {}
    for C in (0.01, 0.03, 0.1, 0.3, 1.0):
        probs = np.zeros((len(data.y), 10))
        for tr, va in splits:
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))
            clf.fit(pooled[tr], data.y[tr])
            probs[va] = clf.predict_proba(pooled[va])
        out[f"C={C}"] = float((probs.argmax(1) == data.y).mean())
        oof[f"C={C}"] = probs
    return out, oof


def cv_candidate(data, splits, cfg: HeadConfig, *, seeds=(0,), epochs: int) -> dict:
    """Out-of-fold accuracy every CHECK_EVERY epochs (seed-averaged probabilities when several)."""
    checks = list(range(CHECK_EVERY, epochs + 1, CHECK_EVERY))
    probs = {e: np.zeros((len(data.y), 10)) for e in checks}
    probs1 = np.zeros((len(data.y), 10))  # one middle patch, at the last epoch
    for tr, va in splits:
        train, val = data.subset(tr), data.subset(va)

        def on_epoch(member, epoch, model, scaler, va=va, val=val):
            if epoch in probs:
                probs[epoch][va] += predict_members([model], val.seqs, scaler.transform(val.features))

        models, scaler = fit_members(train, cfg, seeds=seeds, epochs=epochs, on_epoch=on_epoch)
        mid = [s[len(s) // 2: len(s) // 2 + 1] for s in val.seqs]
        probs1[va] = predict_members(models, mid, scaler.transform(val.features))
    curve = {e: float((p.argmax(1) == data.y).mean()) for e, p in probs.items()}
    best = max(curve, key=lambda e: (curve[e], -e))
    return {"probs": {e: p / len(seeds) for e, p in probs.items()},
            "curve": curve, "best_epoch": best, "best_acc": curve[best],
            "final_acc": curve[checks[-1]], "one_patch_acc": float((probs1.argmax(1) == data.y).mean())}


def valid_audio_check(gtzan: str, data) -> dict:
    """Score the SHIPPED head on the valid-split clips that have audio in ``<gtzan>/audio``.

    These clips are artist-disjoint from the train split (true artist filtering), but most
    files are only the first 15-20 s of the clip, so the segment is shorter than in training
    and the features are computed on less audio. Features and taggrams come from the scan
    pipeline's own code (libtagger.audio.analysis, libtagger.audio.musicnn), one segment per file. The
    linear reference (C=0.1, fit on all 443 train clips) and the seed model are scored on the
    same inputs, and the head averaged with the linear model is shown too. Run after shipping;
    it is a check, not a selection step.
    """
    from pathlib import Path

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from libtagger.audio.analysis import AnalysisJob, analyze_file
    from libtagger.classify.classifier import load_classifier
    from libtagger.training.dataset import load_split
    from libtagger.genres import GENRES

    valid = set(load_split(f"{gtzan}/splits/valid_filtered.txt"))
    files = sorted(f for f in Path(gtzan, "audio").iterdir() if f.stem in valid)
    head, seed = load_classifier("musicnn-head"), load_classifier("seed")
    feats, tgs, y, secs = [], [], [], []
    for f in files:
        a = analyze_file(AnalysisJob(str(f), max_segments=1))
        feats.append(a.features[0])
        tgs.append(a.taggrams[0])
        y.append(GENRES.index(f.stem.split(".")[0]))
        secs.append(a.duration)
    X, y = np.stack(feats), np.array(y)

    def pooled(seqs, F):
        return np.hstack([np.stack([t.mean(0) for t in seqs]), np.stack([t.std(0) for t in seqs]), F])

    lin = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
    lin.fit(pooled(data.seqs, data.features), data.y)
    p_head, p_lin = head.predict(X, taggrams=tgs), lin.predict_proba(pooled(tgs, X))
    acc = lambda p: float((p.argmax(1) == y).mean())  # noqa: E731
    return {"n_clips": len(y), "seconds_median": float(np.median(secs)),
            "patches_median": float(np.median([len(t) for t in tgs])),
            "musicnn-head": acc(p_head), "linear C=0.1": acc(p_lin),
            "head+linear averaged": acc((p_head + p_lin) / 2),
            "seed (trained on train+valid, so not held out)": acc(seed.predict(X))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gtzan", default=str(shared_gtzan_dir()))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--only", default="", help="comma-separated candidate names (default: all)")
    ap.add_argument("--ensemble", type=int, default=3, help="seeds for the best candidate's ensemble run")
    ap.add_argument("--ensemble-of", default="", help="run only the ensemble, of this candidate")
    ap.add_argument("--valid-audio", action="store_true",
                    help="only score the shipped model on the valid-split clips that have audio")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    set_threads(args.threads)

    g = args.gtzan
    data = load_clipset(f"{g}/musicnn/training_data_GTZAN_MSDmusicnn_taggram.npz",
                        f"{g}/features_30_sec.csv", f"{g}/splits/train_filtered.txt")
    if args.valid_audio:
        r = valid_audio_check(g, data)
        print("valid-split clips with audio (artist-disjoint, mostly 15-20 s):", json.dumps(r, indent=1))
        return 0
    splits = folds(data, args.folds)
    print(f"{len(data.y)} train-split clips, {args.folds} grouped folds "
          f"(val sizes {[len(v) for _, v in splits]})", flush=True)

    results: dict = {"folds": args.folds, "epochs": args.epochs, "candidates": {}}
    lin, lin_oof = linear_reference(data, splits)
    results["linear"] = lin
    print("linear reference (pooled taggram mean+std + 57 feats, logistic regression):", flush=True)
    for k, v in lin.items():
        print(f"  {k:8s} cv acc {v:.3f}", flush=True)

    names = [n for n in args.only.split(",") if n] or list(DEFAULT_RUN)
    if args.ensemble_of:
        names = []
    for name in names:
        cfg, desc = CANDIDATES[name]
        t0 = time.time()
        r = cv_candidate(data, splits, replace(cfg, epochs=args.epochs), epochs=args.epochs)
        r.update(desc=desc, config=asdict(cfg), seconds=round(time.time() - t0))
        r.pop("probs")
        results["candidates"][name] = r
        curve = " ".join(f"{e}:{a:.3f}" for e, a in r["curve"].items())
        print(f"{name:7s} best {r['best_acc']:.3f}@{r['best_epoch']:<3d} final {r['final_acc']:.3f} "
              f"1-patch {r['one_patch_acc']:.3f} ({r['seconds']}s)  {desc}\n        curve {curve}", flush=True)

    if args.ensemble > 1 and (results["candidates"] or args.ensemble_of):
        # Rank by the mean of the curve's last half, less noisy than its single maximum.
        def score(r):
            vals = list(r["curve"].values())
            return float(np.mean(vals[len(vals) // 2:]))

        best = args.ensemble_of or max(results["candidates"], key=lambda n: score(results["candidates"][n]))
        cfg = CANDIDATES[best][0]
        t0 = time.time()
        r = cv_candidate(data, splits, cfg, seeds=tuple(range(args.ensemble)), epochs=args.epochs)
        r.update(desc=f"{best} x {args.ensemble} seeds averaged", config=asdict(cfg),
                 seconds=round(time.time() - t0))
        # For reference only: the ensemble averaged with the best linear model, per epoch.
        best_c = max(lin, key=lin.get)
        blend = {e: float((((p + lin_oof[best_c]) / 2).argmax(1) == data.y).mean())
                 for e, p in r.pop("probs").items()}
        r["blend_with_linear_curve"] = blend
        results["ensemble"] = {"of": best, **r}
        curve = " ".join(f"{e}:{a:.3f}" for e, a in r["curve"].items())
        print(f"ensemble of {args.ensemble} x {best}: best {r['best_acc']:.3f}@{r['best_epoch']} "
              f"final {r['final_acc']:.3f} 1-patch {r['one_patch_acc']:.3f} ({r['seconds']}s)\n"
              f"        curve {curve}", flush=True)
        print(f"  averaged with linear {best_c}: " + " ".join(f"{e}:{a:.3f}" for e, a in blend.items()), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
