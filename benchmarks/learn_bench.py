"""``libtagger learn`` on the GTZAN train split taken as a "library" (issue #11 benchmark).

Each of the 443 fault-filtered train clips becomes one track with one segment (its full
taggram from the reference npz and its row of ``features_30_sec.csv``), its genre written the
way a person might (``Hip Hop``, ``Rock``...), its artist from ``metadata/GTZANindex.txt``
(clips without one fall back to their "folder", one per clip). A mapping file merges metal
into Rock. The learner runs exactly as ``libtagger learn`` does (grouped CV, LR baseline,
final fit); the shipped model's side of the comparison is its own out-of-fold probabilities
(``models/musicnn-head/cv_oof.json``), because it was trained on these very clips.

    .venv/bin/python benchmarks/learn_bench.py --out /tmp/learnbench
    .venv/bin/python benchmarks/learn_bench.py --synthetic 10000 --out /tmp/learnbench   # timing only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from libtagger.genres import GENRES  # noqa: E402
from libtagger.paths import models_dir, shared_gtzan_dir  # noqa: E402
from libtagger.training.learn import LearnOptions, LearnTrack, learn, summary_lines, tracks_from_index  # noqa: E402

#: How a person might have written each GTZAN genre; metal is merged into Rock by MAPPING.
WORDING = {"blues": "Blues", "classical": "Classical", "country": "Country", "disco": "Disco",
           "hiphop": "Hip Hop", "jazz": "Jazz", "metal": "Heavy Metal", "pop": "Pop", "reggae": "Reggae",
           "rock": "Rock"}
MAPPING = "# the merged taxonomy of the benchmark\nHeavy Metal = Rock\n"


def gtzan_library(gtzan: Path) -> tuple[list[LearnTrack], np.ndarray]:
    """The train split as LearnTracks, and the shipped model's out-of-fold (n, 10) probabilities."""
    from libtagger.training.dataset import load_artists
    from libtagger.training.head_training import load_clipset

    data = load_clipset(gtzan / "musicnn/training_data_GTZAN_MSDmusicnn_taggram.npz",
                        gtzan / "features_30_sec.csv", gtzan / "splits/train_filtered.txt")
    artists = load_artists(gtzan)
    tracks = [LearnTrack(i, f"/library/{key}/{key}.wav", [WORDING[GENRES[int(y)]]], artists.get(key) or None, None,
                         data.features[i:i + 1], [data.seqs[i]])
              for i, (key, y) in enumerate(zip(data.keys, data.y))]
    oof = {t["id"]: t["recipe_probs_T"] for t in json.loads((models_dir() / "musicnn-head/cv_oof.json").read_text())["tracks"]}
    return tracks, np.array([oof[k] for k in data.keys])


def add_person_genres(db: Path) -> None:
    """Give every analysed track of a synthetic index the person-set genre its verdict names (in
    the spelling the person used) and its artist folder as artist: a library fully tagged by hand."""
    import sqlite3

    from libtagger.store.index import Index

    Index(db).close()  # adds the person_genres, artist... columns in place
    conn = sqlite3.connect(db)
    with conn:
        rows = conn.execute("select id, path, genre from tracks where genre is not null").fetchall()
        conn.executemany("update tracks set person_genres = ?, artist = ? where id = ?",
                         [(json.dumps([genre]), path.split("/")[-3], i) for i, path, genre in rows])
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/learnbench"))
    parser.add_argument("--gtzan", type=Path, default=shared_gtzan_dir())
    parser.add_argument("--synthetic", type=int, default=0, help="time learn on a synthetic index of N tracks")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    mapping = args.out / "mapping.txt"
    mapping.write_text(MAPPING)
    t0 = time.time()
    if args.synthetic:
        from benchmarks.synthetic_index import build_synthetic_index

        db = args.out / f"synthetic-{args.synthetic}.db"
        if not db.exists():
            build_synthetic_index(db, args.synthetic)
            add_person_genres(db)
        from libtagger.store.index import Index

        index = Index(db)
        tracks = tracks_from_index(index)
        for t in tracks:  # synthetic features are N(0, 1); the level-invariant ratios need non-negative ones
            t.features = np.abs(t.features)
        print(f"read {len(tracks)} learning rows in {time.time() - t0:.1f} s", flush=True)
        meta = learn(f"synthetic-{args.synthetic}", tracks, out_root=args.out, replace=True,
                     source=f"synthetic index ({args.synthetic} tracks)")
    else:
        tracks, shipped = gtzan_library(args.gtzan)
        meta = learn("gtzan-merged", tracks, out_root=args.out, options=LearnOptions(mapping=mapping), replace=True,
                     source="GTZAN train split as a library", shipped=(shipped, "musicnn-head-7b6ea3e1 (out of fold)"))
    print("\n".join(summary_lines(meta)))
    print(f"wall time {time.time() - t0:.0f} s; model folder {args.out / meta['name']}")


if __name__ == "__main__":
    main()
