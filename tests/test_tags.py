"""Genre tags on real files of every format: the genre changes, nothing else does.

Every test works on real encoded audio (``make_audio`` from conftest), with a title,
an artist and a cover image added with mutagen first. "Nothing else changed" is
checked independently of libtagger's own verification: other tags and the cover
are read with mutagen here, and the audio is decoded (soundfile where it can,
ffmpeg otherwise) and compared sample for sample.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3, TCON, TIT2, TYER
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4

import mutagen
from conftest import make_audio
from libtagger.tags import storage as tags
from libtagger.errors import ReadError, WriteError
from libtagger.tags.safe_write import is_temporary
from tags_harness import FORMATS, PNG, TITLE, add_other_tags, decode, other_tags


# ---------------------------------------------------------------- helpers

def cover_bytes(path: Path) -> bytes:
    f = mutagen.File(path)
    kind = FORMATS[path.name]
    if kind == "id3":
        return f.tags.getall("APIC")[0].data
    if kind == "vorbis":
        if isinstance(f, FLAC):
            return f.pictures[0].data
        return Picture(base64.b64decode(f.tags["METADATA_BLOCK_PICTURE"][0])).data
    if kind == "mp4":
        return bytes(f.tags["covr"][0])
    return f.tags["WM/Picture"][0].value[-len(PNG):]


def ffprobe_genre(path: Path) -> str | None:
    """The genre ffprobe sees (format tags; Ogg keeps its comments on the stream)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags=genre:stream_tags=genre",
                          "-of", "default=nw=1:nk=1", str(path)], check=True, capture_output=True, text=True)
    vals = [line for line in out.stdout.splitlines() if line.strip()]
    return vals[0] if vals else None


def set_genre_by_hand(path: Path, values: list[str]) -> None:
    """What another tagger (or a person) would do: set the genre with mutagen directly."""
    kind = FORMATS[path.name]
    f = mutagen.File(path)
    if f.tags is None:
        f.add_tags()
    if kind == "id3":
        f.tags.delall("TCON")
        f.tags.add(TCON(encoding=3, text=values))
    elif kind == "vorbis":
        f.tags["GENRE"] = values
    elif kind == "mp4":
        f.tags["\xa9gen"] = values
    else:
        f.tags["WM/Genre"] = values
    f.save()


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Path]:
    """One tagged real file per format, encoded once for the module (copied per test)."""
    folder = tmp_path_factory.mktemp("originals")
    out = {}
    for name in FORMATS:
        p = make_audio(folder / name, 2.0)
        add_other_tags(p)
        out[name] = p
    return out


@pytest.fixture
def song(request, originals, tmp_path) -> Path:
    dst = tmp_path / request.param
    shutil.copy2(originals[request.param], dst)
    return dst


ALL = pytest.mark.parametrize("song", list(FORMATS), indirect=True)


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if is_temporary(p.name)]


# ---------------------------------------------------------------- every format

@ALL
def test_write_changes_only_the_genre(song: Path) -> None:
    before_tags, before_audio = other_tags(song), decode(song)
    assert cover_bytes(song) == PNG
    assert tags.read_genres(song) == []
    assert not tags.written_by_libtagger(song)

    result = tags.write_genre(song, "Hip-Hop")

    assert tags.read_genres(song) == ["Hip-Hop"]
    assert tags.written_by_libtagger(song)
    assert ffprobe_genre(song) == "Hip-Hop"
    assert other_tags(song) == before_tags
    assert cover_bytes(song) == PNG
    after_audio = decode(song)
    assert after_audio.shape == before_audio.shape and after_audio.size > 0
    assert np.array_equal(after_audio, before_audio)
    st = song.stat()
    assert (result.size, result.mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert leftovers(song.parent) == []


@ALL
@pytest.mark.parametrize("start", [[], ["Jazz"], ["Rock", "Pop"]], ids=["none", "one", "multi"])
def test_restore_gives_back_the_original_genre_state(song: Path, start: list[str]) -> None:
    if start:
        set_genre_by_hand(song, start)
    snap = tags.snapshot(song)
    assert snap.format == FORMATS[song.name]
    assert snap.genres == start and snap.marker is None
    import json
    snap = tags.Snapshot.from_json(json.loads(json.dumps(snap.to_json())))  # it must survive the index's JSON column
    before_tags, before_audio = other_tags(song), decode(song)

    tags.write_genre(song, "Metal")
    assert tags.read_genres(song) == ["Metal"]
    tags.restore(song, snap)

    assert tags.snapshot(song) == snap
    assert tags.read_genres(song) == start
    assert not tags.written_by_libtagger(song)
    assert other_tags(song) == before_tags
    assert np.array_equal(decode(song), before_audio)
    # Restoring again is harmless: the file is not even rewritten.
    st = song.stat()
    tags.restore(song, snap)
    assert song.stat().st_mtime_ns == st.st_mtime_ns and tags.snapshot(song) == snap


@ALL
def test_undo_of_undo(song: Path) -> None:
    set_genre_by_hand(song, ["Blues"])
    first = tags.snapshot(song)
    tags.write_genre(song, "Disco")
    before_undo = tags.snapshot(song)
    tags.restore(song, first)
    assert tags.read_genres(song) == ["Blues"]
    tags.restore(song, before_undo)
    assert tags.read_genres(song) == ["Disco"] and tags.written_by_libtagger(song)


@ALL
def test_a_genre_set_by_a_person_is_not_ours(song: Path) -> None:
    tags.write_genre(song, "Pop")
    assert tags.written_by_libtagger(song)
    set_genre_by_hand(song, ["Pop Punk"])  # a person edits it; our marker is still there
    assert tags.read_genres(song) == ["Pop Punk"]
    assert not tags.written_by_libtagger(song)
    tags.write_genre(song, "Rock")  # the caller decided to overwrite anyway
    assert tags.read_genres(song) == ["Rock"] and tags.written_by_libtagger(song)


def test_flac_behind_an_id3v2_tag_is_written_and_restored(tmp_path: Path) -> None:
    # Some rippers put an ID3v2 tag in front of a FLAC. mutagen.File knows it for a FLAC
    # only by its .flac name, and the write edits a copy named .tmp (QA: "not a .tmp file").
    plain = make_audio(tmp_path / "plain.flac", 1.0)
    song = tmp_path / "id3.flac"
    id3 = tmp_path / "tag.id3"
    ID3().save(id3)  # a bare ID3v2 header, no frames
    song.write_bytes(id3.read_bytes() + plain.read_bytes())
    assert song.read_bytes()[:3] == b"ID3"
    snap, before_audio = tags.snapshot(song), decode(song)

    tags.write_genre(song, "Jazz")

    assert tags.read_genres(song) == ["Jazz"] and tags.written_by_libtagger(song)
    assert song.read_bytes()[:3] == b"ID3"  # the ID3 tag in front is kept
    assert np.array_equal(decode(song), before_audio)
    tags.restore(song, snap)
    assert tags.read_genres(song) == [] and tags.snapshot(song) == snap
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- ID3 specifics

def test_id3v23_stays_v23_and_keeps_its_v23_frames(tmp_path: Path) -> None:
    p = make_audio(tmp_path / "old.mp3", 1.0)
    t = ID3()
    t.add(TIT2(encoding=1, text=[TITLE]))
    t.add(TYER(encoding=1, text=["1999"]))
    t.add(TCON(encoding=1, text=["(17)"]))  # ID3v1-style reference: Rock
    t.save(p, v2_version=3)
    assert p.read_bytes()[3] == 3
    assert tags.read_genres(p) == ["Rock"]
    snap = tags.snapshot(p)
    assert snap.id3_version == [2, 3, 0] and snap.genres == ["(17)"]

    tags.write_genre(p, "Hip-Hop")
    assert p.read_bytes()[3] == 3, "the ID3v2.3 tag was upgraded"
    raw = ID3(p, translate=False)
    assert str(raw["TYER"]) == "1999" and "TDRC" not in raw  # not converted to v2.4 frames
    assert raw["TCON"].text == ["Hip-Hop"]
    tags.restore(p, snap)
    assert ID3(p, translate=False)["TCON"].text == ["(17)"] and p.read_bytes()[3] == 3


def test_new_id3_tags_are_v24_and_removed_again_by_undo(tmp_path: Path) -> None:
    p = make_audio(tmp_path / "bare.mp3", 1.0)
    MP3(p).delete()
    assert MP3(p).tags is None
    snap = tags.snapshot(p)
    assert snap.has_tags is False
    tags.write_genre(p, "Jazz")
    assert p.read_bytes()[:4] == b"ID3\x04"
    tags.restore(p, snap)
    assert MP3(p).tags is None  # the tag block libtagger added is gone again


def test_id3v1_trailer_follows_the_new_genre(tmp_path: Path) -> None:
    p = make_audio(tmp_path / "v1.mp3", 1.0)
    f = MP3(p)
    f.tags.add(TIT2(encoding=3, text=["T"]))
    f.tags.add(TCON(encoding=3, text=["Rock"]))
    f.save(v1=2)  # create an ID3v1 trailer too
    assert p.read_bytes()[-128:-125] == b"TAG" and p.read_bytes()[-1] == 17  # Rock
    tags.write_genre(p, "Hip-Hop")
    data = p.read_bytes()
    assert data[-128:-125] == b"TAG" and data[-1] == 7  # Hip-Hop in the ID3v1 list


# ---------------------------------------------------------------- MP4 gnre

def add_gnre(path: Path, code: int) -> None:
    """Give an MP4 file the old numeric genre atom (mutagen cannot write it, so raw)."""
    f = MP4(path)
    f.tags.pop("\xa9gen", None)
    payload = struct.pack(">2I", 0, 0) + struct.pack(">H", code)
    f.tags._failed_atoms["gnre"] = [struct.pack(">I4s", 8 + len(payload), b"data") + payload]
    f.save()


@pytest.mark.parametrize("song", ["song.m4a", "song.alac.m4a"], indirect=True)
def test_mp4_numeric_gnre_is_read_removed_and_restored(song: Path) -> None:
    add_gnre(song, 18)  # 1-based ID3v1 list: 18 = Rock
    assert b"gnre" in song.read_bytes()
    assert tags.read_genres(song) == ["Rock"]
    snap = tags.snapshot(song)
    assert snap.mp4_gnre == [18] and snap.genres == ["Rock"]
    before = other_tags(song)

    tags.write_genre(song, "Country")
    assert b"gnre" not in song.read_bytes()  # removed, so it cannot disagree with ©gen
    assert MP4(song).tags["\xa9gen"] == ["Country"]
    assert ffprobe_genre(song) == "Country"

    tags.restore(song, snap)
    assert b"gnre" in song.read_bytes() and b"\xa9gen" not in song.read_bytes()
    assert tags.snapshot(song) == snap and tags.read_genres(song) == ["Rock"]
    assert other_tags(song) == before


# ---------------------------------------------------------------- tagless and broken files

def test_au_has_no_genre_and_writing_says_why(tmp_path: Path) -> None:
    wav = make_audio(tmp_path / "x.wav", 1.0)
    au = tmp_path / "x.au"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), str(au)], check=True)
    before = au.read_bytes()
    assert ".au" not in tags.TAGGABLE_EXTENSIONS
    assert tags.read_genres(au) == []
    assert not tags.written_by_libtagger(au)
    snap = tags.snapshot(au)
    assert snap.format is None
    with pytest.raises(WriteError, match=r"\.au files cannot hold a genre tag") as err:
        tags.write_genre(au, "Rock")
    assert err.value.path == str(au)
    tags.restore(au, snap)  # nothing to put back: a no-op
    assert au.read_bytes() == before


@pytest.mark.parametrize("name", ["broken.mp3", "broken.flac", "broken.m4a", "broken.wma"])
def test_corrupt_file_gives_clear_errors_and_is_untouched(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    p.write_bytes(b"this is not audio at all\n" * 50)
    with pytest.raises(ReadError, match="cannot read the tags") as err:
        tags.read_genres(p)
    assert str(p) not in err.value.reason  # the error line names the file once, before the reason
    with pytest.raises(WriteError, match="cannot read the tags"):
        tags.write_genre(p, "Rock")
    assert p.read_bytes() == b"this is not audio at all\n" * 50
    assert leftovers(tmp_path) == []


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="file not found"):
        tags.read_genres(tmp_path / "gone.mp3")
    with pytest.raises(WriteError, match="file not found"):
        tags.write_genre(tmp_path / "gone.mp3", "Rock")


def test_bad_genre_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        tags.write_genre(tmp_path / "x.mp3", "  ")


# ---------------------------------------------------------------- file-system policy

@pytest.mark.parametrize("song", ["song.flac"], indirect=True)
def test_mtime_policy(song: Path) -> None:
    old = 1_000_000_000_123_456_789  # 2001
    os.utime(song, ns=(old, old))
    tags.write_genre(song, "Jazz")
    assert song.stat().st_mtime_ns > old  # it changed: backup/sync tools must see it
    os.utime(song, ns=(old, old))
    result = tags.write_genre(song, "Blues", preserve_mtime=True)
    assert song.stat().st_mtime_ns == old == result.mtime_ns
    assert song.stat().st_atime_ns == old
    # writing the genre that is already there does not touch the file
    tags.write_genre(song, "Blues")
    assert song.stat().st_mtime_ns == old


@pytest.mark.parametrize("song", ["song.mp3"], indirect=True)
def test_mode_and_owner_are_kept(song: Path) -> None:
    os.chmod(song, 0o640)
    if os.geteuid() == 0:
        os.chown(song, 4321, 4322)
    tags.write_genre(song, "Jazz")
    st = song.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (4321, 4322)


@pytest.mark.parametrize("song", ["song.ogg"], indirect=True)
def test_symlink_stays_a_symlink(song: Path) -> None:
    link = song.with_name("link.ogg")
    link.symlink_to(song.name)
    tags.write_genre(link, "Reggae")
    assert link.is_symlink() and tags.read_genres(song) == ["Reggae"]


@pytest.mark.parametrize("song", ["song.mp3"], indirect=True)
def test_hard_links_keep_the_old_bytes(song: Path) -> None:
    """Documented behaviour: the rename gives the file a new inode."""
    other = song.with_name("other-name.mp3")
    os.link(song, other)
    tags.write_genre(song, "Rock")
    assert tags.read_genres(song) == ["Rock"]
    assert tags.read_genres(other) == []
    assert song.stat().st_ino != other.stat().st_ino


@pytest.mark.parametrize("song", ["song.wav"], indirect=True)
def test_very_long_file_name(song: Path) -> None:
    long = song.with_name("a" + "é" * 120 + ".wav")  # 246 bytes: temp name shortened, odd cut
    song.rename(long)
    tags.write_genre(long, "Classical")
    assert tags.read_genres(long) == ["Classical"] and leftovers(long.parent) == []


def test_unicode_genre_round_trips_in_every_tag_format(originals, tmp_path: Path) -> None:
    for name in ("song.mp3", "song.flac", "song.m4a", "song.wma"):
        p = tmp_path / name
        shutil.copy(originals[name], p)
        tags.write_genre(p, "Música Popular Brasileira ♫")
        assert tags.read_genres(p) == ["Música Popular Brasileira ♫"], name


def test_remove_stale_temporaries_only_removes_ours(tmp_path: Path) -> None:
    sub = tmp_path / "album"
    sub.mkdir()
    ours = [tmp_path / ".a.mp3.libtagger-ab_c1234.tmp", sub / ".b c.flac.libtagger-zzzzzzzz.tmp"]
    keep = [tmp_path / "a.mp3", tmp_path / "a.libtagger-ab_c1234.tmp",  # not hidden
            tmp_path / ".a.mp3.libtagger-short.tmp", tmp_path / ".a.mp3.libtagger-ab_c1234.tmp.bak"]
    for p in ours + keep:
        p.write_bytes(b"x")
    (tmp_path / ".l.mp3.libtagger-linklink.tmp").symlink_to("a.mp3")
    keep.append(tmp_path / ".l.mp3.libtagger-linklink.tmp")
    assert tags.remove_stale_temporaries(tmp_path) == [ours[0]]  # this folder only, by default
    assert tags.remove_stale_temporaries(tmp_path, recursive=True) == [ours[1]]
    assert all(p.is_symlink() or p.exists() for p in keep)
    assert not any(p.exists() for p in ours)


def test_taggable_extensions() -> None:
    assert {".mp3", ".flac", ".ogg", ".opus", ".m4a", ".mp4", ".wav", ".aiff", ".aif", ".wma"} \
        <= tags.TAGGABLE_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in tags.TAGGABLE_EXTENSIONS)


@pytest.mark.parametrize("song", ["song.flac"], indirect=True)
def test_restore_refuses_a_snapshot_of_another_format(song: Path, originals, tmp_path: Path) -> None:
    mp3 = tmp_path / "song.mp3"
    shutil.copy(originals["song.mp3"], mp3)
    with pytest.raises(WriteError, match="snapshot holds id3 tags but this file holds vorbis tags"):
        tags.restore(song, tags.snapshot(mp3))
    with pytest.raises(WriteError, match="not a genre snapshot"):
        tags.restore(song, {"version": 1, "genres": []})  # the journal's JSON is no Snapshot
    with pytest.raises(tags.SnapshotError, match="not a genre snapshot"):
        tags.Snapshot.from_json({"version": 99, "genres": []})
