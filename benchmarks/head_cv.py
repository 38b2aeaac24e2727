"""Nested artist-grouped CV of the shipped musicnn-head recipe beside the linear baseline (same folds).

Prints the table of models/README.md's musicnn-head section and, with ``--out DIR``, writes
the out-of-fold predictions (``cv_oof.json``: every clip's true genre, outer fold and both
candidates' raw and calibrated probabilities, so every figure can be recomputed), the
reliability diagram (``reliability.png``) and the ``--min-confidence`` table.
Protocol: :mod:`libtagger.training.head_cv`. The test split is never read.

    .venv/bin/python benchmarks/head_cv.py --out models/musicnn-head       # ~10-40 min on 2 cores
    .venv/bin/python benchmarks/head_cv.py --outer-folds 1 --max-epochs 10  # smoke run
    .venv/bin/python benchmarks/head_cv.py --test-hops 61,122,183           # inference patch hop (issue #10)

``--test-hops`` scores the same outer models (trained on hop-61 taggrams, as shipped) on the
outer-test taggrams thinned to every 2nd / 3rd row: exactly the taggram the scan computes with
``musicnn.INFERENCE_PATCH_HOP`` 122 / 183 (patches start at frames 0, hop, 2 hop ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from libtagger.paths import shared_gtzan_dir  # noqa: E402
from libtagger.audio.musicnn import PATCH_HOP  # noqa: E402
from libtagger.training.head_cv import (artist_groups, confidence_table, format_cv_table,  # noqa: E402
                                        format_hop_table, run_nested_cv, summarize, validation_metrics)
from libtagger.training.head_training import RECIPE, TAGGRAM_NPZ, load_clipset  # noqa: E402
from libtagger.training.tf_setup import configure_tensorflow  # noqa: E402


def reliability_png(y: np.ndarray, raw: np.ndarray, calibrated: np.ndarray, path: Path, n_bins: int = 15) -> None:
    """Accuracy vs mean top-1 confidence per equal-width bin, before and after temperature."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from libtagger.training.evaluate import expected_calibration_error

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect calibration")
    edges = np.linspace(0, 1, n_bins + 1)
    for probs, label, marker in ((raw, "raw", "o"), (calibrated, "after temperature", "s")):
        conf, right = probs.max(1), probs.argmax(1) == y
        xs, ys, ns = [], [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            m = (conf > lo) & (conf <= hi)
            if m.any():
                xs.append(conf[m].mean()); ys.append(right[m].mean()); ns.append(m.sum())
        ece = expected_calibration_error(probs, y)
        ax.plot(xs, ys, marker=marker, label=f"{label} (ECE {ece:.3f})")
        for x, yy, n in zip(xs, ys, ns):
            ax.annotate(str(n), (x, yy), fontsize=6, xytext=(3, -8), textcoords="offset points")
    ax.set_xlabel("top-1 confidence (bin mean)")
    ax.set_ylabel("accuracy in bin")
    ax.set_xlim(0, 1); ax.set_ylim(0, 1)
    ax.set_title(f"musicnn-head, out-of-fold ({len(y)} clips, nested artist-grouped CV)", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def valid_audio_npz(gtzan: Path, out: Path) -> int:
    """Taggrams of the valid-split clips that have a .wav in ``<gtzan>/audio``, computed with the scan's
    own analysis and front-end (one segment per file), saved as a taggram npz (X, Y, IDS). Returns the
    clip count. A clip of the test split is refused, whatever the files say."""
    from libtagger.genres import GENRES
    from libtagger.audio.analysis import AnalysisJob, analyze_file
    from libtagger.training.dataset import load_split

    valid, test = set(load_split(gtzan / "splits" / "valid_filtered.txt")), set(load_split(gtzan / "splits" / "test_filtered.txt"))
    files = sorted(f for f in (gtzan / "audio").glob("*.wav") if f.stem in valid)
    X, Y, ids = [], [], []
    for f in files:
        if f.stem in test:
            raise SystemExit(f"{f.stem} is in the test split: never train on it")
        t = np.asarray(analyze_file(AnalysisJob(str(f), max_segments=1)).taggrams[0], dtype=np.float32)
        X.append(t); Y += [GENRES.index(f.stem.split(".")[0])] * len(t); ids += [f.stem] * len(t)
    np.savez(out, X=np.concatenate(X), Y=np.array(Y), IDS=np.array(ids))
    return len(files)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gtzan", type=Path, default=None, help="GTZAN reference data (default: ../shared/gtzan)")
    ap.add_argument("--out", type=Path, default=None, help="folder for cv_oof.json, cv_summary.json, reliability.png")
    ap.add_argument("--outer-folds", type=int, default=5, help="run only the first N outer folds (smoke runs)")
    ap.add_argument("--max-epochs", type=int, default=60)
    ap.add_argument("--extra-train", type=Path, default=None,
                    help="npz (X, Y, IDS) of extra clips added to every training fold only (never tested on)")
    ap.add_argument("--make-valid-audio-npz", type=Path, default=None,
                    help="write the taggram npz of the valid-split clips with audio (for --extra-train) and stop")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--test-hops", default="61",
                    help="inference patch hops to score the outer models at, multiples of 61 (e.g. 61,122,183)")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary (every candidate) here")
    args = ap.parse_args(argv)

    gtzan = args.gtzan or shared_gtzan_dir()
    if args.make_valid_audio_npz is not None:
        print(f"wrote {args.make_valid_audio_npz}: {valid_audio_npz(gtzan, args.make_valid_audio_npz)} clips")
        return 0
    csv = gtzan / "features_30_sec.csv"
    configure_tensorflow(seed=0, threads=args.threads)
    data = load_clipset(gtzan / TAGGRAM_NPZ, csv, gtzan / "splits" / "train_filtered.txt")
    extra = load_clipset(args.extra_train, csv) if args.extra_train else None
    if extra is not None:
        from libtagger.training.dataset import load_split
        leaked = set(extra.keys) & (set(load_split(gtzan / "splits" / "test_filtered.txt")) | set(data.keys))
        if leaked:
            raise SystemExit(f"--extra-train holds test- or train-split clips: {sorted(leaked)[:5]}")
    hops = [int(h) for h in args.test_hops.split(",")]
    if any(h <= 0 or h % PATCH_HOP for h in hops):
        raise SystemExit(f"--test-hops must be positive multiples of {PATCH_HOP}, got {args.test_hops}")
    groups = artist_groups(data.keys, gtzan)
    cv = run_nested_cv(data, groups, cfg=RECIPE.config, transform=RECIPE.feature_transform,
                       max_epochs=args.max_epochs, n_outer=args.outer_folds, extra_train=extra,
                       test_strides=[h // PATCH_HOP for h in hops], log=lambda s: print(s, flush=True))
    summary = summarize(cv)
    print(format_cv_table(summary))
    if len(cv["probs"]) > 2:
        print("\n" + format_hop_table(summary, cv))
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    table = confidence_table(cv["probs_T"]["recipe"], cv["y"])
    print("\n| --min-confidence | tracks written | accuracy of written tags |\n|---|---|---|")
    for r in table:
        print(f"| {r['min_confidence']:.1f} | {r['written_share']:.1%} ({r['n_written']}) | {r['written_accuracy']:.3f} |")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        from libtagger.genres import GENRES
        oof = {"protocol": "nested artist-grouped CV on the fault-filtered train split (libtagger.training.head_cv); "
                           "probs = outer-fold predictions, probs_T = after the temperature fitted on the inner folds",
               "labels": list(GENRES), "n_extra_train": cv["n_extra_train"], "folds": cv["folds"],
               "tracks": [{"id": i, "true": GENRES[int(t)], "fold": int(f),
                           **{f"{c}_{kind}": [round(float(v), 6) for v in cv[kind][c][j]]
                              for c in cv["probs"] for kind in ("probs", "probs_T")}}
                          for j, (i, t, f) in enumerate(zip(cv["ids"], cv["y"], cv["fold"]))]}
        (args.out / "cv_oof.json").write_text(json.dumps(oof) + "\n")
        validation = validation_metrics(summary, table, len(cv["y"]))
        (args.out / "cv_summary.json").write_text(json.dumps({"summary": summary, "min_confidence": table,
                                                              "validation": validation}, indent=1) + "\n")
        reliability_png(cv["y"], cv["probs"]["recipe"], cv["probs_T"]["recipe"], args.out / "reliability.png")
        print(f"wrote {args.out}/cv_oof.json, cv_summary.json, reliability.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
