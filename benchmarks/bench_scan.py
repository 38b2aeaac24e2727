"""The whole pipeline at library scale: ``libtagger scan`` speed, its floor, memory, re-runs, start-up.

One command builds a realistic library in a temporary folder and measures, in one run:

1. **scan** end to end (a fresh ``libtagger`` process per run, fresh index): dry run and real
   write, each model, ``--jobs 1`` and ``--jobs 2``, and ``--backend dask`` on two local worker
   processes -> tracks per minute, seconds per minute of audio, the parallel scaling ratio, and
   the steady rate without start-up (from a one-track scan);
2. **features**: ``features.segment_features`` vs the paper-style per-feature librosa calls
   (``features.paper_segment_features``) on the same 30-s GTZAN clips, with each one's parity
   with ``features_30_sec.csv``;
3. **floor**: the worker's whole job (``analysis.analyze_file``) vs plain decoding of the same
   windows (``decode.load``), plus full-file ``librosa.load`` as a reference, in this process;
4. **memory**: peak RSS of one worker process analysing a 4-min track and a two-hour FLAC, and
   of the scanning process;
5. **no-op re-run** over a 10,000-file index: every file ``unchanged``;
6. **start-up** of ``query``/``stats``/``scan --help`` and whether TensorFlow gets imported.

The library is made of REAL audio: full-length tracks (3-6 min) looped from the GTZAN clips of
one genre (``../shared/gtzan/audio``), encoded at 44.1 kHz stereo as MP3, FLAC, M4A (AAC), Ogg
Vorbis and WAV.

    /work/venv/bin/python benchmarks/bench_scan.py --quick     # 2-4 min
    /work/venv/bin/python benchmarks/bench_scan.py             # 6-13 min on 2 shared cores

The machine is shared: the load average is printed with every scan; CPU seconds (this
process plus reaped child processes) are printed beside wall seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USER_ENV = dict(os.environ)  # scans run with the user's environment, not this process's thread limits
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # in-process measurements: one worker's share of the machine
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from conftest import FORMATS  # noqa: E402  (the ffmpeg codec arguments per extension)

GTZAN = ROOT.parent / "shared" / "gtzan"
GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
LIBRARY_FORMATS = (".mp3", ".flac", ".m4a", ".ogg", ".wav")
CLIP_SR = 22050

# Runs libtagger's CLI and leaves its peak RSS and whether TensorFlow was imported in $BENCH_RUSAGE.
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent's memory across fork+exec.
WRAPPER = """
import json, os, sys
sys.argv[0] = "libtagger"
try:
    from libtagger.cli import app
    app()
finally:
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
    with open(os.environ["BENCH_RUSAGE"], "w") as f:
        json.dump({"maxrss_kb": int(hwm), "tensorflow": "tensorflow" in sys.modules}, f)
"""

# One worker's job in a fresh process: its peak memory and time.
WORKER = """
import json, sys, time
from libtagger.audio.analysis import AnalysisJob, analyze_file
path, patches = sys.argv[1], sys.argv[2] == "1"
if path == "-":
    import librosa, libtagger.audio.features, libtagger.audio.musicnn  # what a worker holds before its first file
    result, seconds = None, 0.0
else:
    t = time.perf_counter()
    result = analyze_file(AnalysisJob(path, want_taggrams=patches))
    seconds = time.perf_counter() - t
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"vmhwm_kb": int(hwm),
                  "seconds": seconds, "ok": result is None or hasattr(result, "features"),
                  "error": getattr(result, "reason", None)}))
"""


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def load_text() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


# --------------------------------------------------------------------------- building the data


def gtzan_clips() -> dict[str, list[np.ndarray]]:
    """The GTZAN clips of ../shared/gtzan/audio per genre (22050 Hz mono float32)."""
    clips: dict[str, list[np.ndarray]] = {g: [] for g in GENRES}
    for path in sorted((GTZAN / "audio").iterdir()):
        genre = path.name.split(".")[0]
        if genre in clips and path.suffix in (".wav", ".au"):
            y, sr = sf.read(path, dtype="float32")
            assert sr == CLIP_SR and y.ndim == 1, path
            clips[genre].append(y)
    return clips


def build_library(folder: Path, n_tracks: int, clips: dict[str, list[np.ndarray]],
                  rng: np.random.Generator) -> list[tuple[Path, str, float]]:
    """``n_tracks`` files of 3-6 min, each looped from one genre's clips: [(path, genre, seconds)]."""
    folder.mkdir(parents=True)
    tracks = []
    for i in range(n_tracks):
        genre, ext = GENRES[i % len(GENRES)], LIBRARY_FORMATS[i % len(LIBRARY_FORMATS)]
        seconds = float(rng.uniform(180, 360))
        parts, total = [], 0
        while total < seconds * CLIP_SR:
            for k in rng.permutation(len(clips[genre])):
                parts.append(clips[genre][k])
                total += clips[genre][k].size
        y = np.concatenate(parts)[: int(seconds * CLIP_SR)]
        src = folder / f".src{i}.wav"
        sf.write(src, y, CLIP_SR, subtype="PCM_16")
        path = folder / f"{i:02d} {genre}{ext}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-ar", "44100", "-ac", "2",
                        *FORMATS[ext], str(path)], check=True)
        src.unlink()
        tracks.append((path, genre, seconds))
    return tracks


def write_long_flac(path: Path, minutes: float, clips: dict[str, list[np.ndarray]]) -> float:
    """A long FLAC (22050 Hz mono) streamed clip by clip: never more than a clip in memory."""
    every = [y for g in GENRES for y in clips[g]]
    frames, target = 0, int(minutes * 60 * CLIP_SR)
    with sf.SoundFile(path, "w", CLIP_SR, 1, format="FLAC", subtype="PCM_16") as out:
        while frames < target:
            for y in every:
                block = y[: target - frames]
                out.write(block)
                frames += block.size
                if frames >= target:
                    break
    return frames / CLIP_SR


def build_noop_library(folder: Path, n_files: int, clips: dict[str, list[np.ndarray]]) -> list[Path]:
    """``n_files`` distinct 0.1-s WAVs (different slices of the GTZAN clips), 100 per folder."""
    every = [y for g in GENRES for y in clips[g]]
    n = CLIP_SR // 10
    paths = []
    for i in range(n_files):
        clip = every[i % len(every)]
        start = (i // len(every)) * n % (clip.size - n)
        path = folder / f"album {i // 100:03d}" / f"track {i % 100:02d}.wav"
        if i % 100 == 0:
            path.parent.mkdir(parents=True)
        sf.write(path, clip[start:start + n], CLIP_SR, subtype="PCM_16")
        paths.append(path)
    return paths


def fill_index(index_path: Path, paths: list[Path], model: str) -> None:
    """Index rows as a finished real run leaves them: status tagged, this model, 3 segments each."""
    from libtagger.store.index import Index, now, path_key

    meta = json.loads((ROOT / "models" / model / "meta.json").read_text())
    rng = np.random.default_rng(1)
    index = Index(index_path)
    run_id = index.start_run(kind="scan", arguments={"benchmark": "bench_scan"}, model_id=meta["model_id"])
    stamp = now()
    rows, segments = [], []
    for track_id, path in enumerate(paths, start=1):
        st = path.stat()
        text, raw = path_key(path)
        genre = GENRES[track_id % 10].capitalize()
        rows.append({"id": track_id, "path": text, "path_bytes": raw, "size": st.st_size,
                     "mtime_ns": st.st_mtime_ns, "fingerprint": f"{track_id:064x}", "format": "WAV",
                     "duration": 0.1, "samplerate": CLIP_SR, "channels": 1, "status": "tagged",
                     "genre": genre, "confidence": 0.9, "runner_up": "Rock", "runner_up_confidence": 0.05,
                     "written": 1, "written_genre": genre, "model_id": meta["model_id"], "missing": 0,
                     "analysed_at": stamp, "updated_at": stamp, "run_id": run_id})
        for idx in range(3):
            segments.append({"track_id": track_id, "idx": idx, "start": 0.0, "end": 0.1, "genre": genre,
                             "confidence": 0.9, "probabilities": json.dumps([0.1] * 10),
                             "features": rng.normal(size=57).astype(np.float32).tobytes(),
                             "taggram": rng.random((10, 50)).astype(np.float16).tobytes()})
    with index.db.atomic():
        index.db["tracks"].insert_all(rows, batch_size=1000)
        index.db["segments"].insert_all(segments, batch_size=1000)
    index.finish_run(run_id, outcome="finished", counts={"tagged": len(paths)})
    index.close()


# --------------------------------------------------------------------------- measurements


@dataclass
class CliRun:
    wall: float
    cpu: float
    maxrss_mb: float
    tensorflow: bool
    returncode: int
    stdout: str
    stderr: str


def run_cli(args: list[str], tmp: Path) -> CliRun:
    """``libtagger ARGS`` in a fresh process with the user's environment."""
    usage = tmp / "rusage.json"
    usage.unlink(missing_ok=True)
    env = dict(USER_ENV, BENCH_RUSAGE=str(usage))
    cpu0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *args], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    info = json.loads(usage.read_text()) if usage.exists() else {"maxrss_kb": 0, "tensorflow": None}
    return CliRun(wall, children_cpu() - cpu0, info["maxrss_kb"] / 1024, info["tensorflow"],
                  proc.returncode, proc.stdout, proc.stderr)


def bench_scans(library: Path, tracks: list[tuple[Path, str, float]], models: list[str],
                matrix: list[tuple[bool, int]], tmp: Path,
                dask_address: str | None = None) -> tuple[list[list[object]], dict]:
    """Every (model, dry run?, jobs) of ``matrix``; jobs 0 means ``--backend dask`` at ``dask_address``."""
    n = len(tracks)
    minutes = sum(s for _, _, s in tracks) / 60
    rows, walls, agreement = [], {}, {}
    truth = {p.name: g for p, g, _ in tracks}
    one = tmp / "one track"
    one.mkdir()
    shutil.copy2(tracks[0][0], one / tracks[0][0].name)
    for model in models:
        # the fixed cost of a run (start-up, model loading): the same scan over one track
        run = run_cli(["scan", str(one), "--index", str(tmp / f"one-{model}.db"), "--model", model,
                       "--jobs", "1", "--dry-run", "--report", "json"], tmp)
        walls[(model, "one")] = run.wall
        for dry, jobs in matrix:
            if jobs == 0 and not dask_address:
                continue
            folder = library
            if not dry:  # a real write changes the files: give it a fresh copy
                folder = tmp / f"write-{model}-{jobs}"
                shutil.copytree(library, folder)
            index = tmp / f"scan-{model}-{'dry' if dry else 'write'}-{jobs}.db"
            load = load_text()
            parallel = ["--backend", "dask", "--scheduler", dask_address] if jobs == 0 else ["--jobs", str(jobs)]
            say(f"scan --model {model} {'--dry-run ' if dry else ''}{' '.join(parallel)} ({load})")
            run = run_cli(["scan", str(folder), "--index", str(index), "--model", model, *parallel,
                           "--report", "json", *(["--dry-run"] if dry else [])], tmp)
            if run.returncode != 0:
                raise SystemExit(f"scan failed ({run.returncode}):\n{run.stderr[-3000:]}")
            report = json.loads(run.stdout)
            statuses: dict[str, int] = {}
            for r in report:
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            errors = [f"{Path(r['path']).name}: {r['error']}" for r in report if r["status"] == "error"]
            if errors:
                say("errors: " + "; ".join(errors))
            agreement[model] = sum(r["genre"] and r["genre"].lower().replace("-", "") == truth[Path(r["path"]).name]
                                   for r in report) / n
            walls[(model, dry, jobs)] = run.wall
            steady = (run.wall - walls[(model, "one")]) / (n - 1)
            rows.append([model, "dry run" if dry else "write", jobs or "dask 2x1", f"{run.wall:.1f}",
                         f"{run.cpu:.1f}", f"{60 * n / run.wall:.1f}", f"{run.wall / minutes:.2f}",
                         f"{60 / steady:.0f}" if steady > 0 else "-", f"{run.maxrss_mb:.0f}",
                         ", ".join(f"{v} {k}" for k, v in sorted(statuses.items())), load])
            if not dry:
                shutil.rmtree(folder)
    return rows, {"walls": walls, "agreement": agreement, "minutes": minutes}


@contextlib.contextmanager
def local_dask_cluster(tmp: Path) -> Iterator[str | None]:
    """A ``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1`` on 127.0.0.1 (None without Dask)."""
    try:
        import distributed
    except ImportError:
        yield None
        return
    scheduler_file = tmp / "scheduler.json"
    common = ["--no-dashboard", "--host", "127.0.0.1"]
    quiet = {"env": USER_ENV, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": tmp}
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--port", "0",
                               "--scheduler-file", str(scheduler_file), *common], **quiet)]
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", "--scheduler-file",
                                       str(scheduler_file), "--nworkers", "2", "--nthreads", "1", *common],
                                      **quiet))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        with distributed.Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            address = client.scheduler.address
        yield address
    finally:
        for proc in procs[::-1]:
            proc.terminate()
            proc.wait(timeout=30)


def bench_features(n_clips: int, passes: int) -> list[str]:
    """segment_features vs paper_segment_features on the same GTZAN 30-s clips, and their parity."""
    import csv

    import librosa

    from libtagger.audio.features import FEATURE_NAMES, SAMPLE_RATE, paper_segment_features, segment_features

    with open(GTZAN / "features_30_sec.csv", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        table_rows = {r[0]: np.array([float(v) for v in r[2:-1]]) for r in reader}
    assert tuple(header[2:-1]) == FEATURE_NAMES
    std = np.vstack(list(table_rows.values())).std(axis=0)
    names = [f"{g}.00000.au" for g in GENRES[:n_clips]]
    clips = {name: librosa.load(GTZAN / "audio" / name, sr=SAMPLE_RATE)[0] for name in names}
    functions = {"fast": segment_features, "paper": paper_segment_features}
    for fn in functions.values():  # numba kernels, librosa caches
        fn(clips[names[0]])
    wall = {k: 0.0 for k in functions}
    cpu = {k: 0.0 for k in functions}
    out: dict[str, dict[str, np.ndarray]] = {k: {} for k in functions}
    for _ in range(passes):
        for name, y in clips.items():  # interleaved, so machine load hits both alike
            for key, fn in functions.items():
                w, c = time.perf_counter(), self_cpu()
                out[key][name] = fn(y, sr=SAMPLE_RATE)
                wall[key] += time.perf_counter() - w
                cpu[key] += self_cpu() - c
    count = passes * len(names)
    lines = [f"{len(names)} GTZAN clips x {passes} pass(es), 1 thread, interleaved; seconds per 30-s segment:",
             table(["function", "wall s", "cpu s", "max err (% col std)", "median rel err", "worst column"],
                   [[f"{fn.__name__}", wall[k] / count, cpu[k] / count,
                     *_parity(out[k], table_rows, std, FEATURE_NAMES)] for k, fn in functions.items()]),
             f"speed ratio paper/fast: wall {wall['paper'] / wall['fast']:.1f}x, cpu {cpu['paper'] / cpu['fast']:.1f}x; "
             f"fast vs paper max |difference| "
             f"{max(float((np.abs(out['fast'][n] - out['paper'][n]) / std).max()) for n in names):.1e} col std"]
    return lines


def _parity(values: dict[str, np.ndarray], table_rows: dict[str, np.ndarray], std: np.ndarray,
            names: tuple[str, ...]) -> list[object]:
    err = np.vstack([np.abs(values[n] - table_rows[n]) for n in values])
    ref = np.vstack([np.abs(table_rows[n]) for n in values])
    worst = np.unravel_index(int(np.argmax(err / std)), err.shape)
    rel = float(np.median(err / np.where(ref > 0, ref, np.inf)))
    return [f"{100 * (err / std).max():.2f}", f"{rel:.1e}", names[worst[1]]]


def bench_floor(tracks: list[tuple[Path, str, float]]) -> tuple[list[list[object]], dict[str, float]]:
    """Per format: decode of the planned windows vs analyze_file (seed / musicnn-head), vs librosa.load."""
    import librosa

    from libtagger.audio import decode
    from libtagger.audio.analysis import AnalysisJob, analyze_file
    from libtagger.audio.features import SAMPLE_RATE
    from libtagger.audio.segments import plan_segments

    warm = tracks[0][0]
    analyze_file(AnalysisJob(str(warm), want_taggrams=True))  # imports, numba, soxr
    sums = {"decode": 0.0, "seed": 0.0, "head": 0.0, "librosa": 0.0}
    per_format: dict[str, dict[str, float]] = {}
    for path, _, seconds in tracks:
        t = time.perf_counter()
        info = decode.probe(path)
        for start, end in plan_segments(info.duration):
            decode.load(path, sr=SAMPLE_RATE, offset=start, duration=end - start)
        times = {"decode": time.perf_counter() - t}
        for key, patches in (("seed", False), ("head", True)):
            t = time.perf_counter()
            result = analyze_file(AnalysisJob(str(path), want_taggrams=patches))
            times[key] = time.perf_counter() - t
            assert hasattr(result, "features"), result
        t = time.perf_counter()
        try:
            with warnings.catch_warnings():  # M4A: soundfile refuses, librosa falls back to audioread
                warnings.simplefilter("ignore")
                librosa.load(path, sr=SAMPLE_RATE)
            times["librosa"] = time.perf_counter() - t
        except Exception as exc:  # noqa: BLE001 - a reference only
            say(f"librosa.load({path.name}) failed: {exc}")
            times["librosa"] = float("nan")
        fmt = per_format.setdefault(path.suffix, {k: 0.0 for k in sums} | {"n": 0, "minutes": 0.0})
        for key, value in times.items():
            fmt[key] += value
            sums[key] += value
        fmt["n"] += 1
        fmt["minutes"] += seconds / 60
    rows = [[ext, int(v["n"]), v["decode"] / v["n"], v["seed"] / v["n"], v["head"] / v["n"],
             v["librosa"] / v["n"], v["seed"] / v["decode"], v["head"] / v["decode"]]
            for ext, v in per_format.items()]
    return rows, sums


def bench_memory(track: Path, long_path: Path, tmp: Path) -> list[list[object]]:
    rows = []
    long_label = f"{sf.info(long_path).duration / 60:.0f}-min FLAC 22 kHz mono"
    track_label = f"{sf.info(track).duration / 60:.1f}-min {track.suffix} 44.1 kHz stereo" \
        if track.suffix != ".m4a" else f"{track.name}"
    for label, path, patches in (("worker after imports (no file)", "-", False),
                                 (f"{track_label}, seed", str(track), False),
                                 (f"{track_label}, musicnn-head", str(track), True),
                                 (f"{long_label}, seed", str(long_path), False),
                                 (f"{long_label}, musicnn-head", str(long_path), True)):
        proc = subprocess.run([sys.executable, "-c", WORKER, path, "1" if patches else "0"], env=USER_ENV,
                              capture_output=True, text=True, check=True)
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        if not info["ok"]:
            raise SystemExit(f"analysis of {path} failed: {info['error']}")
        rows.append([label, f"{info['vmhwm_kb'] / 1024:.0f}", f"{info['seconds']:.2f}"])
    return rows


def bench_noop(n_files: int, model: str, clips: dict[str, list[np.ndarray]], tmp: Path) -> tuple[list[str], Path]:
    folder = tmp / "noop"
    t = time.perf_counter()
    paths = build_noop_library(folder, n_files, clips)
    index = tmp / "noop.db"
    fill_index(index, paths, model)
    say(f"{n_files} files and their index made in {time.perf_counter() - t:.0f} s")
    lines = []
    # Runs 1 and 2: every track tagged. Run 3: one in five is ``unsure`` (below --min-confidence):
    # with the same threshold its verdict cannot change, so it is skipped like the others.
    for attempt, expected in ((1, {"unchanged": n_files}), (2, {"unchanged": n_files}),
                              (3, {"unchanged": n_files})):
        if attempt == 3:
            with sqlite3.connect(index) as con:
                con.execute("update tracks set status = 'unsure', confidence = 0.3, written = 0 where id % 5 = 0")
            con.close()
        run = run_cli(["scan", str(folder), "--index", str(index), "--model", model, "--quiet"], tmp)
        with sqlite3.connect(index) as con:
            counts = json.loads(con.execute("select counts from runs order by id desc limit 1").fetchone()[0])
        con.close()
        if run.returncode != 0 or counts != expected:
            raise SystemExit(f"re-run {attempt}: exit {run.returncode}, counts {counts}, expected {expected}\n"
                             f"{run.stderr[-2000:]}")
        lines.append(f"run {attempt}{' (20 % unsure)' if attempt == 3 else ''}: {run.wall:.2f} s wall, "
                     f"{run.cpu:.2f} s cpu, {1e3 * run.wall / n_files:.2f} ms per file, peak RSS "
                     f"{run.maxrss_mb:.0f} MB, TensorFlow imported: {'yes' if run.tensorflow else 'no'}; "
                     f"counts {counts} ({load_text()})")
    return lines, index


def bench_startup(index: Path, tmp: Path, repeat: int) -> list[list[object]]:
    cases = [("libtagger --help", ["--help"]), ("libtagger scan --help", ["scan", "--help"]),
             ("libtagger query --limit 20", ["query", "--limit", "20", "--index", str(index)]),
             ("libtagger stats", ["stats", "--index", str(index)]),
             ("libtagger stats --json", ["stats", "--json", "--index", str(index)])]
    rows = []
    exe = str(Path(sys.executable).with_name("libtagger"))
    for label, args in cases:
        times = []
        for _ in range(repeat):  # the real console script, as a user runs it
            t = time.perf_counter()
            subprocess.run([exe, *args], env=USER_ENV, capture_output=True, check=True)
            times.append(time.perf_counter() - t)
        tf = run_cli(args, tmp).tensorflow
        rows.append([label, statistics.median(times), min(times), "yes" if tf else "no"])
    for label, code in (("python -c pass", "pass"), ("python -c 'import tensorflow'", "import tensorflow")):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=USER_ENV, capture_output=True, check=True)
        rows.append([label, time.perf_counter() - t, "", ""])
    return rows


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small run (a few minutes)")
    ap.add_argument("--tracks", type=int, help="library size (default 24, quick 4)")
    ap.add_argument("--long-minutes", type=float, help="length of the long file (default 120, quick 120)")
    ap.add_argument("--noop-files", type=int, help="files in the no-op index (default 10000, quick 2000)")
    ap.add_argument("--models", help="comma-separated (default: musicnn-head,seed, those present)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    quick = args.quick
    n_tracks = args.tracks or (4 if quick else 24)
    long_minutes = args.long_minutes or 120.0
    noop_files = args.noop_files or (2000 if quick else 10000)
    if not (GTZAN / "audio").is_dir():
        print(f"error: GTZAN audio not found at {GTZAN / 'audio'}", file=sys.stderr)
        return 2
    from libtagger.classify.classifier import DEFAULT_MODEL

    wanted = args.models.split(",") if args.models else ["musicnn-head", "seed"]
    models = [m for m in wanted if (ROOT / "models" / m / "meta.json").exists()]
    missing = sorted(set(wanted) - set(models))
    if not models:
        print(f"error: none of the models {wanted} is in {ROOT / 'models'}", file=sys.stderr)
        return 2
    # (dry run?, jobs); jobs 0 is --backend dask on two local worker processes
    matrix = ([(True, 1), (True, 2), (False, 2)] if quick
              else [(True, 1), (True, 2), (True, 0), (False, 1), (False, 2)])

    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench_scan-"))
    out: list[str] = []

    def section(title: str, *lines: str) -> None:
        text = "\n".join(["", f"## {title}", *lines])
        out.append(text)
        print(text, flush=True)

    try:
        import platform

        section("machine", f"{platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
                           f"{load_text()} at start, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
                f"default model (classifier.DEFAULT_MODEL): {DEFAULT_MODEL}; models measured: {', '.join(models)}"
                + (f"; missing: {', '.join(missing)}" if missing else ""),
                f"mode: {'--quick' if quick else 'full'}")
        rng = np.random.default_rng(0)
        clips = gtzan_clips()
        say(f"building {n_tracks} tracks")
        library = tmp / "library"
        tracks = build_library(library, n_tracks, clips, rng)
        minutes = sum(s for _, _, s in tracks) / 60
        size_mb = sum(p.stat().st_size for p, _, _ in tracks) / 2**20
        section("library", f"{n_tracks} tracks ({', '.join(LIBRARY_FORMATS)} in turn, 44.1 kHz stereo), "
                           f"{minutes:.1f} min of audio, {size_mb:.0f} MB; each track looped from one genre's "
                           "GTZAN clips; 3 x 30-s segments analysed per track")

        say("scans")
        with local_dask_cluster(tmp) as address:
            rows, scans = bench_scans(library, tracks, models, matrix, tmp, address)
        lines = [table(["model", "mode", "jobs", "wall s", "cpu s", "tracks/min", "s per audio min",
                        "steady tracks/min", "scan process peak MB", "statuses", "machine load"], rows),
                 "jobs 'dask 2x1': --backend dask on a local scheduler with 2 single-thread worker processes "
                 "(their CPU is not in 'cpu s')",
                 "steady tracks/min: (wall - wall of the same scan over one track) / (tracks - 1), i.e. "
                 "without start-up; one-track scans: " + ", ".join(
                     f"{m} {scans['walls'][(m, 'one')]:.1f} s" for m in models)]
        for model in models:
            walls = scans["walls"]
            for dry in (True, False):
                if (model, dry, 1) in walls and (model, dry, 2) in walls:
                    lines.append(f"{model} {'dry run' if dry else 'write'}: --jobs 2 is "
                                 f"{walls[(model, dry, 1)] / walls[(model, dry, 2)]:.2f}x as fast as --jobs 1"
                                 + (f", --backend dask (2 local workers) {walls[(model, dry, 1)] / walls[(model, dry, 0)]:.2f}x"
                                    if (model, dry, 0) in walls else ""))
        lines.append("genre agreement with the clips' source genre (GTZAN clips may be training data; not an "
                     "accuracy figure): " + ", ".join(f"{m} {100 * a:.0f} %" for m, a in scans["agreement"].items()))
        section("1. scan end to end (fresh process and index per run; cpu s = the scan process and the "
                "workers and ffmpeg processes it reaped)", *lines)

        say("features")
        section("2. feature extraction: fast vs paper-style librosa",
                *bench_features(3 if quick else 10, 1))

        say("floor")
        floor_rows, sums = bench_floor(tracks)
        lines = [table(["format", "files", "decode windows s", "analyze seed s", "analyze head s",
                        "librosa.load full s", "seed/decode", "head/decode"], floor_rows),
                 f"all files: decode {sums['decode']:.1f} s, analyze_file seed {sums['seed']:.1f} s "
                 f"({sums['seed'] / sums['decode']:.1f}x decode), musicnn-head {sums['head']:.1f} s "
                 f"({sums['head'] / sums['decode']:.1f}x decode); full-file librosa.load {sums['librosa']:.1f} s "
                 f"({sums['librosa'] / sums['decode']:.1f}x the windowed decode)"]
        for model in models:
            e2e = scans["walls"].get((model, True, 1))
            if e2e:
                lines.append(f"end-to-end scan --model {model} --dry-run --jobs 1 (start-up included): {e2e:.1f} s "
                             f"= {e2e / sums['decode']:.1f}x the decode floor")
        section("3. pipeline vs plain decoding (this process, 1 thread, per file)", *lines)

        say(f"memory ({long_minutes:.0f}-min FLAC)")
        long_path = tmp / "two hours.flac"
        t = time.perf_counter()
        long_seconds = write_long_flac(long_path, long_minutes, clips)
        say(f"long FLAC written in {time.perf_counter() - t:.0f} s")
        mem_rows = bench_memory(tracks[0][0], long_path, tmp)
        section("4. peak memory of one worker process (VmHWM of a fresh process running analyze_file)",
                table(["case", "peak RSS MB", "analyze s"], mem_rows),
                f"long file: {long_seconds / 3600:.2f} h, {long_path.stat().st_size / 2**20:.0f} MB; "
                "the scanning process's own peak (TensorFlow, batches): section 1")
        long_path.unlink()

        say(f"no-op re-run over {noop_files} files")
        noop_lines, noop_index = bench_noop(noop_files, models[0], clips, tmp)
        section(f"5. no-op re-run: {noop_files} unchanged files (status tagged, model {models[0]}), "
                "`scan --quiet`", *noop_lines)

        say("start-up")
        section(f"6. start-up (wall s, median of 5; index of {noop_files} tracks)",
                table(["command", "median s", "min s", "imports TensorFlow"],
                      bench_startup(noop_index, tmp, 5)))
        section("done", f"total {(time.perf_counter() - started) / 60:.1f} min, {load_text()} at the end")
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
