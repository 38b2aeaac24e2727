"""A person's genre wherever their tagger put it: an APEv2 ``Genre`` on an MP3 (foobar2000, mp3gain)
counts like an ID3 one, and a blank Vorbis ``GENRE=`` is no genre at all.

Real files, real scans (the seed model) and real undo through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import mutagen
import pytest
from mutagen.apev2 import APEv2
from mutagen.id3 import ID3, TCON, TIT2, TXXX

from conftest import make_audio
from libtagger.tags import storage as tags
from scan_harness import cli, require_seed_model, seed_scan as scan, tracks_by_name



@pytest.fixture(autouse=True)
def _seed():
    require_seed_model()




def mp3_with_ape_genre(path: Path, genre: str, *, seed: int) -> Path:
    """An MP3 as foobar2000 leaves it: ID3v2 (a title, no genre), an APEv2 tag, an ID3v1 trailer."""
    make_audio(path, 6.0, seed=seed)
    id3 = ID3(path)
    id3.add(TIT2(encoding=3, text=["A title"]))
    id3.save(path)
    ape = APEv2()
    ape["Genre"] = genre
    ape["Artist"] = "Someone"
    ape.save(path)
    ID3(path).save(path, v1=2)  # the ID3v1 trailer goes after the APE tag
    return path


def ape_items(path: Path) -> dict[str, str]:
    try:
        return {k: str(v) for k, v in APEv2(path).items()}
    except mutagen.apev2.APENoHeaderError:
        return {}


def id3_genre(path: Path) -> list[str]:
    frame = ID3(path).get("TCON")
    return list(frame.text) if frame is not None else []


def has_id3v1(path: Path) -> bool:
    return path.read_bytes()[-128:-125] == b"TAG"


def test_an_ape_genre_on_an_mp3_is_kept_and_indexed_as_a_persons(tmp_path: Path) -> None:
    lib = tmp_path / "Music"
    ape = mp3_with_ape_genre(lib / "ape.mp3", "Jazz", seed=1)
    make_audio(lib / "plain.mp3", 6.0, seed=2)
    before = ape.read_bytes()
    index = tmp_path / "index.db"

    report = scan(lib, index)

    assert report["ape.mp3"]["status"] == "kept", report["ape.mp3"]
    assert report["ape.mp3"]["previous_genre"] == "Jazz"
    assert ape.read_bytes() == before, "a person's APE genre got an ID3 genre beside it"
    row = tracks_by_name(index)["ape.mp3"]
    assert json.loads(row["person_genres"]) == ["Jazz"] and row["written"] == 0
    assert report["plain.mp3"]["status"] == "tagged"  # the control: an MP3 without any genre


def test_overwrite_writes_the_ape_genre_too_and_undo_puts_it_back(tmp_path: Path) -> None:
    lib = tmp_path / "Music"
    ape = mp3_with_ape_genre(lib / "ape.mp3", "Jazz", seed=3)
    before = ape.read_bytes()
    index = tmp_path / "index.db"

    report = scan(lib, index, "--overwrite")

    genre = report["ape.mp3"]["genre"]
    assert report["ape.mp3"]["status"] == "tagged" and genre != "Jazz"
    # The file says one genre, wherever a player looks; the rest of the APE tag and the
    # ID3v1 trailer are still there.
    assert id3_genre(ape) == [genre]
    assert ape_items(ape) == {"Genre": genre, "Artist": "Someone"}
    assert has_id3v1(ape)
    assert tags.written_by_libtagger(ape)

    run_id = tracks_by_name(index)["ape.mp3"]["run_id"]
    undone = cli("undo", "--run", str(run_id), "--index", index)
    assert undone.exit_code == 0, undone.output
    assert ape_items(ape) == {"Genre": "Jazz", "Artist": "Someone"}
    assert id3_genre(ape) == []
    assert ape.read_bytes() == before  # ID3 tag, APE tag and trailer exactly as they were


def test_libtagger_id3_genre_beside_another_ape_genre_is_the_persons(tmp_path: Path) -> None:
    """A file an older libtagger tagged (ID3 Blues, its marker) beside a person's APE Jazz."""
    path = mp3_with_ape_genre(tmp_path / "two.mp3", "Jazz", seed=4)
    # ID3 Blues and libtagger's marker only: what libtagger wrote before it read APE tags
    id3 = ID3(path)
    id3.add(TCON(encoding=3, text=["Blues"]))
    id3.add(TXXX(encoding=3, desc="LIBTAGGER_GENRE", text=["Blues"]))
    id3.save(path, v1=1)

    state = tags.read_tag_state(path)

    assert state.genres == ["Jazz"] and not state.ours
    assert state.fields.person_genres == ["Jazz"]


def test_a_journal_from_before_ape_genres_leaves_the_ape_tag_alone(tmp_path: Path) -> None:
    """Journals of a libtagger that did not read APE tags lack ``ape_genre``: undo leaves APE as it is."""
    path = mp3_with_ape_genre(tmp_path / "ape.mp3", "Jazz", seed=5)
    journaled = tags.snapshot(path).to_json()
    del journaled["ape_genre"]
    snap = tags.Snapshot.from_json(journaled)
    assert snap.to_json() == journaled  # still no ape_genre: absent, not None
    tags.write_genre(path, "Rock")
    tags.restore(path, snap)
    assert id3_genre(path) == [] and ape_items(path)["Genre"] == "Rock"


def test_a_blank_vorbis_genre_is_no_genre_and_undo_puts_it_back(tmp_path: Path) -> None:
    lib = tmp_path / "Music"
    files = {"empty.flac": [""], "blank.ogg": ["  "]}
    for i, (name, value) in enumerate(files.items()):
        make_audio(lib / name, 6.0, seed=10 + i)
        f = mutagen.File(lib / name)
        f["GENRE"] = value
        f["ARTIST"] = "Someone"
        f.save()
    original = {name: dict(mutagen.File(lib / name).tags) for name in files}
    index = tmp_path / "index.db"

    report = scan(lib, index)

    rows = tracks_by_name(index)
    for name in files:
        genre = report[name]["genre"]
        assert report[name]["status"] == "tagged", report[name]
        assert mutagen.File(lib / name)["GENRE"] == [genre]
        assert rows[name]["person_genres"] is None  # nobody set a genre
    run_id = rows["empty.flac"]["run_id"]
    undone = cli("undo", "--run", str(run_id), "--index", index)
    assert undone.exit_code == 0, undone.output
    for name, value in files.items():
        back = mutagen.File(lib / name)
        assert back["GENRE"] == value
        assert dict(back.tags) == original[name]


def test_a_genre_in_a_second_id3_tag_right_after_the_first_is_a_persons(tmp_path: Path) -> None:
    """Some taggers prepend a new ID3v2 tag instead of updating the old one, leaving two in a row;
    ffmpeg-based players read both, and show the second tag's genre when the first has none."""
    lib = tmp_path / "Music"
    song = make_audio(lib / "stacked.mp3", 6.0, seed=21)

    def tag_bytes(*frames) -> bytes:
        holder = tmp_path / "tag.id3"
        holder.write_bytes(b"")
        tag = ID3()
        for frame in frames:
            tag.add(frame)
        tag.save(holder, padding=lambda info: 0)
        return holder.read_bytes()

    first = tag_bytes(TIT2(encoding=3, text=["first tag"]))
    second = tag_bytes(TIT2(encoding=3, text=["second tag"]), TCON(encoding=3, text=["Blues"]))
    song.write_bytes(first + second + song.read_bytes())
    original = song.read_bytes()
    assert tags.read_genres(song) == ["Blues"]

    index = tmp_path / "index.db"
    report = scan(lib, index)
    assert report["stacked.mp3"]["status"] == "kept", report["stacked.mp3"]
    assert song.read_bytes() == original
    assert json.loads(tracks_by_name(index)["stacked.mp3"]["person_genres"]) == ["Blues"]
