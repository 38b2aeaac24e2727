"""Decode speed per format: a 30-s window from a 4-min stereo 44.1 kHz file.

For every format the script writes one 4-minute file (music-like test signal, encoded by
soundfile/ffmpeg as in tests/conftest.py), then times, as the median of ``--repeat`` runs:

* ``probe``      header only (ffprobe results cache cleared each time: the first-call cost),
* ``window``     ``load(sr=None, offset=105, duration=30)``: decode + down-mix, native rate,
* ``window@22k`` the same resampled to 22050 Hz (what the feature pipeline asks for),
* ``fingerprint`` ``audio_fingerprint`` (20 s at the start + 2 s in the middle).

Seconds per minute of decoded audio = window time / 0.5 min, as wall-clock and as CPU time
(this process + its ffmpeg children; steadier than wall-clock on a busy machine).

    /work/venv/bin/python benchmarks/bench_decode.py            # ~1 min on one core
    /work/venv/bin/python benchmarks/bench_decode.py --formats .mp3,.m4a --repeat 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import make_audio  # noqa: E402  (writes real files in every format)

from libtagger.audio import decode  # noqa: E402
from libtagger.audio.decode import load, probe  # noqa: E402
from libtagger.audio.fingerprint import audio_fingerprint  # noqa: E402

ALL = [".wav", ".aiff", ".au", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".alac.m4a", ".wma"]


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (ffmpeg/ffprobe)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def median_time(fn, repeat: int) -> float:
    """Median wall-clock seconds of ``fn()``; its median CPU seconds go to CPU[-1]."""
    times, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), cpu_seconds()
        fn()
        times.append(time.perf_counter() - t)
        cpus.append(cpu_seconds() - c)
    CPU.append(statistics.median(cpus))
    return statistics.median(times)


CPU: list[float] = []  # wall time suffers on a shared machine; CPU time much less


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--formats", default=",".join(ALL))
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    load(make_audio(Path(tempfile.mkdtemp()) / "warm.wav", 1.0), sr=22050)  # import librosa/soxr once

    print(f"{'format':<10} {'probe ms':>9} {'window s':>9} {'s/min':>7} {'cpu s/min':>9} "
          f"{'@22k s':>8} {'s/min':>7} {'cpu s/min':>9} {'fprint s':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for ext in args.formats.split(","):
            if ext == ".au":
                import soundfile as sf
                from conftest import music_like

                path = Path(tmp) / "song.au"
                sf.write(path, music_like(args.minutes * 60), 44100, format="AU", subtype="PCM_16")
            else:
                path = make_audio(Path(tmp) / f"song{ext}", args.minutes * 60)
            # uncached: ffprobe really runs (MP4/WMA); later calls on the same file hit the cache
            t_probe = median_time(lambda: (decode._FFPROBE_CACHE.clear(), probe(path)), args.repeat)
            t_win = median_time(lambda: load(path, offset=105.0, duration=30.0), args.repeat)
            t_22k = median_time(lambda: load(path, sr=22050, offset=105.0, duration=30.0), args.repeat)
            t_fp = median_time(lambda: audio_fingerprint(path), args.repeat)
            cpu_win, cpu_22k = CPU[-3], CPU[-2]
            print(f"{ext:<10} {1000 * t_probe:>9.1f} {t_win:>9.3f} {t_win / 0.5:>7.3f} {cpu_win / 0.5:>9.3f} "
                  f"{t_22k:>8.3f} {t_22k / 0.5:>7.3f} {cpu_22k / 0.5:>9.3f} {t_fp:>9.3f}", flush=True)


if __name__ == "__main__":
    main()
