"""Two genres when two fit (issue 20, item 4): real multi-valued tags, exact undo, ``scan --second-genre``.

Every format is a real file made here; what the file holds is checked with mutagen directly (a
TCON text list of two, GENRE twice, a ©gen list of two, two WM/Genre attributes), not only
through libtagger's own reading.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf
from mutagen.id3 import ID3, TIT2

from conftest import make_audio, require_ffmpeg
from libtagger.scan.journaled_write import WriteGenre, Written, journaled_write
from libtagger.scan.policy import genres_to_write
from libtagger.scan.undo import undo
from libtagger.store.index import Index
from libtagger.tags import riff_info
from libtagger.tags import storage as tags
from scan_harness import cli, require_seed_model, seed_scan

PAIR = ("Rock", "Metal")
#: File name -> (the genre key as mutagen shows it, the marker key).
KEYS = {
    "song.mp3": ("TCON", "TXXX:LIBTAGGER_GENRE"),
    "song.flac": ("genre", "libtagger_genre"),
    "song.ogg": ("genre", "libtagger_genre"),
    "song.opus": ("genre", "libtagger_genre"),
    "song.m4a": ("\xa9gen", "----:org.libtagger:genre"),
    "song.wma": ("WM/Genre", "LIBTAGGER/Genre"),
    "song.wav": ("TCON", "TXXX:LIBTAGGER_GENRE"),
    "song.aiff": ("TCON", "TXXX:LIBTAGGER_GENRE"),
}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def values_in_file(path: Path, key: str) -> list[str]:
    """The values of one tag item as mutagen itself reads them (an ID3 frame's text list, ...)."""
    item = mutagen.File(path).tags[key]
    item = item.text if hasattr(item, "text") else item
    return [bytes(v).decode() if isinstance(v, bytes) else str(v) for v in item]


@pytest.mark.parametrize("name", sorted(KEYS))
def test_two_genres_are_real_multi_values_in_every_format(tmp_path, name):
    path = make_audio(tmp_path / name, 2.0)
    tags.write_genre(path, PAIR)
    genre_key, marker_key = KEYS[name]
    assert values_in_file(path, genre_key) == list(PAIR)  # one item, two values (not "Rock; Metal")
    assert values_in_file(path, marker_key) == list(PAIR)  # the marker says both are libtagger's
    assert tags.read_genres(path) == list(PAIR) and tags.written_by_libtagger(path)
    assert tags.read_tag_state(path).fields.person_genres is None
    if name == "song.wav":  # RIFF INFO IGNR holds one value: the first
        assert riff_info.read_info(path)["IGNR"] == "Rock"
    # one genre again: back to one value, still libtagger's
    tags.write_genre(path, "Jazz")
    assert values_in_file(path, genre_key) == ["Jazz"] and tags.written_by_libtagger(path)


def test_a_vorbis_file_holds_the_genre_key_twice(tmp_path):
    path = make_audio(tmp_path / "song.flac", 2.0)
    tags.write_genre(path, PAIR)
    assert [v for k, v in mutagen.File(path).tags if k.lower() == "genre"] == list(PAIR)


def test_a_person_changing_one_of_the_two_makes_them_theirs(tmp_path):
    path = make_audio(tmp_path / "song.flac", 2.0)
    tags.write_genre(path, PAIR)
    f = mutagen.File(path)
    f.tags["GENRE"] = ["Rock", "Thrash"]
    f.save()
    assert not tags.written_by_libtagger(path)
    assert tags.read_tag_state(path).fields.person_genres == ["Rock", "Thrash"]


def test_an_id3v23_tag_keeps_its_version_and_gets_the_first_genre(tmp_path):
    path = make_audio(tmp_path / "song.mp3", 2.0)
    tag = ID3()
    tag.add(TIT2(encoding=1, text="Old"))
    tag.save(path, v2_version=3)
    tags.write_genre(path, PAIR)
    assert ID3(path).version[:2] == (2, 3)
    assert values_in_file(path, "TCON") == ["Rock"] and tags.written_by_libtagger(path)


def test_genres_must_be_distinct_and_non_empty(tmp_path):
    path = make_audio(tmp_path / "song.flac", 2.0)
    for bad in (("Rock", "Rock"), (), ("Rock", "")):
        with pytest.raises(ValueError):
            tags.write_genre(path, bad)


@pytest.mark.parametrize("name", ["song.mp3", "song.flac", "song.m4a", "song.wav", "song.wma"])
def test_undo_of_a_two_genre_write_is_byte_identical(tmp_path, name):
    path = make_audio(tmp_path / name, 2.0, extra_ffmpeg=None if name.endswith(".wav") else
                      ["-metadata", "title=Kept"])
    original = sha(path)
    index = Index(tmp_path / "index.db")
    try:
        run = index.start_run(kind="scan", arguments={})
        st = path.stat()
        track = index.save_track(str(path), {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                             "status": "would-tag", "run_id": run})
        outcome = journaled_write(index, run_id=run, track_id=track, path=str(path), action=WriteGenre(PAIR))
        assert isinstance(outcome, Written) and tags.read_genres(path) == list(PAIR)
        [entry] = index.journal_entries(run_id=run)
        assert entry.genre == "Rock; Metal"
        _, results = undo(index, run_id=run)
        assert [r.error for r in results] == [None] and [r.skipped for r in results] == [None]
    finally:
        index.close()
    assert sha(path) == original


#: two workers, as the other scan tests
scan = functools.partial(seed_scan, jobs=2)


def clicks(path: Path, seconds: float = 12.0, sr: int = 22050) -> Path:
    """A click track: the seed model splits it between Metal and Rock (about 0.53 and 0.36), so the
    rule writes both. A .wav/.flac is written by soundfile, anything else encoded by ffmpeg from it."""
    t = np.arange(int(seconds * sr)) / sr
    y = ((np.sin(2 * np.pi * 2 * t) > 0.99) * 0.9).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".wav", ".flac"):
        sf.write(path, y, sr, subtype="PCM_16")
        return path
    src = path.with_suffix(".src.wav")
    sf.write(src, y, sr, subtype="PCM_16")
    subprocess.run([require_ffmpeg(), "-v", "error", "-y", "-i", str(src), str(path)], check=True)
    src.unlink()
    return path


def test_scan_second_genre_writes_two_where_the_rule_says(tmp_path):
    require_seed_model()
    lib = tmp_path / "lib"
    for i, name in enumerate(("a.flac", "b.mp3", "c.m4a")):
        make_audio(lib / name, 8.0, seed=10 + i)  # the seed model is sure of these: one genre
    for name in ("d.wav", "e.flac", "f.mp3"):
        clicks(lib / name)
    report = scan(lib, tmp_path / "index.db", "--second-genre", "--context", "none")
    pairs = 0
    for name, row in report.items():
        assert row["status"] == "tagged", row
        wanted, _ = genres_to_write(row["genre"], row["confidence"], row["runner_up"], row["runner_up_confidence"],
                                    second_genre=True, min_confidence=0.0)
        assert tags.read_genres(lib / name) == list(wanted), name
        assert row["second_genre"] == (wanted[1] if len(wanted) > 1 else None)
        pairs += len(wanted) == 2
    assert 1 <= pairs < len(report)  # both kinds of verdict were written
    shown = json.loads(cli("show", lib / "d.wav", "--json", "--index", tmp_path / "index.db").stdout)
    assert shown["second_genre"] == report["d.wav"]["second_genre"]
    # a second run over the same files finds them as written: nothing to do
    again = scan(lib, tmp_path / "index.db", "--second-genre", "--context", "none", "--rescan")
    assert {r["status"] for r in again.values()} == {"kept"}


def test_without_the_option_a_close_runner_up_is_not_written(tmp_path):
    require_seed_model()
    path = clicks(tmp_path / "lib" / "d.flac")
    [row] = scan(tmp_path / "lib", tmp_path / "index.db", "--context", "none").values()
    assert row["second_genre"] is None and tags.read_genres(path) == [row["genre"]]
