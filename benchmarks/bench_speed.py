"""Scan speed at scale, in one run: the decode floor, ``--jobs 1`` / ``--jobs 2``, Dask with 1 and 2 workers.

Issue #10's figures, measured side by side on the same library so machine load hits them alike:

* **decode floor**: ffmpeg decoding every file in full to 22.05 kHz mono float (``-f f32le`` to a
  pipe that is read and dropped), one file after another; timed ``--floor-repeats`` times before
  the scans and as often after them. The floor is the fastest pass (load only ever slows a pass
  down); min / median / max are printed, and each run's ratio to the floor as a range, wall /
  slowest pass to wall / fastest pass: a wide spread says the machine was not idle;
* ``libtagger scan --dry-run`` (a fresh process and index per run) with ``--jobs 1``,
  ``--jobs 2``, and ``--backend dask`` against a local cluster (``dask scheduler`` + ``dask worker
  --nworkers N --nthreads 1``, a fresh cluster per run) of 1 and of 2 worker processes;
* per configuration: tracks per minute over the whole run, the **steady** rate without start-up,
  both as a ratio to the decode floor, peak memory (VmHWM) of the scanning process and of each
  worker process, projected hours for a 50,000-track library at the steady rate; the Dask
  2-worker / 1-worker ratio; and whether every verdict (status, genre, confidence to 1e-6) of
  each run equals the ``--jobs 1`` run's.

Steady rate: the same configuration also scans a folder holding only the first track (fresh
process, index and cluster); with w workers a run of N tracks costs start-up + (N / w) x t and
the one-track run start-up + t, so the per-track time without start-up is
(wall(N) - wall(1)) / (N - w).

The library: ``--tracks`` files of ``--seconds`` each, MP3 128k, FLAC and M4A (AAC 128k) in
turn, 44.1 kHz stereo, each looped from the GTZAN clips of one genre (``../shared/gtzan/audio``).

    .venv/bin/python benchmarks/bench_speed.py                     # 24 four-minute tracks, ~6-12 min
    .venv/bin/python benchmarks/bench_speed.py --tracks 4 --seconds 60   # smoke run, ~2 min
    .venv/bin/python benchmarks/bench_speed.py --floor-only        # the floor alone, ~2 min

The machine is shared: the load average is printed with every run; CPU seconds of each scan
(its process and the workers and ffmpeg processes it reaped; a Dask worker's CPU is not a
child of the scan) are printed beside wall seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from bench_scan import CLIP_SR, GENRES, USER_ENV, WRAPPER, children_cpu, gtzan_clips, load_text, say, table  # noqa: E402

#: ffmpeg arguments per format of the library (the codecs of tests/conftest.py's FORMATS).
LIBRARY_CODECS = {".mp3": ["-c:a", "libmp3lame", "-b:a", "128k"], ".flac": ["-c:a", "flac"],
                  ".m4a": ["-c:a", "aac", "-b:a", "128k"]}
PROJECTED_TRACKS = 50_000
SAMPLE_EVERY = 0.2  # seconds between two looks at the worker processes' VmHWM


# --------------------------------------------------------------------------- library and floor


def build_library(folder: Path, n_tracks: int, seconds: float, jobs: int) -> list[Path]:
    """``n_tracks`` files of ``seconds``, MP3/FLAC/M4A in turn at 44.1 kHz stereo, each looped from one genre."""
    clips = gtzan_clips()
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def make(i: int) -> Path:
        genre = GENRES[i % len(GENRES)]
        ext = list(LIBRARY_CODECS)[i % len(LIBRARY_CODECS)]
        parts, total = [], 0
        while total < seconds * CLIP_SR:
            for k in rng.permutation(len(clips[genre])):
                parts.append(clips[genre][k])
                total += clips[genre][k].size
        src = folder / f".src{i}.wav"
        sf.write(src, np.concatenate(parts)[: int(seconds * CLIP_SR)], CLIP_SR, subtype="PCM_16")
        path = folder / f"{i:02d} {genre}{ext}"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-ar", "44100", "-ac", "2",
                        *LIBRARY_CODECS[ext], str(path)], check=True)
        src.unlink()
        return path

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(make, range(n_tracks)))


def decode_floor(paths: list[Path]) -> float:
    """Wall seconds for ffmpeg to decode every file in full to 22.05 kHz mono float, one after another."""
    t0 = time.perf_counter()
    for path in paths:
        proc = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1",
                               "-ar", "22050", "-f", "f32le", "-"], capture_output=True, check=True)
        assert len(proc.stdout) > 0, path
    return time.perf_counter() - t0


def decode_floor_passes(paths: list[Path], repeats: int) -> list[float]:
    """``repeats`` timings of :func:`decode_floor`, each with the load average before it printed."""
    passes = []
    for k in range(repeats):
        say(f"decode floor pass {k + 1}/{repeats} ({load_text()})")
        passes.append(decode_floor(paths))
    return passes


def floor_summary(passes: list[float], audio_minutes: float) -> dict[str, float]:
    """min / median / max of the floor passes in seconds, and the min and max per audio minute."""
    return {"min": min(passes), "median": float(np.median(passes)), "max": max(passes),
            "passes": len(passes), "min_s_per_audio_min": min(passes) / audio_minutes,
            "max_s_per_audio_min": max(passes) / audio_minutes}


def floor_text(summary: dict[str, float], n: int) -> str:
    return (f"ffmpeg, every file in full to 22.05 kHz mono f32, one at a time, {summary['passes']:.0f} passes: "
            f"min {summary['min']:.2f} s, median {summary['median']:.2f} s, max {summary['max']:.2f} s "
            f"({summary['min_s_per_audio_min']:.3f}-{summary['max_s_per_audio_min']:.3f} s per audio minute); "
            f"floor = the fastest pass, {summary['min'] / n:.2f} s per track, {60 * n / summary['min']:.0f} tracks/min")


# --------------------------------------------------------------------------- processes and memory


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children of all its threads, recursively)."""
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{parent}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{parent}/task/{task}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
                    out += kids
                    todo += kids
    return out


def process_facts(pid: int) -> tuple[str, int] | None:
    """(command line, VmHWM in kB) of a live process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        with open(f"/proc/{pid}/status") as fh:
            hwm = next((int(line.split()[1]) for line in fh if line.startswith("VmHWM")), 0)
    except OSError:
        return None
    return cmd, hwm


def is_worker(cmd: str) -> bool:
    """A Python process doing analysis: not ffmpeg, not loky's or multiprocessing's bookkeeping."""
    return "python" in cmd and not any(s in cmd for s in ("resource_tracker", "semaphore_tracker", "forkserver"))


@dataclass
class MemoryWatch:
    """Samples the VmHWM of every process below ``roots`` until stopped: {pid: (cmd, peak kB)}."""

    roots: list[int]
    peaks: dict[int, tuple[str, int]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_EVERY)

    def sample(self) -> None:
        for root in self.roots:
            for pid in descendants(root):
                facts = process_facts(pid)
                if facts is not None and facts[1] >= self.peaks.get(pid, ("", 0))[1]:
                    self.peaks[pid] = facts

    def stop(self) -> list[int]:
        """Stop sampling; the peak MB of each worker process seen, largest first."""
        self._stop.set()
        self._thread.join()
        return sorted((kb // 1024 for cmd, kb in self.peaks.values() if is_worker(cmd)), reverse=True)


@contextlib.contextmanager
def dask_cluster(tmp: Path, workers: int) -> Iterator[tuple[str, int]]:
    """A fresh local ``dask scheduler`` + ``dask worker --nworkers W --nthreads 1``: (address, worker pid)."""
    import distributed

    scheduler_file = tmp / f"scheduler-{time.monotonic_ns()}.json"
    common = ["--no-dashboard", "--host", "127.0.0.1"]
    quiet = {"env": USER_ENV, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": tmp}
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--port", "0",
                               "--scheduler-file", str(scheduler_file), *common], **quiet)]
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", "--scheduler-file",
                                       str(scheduler_file), "--nworkers", str(workers), "--nthreads", "1",
                                       *common], **quiet))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        with distributed.Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
            address = client.scheduler.address
        yield address, procs[1].pid
    finally:
        for proc in procs[::-1]:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --------------------------------------------------------------------------- scans


@dataclass
class Scan:
    wall: float
    cpu: float
    scan_mb: float
    worker_mb: list[int]
    report: list[dict]
    load: str


def scan(folder: Path, index: Path, parallel: list[str], model: str | None, tmp: Path,
         watch_root: int | None = None) -> Scan:
    """``libtagger scan FOLDER --dry-run --report json`` in a fresh process, with its workers' peak memory."""
    usage = tmp / "rusage.json"
    usage.unlink(missing_ok=True)
    args = ["scan", str(folder), "--index", str(index), "--dry-run", "--report", "json", "--quiet", *parallel]
    if model:
        args += ["--model", model]
    load = load_text()
    cpu0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", WRAPPER, *args], env=dict(USER_ENV, BENCH_RUSAGE=str(usage)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    watch = MemoryWatch([proc.pid] + ([watch_root] if watch_root else []))
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    workers = watch.stop()
    if proc.returncode != 0:
        raise SystemExit(f"scan {' '.join(parallel)} failed (exit {proc.returncode}):\n{stderr[-3000:]}")
    info = json.loads(usage.read_text())
    return Scan(wall, children_cpu() - cpu0, info["maxrss_kb"] / 1024, workers, json.loads(stdout), load)


def verdicts(report: list[dict]) -> dict[str, tuple[str, str | None, float | None]]:
    return {Path(r["path"]).name: (r["status"], r.get("genre"), r.get("confidence")) for r in report}


def compare(report: list[dict], reference: list[dict]) -> str:
    """'equal' when every file has the same status, genre and confidence (to 1e-6) as in ``reference``."""
    a, b = verdicts(report), verdicts(reference)
    if a.keys() != b.keys():
        return f"DIFFERENT files ({len(a.keys() ^ b.keys())} not in both)"
    diff = [k for k in a if a[k][:2] != b[k][:2]]
    dconf = max((abs(a[k][2] - b[k][2]) for k in a if a[k][2] is not None and b[k][2] is not None), default=0.0)
    if diff:
        return f"DIFFERENT: {len(diff)} of {len(a)} verdicts (e.g. {diff[0]}: {a[diff[0]]} vs {b[diff[0]]})"
    return "equal" if dconf <= 1e-6 else f"same verdicts, max |dconf| {dconf:.1e}"


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=24, help="library size (default 24)")
    ap.add_argument("--seconds", type=float, default=240.0, help="length of each track (default 240)")
    ap.add_argument("--model", default=None, help="model name (default: the default model)")
    ap.add_argument("--no-dask", action="store_true", help="only the local runs")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--floor-repeats", type=int, default=3,
                    help="decode floor passes before the scans, and as many after (default 3)")
    ap.add_argument("--floor-only", action="store_true", help="time only the decode floor, no scan")
    args = ap.parse_args(argv)
    if args.floor_repeats < 1:
        raise SystemExit(f"--floor-repeats must be at least 1, got {args.floor_repeats}")
    import platform

    from libtagger.audio import musicnn
    from libtagger.audio.segments import DEFAULT_MAX_SEGMENTS
    from libtagger.classify.classifier import DEFAULT_MODEL

    n = args.tracks
    if n < 3:
        raise SystemExit("--tracks must be at least 3")
    started = time.perf_counter()
    print("## machine")
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}, {load_text()} at "
          f"start, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    commit = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], capture_output=True,
                            text=True).stdout.strip()
    print(f"code: {commit[:100]}; model {args.model or DEFAULT_MODEL}; musicnn.INFERENCE_PATCH_HOP "
          f"{musicnn.INFERENCE_PATCH_HOP}; up to {DEFAULT_MAX_SEGMENTS} x 30-s segments per track")
    tmp = Path(tempfile.mkdtemp(prefix="bench_speed-"))
    results: dict = {"tracks": n, "seconds": args.seconds, "runs": {}}
    try:
        say(f"building {n} tracks of {args.seconds:.0f} s")
        library = tmp / "library"
        paths = build_library(library, n, args.seconds, jobs=2)
        one = tmp / "one track"
        one.mkdir()
        shutil.copy2(paths[0], one / paths[0].name)
        size_mb = sum(p.stat().st_size for p in paths) / 2**20
        print(f"library: {n} tracks x {args.seconds / 60:.1f} min ({', '.join(LIBRARY_CODECS)} in turn, 44.1 kHz "
              f"stereo), {n * args.seconds / 60:.0f} min of audio, {size_mb:.0f} MB")

        audio_minutes = n * args.seconds / 60
        floor_before = decode_floor_passes(paths, args.floor_repeats)
        if args.floor_only:
            results["floor_s"] = floor_summary(floor_before, audio_minutes)
            print(f"\n## decode floor\n{floor_text(results['floor_s'], n)}")
            if args.json:
                args.json.write_text(json.dumps(results, indent=1) + "\n")
            return 0
        configs: list[tuple[str, int, list[str]]] = [("--jobs 1", 1, ["--jobs", "1"]), ("--jobs 2", 2, ["--jobs", "2"])]
        if not args.no_dask:
            configs += [("dask 1 worker", 1, []), ("dask 2 workers", 2, [])]
        runs: dict[str, dict] = {}
        for label, workers, parallel in configs:
            walls = {}
            for what, folder in (("one", one), ("all", library)):
                index = tmp / f"{label.replace(' ', '_')}-{what}.db"
                say(f"{label}: {what} ({load_text()})")
                if parallel:
                    walls[what] = scan(folder, index, parallel, args.model, tmp)
                else:
                    with dask_cluster(tmp, workers) as (address, worker_pid):
                        walls[what] = scan(folder, index, ["--backend", "dask", "--scheduler", address],
                                           args.model, tmp, watch_root=worker_pid)
            runs[label] = {"workers": workers, "one": walls["one"], "all": walls["all"]}
        floor_after = decode_floor_passes(paths, args.floor_repeats)
        floor_stats = floor_summary(floor_before + floor_after, audio_minutes)
        floor, slowest_floor = floor_stats["min"], floor_stats["max"]
        per_track_floor = floor / n

        reference = runs["--jobs 1"]["all"].report
        rows = []
        for label, r in runs.items():
            run, w = r["all"], r["workers"]
            steady = (run.wall - r["one"].wall) / (n - w)  # seconds per track without start-up
            r["steady_s"] = steady
            statuses: dict[str, int] = {}
            for row in run.report:
                statuses[row["status"]] = statuses.get(row["status"], 0) + 1
            same = "(reference)" if label == "--jobs 1" else compare(run.report, reference)
            rows.append([label, f"{run.wall:.1f}", f"{run.cpu:.0f}", f"{60 * n / run.wall:.1f}",
                         f"{run.wall / floor:.1f} ({run.wall / slowest_floor:.1f}-{run.wall / floor:.1f})",
                         f"{r['one'].wall:.1f}",
                         f"{60 / steady:.1f}" if steady > 0 else "-", f"{steady / per_track_floor:.1f}",
                         f"{run.scan_mb:.0f}", " ".join(str(m) for m in run.worker_mb[:4]) or "-",
                         f"{PROJECTED_TRACKS * steady / 3600:.1f}", same,
                         ", ".join(f"{v} {k}" for k, v in sorted(statuses.items())), run.load])
            results["runs"][label] = {
                "workers": w, "wall_s": run.wall, "cpu_s": run.cpu, "tracks_per_min": 60 * n / run.wall,
                "ratio_to_floor": run.wall / floor, "ratio_to_slowest_floor_pass": run.wall / slowest_floor,
                "one_track_wall_s": r["one"].wall,
                "steady_s_per_track": steady, "steady_tracks_per_min": 60 / steady if steady > 0 else None,
                "steady_ratio_to_floor": steady / per_track_floor, "scan_process_peak_mb": run.scan_mb,
                "worker_peak_mb": run.worker_mb, "projected_hours_50k": PROJECTED_TRACKS * steady / 3600,
                "equal_to_jobs_1": same, "statuses": statuses, "load_before": run.load}
        print(f"\n## decode floor\n{floor_text(floor_stats, n)}; before the scans "
              f"{', '.join(f'{t:.2f}' for t in floor_before)} s, after {', '.join(f'{t:.2f}' for t in floor_after)} s")
        print("\n## scan --dry-run (fresh process and index per run; Dask: a fresh local cluster per run)")
        print(table(["run", "wall s", "cpu s", "tracks/min", "x floor (range)", "1-track s", "steady tracks/min",
                     "steady x floor", "scan process MB", "worker MB", f"h per {PROJECTED_TRACKS:,}",
                     "verdicts vs --jobs 1", "statuses", "load before"], rows))
        lines = []
        for a, b in (("--jobs 1", "--jobs 2"), ("dask 1 worker", "dask 2 workers")):
            if a in runs and b in runs:
                ratio_steady = runs[a]["steady_s"] / runs[b]["steady_s"]
                ratio_whole = runs[a]["all"].wall / runs[b]["all"].wall
                lines.append(f"{b} / {a}: steady rate {ratio_steady:.2f}x, whole run {ratio_whole:.2f}x")
                results[f"ratio {b} / {a}"] = {"steady": ratio_steady, "whole_run": ratio_whole}
        print("\n" + "\n".join(lines))
        print("\nx floor = wall / decode floor (the fastest pass; range: wall / slowest pass to wall / fastest); steady = (wall(N) - wall(1 track)) / (N - workers) per track, "
              "i.e. without start-up; worker MB = VmHWM of each worker process (loky or Dask), sampled every "
              f"{SAMPLE_EVERY} s; scan process MB = VmHWM of the libtagger process; cpu s excludes Dask workers")
        results["floor_s"] = {**floor_stats, "before": floor_before, "after": floor_after, "floor": floor}
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")
        print(f"\n## done\ntotal {(time.perf_counter() - started) / 60:.1f} min, {load_text()} at the end")
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
