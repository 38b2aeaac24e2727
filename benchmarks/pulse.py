"""The music detector's pulse rule (issue 20) on real music, real non-music and generated non-music.

For every recording: the detector classifier's P(music) (``openset.music_probabilities``, the
track mean) and the mean pulse clarity of its segments (:mod:`libtagger.audio.pulse`), and the
detector's verdict without the pulse rule (as before issue 20's pulse) and with it (as the scan
decides now). Prints what the rule changes, the recordings near it, and counts per set:

* ``gtzan``: the 110 clips of ``../shared/gtzan/audio`` (100 ``.wav``, 10 ``.au``; GTZAN music; the 443 train
  clips exist here only as table rows and taggrams, without audio, so the rule cannot be
  measured on them);
* ``realdev music`` / ``realdev non-music``: ``../shared/realdev/audio`` and ``nonmusic``
  (checked, never fitted on; the thresholds were set with it in view);
* ``generated`` (``--generated N``): N held-out items of each of the issue-20 kinds of
  :mod:`libtagger.training.nonmusic_corpus` (read speech, dialogue, telephone, impulsive).

Its cost: the pulse of a 30-s segment against the 57 features of the same segment, timed side
by side on 10 GTZAN clips (``--timing``).

Each set is analysed once by a dry-run scan into ``benchmarks/out/pulse_<set>.db`` (music check
off: the detector is applied here), made again when it lacks the pulse column.

Run::

    .venv/bin/python benchmarks/pulse.py                 # ~4 min the first time, seconds after
    .venv/bin/python benchmarks/pulse.py --generated 6   # also 24 generated items (~3 min more)
    .venv/bin/python benchmarks/pulse.py --timing        # also the cost per segment (~10 s)
"""

from __future__ import annotations

import argparse
import dataclasses
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import closing
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from libtagger.audio.features import FEATURE_NAMES  # noqa: E402
from libtagger.classify import openset  # noqa: E402
from libtagger.store.index import Index, unpack_array  # noqa: E402

SHARED = ROOT.parent / "shared"
OUT = ROOT / "benchmarks" / "out"
NEW_KINDS = ("speech_read", "dialogue", "speech_phone", "impulsive")


@dataclasses.dataclass
class Row:
    name: str
    group: str          # gtzan, realdev music, realdev non-music, generated
    p_music: float
    pulse: float
    before: str | None  # the detector's reason without the pulse rule (None: music)
    after: str | None   # with it


def scan(folders: list[Path], db: Path) -> None:
    """Dry-run scan of ``folders`` into ``db`` unless ``db`` already holds their pulse."""
    if db.exists():
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            columns = {r[1] for r in con.execute("pragma table_info(segments)")}
            if "pulse" in columns and con.execute("select count(*) from segments where pulse is null").fetchone()[0] == 0:
                return
        for stale in db.parent.glob(db.name + "*"):
            stale.unlink()
    db.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(ROOT / ".venv" / "bin" / "libtagger"), "scan", "--dry-run", "--no-music-check",
           "--index", str(db), *map(str, folders)]
    print("analysing once:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)


def rows_of(db: Path, group_of) -> list[Row]:
    """Every analysed track of ``db``, with the detector's verdict without and with the pulse rule."""
    params = openset.load_detector()
    without = dataclasses.replace(params, pulse_gate=None, t_pulse=None)
    index = Index(db, read_only=True)
    out = []
    for track in index.tracks_matching():
        segs = index.segments(track.id)
        if not segs or segs[0]["taggram"] is None or any(s["pulse"] is None for s in segs):
            continue
        taggrams = [unpack_array(s["taggram"], "float16", 50).astype(np.float64) for s in segs]
        features = np.vstack([unpack_array(s["features"], "float32", len(FEATURE_NAMES)) for s in segs])
        pulse = [s["pulse"] for s in segs]
        old = openset.openset_verdict(features, taggrams, without, pulse)
        new = openset.openset_verdict(features, taggrams, params, pulse)
        name = Path(track.path).name
        out.append(Row(name, group_of(name), new.p_music, float(np.mean(pulse)), old.reason, new.reason))
    index.close()
    return out


def generated(n: int) -> list[Row]:
    """``n`` held-out items of each issue-20 kind, analysed by a scan in a temporary folder."""
    from libtagger.training.nonmusic_corpus import make_items

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "generated"
        for kind in NEW_KINDS:
            make_items(kind, n, folder, split="heldout")
        db = Path(tmp) / "generated.db"
        scan([folder], db)
        return rows_of(db, lambda name: "generated " + name.split("-")[0])


def is_music(row: Row) -> bool:
    return row.group in ("gtzan", "realdev music")


def summary(rows: list[Row]) -> None:
    groups = sorted({r.group for r in rows}, key=lambda g: (not g.startswith(("gtzan", "realdev music")), g))
    print(f"{'set':26s} {'n':>4s} | {'refused before':>14s} {'refused now':>11s} | "
          f"{'P(music) < 0.5':>14s} | pulse min / max")
    for g in groups:
        rs = [r for r in rows if r.group == g]
        low = [r for r in rs if r.p_music < openset.PULSE_GATE]
        # "refused": not music (speech, noise, tone, silence); "unlike the ten genres" is not counted
        refused = lambda reason: reason is not None and reason != openset.REASONS["unlike"]  # noqa: E731
        print(f"{g:26s} {len(rs):4d} | {sum(refused(r.before) for r in rs):14d} {sum(refused(r.after) for r in rs):11d} | "
              f"{len(low):14d} | {min(r.pulse for r in rs):.2f} / {max(r.pulse for r in rs):.2f}")


def timing() -> None:
    """Median time of pulse_clarity and of segment_features on the first 30 s of 10 GTZAN clips."""
    import time

    from libtagger.audio.decode import load
    from libtagger.audio.features import SAMPLE_RATE, segment_features
    from libtagger.audio.pulse import pulse_clarity

    clips = sorted((SHARED / "gtzan" / "audio").glob("*.00005.wav"))[:10]
    spent: dict[str, list[float]] = {"pulse_clarity": [], "segment_features": []}
    for clip in clips:
        y = load(str(clip), sr=SAMPLE_RATE, offset=0.0, duration=30.0)
        for name, f in (("pulse_clarity", pulse_clarity), ("segment_features", segment_features)):
            f(y, sr=SAMPLE_RATE)  # warm (numba, caches)
            t = time.perf_counter()
            f(y, sr=SAMPLE_RATE)
            spent[name].append(time.perf_counter() - t)
    p, f = (float(np.median(spent[k])) * 1000 for k in ("pulse_clarity", "segment_features"))
    print(f"\ncost per 30-s segment, median of {len(clips)} clips: pulse {p:.1f} ms, the 57 features {f:.1f} ms "
          f"(pulse / features = {p / f:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=0, metavar="N",
                        help="also N held-out generated items of each issue-20 kind")
    parser.add_argument("--timing", action="store_true", help="also time the pulse against the 57 features")
    args = parser.parse_args()
    missing = [p for p in (SHARED / "gtzan" / "audio", SHARED / "realdev") if not p.exists()]
    if missing:
        sys.exit(f"needs {', '.join(map(str, missing))}")
    scan([SHARED / "gtzan" / "audio"], OUT / "pulse_gtzan.db")
    scan([SHARED / "realdev" / "audio", SHARED / "realdev" / "nonmusic"], OUT / "pulse_realdev.db")
    rows = rows_of(OUT / "pulse_gtzan.db", lambda name: "gtzan")
    rows += rows_of(OUT / "pulse_realdev.db",
                    lambda name: "realdev non-music" if name.startswith(("speech__", "sound__")) else "realdev music")
    if args.generated:
        rows += generated(args.generated)
    print(f"pulse rule: refused as not music when P(music) < {openset.PULSE_GATE} and mean pulse clarity "
          f"< {openset.T_PULSE} (detector {openset.load_detector().model_id})\n")
    summary(rows)
    print("\nwhat the rule changes:")
    for r in rows:
        if r.before != r.after:
            print(f"  {r.group:22s} {r.name:52s} P(music) {r.p_music:.3f} pulse {r.pulse:.2f}: {r.before} -> {r.after}")
    print("\nmusic below the gate (the rule's margin on real songs):")
    for r in sorted((r for r in rows if is_music(r) and r.p_music < openset.PULSE_GATE), key=lambda r: r.pulse):
        print(f"  {r.group:22s} {r.name:52s} P(music) {r.p_music:.3f} pulse {r.pulse:.2f}: {r.after}")
    print("\nmusic that keeps the least beat (P(music) shown: the rule needs it below the gate too):")
    for r in sorted((r for r in rows if is_music(r)), key=lambda r: r.pulse)[:6]:
        print(f"  {r.group:22s} {r.name:52s} P(music) {r.p_music:.3f} pulse {r.pulse:.2f}")
    print("\nnon-music still passing as music:")
    for r in sorted((r for r in rows if not is_music(r) and r.after is None), key=lambda r: r.p_music):
        print(f"  {r.group:22s} {r.name:52s} P(music) {r.p_music:.3f} pulse {r.pulse:.2f}")
    if args.timing:
        timing()


if __name__ == "__main__":
    main()
