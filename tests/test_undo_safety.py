"""Undo keeps a genre a person set after libtagger wrote (issue 17, item 1) and follows a file
moved since, before any scan has seen the move (item 6); it leaves out a file whose write was
refused (nothing to undo) but undoes one whose write was killed mid-way. Real files, a real
scan, a real index.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import mutagen
import pytest
from mutagen.id3 import TCON

from conftest import make_audio
from libtagger.tags import riff_info
from libtagger.tags import storage as tags
from scan_harness import cli, require_seed_model, SEED_WRITE_SCAN, tracks_by_name



@pytest.fixture(autouse=True)
def _seed():
    require_seed_model()



def scan(lib: Path, index: Path) -> int:
    result = cli("scan", lib, *SEED_WRITE_SCAN, "--jobs", 1, "--index", index)
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in json.loads(result.stdout)} == {"tagged"}, result.stdout
    return last_run_id(index)


def last_run_id(index: Path) -> int:
    return json.loads(cli("runs", "--format", "json", "--index", index).stdout)[0]["id"]


def run_counts(index: Path, run: int) -> dict[str, int]:
    with sqlite3.connect(index) as conn:
        return json.loads(conn.execute("select counts from runs where id = ?", [run]).fetchone()[0])


def set_person_genre(path: Path, genre: str) -> None:
    """What another tag editor does: replace the genre, leave libtagger's marker alone."""
    f = mutagen.File(path)
    if path.suffix == ".mp3":
        f.tags.delall("TCON")
        f.tags.add(TCON(encoding=3, text=[genre]))
    else:
        f["genre"] = [genre]
    f.save()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_undo_keeps_a_genre_a_person_set_since_unless_force(tmp_path):
    lib, index = tmp_path / "Music", tmp_path / "index.db"
    metal = make_audio(lib / "metal.mp3", 6.0, seed=1)
    other = make_audio(lib / "other.flac", 6.0, seed=2)
    original_other = sha(other)
    run = scan(lib, index)
    set_person_genre(metal, "Thrash")

    result = cli("undo", "--run", run, "--index", index)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (f"libtagger: {metal}: genre changed since libtagger wrote it "
                                     "(now 'Thrash'); kept (use --force to restore anyway)")
    assert tags.read_genres(metal) == ["Thrash"]
    assert sha(other) == original_other  # the run went on with the other file
    assert result.stdout.splitlines()[-1].endswith("1 restored, 1 skipped, 0 failed")
    assert run_counts(index, last_run_id(index)) == {"restored": 1, "skipped": 1, "error": 0}
    assert tracks_by_name(index)["metal.mp3"]["status"] == "tagged"  # not marked undone

    result = cli("undo", metal, "--index", index)  # one file: the same rule
    assert result.exit_code == 0 and "genre changed since libtagger wrote it" in result.stderr
    assert tags.read_genres(metal) == ["Thrash"]

    result = cli("undo", metal, "--force", "--index", index)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"restored {metal}: (no genre)")
    assert tags.read_genres(metal) == []


def test_undo_keeps_a_wav_info_genre_a_person_changed(tmp_path):
    """ffprobe and Windows read INFO's IGNR: a person's change there alone counts too."""
    lib, index = tmp_path / "Music", tmp_path / "index.db"
    song = make_audio(lib / "song.wav", 6.0, seed=3)
    run = scan(lib, index)
    body = riff_info.with_field(riff_info.read_info_chunk(song), "IGNR", "Delta Blues")
    riff_info.write_info_chunk(song, body)

    result = cli("undo", "--run", run, "--index", index)
    assert result.exit_code == 0 and "now 'Delta Blues'" in result.stderr, result.output
    assert riff_info.read_info(song)["IGNR"] == "Delta Blues"


def test_undoing_an_undo_keeps_a_genre_a_person_set_after_the_undo(tmp_path):
    lib, index = tmp_path / "Music", tmp_path / "index.db"
    song = make_audio(lib / "song.flac", 6.0, seed=4)
    scan(lib, index)
    assert cli("undo", song, "--index", index).exit_code == 0
    undo_run = last_run_id(index)
    set_person_genre(song, "Cool Jazz")  # the person tags it after taking libtagger's back

    result = cli("undo", "--run", undo_run, "--index", index)
    assert result.exit_code == 0 and "now 'Cool Jazz'" in result.stderr, result.output
    assert tags.read_genres(song) == ["Cool Jazz"]


def test_undo_follows_a_file_moved_before_any_scan_saw_it(tmp_path):
    lib, index = tmp_path / "Music", tmp_path / "index.db"
    first = make_audio(lib / "a.mp3", 6.0, seed=5)
    second = make_audio(lib / "b.flac", 6.0, seed=6)
    original = {"a.mp3": sha(first), "b.flac": sha(second)}
    run = scan(lib, index)
    (lib / "Sorted").mkdir()
    moved_a, moved_b = lib / "Sorted" / "renamed.mp3", lib / "Sorted" / "renamed.flac"
    first.rename(moved_a)
    second.rename(moved_b)

    result = cli("undo", moved_a, "--index", index)  # the file, under its new name
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"restored {moved_a}: (no genre)")
    assert sha(moved_a) == original["a.mp3"]

    result = cli("undo", "--run", run, "--index", index)  # the run: found under its roots
    assert result.exit_code == 0, result.output
    assert f"restored {moved_b}: (no genre)" in result.stdout
    assert sha(moved_b) == original["b.flac"]
    tracks = tracks_by_name(index)  # the index follows both files, as a scan would
    assert tracks["renamed.flac"]["status"] == "undone" and tracks["renamed.mp3"]["status"] == "undone"
    assert "a.mp3" not in tracks and "b.flac" not in tracks


def test_undo_of_a_run_leaves_out_the_files_it_could_not_write(tmp_path):
    """A write refused by a read-only file changed nothing: undo of that run neither lists nor
    counts the file, and leaves alone what a later run wrote to it."""
    lib, index = tmp_path / "Music", tmp_path / "index.db"
    written = [make_audio(lib / "a.flac", 6.0, seed=7), make_audio(lib / "b.mp3", 6.0, seed=8)]
    stuck = make_audio(lib / "stuck.flac", 6.0, seed=9)
    stuck.chmod(0o444)  # refused even for root (libtagger.tags.safe_write.check_writable)
    result = cli("scan", lib, *SEED_WRITE_SCAN, "--jobs", 1, "--index", index)
    assert result.exit_code == 0, result.output
    report = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert report["stuck.flac"]["status"] == "error" and "read-only" in report["stuck.flac"]["error"]
    assert {report[p.name]["status"] for p in written} == {"tagged"}
    first = last_run_id(index)
    stuck.chmod(0o644)
    result = cli("scan", lib, *SEED_WRITE_SCAN, "--jobs", 1, "--index", index)  # the next run writes it
    assert result.exit_code == 0, result.output
    assert {Path(r["path"]).name: r["status"] for r in json.loads(result.stdout)} == {
        "a.flac": "unchanged", "b.mp3": "unchanged", "stuck.flac": "tagged"}
    later = sha(stuck)

    result = cli("undo", "--run", first, "--index", index)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"restored {p}: (no genre)" for p in written] + [
        f"undo run {first + 2}: 2 restored, 0 failed"]
    assert run_counts(index, first + 2) == {"restored": 2, "skipped": 0, "error": 0}
    assert sha(stuck) == later and tags.written_by_libtagger(stuck)  # the later run's write stays
    assert all(tags.read_genres(p) == [] for p in written)


#: A child that journals a genre write in run ARGV[3] and is killed right after the rename put the
#: new file in place, before the entry is marked completed: what a crash or a kill -9 leaves.
KILLED_AFTER_RENAME = r"""
import os, signal, sys
from libtagger.scan.journaled_write import WriteGenre, journaled_write
from libtagger.store.index import Index

index, path, run, track = Index(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
real_replace = os.replace

def replace_then_die(*args, **kwargs):
    real_replace(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

os.replace = replace_then_die
journaled_write(index, run_id=run, track_id=track, path=path, action=WriteGenre("Jazz"))
"""


def test_a_write_killed_after_its_rename_is_undone_and_a_refused_one_is_not_listed(tmp_path):
    """Both leave a journal entry that is not completed; only the refused one changed nothing."""
    from libtagger.scan.journaled_write import NotWritten, WriteGenre, journaled_write
    from libtagger.store.index import Index

    lib, index_path = tmp_path / "Music", tmp_path / "index.db"
    killed, refused = make_audio(lib / "killed.flac", 2.0, seed=1), make_audio(lib / "refused.mp3", 2.0, seed=2)
    original = {p: sha(p) for p in (killed, refused)}
    index = Index(index_path)
    try:
        run = index.start_run(kind="scan", arguments={"roots": [str(lib)]})
        track = {p: index.save_track(str(p), {"status": "would-tag", "run_id": run}) for p in (killed, refused)}
        refused.chmod(0o444)
        outcome = journaled_write(index, run_id=run, track_id=track[refused], path=str(refused),
                                  action=WriteGenre("Jazz"))
        assert isinstance(outcome, NotWritten)
        refused.chmod(0o644)
        index.finish_run(run, outcome="interrupted", counts={})
    finally:
        index.close()
    child = subprocess.run([sys.executable, "-c", KILLED_AFTER_RENAME, str(index_path), str(killed),
                            str(run), str(track[killed])], capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert tags.read_genres(killed) == ["Jazz"]  # the new file is in place, its entry not completed
    with sqlite3.connect(index_path) as conn:
        assert conn.execute("select path, completed, not_written is not null from journal order by id").fetchall() == [
            (str(refused), 0, 1), (str(killed), 0, 0)]

    result = cli("undo", "--run", run, "--index", index_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"restored {killed}: (no genre)", f"undo run {run + 1}: 1 restored, 0 failed"]
    assert sha(killed) == original[killed] and sha(refused) == original[refused]
