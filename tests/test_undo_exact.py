"""Undo gives every file back its exact bytes, not only its tag values (issue 17, item 7).

The reviewer's cases, on real files tagged by a real scan: an MP3 re-padded by the write, a
Latin-1 ``(17)`` genre, a FLAC whose key is spelled ``genre``, an M4A ``gnre`` atom, an
ID3v1-only MP3 (no ID3v2 tag before libtagger), plus a WAV with an INFO chunk and an MP3 with
a large cover (where the changed regions lie on both sides of the moved audio). Undoing the
undo gives back libtagger's bytes exactly too; a file whose other tags a person changed since
gets its genre back by value, and the output says so.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
import struct
from pathlib import Path

import mutagen
import pytest
from mutagen.flac import FLAC
from mutagen.id3 import APIC, ID3, TCON, TIT2, TPE1
from mutagen.id3 import delete as id3_delete
from mutagen.mp4 import MP4

from conftest import make_audio
from libtagger.tags import storage as tags
from scan_harness import cli, require_seed_model, seed_scan


#: two workers: these tests also cover files written from both
scan = functools.partial(seed_scan, jobs=2)


@pytest.fixture(autouse=True)
def _seed():
    require_seed_model()



def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def id3v1_trailer(title: str, genre_byte: int) -> bytes:
    """A 128-byte ID3v1.1 tag, as old rippers appended it."""
    text = lambda s, n: s.encode("latin-1")[:n].ljust(n, b"\x00")  # noqa: E731
    return b"TAG" + text(title, 30) + text("Artist", 30) + text("Album", 30) + b"1999" + \
        text("", 28) + b"\x00\x01" + bytes([genre_byte])


def make_library(lib: Path) -> dict[str, Path]:
    """One file per reviewer's case (and two with changes on both sides of the audio)."""
    files = {}
    p = files["padded.mp3"] = make_audio(lib / "padded.mp3", 6.0, seed=1)
    tag = ID3()
    tag.add(TIT2(encoding=3, text="Padded"))
    tag.save(p, v2_version=4)

    p = files["latin1.mp3"] = make_audio(lib / "latin1.mp3", 6.0, seed=2)
    tag = ID3()
    tag.add(TIT2(encoding=0, text="Old rip"))
    tag.add(TCON(encoding=0, text="(17)"))  # Latin-1, an ID3v1 reference: Rock
    tag.save(p, v2_version=3)

    p = files["lower.flac"] = make_audio(lib / "lower.flac", 6.0, seed=3)
    f = FLAC(p)
    f.tags.clear()
    f.tags.extend([("title", "Lower"), ("genre", "Jazz")])  # the key spelled in lower case
    f.save()

    p = files["gnre.m4a"] = make_audio(lib / "gnre.m4a", 6.0, seed=4)
    f = MP4(p)
    f.tags["\xa9nam"] = ["Numeric"]
    f.tags.pop("\xa9gen", None)
    payload = struct.pack(">2I", 0, 0) + struct.pack(">H", 18)  # 18 = Rock
    f.tags._failed_atoms["gnre"] = [struct.pack(">I4s", 8 + len(payload), b"data") + payload]
    f.save()

    p = files["v1only.mp3"] = make_audio(lib / "v1only.mp3", 6.0, seed=5)
    id3_delete(p, delete_v1=True, delete_v2=True)  # ffmpeg's own ID3v2 tag goes
    with open(p, "ab") as fh:
        fh.write(id3v1_trailer("Only v1", 17))

    p = files["info.wav"] = make_audio(lib / "info.wav", 6.0, seed=6,
                                       extra_ffmpeg=["-metadata", "title=Info", "-metadata", "artist=A"])

    p = files["cover.mp3"] = make_audio(lib / "cover.mp3", 6.0, seed=7)
    tag = ID3()
    tag.add(TIT2(encoding=3, text="Cover"))
    tag.add(APIC(encoding=3, mime="image/png", type=3, desc="front",
                 data=os.urandom(300_000)))  # incompressible, larger than the changed regions
    tag.add(TPE1(encoding=3, text="Artist"))
    tag.save(p, v2_version=4)
    return files



def last_run_id(index: Path) -> int:
    return json.loads(cli("runs", "--format", "json", "--index", index).stdout)[0]["id"]


def journal(index: Path, run: int) -> list[dict]:
    with sqlite3.connect(index) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("select * from journal where run_id = ?", [run])]


def test_undo_gives_back_the_exact_bytes_and_undoing_the_undo_too(tmp_path):
    lib, index = tmp_path / "Music", tmp_path / "index.db"
    files = make_library(lib)
    assert files["v1only.mp3"].read_bytes()[:3] != b"ID3"  # no ID3v2 tag before libtagger
    assert tags.read_genres(files["latin1.mp3"]) == ["Rock"]
    original = {name: sha(p) for name, p in files.items()}

    report = scan(lib, index, "--overwrite")  # the person's genres are replaced too
    assert {report[n]["status"] for n in files} == {"tagged"}, report
    run = last_run_id(index)
    written = {name: sha(p) for name, p in files.items()}
    assert all(written[n] != original[n] for n in files)

    result = cli("undo", "--run", run, "--index", index)
    assert result.exit_code == 0, result.output
    assert "tag values only" not in result.output
    changed = sorted(n for n, p in files.items() if sha(p) != original[n])
    assert changed == [], f"not byte-identical after undo: {changed}"
    assert b"ID3" != files["v1only.mp3"].read_bytes()[:3]  # no new ID3v2.4 tag left behind
    # the journal keeps only the changed regions: far less than the files (and the 300 kB cover)
    entries = journal(index, run)
    assert len(entries) == len(files) and all(e.get("exact") for e in entries)
    assert max(len(e["exact_bytes"] or b"") for e in entries) < 64 * 1024

    result = cli("undo", "--run", last_run_id(index), "--index", index)  # undo the undo
    assert result.exit_code == 0, result.output
    assert sorted(n for n, p in files.items() if sha(p) != written[n]) == []


def test_other_tags_changed_since_the_write_restore_the_genre_value_and_say_so(tmp_path):
    lib, index = tmp_path / "Music", tmp_path / "index.db"
    song = make_audio(lib / "song.flac", 6.0, seed=8)
    scan(lib, index)
    run = last_run_id(index)
    f = FLAC(song)
    f["title"] = "Renamed by a person"
    f.save()

    result = cli("undo", "--run", run, "--index", index)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"restored {song}: (no genre) (tag values only: the file changed")
    f = mutagen.File(song)
    assert f.get("genre") is None and f["title"] == ["Renamed by a person"]


def test_a_file_written_twice_gets_its_original_bytes_back_in_one_undo(tmp_path):
    """``undo FILE`` after two writes of different genres (two runs): the writes' records chain."""
    from libtagger.scan.journaled_write import WriteGenre, Written, journaled_write
    from libtagger.store.index import Index

    song = make_audio(tmp_path / "Music" / "song.mp3", 3.0, seed=9)
    tag = ID3()
    tag.add(TIT2(encoding=1, text="Twice"))  # UTF-16: a re-encoding would show
    tag.save(song, v2_version=3, padding=lambda info: 0)  # no padding: the write must grow the tag
    original = sha(song)
    index = Index(tmp_path / "index.db")
    st = song.stat()
    track = index.save_track(str(song), {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "status": "tagged"})
    for genre in ("Jazz", "Hip-Hop"):
        run = index.start_run(kind="scan", arguments={"roots": [str(song.parent)]})
        outcome = journaled_write(index, run_id=run, track_id=track, path=song, action=WriteGenre(genre))
        assert isinstance(outcome, Written)
    index.close()
    assert tags.read_genres(song) == ["Hip-Hop"]

    result = cli("undo", song, "--index", tmp_path / "index.db")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"restored {song}: (no genre)\n")
    assert sha(song) == original
