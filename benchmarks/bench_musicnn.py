"""MSD_musicnn front-end: Keras (TensorFlow) against the NumPy forward pass the workers run.

For each runtime, in a fresh process of its own (one thread: TensorFlow's intra-op pool, or
BLAS through threadpoolctl), on real GTZAN audio (``../shared/gtzan/audio/*.au``, ten 30-s
clips, 280 patches):

* ``ms/patch``     CPU time of the forward pass per 3-s patch (after one warm-up call),
* ``MB at load``   peak memory (VmHWM) after importing what a scan worker imports + the model,
* ``MB peak``      VmHWM after the ten clips (mel patches of one clip at a time),

then the parity of the NumPy taggrams with the Keras ones (Pearson correlation per clip, and
the largest absolute difference), and the CPU of ``mel_patches`` per minute of audio.

``--startup DIR`` also measures the start-up of ``libtagger scan --dry-run DIR``: seconds from
starting the process to the first read of an audio file by a worker (the files' access times,
set back an hour first; ext4 ``relatime`` updates them on that read). ``--repo PATH`` runs
another checkout (``git worktree add /tmp/before COMMIT``) with this venv, for a before/after.

    nice -n 5 .venv/bin/python benchmarks/bench_musicnn.py
    nice -n 5 .venv/bin/python benchmarks/bench_musicnn.py --startup /tmp/some-tracks --repo /tmp/before
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, soundfile as sf
import librosa, libtagger.audio.features, libtagger.audio.analysis   # what a worker holds
from libtagger.audio import musicnn

def hwm():
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]) / 1024

kind, clips = sys.argv[1], sys.argv[2:]
if kind == "keras":
    from libtagger.tf_quiet import import_tensorflow_quietly
    import_tensorflow_quietly()
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = musicnn.load_frontend()
    run = lambda p: musicnn.taggrams(p, model=model)
else:
    from libtagger.audio.musicnn_numpy import load_runtime
    run = load_runtime().taggrams
run(np.zeros((1, 187, 96), np.float32))
at_load = hwm()
cpu, n, rows = 0.0, 0, []
for path in clips:
    y, sr = sf.read(path, dtype="float32")
    patches = musicnn.mel_patches(y, sr=sr)
    t = time.process_time()
    rows.append(run(patches))
    cpu += time.process_time() - t
    n += len(patches)
np.save(os.environ["BENCH_OUT"], np.concatenate(rows))
print(json.dumps({"ms_per_patch": 1000 * cpu / n, "patches": n, "mb_at_load": at_load, "mb_peak": hwm(),
                  "lens": [len(r) for r in rows]}))
"""


def measure(kind: str, clips: list[Path], out: Path) -> dict:
    env = dict(os.environ, BENCH_OUT=str(out), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", CHILD, kind, *map(str, clips)], capture_output=True,
                          text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def startup(folder: Path, repo: Path | None, runs: int) -> list[float]:
    """Seconds from process start to a worker's first read of an audio file, per run."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    exe = [sys.executable, "-c", "from libtagger.cli import app; app()"]
    env = dict(os.environ)
    if repo is not None:
        env["PYTHONPATH"] = str(repo)
    out = []
    for _ in range(runs):
        for p in files:  # access time an hour back, before the modification time: relatime updates it
            st = p.stat()
            os.utime(p, ns=(st.st_mtime_ns - 3600 * 10**9, st.st_mtime_ns))
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.time()
            subprocess.run([*exe, "scan", "--dry-run", "--quiet", "--index", f"{tmp}/i.db", str(folder)],
                           env=env, check=True, capture_output=True)
        first = min(p.stat().st_atime for p in files)
        out.append(first - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--startup", type=Path, default=None, help="a folder of audio files to scan")
    parser.add_argument("--repo", type=Path, default=None, help="checkout to measure the start-up of")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import soundfile as sf

    from libtagger.audio import musicnn
    from libtagger.paths import shared_gtzan_dir

    if args.startup is not None:
        times = startup(args.startup, args.repo, args.runs)
        print(f"start-up ({args.repo or 'this checkout'}): process start -> first file read by a worker: "
              + ", ".join(f"{t:.2f}" for t in times) + f" s (median {sorted(times)[len(times) // 2]:.2f} s)")
        return

    clips = sorted((shared_gtzan_dir() / "audio").glob("*.au"))
    if not clips:
        raise SystemExit(f"no .au clips under {shared_gtzan_dir() / 'audio'}")
    with tempfile.TemporaryDirectory() as tmp:
        results = {kind: measure(kind, clips, Path(tmp) / f"{kind}.npy") for kind in ("keras", "numpy")}
        rows = {kind: np.load(Path(tmp) / f"{kind}.npy") for kind in results}
    print(f"{len(clips)} clips, {results['numpy']['patches']} patches, one thread each")
    print(f"{'runtime':8} {'ms/patch':>9} {'MB at load':>11} {'MB peak':>8}")
    for kind, r in results.items():
        print(f"{kind:8} {r['ms_per_patch']:9.1f} {r['mb_at_load']:11.0f} {r['mb_peak']:8.0f}")
    bounds = np.cumsum(results["numpy"]["lens"])[:-1]
    corrs = [float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
             for a, b in zip(np.split(rows["numpy"], bounds), np.split(rows["keras"], bounds))]
    print(f"parity numpy vs keras: min correlation per clip {min(corrs):.6f}, "
          f"max |diff| {float(np.abs(rows['numpy'] - rows['keras']).max()):.2e}")

    audio = [sf.read(p, dtype="float32") for p in clips]
    minutes = sum(y.size / sr for y, sr in audio) / 60
    c0 = time.process_time()
    for y, sr in audio:
        musicnn.mel_patches(y, sr=sr)
    print(f"mel_patches: {(time.process_time() - c0) / minutes:.2f} s CPU per minute of audio")


if __name__ == "__main__":
    main()
