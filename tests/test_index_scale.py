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
    assert row.model_id == model_id and row.detector_id == detector_id and row.genre
    segs = index.segments(row.id)
    assert [s["idx"] for s in segs] == [0, 1, 2]
    assert unpack_array(segs[0]["features"], "float32", N_FEATURES).shape == (1, N_FEATURES)
    taggram = unpack_array(segs[0]["taggram"], "float16", N_TAGS)
    assert taggram.shape == (28, N_TAGS) and 0 <= taggram.min() and taggram.max() <= 1
    assert sum(json.loads(segs[0]["probabilities"])) == pytest.approx(1, abs=1e-4)
    # rejected tracks carry a reason and no genre; error tracks have no segments
    rejected = index.tracks_matching(TrackFilter(status="rejected"))
    assert rejected and all(r.reason and r.genre is None for r in rejected)
    error_id = next(iter(index.db.execute("select id from tracks where status = 'error' limit 1")))[0]
    assert index.segments(error_id) == []
    assert index.journal_entries(run_id=row.run_id)
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


def _plan(index: Index, sql: str, params: list) -> str:
    return " | ".join(row[3] for row in index.db.execute(f"explain query plan {sql}", params))


def test_stats_and_missing_use_the_covering_indexes(synthetic):
    index = Index(synthetic.path)
    for sql, params in (
            ("select genre, count(*) as n from tracks where missing = 0 group by genre", []),
            ("select status, count(*) as n from tracks where missing = 0 group by status", []),
            ("select count(*) from tracks where missing = 1", []),
            ("select reason, count(*) from tracks where missing = 0 and status = 'rejected' group by reason", [])):
        plan = _plan(index, sql, params)
        assert "USING COVERING INDEX idx_tracks_missing_" in plan, (sql, plan)
    from libtagger.store.index import _track_where

    where, params = _track_where(TrackFilter(missing=True))
    assert "USING INDEX idx_tracks_missing_" in _plan(index, f"select * from tracks where {where}", params)
    for wanted, name in ((TrackFilter(genre="Jazz"), "idx_tracks_genre"),
                         (TrackFilter(status="unsure"), "idx_tracks_status")):
        where, params = _track_where(wanted)
        assert f"USING INDEX {name}" in _plan(index, f"select * from tracks where {where} order by path", params)
    index.close()


def test_an_existing_index_gains_the_new_indexes_in_place(tmp_path):
    path = tmp_path / "old.db"
    build_synthetic_index(path, 50, seed=1)
    with sqlite3.connect(path) as con:
        con.execute("drop index idx_tracks_missing_genre")
        con.execute("drop index idx_tracks_missing_status_reason")
    con.close()
    Index(path).close()
    with sqlite3.connect(path) as con:
        names = {r[0] for r in con.execute("select name from sqlite_master where type = 'index'")}
        assert con.execute("select count(*) from tracks").fetchone()[0] == 50
    con.close()
    assert {"idx_tracks_missing_genre", "idx_tracks_missing_status_reason"} <= names


def test_sql_prefilter_and_limit_give_the_same_answers(synthetic):
    from libtagger.store.query import _agrees, find_tracks

    index = Index(synthetic.path)
    everything = index.tracks_matching()
    expected = [r.path for r in everything if r.previous_genre and r.genre
                and not _agrees(r.previous_genre, r.genre)]
    assert expected and [r.path for r in find_tracks(index, disagrees=True)] == expected
    jazz = find_tracks(index, genre="jazz")
    assert len(jazz) > 5 and find_tracks(index, genre="jazz", limit=5) == jazz[:5]
    index.close()


def test_fast_table_is_exactly_what_tabulate_prints():
    """report.render lays out text-only tables itself (tabulate took 2 s for 10,000 rows)."""
    import random

    from tabulate import tabulate

    from libtagger.report import _text_table

    rng = random.Random(7)
    pieces = ["a", "B", " ", "/", "é", "-", "0", "0.469", ".", "'", "\t", "\u00a0", "Artist 00042"]
    compared = 0
    for _ in range(3000):
        ncol, nrow = rng.randint(1, 5), rng.randint(0, 6)
        headers = ["".join(rng.choice("abcdefgh_") for _ in range(rng.randint(1, 12))) for _ in range(ncol)]
        cells = [["".join(rng.choice(pieces) for _ in range(rng.randint(0, 5))) for _ in range(ncol)]
                 for _ in range(nrow)]
        fast = _text_table(cells, headers)
        if fast is not None:
            compared += 1
            assert fast == tabulate(cells, headers=headers, disable_numparse=True), (cells, headers)
    assert compared > 1000
    assert _text_table([[1, "a"]], ["n", "s"]) is None  # numbers: tabulate aligns them
    assert _text_table([["two\nlines"]], ["s"]) is None


def test_reason_filter_in_sql_matches_the_python_one(synthetic):
    from libtagger.store.query import find_tracks

    index = Index(synthetic.path)
    everything = index.tracks_matching()
    for term in ("speech", "SPEECH", "Unlike", "not music", "noise", "%", "_"):
        expected = [r.path for r in everything if r.reason and term.lower() in r.reason.lower()]
        assert [r.path for r in find_tracks(index, reason=term)] == expected, term
    assert find_tracks(index, reason="speech")
    index.close()


def test_synthetic_rows_have_the_library_fields_so_a_rerun_reads_no_tags(synthetic):
    index = Index(synthetic.path)
    assert index.tracks_without_tags_read() == []
    row = index.track_by_path(synthetic.sample_path)
    assert row.artist == Path(synthetic.sample_path).parent.parent.name
    assert row.album == Path(synthetic.sample_path).parent.name
    with_previous = index.db.execute(
        "select previous_genre, person_genres from tracks where previous_genre is not null limit 20").fetchall()
    assert with_previous and all(json.loads(pg) == [prev] for prev, pg in with_previous)
    index.close()
