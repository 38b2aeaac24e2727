"""CPU cost of MSD_musicnn taggrams: seconds of CPU per minute of audio.

Times, on real GTZAN audio (22050 Hz; ``../shared/gtzan/audio/*.au``, 5 min in all),
the two stages the pipeline runs:

* ``mel_patches``  resample to 16 kHz + log-mel + patching (what joblib workers do),
* ``taggrams``     the Keras forward pass over all patches, batched (main process),

as process CPU time (all threads) and wall time, with TensorFlow limited to
``--threads`` intra-op threads. Also prints the weights file size.

    /work/venv/bin/python benchmarks/bench_musicnn.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import soundfile as sf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from libtagger.audio import musicnn
    from libtagger.paths import models_dir, shared_gtzan_dir

    clips = sorted((shared_gtzan_dir() / "audio").glob("*.au"))
    if not clips:
        raise SystemExit(f"no .au clips under {shared_gtzan_dir() / 'audio'}")
    audio = [sf.read(p, dtype="float32") for p in clips]
    minutes = sum(y.size / sr for y, sr in audio) / 60

    model = musicnn.load_frontend()
    musicnn.taggrams(np.zeros((2, 187, 96), np.float32), model=model)   # warm up (graph tracing)

    c0, w0 = time.process_time(), time.perf_counter()
    patches = np.concatenate([musicnn.mel_patches(y, sr=sr) for y, sr in audio])
    mel_cpu, mel_wall = time.process_time() - c0, time.perf_counter() - w0

    c0, w0 = time.process_time(), time.perf_counter()
    rows = musicnn.taggrams(patches, model=model, batch_size=args.batch_size)
    tag_cpu, tag_wall = time.process_time() - c0, time.perf_counter() - w0

    size = (models_dir() / "musicnn" / musicnn.WEIGHTS_NAME).stat().st_size
    print(f"{len(clips)} clips, {minutes:.2f} min of audio, {len(rows)} patches, "
          f"threads={args.threads}, batch={args.batch_size}")
    print(f"mel_patches: {mel_cpu / minutes:.2f} s CPU/min audio ({mel_wall / minutes:.2f} s wall/min)")
    print(f"taggrams:    {tag_cpu / minutes:.2f} s CPU/min audio ({tag_wall / minutes:.2f} s wall/min)")
    print(f"weights: {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
