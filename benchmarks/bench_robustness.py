"""Does the verdict survive recording conditions? Level, loudness, EQ, lossy codecs, sample rate.

Real libraries are 44.1/48 kHz stereo, loudly mastered and lossy; the shared GTZAN clips are
22050 Hz mono 16-bit WAV at modest levels. For each clip of a subset spread over the ten genres
(``--clips``, default 50 = 5 per genre; the 100 shared 15-20-s WAV excerpts at most), ffmpeg and sox make one version per transform
(:data:`TRANSFORMS`) in a temporary folder; then ONE real ``libtagger scan --dry-run --report
json --jobs 2`` per model runs over the whole folder (fresh index), so the figures are what a
user gets. Each version's verdict (genre, confidence, status) is compared with the original
clip's, and every version's genre with the clip's true genre (from its file name).

    .venv/bin/python benchmarks/bench_robustness.py                       # default model, 50 clips
    .venv/bin/python benchmarks/bench_robustness.py --model musicnn-head,seed --json out.json
    .venv/bin/python benchmarks/bench_robustness.py --model /path/to/a/model/folder --clips 110
    .venv/bin/python benchmarks/bench_robustness.py --patch-hops 61,183   # one scan per musicnn patch hop

A status counts as a verdict when it is ``would-tag`` (the dry run's "would write"); anything
else (``unsure`` below ``--min-confidence``, an open-set rejection if the model has one,
``error``) is counted as a flip to or from that status. Nothing is timed against a target:
this is a script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
CLIPS_DIR = ROOT.parent / "shared" / "gtzan" / "audio"
GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
#: Report statuses that carry a verdict the scan would write (a dry run says would-tag).
VERDICT_STATUSES = frozenset({"would-tag", "tagged", "kept"})


@dataclass(frozen=True)
class Transform:
    """One recording condition: ``tool`` (ffmpeg or sox) runs ``args`` between input and output."""

    name: str
    what: str
    ext: str
    tool: str = ""
    args: tuple[str, ...] = ()


#: Mono -> stereo with the mono signal at unity gain on both channels (ffmpeg's ``-ac 2`` up-mix
#: lowers it by 3 dB, which would mix a level change into the sample-rate transforms).
STEREO = "pan=stereo|c0=c0|c1=c0"

# -1 dBFS is 0.891 linear. 16-bit outputs clip where the signal exceeds full scale (ffmpeg
# saturates on the float -> s16 conversion); float outputs keep the peaks above 0 dBFS.
TRANSFORMS: tuple[Transform, ...] = (
    Transform("original", "the shared clip as is (22050 Hz mono 16-bit WAV)", "wav"),
    Transform("gain+12 float", "+12 dB, 32-bit float WAV: no clipping, peaks above 0 dBFS", "wav",
              "ffmpeg", ("-af", "aformat=sample_fmts=flt,volume=12dB", "-c:a", "pcm_f32le")),
    Transform("gain+12 clip16", "+12 dB, 16-bit WAV: hard clipping at full scale", "wav",
              "ffmpeg", ("-af", "volume=12dB", "-c:a", "pcm_s16le")),
    Transform("gain+12 limited", "+12 dB into a limiter at -1 dBFS (ffmpeg alimiter), 16-bit", "wav",
              "ffmpeg", ("-af", "volume=12dB,alimiter=limit=0.891:level=disabled", "-c:a", "pcm_s16le")),
    Transform("gain-12", "-12 dB, 16-bit WAV", "wav", "ffmpeg", ("-af", "volume=-12dB", "-c:a", "pcm_s16le")),
    Transform("peak -1 dBFS", "peak-normalised to -1 dBFS (sox gain -n -1)", "wav", "sox", ("gain", "-n", "-1")),
    # Loud master: 5 ms attack, soft knee, about 3:1 above -40 dB, normalised to -1 dBFS, then
    # +8 dB through sox's limiter (gain -l): RMS around -9 to -12 dBFS, like a modern pop master.
    Transform("loud master", "sox compand 0.005,0.1 6:-70,-70,-40,-40,-20,-33,0,-27 (3:1 above -40 dB), "
              "gain -n -1, gain -l 8 (+8 dB into a limiter)", "wav", "sox",
              ("compand", "0.005,0.1", "6:-70,-70,-40,-40,-20,-33,0,-27", "0", "-90", "0.005",
               "gain", "-n", "-1", "gain", "-l", "8")),
    Transform("eq bass+6 treble-6", "bass shelf +6 dB at 100 Hz, treble shelf -6 dB at 4 kHz, float WAV",
              "wav", "ffmpeg", ("-af", "aformat=sample_fmts=flt,bass=g=6:f=100,treble=g=-6:f=4000",
                                "-c:a", "pcm_f32le")),
    Transform("mp3 128k", "MP3 128 kbps CBR (LAME), 44.1 kHz stereo", "mp3",
              "ffmpeg", ("-af", f"aresample=44100:resampler=soxr,{STEREO}", "-c:a", "libmp3lame", "-b:a", "128k")),
    Transform("aac 128k", "AAC-LC 128 kbps (ffmpeg aac) in M4A, 44.1 kHz stereo", "m4a",
              "ffmpeg", ("-af", f"aresample=44100:resampler=soxr,{STEREO}", "-c:a", "aac", "-b:a", "128k")),
    Transform("wav 44.1k stereo", "resampled (soxr) to 44.1 kHz stereo, 16-bit WAV", "wav",
              "ffmpeg", ("-af", f"aresample=44100:resampler=soxr,{STEREO}", "-c:a", "pcm_s16le")),
    Transform("wav 48k stereo", "resampled (soxr) to 48 kHz stereo, 16-bit WAV", "wav",
              "ffmpeg", ("-af", f"aresample=48000:resampler=soxr,{STEREO}", "-c:a", "pcm_s16le")),
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_avg() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def pick_clips(n: int) -> list[Path]:
    """``n`` clips spread over the genres: the k-th clip of every genre before any (k+1)-th."""
    per_genre = {g: sorted(CLIPS_DIR.glob(f"{g}.*.wav")) for g in GENRES}
    picked: list[Path] = []
    for k in range(max(len(v) for v in per_genre.values())):
        picked += [clips[k] for g, clips in per_genre.items() if k < len(clips)]
    return picked[:n]


def split_counts(clips: Sequence[Path]) -> dict[str, int]:
    """How many of ``clips`` are in each fault-filtered split (``none``: filtered out as faulty)."""
    member: dict[str, str] = {}
    for split in ("train", "valid", "test"):
        f = CLIPS_DIR.parent / "splits" / f"{split}_filtered.txt"
        if f.is_file():
            member.update({Path(line.strip()).stem: split for line in f.read_text().splitlines() if line.strip()})
    return dict(Counter(member.get(c.stem, "none") for c in clips))


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def make_version(t: Transform, clip: Path, out_dir: Path) -> Path:
    """Write ``clip`` through transform ``t`` into ``out_dir/<transform>/<clip>.<ext>``."""
    out = out_dir / slug(t.name) / f"{clip.stem}.{t.ext}"
    out.parent.mkdir(parents=True, exist_ok=True)
    if t.tool == "ffmpeg":
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(clip), *t.args, str(out)]
    elif t.tool == "sox":
        cmd = ["sox", "-V1", str(clip), str(out), *t.args]
    else:
        shutil.copyfile(clip, out)
        return out
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def levels(path: Path) -> tuple[float, float, float] | None:
    """(RMS dBFS, peak dBFS, share of samples at or beyond full scale) or None if soundfile cannot read it."""
    try:
        y, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:  # noqa: BLE001 (M4A: libsndfile cannot read it; the scan uses ffmpeg)
        return None
    y = y.mean(axis=1)
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    peak = float(np.max(np.abs(y)))
    return 20 * np.log10(max(rms, 1e-10)), 20 * np.log10(max(peak, 1e-10)), float(np.mean(np.abs(y) >= 0.9999))


def model_label(model: str | None, env: dict[str, str]) -> tuple[str, str]:
    """(name as shown, model_id) of ``model`` (None: the default), from meta.json or `libtagger models`."""
    if model and os.sep in model:
        meta = json.loads((Path(model) / "meta.json").read_text())
        return f"{meta['name']} ({Path(model).name})", meta["model_id"]
    out = subprocess.run([libtagger_exe(), "models", "--format", "json"], capture_output=True, text=True,
                         check=True, env=env).stdout
    for m in json.loads(out):
        if (model is None and m.get("default")) or m["name"] == model:
            return m["name"] + (" (default)" if m.get("default") else ""), m["model_id"]
    raise SystemExit(f"model {model!r} not listed by `libtagger models`")


def libtagger_exe() -> str:
    beside = Path(sys.executable).parent / "libtagger"
    return str(beside) if beside.exists() else (shutil.which("libtagger") or "libtagger")


def hop_env(env: dict[str, str], hop: int | None, tmp: Path) -> dict[str, str]:
    """``env`` in which every Python process of the scan (workers included) analyses with
    ``musicnn.INFERENCE_PATCH_HOP = hop``: a ``sitecustomize`` first on PYTHONPATH sets it at start-up
    (analysis reads the attribute at call time). None: ``env`` unchanged, the shipped hop."""
    if hop is None:
        return env
    folder = tmp / f"hop{hop}"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        f"import libtagger.audio.musicnn as _m\n_m.INFERENCE_PATCH_HOP = {int(hop)}\n")
    return dict(env, PYTHONPATH=os.pathsep.join(x for x in (str(folder), env.get("PYTHONPATH", "")) if x))


def run_scan(folder: Path, index: Path, model: str | None, jobs: int, env: dict[str, str]) -> tuple[list[dict], dict]:
    """One real dry-run scan over ``folder``; returns the report rows and the run's facts."""
    cmd = [libtagger_exe(), "scan", str(folder), "--dry-run", "--report", "json", "--quiet",
           "--index", str(index), "--jobs", str(jobs)]
    if model:
        cmd += ["--model", model]
    before, t0 = load_avg(), time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"scan failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout), {"command": " ".join(cmd), "wall_s": round(wall, 1),
                                     "load_before": before, "load_after": load_avg()}


def norm_genre(g: str | None) -> str | None:
    """'Hip-Hop' and 'hiphop' alike."""
    return re.sub(r"[^a-z]", "", g.lower()) if g else None


def summarise(rows: list[dict], versions_dir: Path) -> tuple[list[dict], dict[str, dict[str, dict]]]:
    """Per-transform figures against the original verdicts, plus the verdicts by transform and clip."""
    by: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        p = Path(r["path"]).resolve().relative_to(versions_dir.resolve())
        by[p.parts[0]][Path(p.name).stem] = r
    orig = by[slug("original")]
    table: list[dict] = []
    pooled: dict[str, list] = defaultdict(list)
    for t in TRANSFORMS:
        vers = by.get(slug(t.name), {})
        clips = sorted(orig)
        same, dconf, acc, verdict, to_other, from_other = [], [], [], [], Counter(), Counter()
        missing = 0
        for c in clips:
            o, v = orig[c], vers.get(c)
            if v is None:
                missing += 1
                continue
            same.append(norm_genre(o.get("genre")) == norm_genre(v.get("genre")))
            if o.get("confidence") is not None and v.get("confidence") is not None:
                dconf.append(abs(v["confidence"] - o["confidence"]))
            acc.append(norm_genre(v.get("genre")) == c.split(".")[0])
            verdict.append(v["status"] in VERDICT_STATUSES)
            o_ok, v_ok = o["status"] in VERDICT_STATUSES, v["status"] in VERDICT_STATUSES
            if o_ok and not v_ok:
                to_other[v["status"]] += 1
            elif v_ok and not o_ok:
                from_other[o["status"]] += 1
            elif not o_ok and not v_ok and o["status"] != v["status"]:
                to_other[f"{o['status']}->{v['status']}"] += 1
        row = {"transform": t.name, "clips": len(same), "genre same %": 100 * np.mean(same) if same else float("nan"),
               "mean |dconf|": np.mean(dconf) if dconf else float("nan"),
               "max |dconf|": max(dconf) if dconf else float("nan"),
               "to non-verdict": dict(to_other), "from non-verdict": dict(from_other),
               "accuracy %": 100 * np.mean(acc) if acc else float("nan"),
               "verdict %": 100 * np.mean(verdict) if verdict else float("nan"), "missing": missing}
        table.append(row)
        if t.name != "original":
            for key, vals in (("same", same), ("dconf", dconf), ("acc", acc), ("verdict", verdict)):
                pooled[key] += vals
            pooled["to"].append(to_other)
            pooled["from"].append(from_other)
    table.append({"transform": "all transforms", "clips": len(pooled["same"]),
                  "genre same %": 100 * np.mean(pooled["same"]), "mean |dconf|": np.mean(pooled["dconf"]),
                  "max |dconf|": max(pooled["dconf"]), "to non-verdict": dict(sum(pooled["to"], Counter())),
                  "from non-verdict": dict(sum(pooled["from"], Counter())), "accuracy %": 100 * np.mean(pooled["acc"]),
                  "verdict %": 100 * np.mean(pooled["verdict"]), "missing": sum(r["missing"] for r in table)})
    return table, by


def hop_agreement(ref: dict[str, dict[str, dict]], other: dict[str, dict[str, dict]]) -> str:
    """Per transform and pooled: share of versions whose genre equals the reference run's, mean |dconf|."""
    parts, pooled_same, pooled_d = [], [], []
    for t in ref:
        same = [norm_genre(ref[t][c].get("genre")) == norm_genre(other[t][c].get("genre"))
                for c in ref[t] if c in other.get(t, {})]
        d = [abs(ref[t][c]["confidence"] - other[t][c]["confidence"]) for c in ref[t]
             if c in other.get(t, {}) and ref[t][c].get("confidence") is not None
             and other[t][c].get("confidence") is not None]
        pooled_same += same
        pooled_d += d
        parts.append(f"{t} {100 * np.mean(same):.0f}")
    return (f"all {len(pooled_same)} versions {100 * np.mean(pooled_same):.1f} % same genre, mean |dconf| "
            f"{np.mean(pooled_d):.3f}, max {max(pooled_d):.3f}; per transform: " + ", ".join(parts))


def fmt_counts(c: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(c.items())) or "0"


def print_table(table: list[dict]) -> None:
    cols = ["transform", "clips", "genre same %", "mean |dconf|", "max |dconf|", "to non-verdict",
            "from non-verdict", "accuracy %", "verdict %"]
    body = []
    for r in table:
        body.append([r["transform"], r["clips"], f"{r['genre same %']:.1f}", f"{r['mean |dconf|']:.3f}",
                     f"{r['max |dconf|']:.3f}", fmt_counts(r["to non-verdict"]), fmt_counts(r["from non-verdict"]),
                     f"{r['accuracy %']:.1f}", f"{r['verdict %']:.1f}"])
    print(tabulate(body, headers=cols, disable_numparse=True, colalign=("left",) + ("right",) * 8))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None,
                    help="model name or folder, or several separated by commas (default: the default model)")
    ap.add_argument("--clips", type=int, default=50, help="clips, spread over the genres (default 50; 100 = every shared WAV excerpt)")
    ap.add_argument("--jobs", type=int, default=2, help="scan --jobs (default 2)")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure and verdict here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder of versions")
    ap.add_argument("--patch-hops", default=None,
                    help="scan once per musicnn patch hop, e.g. 61,183 (default: once, at the shipped "
                         "musicnn.INFERENCE_PATCH_HOP); verdicts are then also compared hop by hop")
    args = ap.parse_args(argv)
    hops: list[int | None] = [int(h) for h in args.patch_hops.split(",")] if args.patch_hops else [None]

    env = dict(os.environ)
    models: list[str | None] = [m.strip() for m in args.model.split(",")] if args.model else [None]
    clips = pick_clips(args.clips)
    started = time.monotonic()
    print("## machine")
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"{load_avg()} at start, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    where = subprocess.run([sys.executable, "-c", "import libtagger; print(libtagger.__file__)"],
                           capture_output=True, text=True, env=env).stdout.strip()
    print(f"libtagger code: {Path(where).parent} (PYTHONPATH={env.get('PYTHONPATH', '')!r})")
    genres = Counter(c.name.split(".")[0] for c in clips)
    print(f"{len(clips)} clips from {CLIPS_DIR} ({', '.join(f'{g} {n}' for g, n in genres.items())}); "
          f"one version per transform; scan --dry-run --jobs {args.jobs}, default --min-confidence")
    print(f"splits of these clips (models may have trained on them, so accuracy is no generalisation "
          f"figure): {fmt_counts(split_counts(clips))}")

    tmp = Path(tempfile.mkdtemp(prefix="libtagger-robust-"))
    versions = tmp / "versions"
    try:
        t0 = time.monotonic()
        jobs = [(t, c) for t in TRANSFORMS for c in clips]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            made = list(pool.map(lambda tc: (tc[0], make_version(tc[0], tc[1], versions)), jobs))
        log(f"made {len(made)} versions in {time.monotonic() - t0:.0f} s")

        print("\n## transforms (levels: median over clips of the down-mixed signal; M4A not readable by soundfile)")
        lv: dict[str, list] = defaultdict(list)
        for t, path in made:
            if (x := levels(path)) is not None:
                lv[t.name].append(x)
        trows = []
        for t in TRANSFORMS:
            a = np.array(lv[t.name]) if lv[t.name] else None
            trows.append([t.name, t.what] + ([f"{np.median(a[:, 0]):.1f}", f"{np.median(a[:, 1]):.1f}",
                                              f"{100 * np.mean(a[:, 2]):.2f}"] if a is not None else ["", "", ""]))
        print(tabulate(trows, headers=["transform", "how", "RMS dBFS", "peak dBFS", "% samples at full scale"],
                       disable_numparse=True))

        results: dict[str, Any] = {"clips": [c.name for c in clips], "transforms": [t.__dict__ for t in TRANSFORMS],
                                   "models": []}
        for model, hop in [(m, h) for m in models for h in hops]:
            name, model_id = model_label(model, env)
            if hop is not None:
                name += f" patch hop {hop}"
            print(f"\n## {name}: {model_id}")
            index = tmp / f"index-{slug(model or 'default')}-{hop}.sqlite"
            log(f"scanning {len(made)} files with {name} ({model_id}) ...")
            rows, facts = run_scan(versions, index, model, args.jobs, hop_env(env, hop, tmp))
            print(f"`{facts['command'].replace(str(tmp), 'TMP')}`: {len(rows)} files in {facts['wall_s']} s "
                  f"({facts['load_before']} before, {facts['load_after']} after)")
            table, by = summarise(rows, versions)
            print_table(table)
            statuses = Counter(r["status"] for r in rows)
            print(f"statuses over all versions: {fmt_counts(statuses)}")
            worst = sorted(((abs(v["confidence"] - by['original'][c]["confidence"]), t, c)
                            for t, vs in by.items() if t != "original" for c, v in vs.items()
                            if c in by["original"] and v.get("confidence") is not None
                            and by["original"][c].get("confidence") is not None), reverse=True)[:5]
            names = {slug(t.name): t.name for t in TRANSFORMS}
            print("largest confidence changes: " + "; ".join(
                f"{c} {names.get(t, t)}: {by['original'][c]['genre']} {by['original'][c]['confidence']:.2f} -> "
                f"{by[t][c]['genre']} {by[t][c]['confidence']:.2f}" for _, t, c in worst))
            results["models"].append({"model": model, "name": name, "model_id": model_id, "scan": facts,
                                      "patch_hop": hop, "table": table, "verdicts": by})
        if len(results["models"]) > 1:
            print("\n## side by side: genre same % / accuracy %")
            head = ["transform"] + [m["name"] for m in results["models"]]
            body = [[t] + [f"{m['table'][i]['genre same %']:.1f} / {m['table'][i]['accuracy %']:.1f}"
                           for m in results["models"]]
                    for i, t in enumerate([r["transform"] for r in results["models"][0]["table"]])]
            print(tabulate(body, headers=head, disable_numparse=True))
        if len(hops) > 1:
            print(f"\n## the same files, patch hop against hop {hops[0]} (genre same %, mean |dconf|)")
            for model in models:
                runs = [m for m in results["models"] if m["model"] == model]
                for other in runs[1:]:
                    print(f"{other['name']}: " + hop_agreement(runs[0]["verdicts"], other["verdicts"]))
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
        print(f"\n## done\ntotal {(time.monotonic() - started) / 60:.1f} min, {load_avg()} at the end")
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
