"""The synthetic index of benchmarks/synthetic_index.py is a real libtagger index, and the
``query``/``stats``/``show`` filters are answered through SQLite indexes, not full scans.

No timings here (benchmarks/bench_index.py measures them at 100,000 tracks).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from libtagger.cli import app
from libtagger.store.index import Index, TrackFilter, unpack_array

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from synthetic_index import (N_FEATURES, N_TAGS, NOOP_STATUS_WEIGHTS, ROWS_3S_HOP,  # noqa: E402
                             build_synthetic_index, shipped_ids)

N = 2000


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "index.db"
    return build_synthetic_index(path, N, seed=3)


def test_synthetic_index_opens_with_index_and_holds_realistic_rows(synthetic):
    index = Index(synthetic.path)
    assert index.tracks_count() == N
    counts = index.counts()
    statuses = set(counts.by_status)
    assert {"tagged", "kept", "unsure", "rejected", "error"} <= statuses
    assert counts.by_status["tagged"] > N / 2
    assert counts.missing > 0 and counts.runs == synthetic.runs
    model_id, detector_id = shipped_ids()
    row = index.track_by_path(synthetic.sample_path)
    assert row["model_id"] == model_id and row["detector_id"] == detector_id and row["genre"]
    segs = index.segments(row["id"])
    assert [s["idx"] for s in segs] == [0, 1, 2]
    assert unpack_array(segs[0]["features"], "float32", N_FEATURES).shape == (1, N_FEATURES)
    taggram = unpack_array(segs[0]["taggram"], "float16", N_TAGS)
    assert taggram.shape == (28, N_TAGS) and 0 <= taggram.min() and taggram.max() <= 1
    assert sum(json.loads(segs[0]["probabilities"])) == pytest.approx(1, abs=1e-4)
    # rejected tracks carry a reason and no genre; error tracks have no segments
    rejected = index.tracks_matching(TrackFilter(status="rejected"))
    assert rejected and all(r["reason"] and r["genre"] is None for r in rejected)
    error_id = next(iter(index.db.execute("select id from tracks where status = 'error' limit 1")))[0]
    assert index.segments(error_id) == []
    assert index.journal_entries(run_id=row["run_id"])
    index.close()


def test_synthetic_schema_is_the_one_index_creates(synthetic, tmp_path):
    def schema(path: Path) -> list[tuple[str, str]]:
        with sqlite3.connect(path) as con:
            return sorted(con.execute("select name, sql from sqlite_master where name not like 'sqlite_%'"))

    Index(tmp_path / "fresh.db").close()
    assert schema(synthetic.path) == schema(tmp_path / "fresh.db")


def test_cli_reads_the_synthetic_index(synthetic):
    runner = CliRunner()
    db = str(synthetic.path)
    stats = runner.invoke(app, ["stats", "--json", "--index", db])
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.output)["runs"] == synthetic.runs
    jazz = runner.invoke(app, ["query", "--genre", "jazz", "--min-confidence", "0.7", "--format", "json",
                               "--index", db])
    assert jazz.exit_code == 0, jazz.output
    rows = json.loads(jazz.output)
    assert rows and all(r["genre"] == "Jazz" and r["confidence"] >= 0.7 for r in rows)
    shown = runner.invoke(app, ["show", synthetic.sample_path, "--json", "--index", db])
    assert shown.exit_code == 0, shown.output
    assert len(json.loads(shown.output)["segments"]) == 3
    assert runner.invoke(app, ["runs", "--index", db]).exit_code == 0


def test_builder_matches_real_files_and_taggram_rows(tmp_path):
    files = []
    for i in range(20):
        f = tmp_path / "lib" / f"a{i // 10}" / f"{i:02d}.wav"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"RIFF" + bytes(i))
        files.append(f)
    made = build_synthetic_index(tmp_path / "files.db", 20, files=files, taggram_rows=ROWS_3S_HOP,
                                 status_weights=NOOP_STATUS_WEIGHTS)
    index = Index(made.path)
    states = index.file_states()
    for f in files:
        st = f.stat()
        state = states[str(f)]
        assert (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert {s.status for s in states.values()} <= set(NOOP_STATUS_WEIGHTS)
    seg = index.segments(states[str(files[0])].track_id)[0]
    assert np.frombuffer(seg["taggram"], dtype=np.float16).size == ROWS_3S_HOP * N_TAGS
