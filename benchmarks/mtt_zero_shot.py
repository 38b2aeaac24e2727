"""MTT_musicnn, the other tagger in the musicnn wheel: what its tags know about genres on real
recordings, and what a second front-end would cost (issue 20 item 2: "consider it only if its
cost is stated"). Measured, not shipped.

MTT_musicnn has MSD_musicnn's graph and weights of the same size, trained on MagnaTagATune. Its
50 tags include ``classical``, ``country``, ``metal``, ``rock``, ``pop``, ``dance``, ``techno``,
``electronic``, ``ambient``, ``new age``, ``indian`` and ``sitar``: classical (which MSD's tags
lack) and three labels beyond the ten. Its taggrams exist only for audio we have: realdev's
recordings and the 110 shared GTZAN clips (the 443 train clips are taggrams of MSD_musicnn only),
so no head can be trained on it here; this measures its tags zero-shot.

The MTT weights are converted from the wheel into ``benchmarks/out/mtt_musicnn/`` (once). Each
file is analysed as the scan analyses it (3 segments of 30 s, the front-end gain, a patch every
3 s), and both front-ends are timed on the same log-mel patches.

Result (2026-12-06): its tags know less than MSD_musicnn's and do not tell the genres beyond the
ten apart. Zero-shot top-1 among the genres each tagger names: realdev 10/16 (MSD's tags 15/20),
the shared GTZAN clips 30/66 (55/77). Named Electronic at evidence >= 0.4: 3 of realdev's 6
electronic, ambient and world recordings (ambient among them), but also 9 of the 110 GTZAN clips
(disco, hip-hop, metal, pop) and 2 of realdev's 27 (disco, dub). Its front-end costs what
MSD_musicnn's does (ratio 0.99), about twice the 57 features: a second front-end would raise a
scan's analysis time by about half. Not shipped.

Run::

    pip download --no-deps musicnn==0.1.0 -d ../wheels
    .venv/bin/python benchmarks/mtt_zero_shot.py [--wheel ../wheels/musicnn-0.1.0-py3-none-any.whl]   # ~5 min
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
OUT = ROOT / "benchmarks" / "out" / "mtt_musicnn"
#: MagnaTagATune's 50 tags, in MTT_musicnn's output order (musicnn 0.1.0, configuration.MTT_LABELS).
MTT_TAGS = ("guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
            "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
            "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
            "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
            "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
            "weird", "country", "metal", "female voice", "choral")
#: Label -> the MTT tags that speak for it (genre names only, as for MSD's in msd_tags.GENRE_TAGS).
MTT_GENRE_TAGS = {"classical": ("classical", "classic", "harpsichord", "choral", "opera"),
                  "country": ("country",), "disco": ("dance",), "metal": ("metal",), "pop": ("pop",),
                  "rock": ("rock",), "electronic": ("techno", "electronic"), "ambient": ("ambient", "new age"),
                  "world": ("indian", "sitar")}
BEYOND = ("electronic", "ambient", "world")
FLOOR = 0.4  # the evidence msd_tags.BEYOND_FLOOR asks of MSD's tags before naming a genre beyond the ten


def analyse(path: Path, mtt_weights: Path) -> tuple[str, str, np.ndarray, np.ndarray, float, float, float]:
    """(name, label, MSD tag means, MTT tag means, seconds: features, MSD front-end, MTT front-end)."""
    from libtagger.audio import decode, features
    from libtagger.audio.analysis import decode_windows, frontend_log_mels, taggrams_of_log_mels
    from libtagger.audio.musicnn_numpy import load_runtime
    from libtagger.audio.segments import plan_segments

    audio = decode_windows(str(path), plan_segments(decode.probe(str(path)).duration))
    started = time.perf_counter()
    rows = [features.segment_features(y, sr=features.SAMPLE_RATE) for y in audio]
    seconds = [time.perf_counter() - started]
    # Loaded between the features and the spectrograms, as in the scan (see segment_taggrams).
    runtimes = (load_runtime(), load_runtime(mtt_weights))
    mels = frontend_log_mels(audio, rows)
    means = []
    for runtime in runtimes:
        started = time.perf_counter()
        means.append(np.vstack(taggrams_of_log_mels(mels, runtime)).mean(0))
        seconds.append(time.perf_counter() - started)
    label = path.stem.split("__")[0] if "__" in path.stem else path.stem.split(".")[0]
    return path.stem, label, means[0], means[1], *seconds


def mtt_evidence(means: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """(len(labels),) the strongest MTT tag of each label."""
    return np.array([max(means[MTT_TAGS.index(t)] for t in MTT_GENRE_TAGS[x]) for x in labels])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=ROOT.parent / "wheels" / "musicnn-0.1.0-py3-none-any.whl")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    for needed in (SHARED / "realdev", SHARED / "gtzan" / "audio"):
        if not needed.is_dir():
            sys.exit(f"{needed} is missing: this benchmark needs ../shared beside the clone")
    weights = OUT / "msd_musicnn.weights.h5"
    if not weights.is_file():
        if not args.wheel.is_file():
            sys.exit(f"{args.wheel} is missing: pip download --no-deps musicnn==0.1.0 -d {args.wheel.parent}")
        from libtagger.training.convert_musicnn import convert

        convert(args.wheel, OUT, checkpoint="MTT_musicnn")
    from joblib import Parallel, delayed

    from libtagger.classify import msd_tags
    from libtagger.genres import GENRES

    files = [p for folder in (SHARED / "realdev" / "audio", SHARED / "realdev" / "nonmusic", SHARED / "gtzan" / "audio")
             for p in sorted(folder.iterdir()) if p.suffix.lower() not in (".tsv", ".md", ".txt")]
    done = Parallel(n_jobs=args.jobs)(delayed(analyse)(p, weights) for p in files)
    ten_mtt = tuple(x for x in MTT_GENRE_TAGS if x in GENRES)
    msd_ten = tuple(x for x in msd_tags.GENRE_TAGS if x in GENRES)

    print("Zero-shot top-1 among the genres each tagger names (counts; GTZAN: the 110 shared clips)")
    print(f"{'set':34s} {'MTT (' + ', '.join(ten_mtt) + ')':>58s} {'MSD (7 genres)':>16s}")
    for name, keep in (("realdev, 27 of the ten genres", lambda d: d[1] in GENRES and "__" in d[0]),
                       ("GTZAN shared clips", lambda d: "__" not in d[0])):
        for_mtt = [d for d in done if keep(d) and d[1] in ten_mtt]
        for_msd = [d for d in done if keep(d) and d[1] in msd_ten]
        mtt_right = sum(ten_mtt[int(np.argmax(mtt_evidence(d[3], ten_mtt)))] == d[1] for d in for_mtt)
        msd_right = sum(msd_ten[int(np.nanargmax(msd_tags.genre_evidence([d[2][None]], msd_ten)))] == d[1]
                        for d in for_msd)
        print(f"{name:34s} {f'{mtt_right}/{len(for_mtt)}':>58s} {f'{msd_right}/{len(for_msd)}':>16s}")

    print(f"\nBeyond the ten: the strongest of MTT's {', '.join(BEYOND)} evidence, named when >= {FLOOR}")
    groups = {"realdev others (right label)": lambda d: d[1] in ("electronic", "ambient", "world"),
              "realdev others (no MTT label)": lambda d: d[1] in ("latin", "soul_rnb", "funk", "punk"),
              "realdev ten genres": lambda d: d[1] in GENRES and "__" in d[0],
              "GTZAN shared clips": lambda d: "__" not in d[0],
              "realdev non-music": lambda d: d[1] in ("speech", "sound")}
    for name, keep in groups.items():
        named = []
        for d in (d for d in done if keep(d)):
            ev = mtt_evidence(d[3], BEYOND)
            if ev.max() >= FLOOR:
                named.append(f"{d[1]}->{BEYOND[int(np.argmax(ev))]}")
        total = sum(1 for d in done if keep(d))
        print(f"{name:32s} named {len(named):3d}/{total:<3d} {', '.join(sorted(named))}")

    features_s, msd_s, mtt_s = (np.median([d[i] for d in done if "__" in d[0] and d[1] not in ("speech", "sound")])
                                for i in (4, 5, 6))
    print(f"\nCost per realdev song (3 segments, median of 41, one core): 57 features {features_s:.2f} s, "
          f"MSD_musicnn front-end {msd_s:.2f} s, MTT_musicnn front-end {mtt_s:.2f} s "
          f"(ratio MTT/MSD {mtt_s / msd_s:.2f}); weights {weights.stat().st_size / 1e6:.1f} MB more")


if __name__ == "__main__":
    main()
