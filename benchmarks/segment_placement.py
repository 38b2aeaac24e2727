"""Where the 30-s segments of a long track should sit: today's placement against more segments and
windows kept away from the intro and the outro (issue 20, measured and not shipped).

Why it was measured: on realdev's full songs the first segment (from 0 s) is often a sparse intro
that the default model calls Reggae (B.B. King, Dua Lipa, Harry Styles, Michael Jackson, the
Beatles: ``benchmarks/real_yardsticks.py`` stores each segment's verdict). GTZAN cannot judge a
placement: its clips are 30 s, one window each, so only realdev's recordings of at least 60 s
(19 of the ten genres, 5 of others) are a yardstick here, and their figures are counts.

Result (2026-12-06, counts on the 19): no placement changes top-1 (12/19 today, 12 with 5
segments or a 10 % inset, 11 with a 20 % inset). Insets raise the confidence of most tracks,
right and wrong alike: a 10 % inset writes 14 (11 right) where today's writes 10 (10 right). The
intro is not what misleads the model: the same recordings stay wrong wherever they are cut.
Not shipped.

Policies, each over the same decoded audio and the default model (``musicnn-head``), voted as the
scan votes (mean of the segments' probabilities), with the front-end gain the scan applies:

* ``today 3``: :func:`libtagger.audio.segments.plan_segments` with 3 segments (the scan's default);
* ``today 5``: the same with ``--max-segments 5`` (5/3 of the analysis time);
* ``inset f, n``: n segments spread over the track without its first and last share f.

Run::

    .venv/bin/python benchmarks/segment_placement.py            # ~4 min on 2 cores
    .venv/bin/python benchmarks/segment_placement.py --detail   # and one line per recording
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from libtagger.audio.segments import plan_segments  # noqa: E402
from libtagger.genres import GENRES  # noqa: E402

REALDEV = ROOT.parent / "shared" / "realdev" / "audio"
MIN_SECONDS = 60.0  # shorter recordings get at most two windows: a placement barely moves them
THRESHOLD = 0.6  # the scan's default --min-confidence


def policies(duration: float) -> dict[str, list[tuple[float, float]]]:
    """Policy name -> the (start, end) windows it analyses in a track of ``duration`` seconds."""
    out = {"today 3": plan_segments(duration, max_segments=3),
           "today 5": plan_segments(duration, max_segments=5)}
    for share in (0.1, 0.2):
        margin = duration * share
        if duration - 2 * margin < 30.0:
            continue
        for n in (3, 5):
            out[f"inset {share:g}, {n}"] = [(round(s + margin, 3), round(e + margin, 3))
                                            for s, e in plan_segments(duration - 2 * margin, max_segments=n)]
    return out


def analyse(path: Path) -> tuple[str, dict[str, tuple[np.ndarray, list[np.ndarray]]]]:
    """Decode every window any policy needs once; per policy its (features, taggrams) as the scan
    computes them (the front-end gain from the policy's own segments)."""
    from libtagger.audio import decode
    from libtagger.audio.analysis import analyse_windows, segment_taggrams

    plans = policies(decode.probe(str(path)).duration)
    every = sorted({w for ws in plans.values() for w in ws})
    analysed = analyse_windows(str(path), every, pulse=False)
    audio, rows = dict(zip(every, analysed.segments)), dict(zip(every, analysed.features))
    out = {}
    for name, windows in plans.items():
        policy_rows = np.vstack([rows[w] for w in windows])
        out[name] = (policy_rows, segment_taggrams([audio[w] for w in windows], policy_rows))
    return path.stem, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detail", action="store_true", help="one line per recording")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if not REALDEV.is_dir():
        sys.exit(f"{REALDEV} is missing: this benchmark needs ../shared/realdev beside the clone")
    from joblib import Parallel, delayed

    from libtagger.audio import decode
    from libtagger.classify.classifier import load_classifier

    files = [p for p in sorted(REALDEV.iterdir()) if decode.probe(str(p)).duration >= MIN_SECONDS]
    analysed = Parallel(n_jobs=args.jobs)(delayed(analyse)(p) for p in files)
    model = load_classifier()
    names = list(policies(3600.0))
    totals = {n: np.zeros(3, dtype=int) for n in names}  # top-1 right, written, written right
    n_ten = 0
    for stem, per_policy in analysed:
        truth = stem.split("__")[0]
        cells = []
        for name in names:
            if name not in per_policy:
                cells.append(f"{'-':16s}")
                continue
            probs = model.predict(*per_policy[name]).mean(axis=0)
            genre, written = GENRES[int(np.argmax(probs))], probs.max() >= THRESHOLD
            if truth in GENRES:
                totals[name] += (genre == truth, written, written and genre == truth)
            cells.append(f"{genre[:7]:7s}{probs.max():.2f}{'*' if genre == truth else ' '}    ")
        n_ten += truth in GENRES
        if args.detail:
            print(f"{stem[:36]:36s} " + "".join(cells))
    print(f"\nrealdev recordings of >= {MIN_SECONDS:.0f} s: {n_ten} of the ten genres, "
          f"{len(analysed) - n_ten} of others; counts on the {n_ten}, written = confidence >= {THRESHOLD}")
    print(f"{'placement':16s} {'top-1':>6s} {'written':>8s} {'right':>6s}")
    for name in names:
        right, written, written_right = totals[name]
        print(f"{name:16s} {right:>3d}/{n_ten} {written:>8d} {written_right:>6d}")


if __name__ == "__main__":
    main()
