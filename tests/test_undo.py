"""``libtagger undo`` end to end: scans write genres, undo gives every file back exactly the
genre state it had (a person's genre, several genres, or none), leaves every other tag and
the audio alone, can itself be undone, and is respected by later scans."""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path

import mutagen
import numpy as np
import pytest

from conftest import make_audio
from scan_harness import cli, last_run, require_seed_model, seed_scan, tracks_by_name

NON_UTF8 = os.fsdecode(b"caf\xe9.wav")  # the file's name
ESCAPED = "caf\\xe9.wav"  # the same name as reports and the index's path column show it

#: two workers: these tests also cover files written from both
scan = functools.partial(seed_scan, jobs=2)


@pytest.fixture(autouse=True)
def _seed():
    require_seed_model()




def all_tags(path: Path) -> dict[str, list[str]]:
    """Every tag of the file as mutagen reads it: frame/key -> text values."""
    f = mutagen.File(path)
    if f is None or f.tags is None:
        return {}
    out: dict[str, list[str]] = {}
    for key, value in f.tags.items():
        text = getattr(value, "text", value)
        out[str(key)] = [str(v) for v in (text if isinstance(text, list) else [text])]
    return out


def genre_of(path: Path) -> list[str]:
    tags = all_tags(path)
    return tags.get("TCON") or tags.get("genre") or []


def pcm(path: Path) -> np.ndarray:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "s16le", "-"],
                         capture_output=True, check=True)
    return np.frombuffer(out.stdout, dtype=np.int16)


def last_run_id(index: Path) -> int:
    result = cli("runs", "--format", "json", "--index", index)
    return json.loads(result.stdout)[0]["id"]


@pytest.fixture
def library(tmp_path) -> Path:
    """Files without genre, with a person's genre, with two genres; all with other tags."""
    lib = tmp_path / "Music"
    specs = {"plain.flac": None, "plain.mp3": None, "bebop.mp3": ["Bebop"],
             "two.flac": ["Cool Jazz", "Bossa Nova"], "person.wav": None}
    for i, (name, genres) in enumerate(specs.items()):
        path = make_audio(lib / name, 6.0, seed=i)
        f = mutagen.File(path)
        if f.tags is None:
            f.add_tags()
        if name.endswith(".flac"):
            f["title"], f["artist"] = f"Title {i}", "Artist"
            if genres:
                f["genre"] = genres
        else:
            from mutagen.id3 import TCON, TIT2, TPE1
            f.tags.add(TIT2(encoding=3, text=f"Title {i}"))
            f.tags.add(TPE1(encoding=3, text="Artist"))
            if genres:
                f.tags.add(TCON(encoding=3, text=genres))
        f.save()
    # a name that is not valid UTF-8: the index keeps its bytes, undo must find the file
    os.rename(os.fsencode(lib / "person.wav"), os.fsencode(lib) + b"/caf\xe9.wav")
    return lib


def test_undo_run_restores_every_original_state_and_can_be_undone(library, tmp_path):
    index = tmp_path / "index.db"
    original = {p.name: all_tags(p) for p in library.iterdir()}
    audio = {p.name: pcm(p) for p in library.iterdir()}

    first = scan(library, index)  # genres of people are kept
    assert first["bebop.mp3"]["status"] == "kept" and first["two.flac"]["status"] == "kept"
    assert {first[n]["status"] for n in ("plain.flac", "plain.mp3", ESCAPED)} == {"tagged"}
    run1 = last_run_id(index)
    second = scan(library, index, "--overwrite")  # now theirs are replaced too
    assert second["bebop.mp3"]["status"] == "tagged" and second["two.flac"]["status"] == "tagged"
    run2 = last_run_id(index)
    ours = {p.name: genre_of(p) for p in library.iterdir()}
    assert all(len(g) == 1 for g in ours.values()), ours

    # undo the --overwrite run: the people's genres come back, exactly
    result = cli("undo", "--run", run2, "--index", index)
    assert result.exit_code == 0, result.output
    assert f"restored {library / 'bebop.mp3'}: Bebop" in result.stdout
    assert genre_of(library / "bebop.mp3") == ["Bebop"]
    assert genre_of(library / "two.flac") == ["Cool Jazz", "Bossa Nova"]
    assert all_tags(library / "two.flac") == original["two.flac"]
    assert all_tags(library / "bebop.mp3") == original["bebop.mp3"]
    assert genre_of(library / "plain.flac") == ours["plain.flac"]  # run 1's writes stay

    # undo the first run: back to no genre at all (libtagger's own marker gone too)
    result = cli("undo", "--run", run1, "--index", index)
    assert result.exit_code == 0, result.output
    undo_run = last_run_id(index)
    for path in library.iterdir():
        assert all_tags(path) == original[path.name], path.name
        assert np.array_equal(pcm(path), audio[path.name]), f"audio changed in {path.name}"
    tracks = tracks_by_name(index)
    assert {tracks[n]["status"] for n in ("plain.flac", "plain.mp3", ESCAPED)} == {"undone"}

    # undo the undo: libtagger's genres are back, and the tracks count as tagged again
    result = cli("undo", "--run", undo_run, "--index", index)
    assert result.exit_code == 0, result.output
    for name, key in (("plain.flac", "plain.flac"), ("plain.mp3", "plain.mp3"), (NON_UTF8, ESCAPED)):
        assert genre_of(library / name) == ours[name], key
        assert tracks_by_name(index)[key]["status"] == "tagged"


def test_undo_one_file_and_later_scans_leave_it_alone_unless_overwrite(library, tmp_path):
    index = tmp_path / "index.db"
    song = library / "plain.flac"
    before = all_tags(song)
    first = scan(library, index)
    assert first["plain.flac"]["status"] == "tagged"
    other_genre = genre_of(library / "plain.mp3")

    result = cli("undo", song, "--index", index)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"restored {song}: (no genre)")
    assert all_tags(song) == before
    assert genre_of(library / "plain.mp3") == other_genre  # only that file
    assert tracks_by_name(index)["plain.flac"]["status"] == "undone"
    odd = library / NON_UTF8
    assert genre_of(odd)
    result = cli("undo", odd, "--index", index)  # a name that is not UTF-8
    assert result.exit_code == 0, result.output
    assert genre_of(odd) == [] and tracks_by_name(index)[ESCAPED]["status"] == "undone"

    again = scan(library, index)  # the nightly run
    assert again["plain.flac"]["status"] == "unchanged" and all_tags(song) == before
    st = song.stat()
    os.utime(song, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # even when analysed again
    again = scan(library, index)
    assert again["plain.flac"]["status"] == "undone" and all_tags(song) == before
    assert tracks_by_name(index)["plain.flac"]["status"] == "undone"
    st = song.stat()
    os.utime(song, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    unsure = scan(library, index, "--min-confidence", "1")  # a verdict that would not write
    assert unsure["plain.flac"]["status"] == "undone"  # does not lose the mark either
    assert tracks_by_name(index)["plain.flac"]["status"] == "undone"

    forced = scan(library, index, "--overwrite")
    assert forced["plain.flac"]["status"] == "tagged"
    assert genre_of(song) == [forced["plain.flac"]["genre"]]


def test_undo_of_a_run_that_wrote_nothing_is_a_clean_error(library, tmp_path):
    index = tmp_path / "index.db"
    scan(library, index, "--dry-run")
    result = cli("undo", "--run", last_run_id(index), "--index", index)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"libtagger: error: run {last_run_id(index)} changed no file (no journal entries)"
    assert "Traceback" not in result.output
    result = cli("undo", library / "plain.flac", "--index", index)
    assert result.exit_code == 1
    assert "never wrote a tag to this file" in result.stderr


def test_undo_follows_a_file_that_was_moved_since(library, tmp_path):
    """People reorganise their folders: undo finds a moved file through its track."""
    index = tmp_path / "index.db"
    before = {p.name: all_tags(p) for p in library.iterdir()}
    scan(library, index)
    run1 = last_run_id(index)
    (library / "Sorted").mkdir()
    (library / "plain.flac").rename(library / "Sorted" / "renamed.flac")
    (library / "plain.mp3").rename(library / "Sorted" / "renamed.mp3")
    moved = scan(library, index)
    # recognised as the same track: its stored verdict is the genre the file holds, so kept
    assert moved["renamed.flac"]["status"] == "kept" and moved["renamed.flac"]["error"] is None

    result = cli("undo", library / "Sorted" / "renamed.mp3", "--index", index)
    assert result.exit_code == 0, result.output
    assert all_tags(library / "Sorted" / "renamed.mp3") == before["plain.mp3"]
    result = cli("undo", "--run", run1, "--index", index)
    assert result.exit_code == 0, result.output
    assert all_tags(library / "Sorted" / "renamed.flac") == before["plain.flac"]
    assert tracks_by_name(index)["renamed.flac"]["status"] == "undone"


def _two_copies_scanned_then_moved(tmp_path: Path) -> tuple[Path, Path, bytes, int]:
    """A library holding the same file twice (A/song.flac, B/song.flac: one audio fingerprint),
    scanned once (that run's id is returned), then both copies moved to C/one.flac, C/two.flac."""
    lib, index = tmp_path / "Music", tmp_path / "index.db"
    make_audio(lib / "A" / "song.flac", 6.0, seed=3)
    (lib / "B").mkdir()
    original = (lib / "A" / "song.flac").read_bytes()
    (lib / "B" / "song.flac").write_bytes(original)
    scan(lib, index)
    run1 = last_run_id(index)
    (lib / "C").mkdir()
    (lib / "A" / "song.flac").rename(lib / "C" / "one.flac")
    (lib / "B" / "song.flac").rename(lib / "C" / "two.flac")
    return lib, index, original, run1


def test_undo_gives_back_both_copies_of_a_file_moved_after_a_scan_saw_the_move(tmp_path):
    """Two copies of one file (same audio) both moved: each keeps its own track, so undo finds both."""
    lib, index, original, run1 = _two_copies_scanned_then_moved(tmp_path)
    moved = scan(lib, index)
    assert last_run(index)["counts"].get("moved") == 2
    assert {moved["one.flac"]["status"], moved["two.flac"]["status"]} == {"kept"}

    result = cli("undo", "--run", run1, "--index", index)
    assert result.exit_code == 0, result.output
    assert "failed" not in result.stderr and "0 failed" in result.stdout
    assert (lib / "C" / "one.flac").read_bytes() == original
    assert (lib / "C" / "two.flac").read_bytes() == original


def test_undo_finds_both_copies_of_a_file_moved_before_any_scan_saw_it(tmp_path):
    lib, index, original, run1 = _two_copies_scanned_then_moved(tmp_path)
    result = cli("undo", "--run", run1, "--index", index)
    assert result.exit_code == 0, result.output
    assert "2 restored, 0 failed" in result.stdout, result.output
    assert (lib / "C" / "one.flac").read_bytes() == original
    assert (lib / "C" / "two.flac").read_bytes() == original
