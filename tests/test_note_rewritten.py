"""``verdict_api.note_rewritten``: another program (beets) wrote libtagger's genres into a file.

The index keeps the track's verdict under the file's new size and time, and records the values
written from it (the genre and a second genre beside it) as libtagger's own, so the library
context never takes either for a genre a person set.
"""

from __future__ import annotations

import os
from pathlib import Path

from conftest import make_audio
from libtagger.store.index import Index
from libtagger.verdict_api import note_rewritten


def _indexed(tmp_path: Path) -> tuple[Path, Path]:
    song = make_audio(tmp_path / "song.flac", 2.0)
    index = tmp_path / "index.db"
    db = Index(index)
    st = song.stat()
    db.save_track(str(song), {"status": "tagged", "genre": "Jazz", "confidence": 0.7, "runner_up": "Blues",
                              "runner_up_confidence": 0.3, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    db.close()
    return song, index


def _row(index: Path, song: Path):
    db = Index(index, read_only=True)
    try:
        return db.track_by_path(str(song))
    finally:
        db.close()


def test_the_genre_pair_written_from_the_verdict_is_recorded_as_libtaggers(tmp_path):
    song, index = _indexed(tmp_path)
    with open(song, "ab") as f:  # the other program rewrote the file: new size and time
        f.write(b"\0" * 16)
    assert note_rewritten(index, song, genre="Jazz", second_genre="Blues")
    row = _row(index, song)
    assert (row.written_genre, row.second_genre) == ("Jazz", "Blues")
    assert (row.size, row.mtime_ns) == (os.stat(song).st_size, os.stat(song).st_mtime_ns)
    assert (row.status, row.genre) == ("tagged", "Jazz")  # the verdict stays


def test_one_value_written_forgets_an_earlier_second_and_no_genre_changes_neither(tmp_path):
    song, index = _indexed(tmp_path)
    assert note_rewritten(index, song, genre="Jazz", second_genre="Blues")
    assert note_rewritten(index, song, genre="Jazz")
    assert (_row(index, song).written_genre, _row(index, song).second_genre) == ("Jazz", None)
    assert note_rewritten(index, song)  # tags rewritten, no genre of libtagger's among them
    assert _row(index, song).written_genre == "Jazz"


def test_a_file_the_index_does_not_know_changes_nothing(tmp_path):
    song, index = _indexed(tmp_path)
    other = make_audio(tmp_path / "other.flac", 1.0)
    assert not note_rewritten(index, other, genre="Jazz", second_genre="Blues")
