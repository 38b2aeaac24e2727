"""An index that is not libtagger's is refused untouched; index problems are one-line errors.

Every command that opens an index (scan, query, stats, show, runs, undo, browse, learn) is
run through the CLI on real files: another program's SQLite database (with and without a
``tracks`` table of its own), a file that is not SQLite, a truncated index, garbage in the
middle of an index, a folder, an absent or empty file, and an index on a read-only file
system (a read-only bind mount; by mode bits when not root). ``evaluate`` takes no index.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from conftest import INDEX_0_1_SQL
from libtagger.cli import app
from libtagger.errors import IndexFileError
from libtagger.store.index import APPLICATION_ID, SCHEMA_VERSION, Index, check_index_file, pack_array

runner = CliRunner()

COMMANDS = ("scan", "query", "stats", "show", "runs", "undo", "browse", "learn")
READERS = ("query", "stats", "show", "runs", "browse", "learn")
PAGE = 4096  # sqlite-utils' (and SQLite's) default page size


def run(command: str, index: Path, tmp_path: Path) -> Result:
    """``libtagger COMMAND ... --index INDEX``, with what each command needs besides."""
    music = tmp_path / "music"
    music.mkdir(exist_ok=True)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    args = {"scan": ["scan", "--dry-run", str(music)], "query": ["query"], "stats": ["stats"],
            "show": ["show", "/m/0.flac"], "runs": ["runs"], "undo": ["undo", "--run", "1"],
            "browse": ["browse", "--no-open", "--metadata-out", str(out / "metadata.json")],
            "learn": ["learn", "mine"]}[command]
    return runner.invoke(app, [*args, "--index", str(index)])


def assert_one_line_error(result: Result, *wanted: str) -> str:
    """Exit 1 with one ``libtagger: error:`` line holding every ``wanted`` text, no traceback."""
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not a crash
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("libtagger: error: "), result.stderr
    for text in wanted:
        assert text in lines[0], lines[0]
    return lines[0]


def folder_state(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of ``folder`` with its bytes and modification time (new files show too)."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file()}


def make_index(path: Path, tracks: int = 120) -> Path:
    """A real index of several hundred kB: a finished run and tracks with two segments each."""
    db = Index(path)
    run_id = db.start_run(kind="scan", arguments={})
    features = pack_array(np.random.default_rng(0).normal(size=57), "float32")
    for n in range(tracks):
        db.save_track(f"/m/{n}.flac", {"status": "tagged", "genre": "Jazz", "confidence": 0.9,
                                       "run_id": run_id},
                      [{"idx": i, "start": 30.0 * i, "end": 30.0 * (i + 1), "genre": "Jazz",
                        "confidence": 0.9, "probabilities": json.dumps([0.1] * 10),
                        "features": features, "taggram": None} for i in range(2)])
    db.finish_run(run_id, outcome="finished", counts={"tagged": tracks})
    db.close()
    return path


@pytest.fixture
def index_file(tmp_path: Path) -> Path:
    folder = tmp_path / "index"
    folder.mkdir()
    return make_index(folder / "index.db")


def other_program_db(path: Path, kind: str) -> Path:
    """A contacts database (``wal``: in WAL mode), or a music player's with a ``tracks`` table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    if kind == "wal":
        con.execute("pragma journal_mode = wal")
    if kind == "own-tracks-table":
        con.execute("create table tracks (title text, artist text, plays integer)")
        con.execute("insert into tracks values ('So What', 'Miles Davis', 12)")
    else:
        con.execute("create table people (name text, phone text)")
        con.execute("insert into people values ('Ada', '555-0100')")
    con.commit()
    con.close()
    return path


# --- another program's file: refused before anything is written ---------------------------------


@pytest.mark.parametrize("kind", ["contacts", "own-tracks-table", "wal"])
@pytest.mark.parametrize("command", COMMANDS)
def test_another_programs_database_is_refused_and_left_as_it_was(tmp_path, command, kind):
    other = other_program_db(tmp_path / "elsewhere" / "contacts.db", kind)
    assert sorted(os.listdir(other.parent)) == ["contacts.db"]  # its program closed it
    before = folder_state(other.parent)
    result = run(command, other, tmp_path)
    assert_one_line_error(result, str(other), "not a libtagger index")
    # the same bytes and times, and no PATH-wal, PATH-shm or PATH.lock beside it
    assert folder_state(other.parent) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_that_is_not_sqlite_is_refused_and_left_as_it_was(tmp_path, command):
    notes = tmp_path / "elsewhere" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("not a database, but long enough to hold an SQLite header. " * 4)
    before = folder_state(notes.parent)
    assert_one_line_error(run(command, notes, tmp_path), str(notes), "not an SQLite database")
    assert folder_state(notes.parent) == before


def test_a_meta_table_alone_does_not_make_an_index(tmp_path):
    """Another program's meta/schema_version and tracks, without runs and journal: not ours."""
    path = tmp_path / "app.db"
    con = sqlite3.connect(path)
    con.executescript("create table meta (key text primary key, value text);"
                      "insert into meta values ('schema_version', '4');"
                      "create table tracks (id integer primary key, path text not null);")
    con.close()
    before = path.read_bytes()
    with pytest.raises(IndexFileError, match="not a libtagger index"):
        Index(path)
    assert path.read_bytes() == before


# --- libtagger's own files: new, older, absent, empty ---------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_an_index_of_a_newer_libtagger_is_refused_and_left_as_it_was(index_file, tmp_path, command):
    """A newer schema's rows may mean what this version cannot know, and opening it for writing
    stamped it back to this version's schema_version: refused, in one line, byte for byte kept."""
    con = sqlite3.connect(index_file)
    con.execute("update meta set value = ? where key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    before = folder_state(index_file.parent)
    assert_one_line_error(run(command, index_file, tmp_path), str(index_file), "made by a newer libtagger",
                          "upgrade libtagger")
    assert folder_state(index_file.parent) == before


def test_a_new_index_carries_libtaggers_mark(tmp_path):
    Index(tmp_path / "index.db").close()
    con = sqlite3.connect(tmp_path / "index.db")
    assert con.execute("pragma application_id").fetchone()[0] == APPLICATION_ID
    con.close()
    assert check_index_file(tmp_path / "index.db") == "libtagger"


def test_an_index_of_an_older_libtagger_is_recognised_and_stamped(tmp_path):
    """The tables exactly as libtagger 0.1 made them, with no application id, and a track."""
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(INDEX_0_1_SQL)
    con.execute("insert into tracks (id, path, status, genre) values (4, '/m/old.mp3', 'tagged', 'Blues')")
    con.commit()
    con.close()
    assert check_index_file(path) == "older"
    result = runner.invoke(app, ["query", "--format", "json", "--index", str(path)])
    assert result.exit_code == 0, result.output
    assert [(r["path"], r["genre"]) for r in json.loads(result.stdout)] == [("/m/old.mp3", "Blues")]
    con = sqlite3.connect(path)
    assert con.execute("pragma application_id").fetchone()[0] == APPLICATION_ID
    con.close()


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "scan"])
def test_an_absent_index_is_a_clean_error_and_nothing_is_made(tmp_path, command):
    folder = tmp_path / "data"
    folder.mkdir()
    assert_one_line_error(run(command, folder / "index.db", tmp_path), "no index yet", "libtagger scan")
    assert list(folder.iterdir()) == []  # no index, no lock file


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "scan"])
def test_an_empty_file_is_no_index_for_commands_that_read(tmp_path, command):
    empty = tmp_path / "data" / "index.db"
    empty.parent.mkdir()
    empty.touch()
    assert_one_line_error(run(command, empty, tmp_path), "no index yet")
    assert empty.stat().st_size == 0 and sorted(os.listdir(empty.parent)) == ["index.db"]


def test_scan_makes_its_index_in_an_empty_file(tmp_path):
    empty = tmp_path / "index.db"
    empty.touch()
    result = run("scan", empty, tmp_path)
    assert result.exit_code == 0, result.output
    assert check_index_file(empty) == "libtagger"


def test_an_index_a_run_is_writing_is_not_taken_for_a_damaged_one(index_file, tmp_path):
    """Pages waiting in the write-ahead log, not yet in the file: still a whole index."""
    writer = Index(index_file)
    try:
        writer.save_track("/m/new.flac", {"status": "kept", "genre": "Rock"})
        assert os.path.getsize(f"{index_file}-wal") > 0
        result = runner.invoke(app, ["query", "--genre", "rock", "--format", "json",
                                     "--index", str(index_file)])
        assert result.exit_code == 0, result.output
        assert [r["path"] for r in json.loads(result.stdout)] == ["/m/new.flac"]
    finally:
        writer.close()


# --- damaged index files ------------------------------------------------------------------------


def truncated(index_file: Path) -> Path:
    size = index_file.stat().st_size
    assert size > 20 * PAGE  # the fixture made a many-page file
    os.truncate(index_file, size // 2)
    return index_file


def garbage_in_the_middle(index_file: Path) -> Path:
    """Random bytes over every page but the first (the header and the schema stay readable)."""
    size = index_file.stat().st_size
    with open(index_file, "r+b") as handle:
        handle.seek(PAGE)
        handle.write(np.random.default_rng(1).bytes(size - 2 * PAGE))
    return index_file


@pytest.mark.parametrize("damage, wanted", [(truncated, "truncated"), (garbage_in_the_middle, "damaged")],
                         ids=["truncated", "garbage"])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_index_is_a_one_line_error_and_left_as_it_was(index_file, tmp_path, command, damage, wanted):
    damage(index_file)
    before = folder_state(index_file.parent)["index.db"]
    result = run(command, index_file, tmp_path)
    if command == "browse" and damage is garbage_in_the_middle:
        # --metadata-out reads only the schema (page 1): it may find nothing damaged to show
        if result.exit_code != 0:
            assert_one_line_error(result, "damaged")
    else:
        assert_one_line_error(result, str(index_file), wanted)
    # its bytes and time (a run's INDEX.lock, or a reader's INDEX-shm, may appear beside it)
    assert folder_state(index_file.parent)["index.db"] == before


def test_a_page_damaged_in_the_middle_shows_when_a_query_reads_it(index_file, tmp_path):
    """The index opens (its schema is whole); the tracks table's pages are garbage."""
    con = sqlite3.connect(index_file)
    root = con.execute("select rootpage from sqlite_master where name = 'tracks'").fetchone()[0]
    con.close()
    with open(index_file, "r+b") as handle:
        handle.seek((root - 1) * PAGE)
        handle.write(b"\xa5" * PAGE)
    assert_one_line_error(run("query", index_file, tmp_path), str(index_file), "damaged",
                          "database disk image is malformed")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_is_no_index(tmp_path, command):
    folder = tmp_path / "index.db"
    (folder / "inside").mkdir(parents=True)
    assert_one_line_error(run(command, folder, tmp_path), str(folder), "is a folder")
    assert os.listdir(folder) == ["inside"] and not Path(f"{folder}.lock").exists()


# --- a read-only file system ----------------------------------------------------------------------


@pytest.fixture
def read_only_view(tmp_path: Path):
    """``read_only_view(folder)``: the folder seen through a read-only bind mount (root).

    Not root: the folder and its files made read-only by their mode bits instead. Root
    without ``mount``: skipped (root writes through mode bits).
    """
    mounted: list[Path] = []
    protected: list[Path] = []

    def view(folder: Path) -> Path:
        where = tmp_path / "read-only"
        where.mkdir()
        try:
            subprocess.run(["mount", "--bind", str(folder), str(where)], check=True, capture_output=True)
            mounted.append(where)
            subprocess.run(["mount", "-o", "remount,ro,bind", str(where)], check=True, capture_output=True)
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            if os.geteuid() == 0:
                pytest.skip(f"cannot make a read-only bind mount here: {getattr(exc, 'stderr', exc)!r}")
            for path in [*folder.iterdir(), folder]:
                path.chmod(0o555 if path.is_dir() else 0o444)
                protected.append(path)
            return folder
        assert not os.access(where, os.W_OK)
        return where

    yield view
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)
    for path in protected:
        path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.mark.parametrize("command, shown", [("query", "/m/7.flac"), ("stats", "120 tracks"),
                                            ("show", "/m/0.flac"), ("runs", "finished")])
def test_commands_that_read_read_an_index_on_a_read_only_file_system(index_file, read_only_view,
                                                                    tmp_path, command, shown):
    before = folder_state(index_file.parent)
    index = read_only_view(index_file.parent) / index_file.name
    result = run(command, index, tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)
    assert shown in result.stdout
    assert folder_state(index_file.parent) == before


def test_learn_reads_an_index_on_a_read_only_file_system(index_file, read_only_view, tmp_path):
    index = read_only_view(index_file.parent) / index_file.name
    # it read the index: it says what it found there (no genre a person set), not an I/O error
    assert_one_line_error(run("learn", index, tmp_path), "too little to learn")


@pytest.mark.parametrize("command", ["scan", "undo", "browse"])
def test_commands_that_write_or_serve_say_the_file_system_is_read_only(index_file, read_only_view,
                                                                        tmp_path, command):
    before = folder_state(index_file.parent)
    index = read_only_view(index_file.parent) / index_file.name
    result = run(command, index, tmp_path)
    if command == "browse" and result.exit_code == 0:  # Datasette's metadata could be read
        assert (tmp_path / "out" / "metadata.json").exists()
    else:
        assert_one_line_error(result, str(index))
    assert folder_state(index_file.parent) == before


def test_a_damaged_index_on_a_read_only_file_system_fails_in_one_line(index_file, read_only_view, tmp_path):
    """Opened read-only, nothing is checked by writing: the damage shows at the first query."""
    garbage_in_the_middle(index_file)
    index = read_only_view(index_file.parent) / index_file.name
    for command in ("query", "stats", "show", "runs"):
        assert_one_line_error(run(command, index, tmp_path), str(index), "damaged")

