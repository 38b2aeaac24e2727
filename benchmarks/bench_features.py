"""Speed and parity of the 57 GTZAN features: fast ``segment_features`` vs plain-librosa ``paper_segment_features``.

Both functions run on the same 10 original 30-s GTZAN clips in one process:
one warm-up call each (numba kernels are compiled or loaded from cache), then
``--repeats`` passes over all clips, the two functions interleaved within each
pass so machine load hits both alike. Reports the median seconds per segment
(wall and CPU), the speed ratio, and each function's parity with
``features_30_sec.csv``: the worst column error in units of that column's std
over the 1000 rows, and the worst per-clip median relative error.

Usage (from the repository root)::

    /work/venv/bin/python benchmarks/bench_features.py [--gtzan ../shared/gtzan] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gtzan", type=Path, default=ROOT.parent / "shared" / "gtzan",
                        help="GTZAN folder holding features_30_sec.csv and audio/ (default: ../shared/gtzan)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the 10 clips (default 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads (default 1: one joblib worker's share)")
    args = parser.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import librosa
    import numpy as np

    from libtagger.audio.features import FEATURE_NAMES, SAMPLE_RATE, paper_segment_features, segment_features

    gtzan = args.gtzan.parent if args.gtzan.name == "audio" else args.gtzan
    table_path = gtzan / "features_30_sec.csv"
    if not table_path.exists():
        print(f"error: {table_path} not found (pass --gtzan DIR)", file=sys.stderr)
        return 2
    with open(table_path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = {r[0]: np.array([float(v) for v in r[2:-1]]) for r in reader}
    assert tuple(header[2:-1]) == FEATURE_NAMES, "table columns differ from FEATURE_NAMES"
    std = np.vstack(list(rows.values())).std(axis=0)

    clips = {g: librosa.load(gtzan / "audio" / f"{g}.00000.au", sr=SAMPLE_RATE)[0] for g in GENRES}
    seconds = np.mean([y.size for y in clips.values()]) / SAMPLE_RATE
    functions = {"segment_features": segment_features, "paper_segment_features": paper_segment_features}

    warm = clips["blues"]
    for fn in functions.values():
        fn(warm, sr=SAMPLE_RATE)

    wall: dict[str, list[float]] = {name: [] for name in functions}
    cpu: dict[str, list[float]] = {name: [] for name in functions}
    results: dict[str, dict[str, np.ndarray]] = {name: {} for name in functions}
    for rep in range(args.repeats):
        for name, fn in functions.items():
            w0, c0 = time.perf_counter(), time.process_time()
            for genre, y in clips.items():
                results[name][genre] = fn(y, sr=SAMPLE_RATE)
            wall[name].append((time.perf_counter() - w0) / len(clips))
            cpu[name].append((time.process_time() - c0) / len(clips))
        print(f"pass {rep + 1}/{args.repeats}: " + ", ".join(
            f"{name} {wall[name][-1]:.3f} s" for name in functions), file=sys.stderr)

    print(f"{len(clips)} GTZAN clips of {seconds:.1f} s, {args.repeats} passes, {args.threads} thread(s); "
          f"median seconds per segment:")
    for name in functions:
        print(f"  {name:24s} wall {np.median(wall[name]):.4f} s   cpu {np.median(cpu[name]):.4f} s")
    fast, paper = "segment_features", "paper_segment_features"
    print(f"  speed ratio (paper / fast): wall {np.median(wall[paper]) / np.median(wall[fast]):.1f}x, "
          f"cpu {np.median(cpu[paper]) / np.median(cpu[fast]):.1f}x")

    print("parity with features_30_sec.csv (worst over the 10 clips):")
    for name in functions:
        err = np.vstack([np.abs(results[name][g] - rows[f"{g}.00000.au"]) for g in GENRES])
        in_std = err / std
        rel = np.median(err / np.abs(np.vstack([rows[f"{g}.00000.au"] for g in GENRES])), axis=1)
        clip, col = np.unravel_index(int(np.argmax(in_std)), in_std.shape)
        print(f"  {name:24s} max |error| {in_std.max() * 100:.2f} % of a column std "
              f"({GENRES[clip]} {FEATURE_NAMES[col]}), max per-clip median relative error {rel.max():.1e}")
    diff = max(float((np.abs(results[fast][g] - results[paper][g]) / std).max()) for g in GENRES)
    print(f"  fast vs paper: max |difference| {diff:.1e} of a column std")
    return 0


if __name__ == "__main__":
    sys.exit(main())
