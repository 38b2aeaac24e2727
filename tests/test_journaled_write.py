"""The journaled write on real audio files and a real SQLite index: the journal entry is
written before the file changes and completed after; a refused write leaves the entry open,
marked as never written, and the file byte for byte as it was; the same operation restores a
journaled state (undo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import make_audio
from libtagger.scan.journaled_write import NotWritten, RestoreSnapshot, WriteGenre, Written, journaled_write
from libtagger.store.index import Index
from libtagger.tags import storage as tags

#: One file per tag family: Vorbis comment, ID3v2, MP4.
NAMES = ("song.flac", "song.mp3", "song.m4a")


@pytest.fixture
def index(tmp_path: Path):
    db = Index(tmp_path / "index.db")
    yield db
    db.close()


def rock_file(folder: Path, name: str) -> Path:
    """A real audio file whose genre a person set to Rock (written by ffmpeg, not by libtagger)."""
    path = make_audio(folder / name, 2.0, extra_ffmpeg=["-metadata", "genre=Rock"])
    assert tags.read_genres(path) == ["Rock"] and not tags.written_by_libtagger(path)
    return path


def new_track(index: Index, path: Path) -> tuple[int, int]:
    run = index.start_run(kind="scan", arguments={})
    st = path.stat()
    track = index.save_track(str(path), {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                         "status": "would-tag", "run_id": run})
    return run, track


@pytest.mark.parametrize("name", NAMES)
def test_write_is_journaled_before_and_completed_after(index, tmp_path, name):
    path = rock_file(tmp_path, name)
    run, track = new_track(index, path)
    outcome = journaled_write(index, run_id=run, track_id=track, path=str(path), action=WriteGenre("Jazz"))
    assert isinstance(outcome, Written)
    assert tags.read_genres(path) == ["Jazz"] and tags.written_by_libtagger(path)
    st = path.stat()
    assert (outcome.size, outcome.mtime_ns) == (st.st_size, st.st_mtime_ns)
    [entry] = index.journal_entries(run_id=run)
    assert entry.id == outcome.entry_id and entry.track_id == track
    assert (entry.action, entry.genre, entry.completed) == ("write", "Jazz", True)
    # the journal holds the state before the write: the person's genre, no marker
    assert entry.before == outcome.before.to_json()  # the index keeps the snapshot's JSON
    assert outcome.before.genres == ["Rock"] and outcome.before.marker is None
    assert entry.real_path == str(path)


def test_refused_write_leaves_the_entry_open_and_the_file_intact(index, tmp_path):
    path = rock_file(tmp_path, "song.flac")
    run, track = new_track(index, path)
    data = path.read_bytes()
    path.chmod(0o444)  # refused even for root (see libtagger.tags.safe_write.check_writable)
    try:
        outcome = journaled_write(index, run_id=run, track_id=track, path=str(path),
                                  action=WriteGenre("Jazz"))
    finally:
        path.chmod(0o644)
    assert isinstance(outcome, NotWritten)
    assert "read-only" in outcome.reason
    assert path.read_bytes() == data
    # journaled before the attempt, never completed, and marked as never written with the
    # reason: undo passes it over (a crash mid-write leaves it unmarked, and undo restores Rock)
    [entry] = index.journal_entries(track_id=track)
    assert entry.id == outcome.entry_id
    assert entry.completed is False and tags.Snapshot.from_json(entry.before).genres == ["Rock"]
    assert entry.not_written == outcome.reason


def test_vanished_file_journals_nothing(index, tmp_path):
    path = rock_file(tmp_path, "song.mp3")
    run, track = new_track(index, path)
    path.unlink()
    outcome = journaled_write(index, run_id=run, track_id=track, path=str(path), action=WriteGenre("Jazz"))
    assert outcome == NotWritten("file not found", None)
    assert index.journal_entries(run_id=run) == []
    assert not os.path.lexists(path)


@pytest.mark.parametrize("name", NAMES)
def test_undo_through_the_same_operation_restores_and_can_be_undone(index, tmp_path, name):
    path = rock_file(tmp_path, name)
    run, track = new_track(index, path)
    written = journaled_write(index, run_id=run, track_id=track, path=str(path), action=WriteGenre("Jazz"))
    assert isinstance(written, Written)
    [write_entry] = index.journal_entries(run_id=run)

    undo_run = index.start_run(kind="undo", arguments={"run": run})
    undone = journaled_write(index, run_id=undo_run, track_id=track, path=str(path),
                             action=RestoreSnapshot(tags.Snapshot.from_json(write_entry.before)))
    assert isinstance(undone, Written)
    assert tags.read_genres(path) == ["Rock"] and not tags.written_by_libtagger(path)
    assert tags.snapshot(path).to_json() == write_entry.before
    # the undo journaled libtagger's genre in its own run, so it can be undone in turn
    [undo_entry] = index.journal_entries(run_id=undo_run)
    assert (undo_entry.action, undo_entry.genre, undo_entry.completed) == ("undo", None, True)
    undo_before = tags.Snapshot.from_json(undo_entry.before)
    assert undo_before.genres == ["Jazz"] and undo_before.marker == "Jazz"

    redo_run = index.start_run(kind="undo", arguments={"run": undo_run})
    redone = journaled_write(index, run_id=redo_run, track_id=track, path=str(path),
                             action=RestoreSnapshot(undo_before))
    assert isinstance(redone, Written)
    assert tags.read_genres(path) == ["Jazz"] and tags.written_by_libtagger(path)
    assert [e.action for e in index.journal_entries(track_id=track)] == ["write", "undo", "undo"]


def test_restoring_a_snapshot_of_another_format_is_refused_and_journaled_open(index, tmp_path):
    flac = rock_file(tmp_path, "song.flac")
    mp3 = rock_file(tmp_path, "song.mp3")
    run, track = new_track(index, mp3)
    data = mp3.read_bytes()
    outcome = journaled_write(index, run_id=run, track_id=track, path=str(mp3),
                              action=RestoreSnapshot(tags.snapshot(flac)))
    assert isinstance(outcome, NotWritten) and "vorbis" in outcome.reason
    assert mp3.read_bytes() == data
    assert [(e.completed, e.not_written) for e in index.journal_entries(run_id=run)] == [(False, outcome.reason)]
