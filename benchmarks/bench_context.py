"""What the library context stage costs a scan on a large index (issue 19).

Builds a synthetic index (``benchmarks/synthetic_index.py``: artists, albums, own verdicts as a
current scan stores them), marks one album as the run's, and times side by side, in one run:

* a run that touched one album: the group fields of every voting track, the closed set of
  touched albums and artists, their full rows, pooling and the choice of what to decide;
* a run whose ``--context`` changed (or the first run over an older libtagger's index): every
  voting track read and pooled.

    .venv/bin/python benchmarks/bench_context.py                 # 100,000 tracks, ~1 min
    .venv/bin/python benchmarks/bench_context.py --tracks 20000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_index import build_synthetic_index  # noqa: E402

from libtagger.genres import GENRES, display_name, parse_genre  # noqa: E402
from libtagger.scan import library_context  # noqa: E402
from libtagger.store.index import Index  # noqa: E402

RUN = 999  # the run id given to the touched album


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="bench_context-")
    info = build_synthetic_index(os.path.join(folder, "index.db"), args.tracks, with_taggrams=False,
                                 segments_per_track=1)
    index = Index(info.path)
    model_id = index.db.execute("select model_id from tracks where model_id is not null limit 1").fetchone()[0]
    artist, album = index.db.execute("select artist, album from tracks where album is not null limit 1").fetchone()
    index.db.execute("insert into runs (id, kind) values (?, 'scan')", [RUN])
    index.db.execute("update tracks set run_id = ? where artist = ? and album = ?", [RUN, artist, album])
    index.db.conn.commit()
    spellings = tuple(display_name(g) for g in GENRES)

    def label_of(genre: str | None) -> str | None:
        label = parse_genre(genre)
        return label if label in GENRES else None

    def pool(rows: list) -> list:
        return library_context.pool(rows, level="album", labels=GENRES, spellings=spellings, label_of=label_of)

    touched, everything, n_members = [], [], 0
    for _ in range(args.repeat):
        t = time.perf_counter()
        members = library_context.touched_members(index.voting_group_fields(model_id), RUN)
        library_context.to_decide(pool(index.voting_rows(model_id, ids=members)), RUN)
        touched.append(time.perf_counter() - t)
        n_members = len(members)
        t = time.perf_counter()
        library_context.to_decide(pool(index.voting_rows(model_id)), RUN, everything=True)
        everything.append(time.perf_counter() - t)
    n_voting = len(index.voting_group_fields(model_id))
    index.close()
    m = statistics.median
    print(f"{args.tracks} tracks, {n_voting} voting (load {os.getloadavg()[0]:.1f}); median of {args.repeat}")
    print(f"  run that touched one album ({n_members} tracks in its album and artist): {m(touched):.2f} s")
    print(f"  --context changed / first run over an older index (every voting track): {m(everything):.2f} s")
    print(f"  ratio: {m(everything) / m(touched):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
