"""Album and artist groups from the index (issue 19, first slice): the compilation flag, the keys, query.

A small real library: two albums by artists of Sturm's GTZAN index (encoded copies of GTZAN
clips, tagged with mutagen), one compilation flagged in each of MP3 ``TCMP``, FLAC
``COMPILATION`` and M4A ``cpil``, one track whose album artist is "Various Artists", and one
folder of untagged files. It is scanned ``--dry-run --no-music-check``; the stored
``compilation`` values and the group keys computed from the stored rows are checked, and
``query --album/--artist``. Unit tests of :mod:`libtagger.classify.groups` and of the flag in
every format come first.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import mutagen
import pytest
from typer.testing import CliRunner

from conftest import FORMATS, make_audio
from gtzan_harness import gtzan_copy
from libtagger.classify.context import group_ids
from libtagger.classify.groups import GroupKeys, album_key, artist_key, group_keys, is_various, name_key
from libtagger.cli import app
from libtagger.store.index import Index
from libtagger.store.records import TrackRow
from libtagger.tags.storage import read_library_fields
from tags_harness import tag

runner = CliRunner()


# -- the keys -------------------------------------------------------------------------------------

def test_an_album_is_album_artist_or_artist_and_album_in_any_case_and_spacing():
    assert album_key("Bob Marley", None, "Legend") == album_key(" bob  MARLEY", "Bob Marley", "legend ")
    assert album_key("Bob Marley", None, "Legend") != album_key("Bob Marley", None, "Exodus")
    # a featured artist on one track stays on the album of its album artist
    assert album_key("Wu-Tang Clan feat. Cappadonna", "Wu-Tang Clan", "Forever") == album_key(
        "Wu-Tang Clan", None, "Forever")
    assert album_key(None, None, "Greatest Hits") is None  # an album title alone pools strangers
    assert album_key("Nas", None, None) is None and album_key("Nas", None, "  ") is None


def test_a_compilation_is_no_album_and_each_track_falls_back_to_its_own_artist():
    for flag, albumartist in ((1, "DJ Premier"), (0, "Various Artists"), (None, "VA"), (0, "verschiedene interpreten")):
        keys = group_keys("Nas", albumartist, "Best Of", flag, "/m/best/01.mp3", folder_as_album=True)
        assert keys == GroupKeys(None, "nas"), (flag, albumartist)
    assert artist_key("Various Artists", None) is None and artist_key(None, "Various Artists") is None
    assert [is_various(n) for n in ("Various Artists", "VARIOUS", "v.a.", "V/A", "Various Artist", "Vangelis")] == [
        True, True, True, True, True, False]
    assert artist_key("Nas feat. AZ", "Nas", compilation=0) == "nas"  # not a compilation: the album artist
    assert artist_key("Nas feat. AZ", "Nas", compilation=1) == "nas feat. az"  # a compilation: its own


def test_the_folder_stands_in_for_the_album_only_when_asked():
    assert album_key(None, None, None, 0, "/m/untagged/01.wav") is None
    one = album_key(None, None, None, 0, "/m/untagged/01.wav", folder_as_album=True)
    assert one is not None and one == album_key(None, None, None, None, "/m/untagged/02.wav", folder_as_album=True)
    assert one != album_key(None, None, None, 0, "/m/other/01.wav", folder_as_album=True)
    # a tagged album keeps its tag; the folder never merges into an album of the same name
    assert album_key("Nas", None, "untagged", 0, "/m/untagged/03.wav", folder_as_album=True) != one


def test_name_key_folds_case_width_and_space_but_keeps_punctuation():
    assert name_key("  Sunn   O)))  ") == "sunn o)))" and name_key("!!!") == "!!!"
    assert name_key("ＡＢＢＡ") == name_key("abba") and name_key("Straße") == name_key("STRASSE")
    assert name_key("") is None and name_key(None) is None


# -- the flag in every format ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def formats_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("formats")
    for ext in FORMATS:
        make_audio(root / f"song{ext}", 1.0)
    return root


@pytest.mark.parametrize("ext", list(FORMATS))
def test_every_format_reads_its_compilation_flag(formats_dir, tmp_path, ext):
    song = tmp_path / f"song{ext}"
    song.write_bytes((formats_dir / f"song{ext}").read_bytes())
    assert read_library_fields(song).compilation == 0  # no flag: not a compilation
    assert read_library_fields(tag(song, compilation="1")).compilation == 1
    assert read_library_fields(tag(song, compilation="0")).compilation == 0


def test_itunes_compilation_key_of_vorbis_counts_too(formats_dir, tmp_path):
    song = tmp_path / "song.flac"
    song.write_bytes((formats_dir / "song.flac").read_bytes())
    f = mutagen.File(song)
    f.tags["ITUNESCOMPILATION"] = ["1"]
    f.save()
    assert read_library_fields(song).compilation == 1


# -- a real library, scanned ----------------------------------------------------------------------

#: GTZAN clips by artist (Sturm's index): two albums, one of them with a featured artist.
FOREVER = {"albumartist": "Wu-Tang Clan", "album": "Wu-Tang Forever"}
ALBUMS = {
    "marley/legend/is_this_love.mp3": ("reggae.00000.wav", {"artist": "Bob Marley", "album": "Legend"}),
    "marley/legend/no_woman_no_cry.mp3": ("reggae.00001.wav", {"artist": "Bob Marley", "album": "Legend"}),
    "wutang/forever/triumph.flac": ("hiphop.00001.wav", {"artist": "Wu-Tang Clan feat. Cappadonna", **FOREVER}),
    "wutang/forever/gravel_pit.flac": ("hiphop.00007.wav", {"artist": "Wu-Tang Clan", **FOREVER}),
}


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("library")
    for name, (clip, texts) in ALBUMS.items():
        tag(gtzan_copy(clip, root / name), **texts)
    comp = {"albumartist": "DJ Mix", "album": "Sunday Best"}  # a real album artist: the flag decides
    for i, (ext, artist) in enumerate(((".mp3", "Nas"), (".flac", "Portishead"), (".m4a", "Miles Davis"))):
        tag(make_audio(root / "mix" / f"{i:02d}{ext}", 6.0, seed=10 + i), compilation="1", artist=artist, **comp)
    tag(make_audio(root / "hits" / "01.ogg", 6.0, seed=20), artist="Ice Cube", albumartist="Various Artists",
        album="Hip-Hop Hits")
    for i in range(2):
        make_audio(root / "untagged" / f"{i:02d}.wav", 6.0, seed=30 + i)
    return root


@pytest.fixture(scope="module")
def index(library, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("index") / "i.db"
    result = runner.invoke(app, ["scan", str(library), "--dry-run", "--no-music-check", "--model", "seed",
                                 "--report", "json", "--index", str(db)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 10
    return db


def stored(index: Path, library: Path) -> dict[str, TrackRow]:
    """The index's rows by path relative to the library (``marley/legend/is_this_love.mp3``)."""
    db = Index(index)
    try:
        return {Path(r.path).relative_to(library).as_posix(): r for r in db.tracks_matching()}
    finally:
        db.close()


def test_the_scan_stores_the_compilation_flag(index, library):
    rows = stored(index, library)
    assert {name: row.compilation for name, row in rows.items()} == {
        **{name: 0 for name in ALBUMS}, "mix/00.mp3": 1, "mix/01.flac": 1, "mix/02.m4a": 1,
        "hits/01.ogg": 0, "untagged/00.wav": 0, "untagged/01.wav": 0}


def test_group_keys_from_the_stored_rows(index, library):
    rows = stored(index, library)
    names = sorted(rows)

    def keys(folder_as_album: bool = False) -> dict[str, GroupKeys]:
        return {n: group_keys(r.artist, r.albumartist, r.album, r.compilation, r.path, folder_as_album=folder_as_album)
                for n, r in rows.items()}

    plain = keys()
    album_groups = dict(zip(names, group_ids([plain[n].album for n in names]).tolist()))
    # each album pools its two tracks; nothing else is pooled at the album level
    legend, forever = ("marley/legend/is_this_love.mp3", "marley/legend/no_woman_no_cry.mp3"), (
        "wutang/forever/triumph.flac", "wutang/forever/gravel_pit.flac")
    for pair in (legend, forever):
        assert album_groups[pair[0]] == album_groups[pair[1]]
    assert len(set(album_groups.values())) == len(names) - 2
    # the compilation and the Various Artists track: no album, each its own artist
    assert {n: plain[n] for n in names if n.startswith(("mix/", "hits/"))} == {
        "mix/00.mp3": GroupKeys(None, "nas"), "mix/01.flac": GroupKeys(None, "portishead"),
        "mix/02.m4a": GroupKeys(None, "miles davis"), "hits/01.ogg": GroupKeys(None, "ice cube")}
    assert plain[forever[0]].artist == plain[forever[1]].artist == "wu-tang clan"
    # the untagged folder: no album, no artist, unless the folder is asked to stand in
    assert plain["untagged/00.wav"] == plain["untagged/01.wav"] == GroupKeys(None, None)
    folder = keys(folder_as_album=True)
    assert folder["untagged/00.wav"].album is not None
    assert folder["untagged/00.wav"].album == folder["untagged/01.wav"].album
    assert all(folder[n].album is None for n in names if n.startswith("mix/"))  # a compilation's folder neither


def query(index: Path, *args: str) -> list[str]:
    result = runner.invoke(app, ["query", *args, "-f", "json", "--index", str(index)])
    assert result.exit_code == 0, result.output
    return sorted(Path(r["path"]).name for r in json.loads(result.stdout))


def test_query_by_album_and_by_artist_or_album_artist(index):
    assert query(index, "--album", "LEGEND") == ["is_this_love.mp3", "no_woman_no_cry.mp3"]
    assert query(index, "--album", "Leg") == []  # the whole tag, not a part
    assert query(index, "--artist", "wu-tang clan") == ["gravel_pit.flac", "triumph.flac"]  # one via album artist
    assert query(index, "--artist", "Nas") == ["00.mp3"]
    assert query(index, "--artist", "various artists") == ["01.ogg"]
    assert query(index, "--artist", "Bob Marley", "--album", "Wu-Tang Forever") == []


def test_rows_read_before_the_flag_existed_are_read_once_without_decoding(library, index, tmp_path):
    db = tmp_path / "old.db"
    db.write_bytes(index.read_bytes())
    con = sqlite3.connect(db)
    con.execute("update tracks set compilation = null")  # an index the previous release read
    con.commit()
    analysed = dict(con.execute("select path, analysed_at from tracks"))
    con.close()
    result = runner.invoke(app, ["scan", str(library), "--dry-run", "--no-music-check", "--model", "seed",
                                 "--report", "json", "--index", str(db)])
    assert result.exit_code == 0, result.output
    con = sqlite3.connect(db)
    try:
        assert dict(con.execute("select path, analysed_at from tracks")) == analysed  # nothing decoded again
        assert dict(con.execute("select compilation, count(*) from tracks group by compilation")) == {0: 7, 1: 3}
    finally:
        con.close()
