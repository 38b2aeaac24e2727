"""A stored verdict is written only onto the bytes it was made from.

Size and mtime do not prove a file unchanged: ``cp -p``, rsync ``--times`` or a sync tool can
put other audio of the same length (every 6-s 16-bit stereo WAV here has the same size) under
the same time. The index keeps a content check from the analysis; a write from a stored verdict
(a real run after a dry run, a re-vote) whose file fails it analyses the file again instead.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import mutagen
import pytest

from conftest import make_audio
from libtagger.audio.analysis import CHECK_BLOCK_BYTES, content_check
from scan_harness import require_seed_model, seed_scan as scan, tracks_by_name



@pytest.fixture(autouse=True)
def _seed():
    require_seed_model()



def swap_keeping_size_and_mtime(target: Path, source: Path) -> None:
    """Put ``source``'s bytes in ``target`` as ``cp -p`` over an old copy would, same time."""
    st = target.stat()
    assert source.stat().st_size == st.st_size, "the test needs two files of the same size"
    shutil.copyfile(source, target)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def set_column(index: Path, name: str, column: str, value: object) -> None:
    con = sqlite3.connect(index)
    with con:
        con.execute(f"update tracks set {column} = ? where path like ?", (value, f"%/{name}"))
    con.close()


def test_the_check_tells_same_size_files_apart(tmp_path: Path) -> None:
    one = make_audio(tmp_path / "one.wav", 6.0, seed=1)
    two = make_audio(tmp_path / "two.wav", 6.0, seed=2)
    copy = tmp_path / "copy.wav"
    shutil.copy2(one, copy)
    assert one.stat().st_size == two.stat().st_size > 4 * CHECK_BLOCK_BYTES
    assert content_check(one) == content_check(copy) != content_check(two)


def test_a_dry_run_verdict_is_not_written_onto_other_audio(tmp_path: Path) -> None:
    lib = tmp_path / "Music"
    make_audio(lib / "swapped.wav", 6.0, seed=31)
    other = make_audio(lib / "other.wav", 6.0, seed=32)
    index = tmp_path / "index.db"
    dry = scan(lib, index, "--dry-run")
    assert {r["status"] for r in dry.values()} == {"would-tag"}
    before = tracks_by_name(index)
    assert before["swapped.wav"]["fingerprint"] != before["other.wav"]["fingerprint"]

    swap_keeping_size_and_mtime(lib / "swapped.wav", other)
    real = scan(lib, index)

    row = tracks_by_name(index)["swapped.wav"]
    # Analysed again in this run: the index describes the audio now in the file, and the genre
    # written is that audio's verdict (the same bytes as other.wav: the same verdict).
    assert row["fingerprint"] == before["other.wav"]["fingerprint"]
    assert real["swapped.wav"]["status"] == "tagged" and real["swapped.wav"]["error"] is None
    assert real["swapped.wav"]["genre"] == real["other.wav"]["genre"]
    assert real["swapped.wav"]["confidence"] == pytest.approx(real["other.wav"]["confidence"])
    assert mutagen.File(lib / "swapped.wav")["TCON"].text == [real["other.wav"]["genre"]]
    assert len(real) == 2  # one report line per file


def test_a_matching_check_writes_without_analysing_again(tmp_path: Path) -> None:
    """A re-vote (``--overwrite`` of a kept file) whose bytes are the analysed ones is written
    straight from the stored verdict, and the check stored after the write is the file's."""
    lib = tmp_path / "Music"
    make_audio(lib / "kept.flac", 6.0, seed=33)
    f = mutagen.File(lib / "kept.flac")
    f["GENRE"] = "Polka"
    f.save()
    index = tmp_path / "index.db"
    assert scan(lib, index)["kept.flac"]["status"] == "kept"
    # Only an analysis writes the fingerprint: a stand-in value shows whether one happened.
    set_column(index, "kept.flac", "fingerprint", "not analysed again")

    report = scan(lib, index, "--overwrite")

    row = tracks_by_name(index)["kept.flac"]
    assert report["kept.flac"]["status"] == "tagged"
    assert row["fingerprint"] == "not analysed again"
    assert row["content_check"] == content_check(lib / "kept.flac")


def test_a_stored_verdict_without_a_check_is_analysed_again(tmp_path: Path) -> None:
    """A dry run's row from a libtagger before the check (NULL) cannot be trusted either."""
    lib = tmp_path / "Music"
    make_audio(lib / "old.flac", 6.0, seed=34)
    index = tmp_path / "index.db"
    assert scan(lib, index, "--dry-run")["old.flac"]["status"] == "would-tag"
    set_column(index, "old.flac", "content_check", None)
    set_column(index, "old.flac", "fingerprint", "not analysed again")

    report = scan(lib, index)

    row = tracks_by_name(index)["old.flac"]
    assert report["old.flac"]["status"] == "tagged"
    assert row["fingerprint"] != "not analysed again"
    assert row["content_check"] == content_check(lib / "old.flac")
