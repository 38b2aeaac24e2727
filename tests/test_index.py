"""The SQLite index: schema, round trips, non-UTF-8 names, readable by the sqlite3 command line."""

import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import complete_old_index

from libtagger.scan.classification import stored_pulse
from libtagger.store.index import (FileState, Index, IndexCounts, JournalEntry, TrackFilter, pack_array, path_key,
                                   real_path, unpack_array)


@pytest.fixture
def index(tmp_path):
    db = Index(tmp_path / "sub" / "index.db")
    yield db
    db.close()


def test_creates_folder_and_tables(tmp_path, index):
    assert (tmp_path / "sub" / "index.db").exists()
    assert {"tracks", "segments", "runs", "journal", "meta"} <= set(index.db.table_names())
    assert index.db.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_track_and_segments_round_trip(index):
    run = index.start_run(kind="scan", arguments={"roots": ["/m"]})
    features = np.arange(57, dtype=np.float32)
    tid = index.save_track("/m/a.flac", {"size": 10, "mtime_ns": 5, "status": "tagged", "genre": "Jazz",
                                         "confidence": 0.9, "run_id": run},
                           [{"idx": 0, "start": 0.0, "end": 30.0, "genre": "Jazz", "confidence": 0.9,
                             "probabilities": "[]", "features": pack_array(features, "float32"),
                             "taggram": None}])
    assert index.track_by_path("/m/a.flac").genre == "Jazz"
    seg = index.segments(tid)[0]
    assert np.array_equal(unpack_array(seg["features"], "float32", 57)[0], features)
    # saving again updates the same row and replaces the segments
    assert index.save_track("/m/a.flac", {"status": "kept"}, []) == tid
    assert index.track(tid).status == "kept" and index.segments(tid) == []
    assert index.file_states()["/m/a.flac"][:3] == (tid, 10, 5)


def test_non_utf8_names_keep_their_bytes(index):
    raw = b"/m/caf\xe9.mp3"
    text, blob = path_key(raw)
    assert blob == raw and "\\xe9" in text
    tid = index.save_track(raw, {"status": "error", "error": "x"})
    assert index.track(tid).real_path == "/m/caf\udce9.mp3"  # os.fsdecode of the raw bytes
    assert real_path({"path": text, "path_bytes": blob}) == "/m/caf\udce9.mp3"  # an SQL row's


def test_runs_and_abandoned_runs(index):
    run = index.start_run(kind="scan", arguments={})
    assert index.mark_abandoned_runs() == 1  # a run still "running" when we hold the lock was killed
    assert index.runs()[0]["outcome"] == "interrupted"
    index.finish_run(run, outcome="finished", counts={"tagged": 2})
    assert index.runs()[0]["counts"] == '{"tagged": 2}'


def test_journal_entries_by_run_and_path(index):
    run = index.start_run(kind="scan", arguments={})
    e = index.journal_before_write(track_id=None, path="/m/a.mp3", run_id=run, action="write",
                                   before={"genres": ["Rock"]}, genre="Jazz")
    index.journal_completed(e)
    assert index.journal_entries(run_id=run)[0].completed is True
    assert index.journal_entries(path="/m/a.mp3")[0].genre == "Jazz"


def test_missing_and_move(index, tmp_path):
    tid = index.save_track(str(tmp_path / "gone.mp3"), {"fingerprint": "abc", "status": "tagged"})
    assert [r.id for r in index.missing_candidates(["abc"])["abc"]] == [tid]
    index.mark_missing([tid])
    assert index.track(tid).missing == 1
    index.move_track(tid, str(tmp_path / "new.mp3"), size=3, mtime_ns=4)
    row = index.track(tid)
    assert row.path.endswith("new.mp3") and row.missing == 0


def test_readable_by_sqlite3_and_sqlite_utils_command_lines(index, tmp_path):
    index.save_track("/m/a.mp3", {"status": "tagged", "genre": "Pop"})
    index.close()
    db_path = tmp_path / "sub" / "index.db"
    con = sqlite3.connect(db_path)
    assert con.execute("select genre from tracks").fetchall() == [("Pop",)]
    exe = shutil.which("sqlite-utils") or str(__import__("pathlib").Path(__import__("sys").executable).with_name("sqlite-utils"))
    out = subprocess.run([exe, "rows", str(db_path), "tracks", "-c", "genre"], capture_output=True, text=True, check=True)
    assert '"genre": "Pop"' in out.stdout


def test_file_states_are_named_records(index):
    tid = index.save_track("/m/a.flac", {"size": 10, "mtime_ns": 5, "status": "unsure", "model_id": "m1",
                                         "confidence": 0.4})
    state = index.file_states()["/m/a.flac"]
    assert isinstance(state, FileState)
    assert state == FileState(track_id=tid, size=10, mtime_ns=5, status="unsure", model_id="m1", confidence=0.4)
    assert (state.track_id, state.status, state.confidence) == (tid, "unsure", 0.4)


def test_journal_entries_are_records_by_run_track_and_path(index):
    raw = b"/m/caf\xe9.mp3"
    tid = index.save_track(raw, {"status": "would-tag"})
    scan_run = index.start_run(kind="scan", arguments={})
    first = index.journal_before_write(track_id=tid, path=raw, run_id=scan_run, action="write",
                                       before={"genres": ["Rock"], "marker": None}, genre="Jazz")
    undo_run = index.start_run(kind="undo", arguments={})
    second = index.journal_before_write(track_id=tid, path=raw, run_id=undo_run, action="undo",
                                        before={"genres": ["Jazz"], "marker": "Jazz"}, genre=None)
    index.journal_completed(second)
    entry = index.journal_entries(run_id=scan_run)[0]
    assert isinstance(entry, JournalEntry)
    assert (entry.id, entry.track_id, entry.action, entry.genre) == (first, tid, "write", "Jazz")
    assert entry.before == {"genres": ["Rock"], "marker": None}  # decoded, not JSON text
    assert entry.completed is False
    assert entry.real_path == "/m/caf\udce9.mp3" and entry.path == path_key(raw)[0]
    assert [e.id for e in index.journal_entries(track_id=tid)] == [first, second]
    assert [e.completed for e in index.journal_entries(path=raw)] == [False, True]
    assert [e.run_id for e in index.journal_entries()] == [scan_run, undo_run]
    assert index.journal_entries(track_id=tid + 1) == []


def test_present_path_follows_moves_and_not_missing_files(index):
    tid = index.save_track("/m/old.mp3", {"status": "tagged"})
    assert index.present_path(tid) == "/m/old.mp3"
    index.move_track(tid, b"/m/n\xe9w.mp3", size=1, mtime_ns=2)
    assert index.present_path(tid) == "/m/n\udce9w.mp3"
    index.mark_missing([tid])
    assert index.present_path(tid) is None
    assert index.present_path(tid + 1) is None


@pytest.fixture
def filled(index):
    rows = [("/m/jazz/a.flac", "tagged", "Jazz", 0.91, None, 0),
            ("/m/jazz/b'c.mp3", "kept", "Jazz", 0.70, "Bebop", 0),
            ("/m/rock/c.mp3", "unsure", "Rock", 0.35, "Rock", 0),
            ("/m/rock/d.ogg", "kept", "Metal", 0.88, "Rock", 1),
            ("/m/x.mp3", "error", None, None, None, 0)]
    for path, status, genre, conf, prev, missing in rows:
        tid = index.save_track(path, {"status": status, "genre": genre, "confidence": conf,
                                      "previous_genre": prev})
        if missing:
            index.mark_missing([tid])
    return index


@pytest.mark.parametrize("wanted, paths", [
    (TrackFilter(), ["/m/jazz/a.flac", "/m/jazz/b'c.mp3", "/m/rock/c.mp3", "/m/rock/d.ogg", "/m/x.mp3"]),
    (TrackFilter(genre="Jazz"), ["/m/jazz/a.flac", "/m/jazz/b'c.mp3"]),
    (TrackFilter(status="kept"), ["/m/jazz/b'c.mp3", "/m/rock/d.ogg"]),
    (TrackFilter(min_confidence=0.7, max_confidence=0.88), ["/m/jazz/b'c.mp3", "/m/rock/d.ogg"]),
    (TrackFilter(path_glob="*/rock/*"), ["/m/rock/c.mp3", "/m/rock/d.ogg"]),
    (TrackFilter(path_glob="*'*"), ["/m/jazz/b'c.mp3"]),  # a quote is a value, not SQL
    (TrackFilter(missing=True), ["/m/rock/d.ogg"]),
    (TrackFilter(missing=False, with_previous_genre=True), ["/m/jazz/b'c.mp3", "/m/rock/c.mp3"]),
    (TrackFilter(genre="Jazz' or '1'='1"), []),
])
def test_tracks_matching_each_filter(filled, wanted, paths):
    assert [row.path for row in filled.tracks_matching(wanted)] == paths


def test_counts_of_present_tracks(filled):
    filled.start_run(kind="scan", arguments={})
    counts = filled.counts()
    assert isinstance(counts, IndexCounts)
    assert counts.by_genre == {"Jazz": 2, None: 1, "Rock": 1}
    assert list(counts.by_genre)[0] == "Jazz"  # most common first
    assert counts.by_status == {"error": 1, "kept": 1, "tagged": 1, "unsure": 1}
    assert (counts.missing, counts.runs) == (1, 1)


def test_an_old_index_gains_the_track_columns_in_place(tmp_path):
    """An index of libtagger 0.1 (no ``reason``/``detector_id``) is altered, its rows kept."""
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    # the tracks table exactly as libtagger 0.1 created it
    old_sql = ("CREATE TABLE [tracks] ([id] INTEGER PRIMARY KEY, [path] TEXT NOT NULL, [path_bytes] BLOB, "
               "[size] INTEGER, [mtime_ns] INTEGER, [fingerprint] TEXT, [format] TEXT, [duration] FLOAT, "
               "[samplerate] INTEGER, [channels] INTEGER, [status] TEXT, [error] TEXT, [genre] TEXT, "
               "[confidence] FLOAT, [runner_up] TEXT, [runner_up_confidence] FLOAT, [previous_genre] TEXT, "
               "[written] INTEGER DEFAULT 0, [written_genre] TEXT, [model_id] TEXT, [missing] INTEGER DEFAULT 0, "
               "[analysed_at] TEXT, [updated_at] TEXT, [run_id] INTEGER)")
    con.execute(old_sql)
    con.execute("insert into tracks (id, path, status, genre) values (3, '/m/a.mp3', 'tagged', 'Jazz')")
    complete_old_index(con)  # the other tables libtagger 0.1 made beside it
    con.commit()
    con.close()

    index = Index(path)
    try:
        assert index.db["tracks"].schema.startswith(old_sql[:-1])  # altered, not rebuilt
        row = index.track(3)
        assert (row.path, row.genre, row.reason, row.detector_id) == ("/m/a.mp3", "Jazz", None, None)
        assert index.file_states()["/m/a.mp3"].detector_id is None
        # its segment rows gain the pulse column empty: the music detector then skips its beat check
        assert "pulse" in index.db["segments"].columns_dict
        assert stored_pulse([{"pulse": None}, {"pulse": 0.4}]) is None
        assert stored_pulse([{"pulse": 0.1}, {"pulse": 0.4}]) == [0.1, 0.4]
    finally:
        index.close()


def test_track_of_file_finds_a_file_indexed_under_a_link_either_way(index, tmp_path):
    real = tmp_path / "b" / "real.mp3"
    real.parent.mkdir()
    real.write_bytes(b"x" * 1000)
    (tmp_path / "a").mkdir()
    link = tmp_path / "a" / "link.mp3"
    link.symlink_to(Path("..") / "b" / "real.mp3")
    other = tmp_path / "b" / "other.mp3"
    other.write_bytes(b"x" * 1000)  # same size, another file
    index.save_track(str(other), {"size": 1000})
    tid = index.save_track(str(link), {"size": 1000})
    assert index.track_by_path(str(real)) is None
    assert index.track_of_file(str(real)).id == tid  # the link's target: the link's track
    assert index.track_of_file(str(link)).id == tid
    assert index.track_of_file(str(other)).id != tid
    real.write_bytes(b"y" * 1200)  # changed since the scan: the index holds another size,
    assert index.track_of_file(str(real)) is None  # and another name: not compared
    link.rename(tmp_path / "a" / "real.mp3")  # a link of the same name is compared
    index.move_track(tid, str(tmp_path / "a" / "real.mp3"), size=1000, mtime_ns=1)
    assert index.track_of_file(str(real)).id == tid
    assert index.track_of_file(str(tmp_path / "gone.mp3")) is None

    # indexed under its own path, asked through a link to it
    (tmp_path / "c").mkdir()
    song = tmp_path / "c" / "song.mp3"
    song.write_bytes(b"z" * 10)
    sid = index.save_track(str(song), {"size": 10})
    (tmp_path / "c" / "fav.mp3").symlink_to(song)
    assert index.track_of_file(str(tmp_path / "c" / "fav.mp3")).id == sid
    index.mark_missing([sid])
    assert index.track_of_file(str(tmp_path / "c" / "fav.mp3")) is None  # only present tracks
