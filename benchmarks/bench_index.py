"""The index at library scale (issue #10 part 5): size on disk, a no-op re-run, and the
time of ``query``/``stats``/``show``/``runs`` over 100,000 tracks.

1. **size**: a synthetic index (:mod:`synthetic_index`: the real schema, 3 segments per track
   with 57 float32 features and a float16 taggram of 28 x 50) -> bytes on disk, per track,
   per table (SQLite's ``dbstat``), and what the taggrams would take stored otherwise
   (a 3-s patch hop, zlib, uint8, only the pooled summary), measured on synthetic taggrams
   and on the real GTZAN MSD_musicnn taggrams when ``../shared/gtzan`` is there;
2. **commands**: each ``libtagger`` command with typical filters, in a fresh process (the real
   console script: start-up included) and in this process (typer's CliRunner: the command's
   own work), median of ``--repeat`` runs, with SQLite's plan of the filter's SQL;
3. **no-op re-run**: ``libtagger scan`` over 100,000 files (copies of one 0.1-s 8-kHz WAV, in
   artist/album folders; not hard links: discovery yields one path per inode) whose index
   rows match their size and mtime: every file ``unchanged``, nothing decoded.

    .venv/bin/python benchmarks/bench_index.py                 # ~5 min, ~3 GB in $TMPDIR
    .venv/bin/python benchmarks/bench_index.py --tracks 20000  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synthetic_index import (N_TAGS, NOOP_STATUS_WEIGHTS, ROWS_1S_HOP, ROWS_3S_HOP,  # noqa: E402
                             build_synthetic_index, synthetic_paths)

EXE = str(Path(sys.executable).with_name("libtagger"))
GTZAN_TAGGRAMS = HERE.parent.parent / "shared" / "gtzan" / "musicnn" / "training_data_GTZAN_MSDmusicnn_taggram.npz"


def say(text: str) -> None:
    print(text, flush=True)


def load_text() -> str:
    return "load %.1f %.1f %.1f" % os.getloadavg()


# --------------------------------------------------------------------------- 1. size


def table_sizes(db: Path) -> dict[str, int]:
    """Bytes of pages per table and index (``dbstat``)."""
    with sqlite3.connect(db) as con:
        return {name: size for name, size in con.execute(
            "select name, sum(pgsize) from dbstat group by name order by 2 desc")}


def size_lines(db: Path, n_tracks: int) -> list[str]:
    total = db.stat().st_size
    sizes = table_sizes(db)
    tracks_part = sum(v for k, v in sizes.items() if k == "tracks" or k.startswith("idx_tracks"))
    segments_part = sum(v for k, v in sizes.items() if "segments" in k)
    journal_part = sum(v for k, v in sizes.items() if "journal" in k)
    with sqlite3.connect(db) as con:
        n_seg = con.execute("select count(*) from segments").fetchone()[0]
        blob = con.execute("select sum(length(taggram)), sum(length(features)), sum(length(probabilities)) "
                           "from segments").fetchone()
    lines = [f"file {total / 1e6:.0f} MB = {total / n_tracks / 1e3:.1f} kB per track ({n_tracks} tracks, "
             f"{n_seg} segments)",
             f"tracks + their indexes {tracks_part / 1e6:.1f} MB ({tracks_part / n_tracks:.0f} B per track); "
             f"segments {segments_part / 1e6:.0f} MB ({segments_part / n_seg:.0f} B per segment); "
             f"journal {journal_part / 1e6:.1f} MB",
             f"segment payload: taggrams {blob[0] / 1e6:.0f} MB, features {blob[1] / 1e6:.0f} MB, "
             f"probabilities (JSON) {blob[2] / 1e6:.0f} MB; the rest of the segments' pages "
             f"({(segments_part - sum(blob)) / 1e6:.0f} MB) is page slack and row headers"]
    lines += [f"  {name}: {size / 1e6:.1f} MB" for name, size in sizes.items()]
    return lines


def real_taggrams() -> list[np.ndarray] | None:
    """The GTZAN MSD_musicnn taggrams, one (n_patches, 50) array per clip, or None."""
    if not GTZAN_TAGGRAMS.exists():
        return None
    data = np.load(GTZAN_TAGGRAMS)
    ids, X = data["IDS"], data["X"]
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    return np.split(X.astype(np.float32), cuts)


def upsample(taggram: np.ndarray, rows: int) -> np.ndarray:
    """A taggram resampled to ``rows`` rows by linear interpolation over time."""
    src = np.linspace(0, 1, len(taggram))
    dst = np.linspace(0, 1, rows)
    return np.stack([np.interp(dst, src, taggram[:, k]) for k in range(taggram.shape[1])], axis=1)


def storage_alternatives(db: Path, n_tracks: int, sample: int = 20000) -> list[list[object]]:
    """Bytes per segment of the taggram stored in other ways, on ``sample`` stored taggrams."""
    with sqlite3.connect(db) as con:
        blobs = [r[0] for r in con.execute("select taggram from segments where taggram is not null limit ?",
                                           [sample])]
    synth = [np.frombuffer(b, dtype=np.float16).reshape(-1, N_TAGS).astype(np.float32) for b in blobs]
    sources = [("synthetic", synth)]
    real = real_taggrams()
    if real is not None:  # real ones at their own hop (~3 s), and interpolated to the 1-s hop's 28 rows
        sources.append(("GTZAN real, 1-s hop (interp.)", [upsample(t, ROWS_1S_HOP) for t in real]))
        sources.append(("GTZAN real, as stored (~3-s hop)", real))
    rows = []
    segs_per_track = 3
    for name, tgs in sources:
        def mean_bytes(encode) -> float:
            return float(np.mean([len(encode(t)) for t in tgs]))

        f16 = lambda t: t.astype(np.float16).tobytes()  # noqa: E731
        u8 = lambda t: np.round(np.clip(t, 0, 1) * 255).astype(np.uint8).tobytes()  # noqa: E731
        pooled = lambda t: np.concatenate([t.mean(0), t.max(0), t.std(0)]).astype(np.float16).tobytes()  # noqa: E731
        ten = lambda t: upsample(t, ROWS_3S_HOP).astype(np.float16).tobytes()  # noqa: E731
        for label, enc in (("float16 (stored now)", f16), ("float16 + zlib 6", lambda t: zlib.compress(f16(t), 6)),
                           ("uint8 (1/255 steps)", u8), ("uint8 + zlib 6", lambda t: zlib.compress(u8(t), 6)),
                           ("10 rows (3-s hop), float16", ten),
                           ("pooled mean/max/std only, float16", pooled)):
            b = mean_bytes(enc)
            rows.append([name, label, f"{b:.0f}", f"{b * segs_per_track * 100_000 / 1e6:.0f}"])
    return rows


def rows_per_page_note(taggram_rows: int) -> str:
    row = taggram_rows * N_TAGS * 2 + 57 * 4 + 110 + 40
    per_page = max(1, 4096 // row) if row < 4061 else 0
    return (f"a segment row of {taggram_rows} taggram rows is ~{row} B: "
            + (f"{per_page} per 4-kB page" if per_page else "larger than a page: overflow pages"))


# --------------------------------------------------------------------------- 2. commands


def command_cases(sample_path: str) -> list[tuple[str, list[str], str | None]]:
    """(label, libtagger arguments, SQL of its filter for EXPLAIN QUERY PLAN or None)."""
    order = " order by path"
    return [
        ("query --genre jazz", ["query", "--genre", "jazz"], "select * from tracks where genre = 'Jazz'" + order),
        ("query --genre rock", ["query", "--genre", "rock"], "select * from tracks where genre = 'Rock'" + order),
        ("query --min-confidence 0.4 --max-confidence 0.6", ["query", "--min-confidence", "0.4", "--max-confidence", "0.6"],
         "select * from tracks where confidence >= 0.4 and confidence <= 0.6" + order),
        ("query --genre rock --min-confidence 0.9", ["query", "--genre", "rock", "--min-confidence", "0.9"],
         "select * from tracks where genre = 'Rock' and confidence >= 0.9" + order),
        ("query --status unsure", ["query", "--status", "unsure"], "select * from tracks where status = 'unsure'" + order),
        ("query --status error", ["query", "--status", "error"], "select * from tracks where status = 'error'" + order),
        ("query --reason speech", ["query", "--reason", "speech"], None),
        ("query --path '*/Artist 00042/*'", ["query", "--path", "*/Artist 00042/*"],
         "select * from tracks where path glob '*/Artist 00042/*'" + order),
        ("query --path 'Title 4242'", ["query", "--path", "Title 4242"],
         "select * from tracks where path glob '*Title 4242*'" + order),
        ("query --disagrees", ["query", "--disagrees"],
         "select * from tracks where previous_genre is not null and genre is not null "
         "and previous_genre != genre" + order),
        ("query --missing", ["query", "--missing"], "select * from tracks where missing = 1" + order),
        ("query --limit 20", ["query", "--limit", "20"], "select * from tracks order by path limit 20"),
        ("query --genre jazz --format json", ["query", "--genre", "jazz", "--format", "json"], None),
        ("stats", ["stats"], "select genre, count(*) as n from tracks where missing = 0 group by genre"),
        ("stats --json", ["stats", "--json"], None),
        ("show PATH", ["show", sample_path], "select * from tracks where path = 'x'"),
        ("show PATH --json", ["show", sample_path, "--json"], None),
        ("runs", ["runs"], "select * from runs order by id desc limit 20"),
    ]


def time_commands(db: Path, sample_path: str, repeat: int) -> list[list[object]]:
    from typer.testing import CliRunner

    from libtagger.cli import app

    runner = CliRunner()
    rows = []
    # Closed, not only committed (``with`` does not close): an open connection of this process
    # made the in-process commands' read-only open fail with "disk I/O error".
    con = sqlite3.connect(db)
    try:
        plans = {label: " | ".join(r[3] for r in con.execute(f"explain query plan {sql}"))
                 for label, _, sql in command_cases(sample_path) if sql}
    finally:
        con.close()
    for label, args, _ in command_cases(sample_path):
        argv = [*args, "--index", str(db)]
        fresh, fresh_cpu, inproc, inproc_cpu = [], [], [], []
        lines = 0
        for _ in range(repeat):
            cpu0, t = children_cpu(), time.perf_counter()
            proc = subprocess.run([EXE, *argv], capture_output=True, text=True)
            fresh.append(time.perf_counter() - t)
            fresh_cpu.append(children_cpu() - cpu0)
            if proc.returncode != 0:
                raise SystemExit(f"{label}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
            lines = proc.stdout.count("\n")
            cpu0, t = time.process_time(), time.perf_counter()
            result = runner.invoke(app, argv)
            inproc.append(time.perf_counter() - t)
            inproc_cpu.append(time.process_time() - cpu0)
            if result.exit_code != 0:
                raise SystemExit(f"{label} (in process): exit {result.exit_code}\n{result.output[-2000:]}")
        m = statistics.median
        rows.append([label, f"{m(fresh):.2f} ({m(fresh_cpu):.2f})", f"{m(inproc):.2f} ({m(inproc_cpu):.2f})",
                     lines, plans.get(label, "")])
        say(f"  {label}: fresh {m(fresh):.2f} s ({m(fresh_cpu):.2f} s cpu), in-process {m(inproc):.2f} s "
            f"({m(inproc_cpu):.2f} s cpu), {lines} lines ({load_text()})")
    return rows


def startup_floor(repeat: int) -> tuple[float, float]:
    """Median wall and cpu seconds of ``libtagger --help``: what any fresh command pays first."""
    times, cpus = [], []
    for _ in range(repeat):
        cpu0, t = children_cpu(), time.perf_counter()
        subprocess.run([EXE, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t)
        cpus.append(children_cpu() - cpu0)
    return statistics.median(times), statistics.median(cpus)


# --------------------------------------------------------------------------- 3. no-op re-run


def make_files(folder: Path, n: int) -> list[Path]:
    """``n`` copies of one 0.1-s 8-kHz WAV (1.6 kB) in ``Artist/Album (year)/NN Title.wav`` folders."""
    import io

    import soundfile as sf

    folder.mkdir(parents=True)
    buffer = io.BytesIO()
    sf.write(buffer, (0.1 * np.sin(np.arange(800) * 2 * np.pi * 440 / 8000)).astype(np.float32), 8000,
             subtype="PCM_16", format="WAV")
    wav = buffer.getvalue()
    paths = [Path(p.rsplit(".", 1)[0] + ".wav")
             for p in synthetic_paths(n, str(folder / "library"), np.random.default_rng(5))]
    made = set()
    for p in paths:
        if p.parent not in made:
            p.parent.mkdir(parents=True, exist_ok=True)
            made.add(p.parent)
        p.write_bytes(wav)
    return paths


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_noop(tmp: Path, n: int, repeat: int) -> list[str]:
    t = time.perf_counter()
    paths = make_files(tmp / "noop", n)
    made_files = time.perf_counter() - t
    db = tmp / "noop.db"
    t = time.perf_counter()
    build_synthetic_index(db, n, files=paths, status_weights=NOOP_STATUS_WEIGHTS, seed=11)
    say(f"  {n} files in {made_files:.0f} s, their index in {time.perf_counter() - t:.0f} s")
    lines = []
    for attempt in range(1, repeat + 1):
        cpu0, t0 = children_cpu(), time.perf_counter()
        proc = subprocess.run([EXE, "scan", str(tmp / "noop" / "library"), "--index", str(db), "--quiet"],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
        with sqlite3.connect(db) as con:
            counts = json.loads(con.execute("select counts from runs order by id desc limit 1").fetchone()[0])
        if proc.returncode != 0 or counts != {"unchanged": n}:
            raise SystemExit(f"no-op run {attempt}: exit {proc.returncode}, counts {counts}\n{proc.stderr[-2000:]}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        lines.append(f"run {attempt}: {wall:.2f} s wall, {cpu:.2f} s cpu, {1e6 * wall / n:.0f} us per file, "
                     f"peak RSS of the largest child so far {peak:.0f} MB; counts {counts} ({load_text()})")
        say("  " + lines[-1])
    return lines


# --------------------------------------------------------------------------- main


def table(rows: list[list[object]], headers: list[str]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, disable_numparse=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--taggram-rows", type=int, default=ROWS_1S_HOP)
    ap.add_argument("--repeat", type=int, default=3, help="runs per command (median)")
    ap.add_argument("--skip-noop", action="store_true")
    ap.add_argument("--keep", type=Path, help="build in this folder and keep it (default: a temporary one)")
    args = ap.parse_args()
    tmp_ctx = tempfile.TemporaryDirectory(prefix="bench_index-") if args.keep is None else None
    tmp = Path(tmp_ctx.name) if tmp_ctx else args.keep
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        db = tmp / "index.db"
        say(f"building a synthetic index of {args.tracks} tracks ({args.taggram_rows} taggram rows per segment)")
        t = time.perf_counter()
        made = build_synthetic_index(db, args.tracks, taggram_rows=args.taggram_rows)
        say(f"  built in {time.perf_counter() - t:.0f} s")

        say(f"\n## 1. size on disk ({args.tracks} tracks)")
        for line in size_lines(db, args.tracks):
            say(line)
        say(rows_per_page_note(args.taggram_rows))
        say("\ntaggram storage alternatives (bytes per segment; MB for 100,000 tracks x 3 segments):")
        say(table(storage_alternatives(db, args.tracks), ["taggrams", "stored as", "B/segment", "MB/100k"]))

        say(f"\n## 2. commands over {args.tracks} tracks (median of {args.repeat}; {load_text()})")
        floor, floor_cpu = startup_floor(args.repeat)
        say(f"  `libtagger --help` (start-up floor of a fresh process): {floor:.2f} s ({floor_cpu:.2f} s cpu)")
        rows = time_commands(db, made.sample_path, args.repeat)
        say(table(rows, ["command", "fresh process s (cpu)", "in-process s (cpu)", "lines out", "plan of its SQL"]))

        if not args.skip_noop:
            say(f"\n## 3. no-op re-run over {args.tracks} unchanged files (`scan --quiet`, default model and music check)")
            for line in bench_noop(tmp, args.tracks, 2):
                say(line)
    finally:
        if tmp_ctx:
            tmp_ctx.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
