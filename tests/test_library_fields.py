"""The genres a person set, artist, album artist and album: read from every tag format and indexed.

Issue #11 (learn the library's own genres), the data part: real files of every format made
here (soundfile/ffmpeg) and tagged with mutagen the way other taggers do, read back through
:func:`libtagger.tags.storage.read_library_fields`, indexed by a real scan, and an index of
the previous release gaining the columns in place.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import mutagen
import pytest
from mutagen.asf import ASF
from mutagen.id3 import ID3, TALB, TCON, TPE1, TPE2
from mutagen.mp4 import MP4
from typer.testing import CliRunner

from conftest import FORMATS, complete_old_index, make_audio
from libtagger.cli import app
from libtagger.store.index import Index
from libtagger.tags.storage import LibraryFields, read_library_fields, read_tag_state, write_genre

runner = CliRunner()
ID3_FORMATS = (".mp3", ".wav", ".aiff")
VORBIS_FORMATS = (".flac", ".ogg", ".opus")
MP4_FORMATS = (".m4a", ".alac.m4a")


def tag(path: Path, genres: list[str] | None, artist: str | None = None, albumartist: str | None = None,
        album: str | None = None, *, id3_version: int = 4) -> None:
    """Give ``path`` these tags the way a tagger would, each in its format's own frames/keys."""
    ext = ".alac.m4a" if path.name.endswith(".alac.m4a") else path.suffix.lower()
    if ext in ID3_FORMATS:
        f = mutagen.File(path)
        if f.tags is None:
            f.add_tags()
        for frame, value in ((TCON, genres), (TPE1, artist), (TPE2, albumartist), (TALB, album)):
            f.tags.delall(frame.__name__)
            if value:
                f.tags.add(frame(encoding=3, text=value if isinstance(value, list) else [value]))
        # v23_sep=None: several values stay null-separated, as taggers write them in v2.3 too
        f.save(v2_version=id3_version, v23_sep=None)
        return
    if ext in MP4_FORMATS:
        f = MP4(path)
        keys = {"\xa9gen": genres, "\xa9ART": artist, "aART": albumartist, "\xa9alb": album}
    elif ext == ".wma":
        f = ASF(path)
        keys = {"WM/Genre": genres, "Author": artist, "WM/AlbumArtist": albumartist, "WM/AlbumTitle": album}
    else:
        f = mutagen.File(path)
        keys = {"GENRE": genres, "ARTIST": artist, "ALBUMARTIST": albumartist, "ALBUM": album}
    if f.tags is None:
        f.add_tags()
    for key, value in keys.items():
        if key in f.tags:
            del f.tags[key]
        if value:
            f.tags[key] = value if isinstance(value, list) else [value]
    f.save()


@pytest.fixture(scope="module")
def formats_dir(tmp_path_factory) -> Path:
    """One untagged 2-s file of every format, copied by each test that tags it."""
    root = tmp_path_factory.mktemp("formats")
    for ext in FORMATS:
        make_audio(root / f"song{ext}", 2.0)
    return root


def fresh(formats_dir: Path, ext: str, tmp_path: Path) -> Path:
    target = tmp_path / f"song{ext}"
    target.write_bytes((formats_dir / f"song{ext}").read_bytes())
    return target


@pytest.mark.parametrize("ext", list(FORMATS))
def test_every_format_gives_all_its_genres_and_its_artist_and_album(formats_dir, tmp_path, ext):
    song = fresh(formats_dir, ext, tmp_path)
    assert read_library_fields(song) == LibraryFields(None, None, None, None)  # nothing there yet
    tag(song, ["Bebop", "Cool Jazz", "Hard Bop"], "Miles Davis", "Miles Davis Quintet", "Relaxin'")
    assert read_library_fields(song) == LibraryFields(
        ["Bebop", "Cool Jazz", "Hard Bop"], "Miles Davis", "Miles Davis Quintet", "Relaxin'")
    # artist and album without any genre: person_genres stays NULL
    tag(song, None, "Nina Simone", None, "Pastel Blues")
    assert read_library_fields(song) == LibraryFields(None, "Nina Simone", None, "Pastel Blues")


@pytest.mark.parametrize("ext", list(FORMATS))
def test_libtaggers_own_genre_is_not_a_persons_until_a_person_changes_it(formats_dir, tmp_path, ext):
    song = fresh(formats_dir, ext, tmp_path)
    tag(song, None, "Sun Ra", None, "Lanquidity")
    write_genre(song, "Jazz")
    state = read_tag_state(song)
    assert (state.genres, state.ours) == (["Jazz"], True)
    assert state.fields == LibraryFields(None, "Sun Ra", None, "Lanquidity")
    # a person replaces it (our marker stays in the file): theirs again
    tag(song, ["Space Jazz"], "Sun Ra", None, "Lanquidity")
    assert read_library_fields(song).person_genres == ["Space Jazz"]
    # or adds one beside ours: both values are the person's choice
    tag(song, ["Jazz", "Funk"], "Sun Ra", None, "Lanquidity")
    assert read_library_fields(song).person_genres == ["Jazz", "Funk"]


@pytest.mark.parametrize("version", [3, 4])
def test_id3_null_separated_values_and_v1_references_resolve_as_mutagen_does(formats_dir, tmp_path, version):
    song = fresh(formats_dir, ".mp3", tmp_path)
    tag(song, ["(17)", "Shoegaze", "(9)"], "Slowdive", "Slowdive", "Souvlaki", id3_version=version)
    stored = ID3(song, translate=False)  # as it is in the file (no v2.4 upgrade of a v2.3 tag)
    assert stored.version[:2] == (2, version)
    assert stored.get("TCON").text == ["(17)", "Shoegaze", "(9)"]  # three values, null-separated
    assert read_library_fields(song) == LibraryFields(["Rock", "Shoegaze", "Metal"], "Slowdive", "Slowdive", "Souvlaki")


def test_several_vorbis_comments_keep_their_order_and_spelling(formats_dir, tmp_path):
    song = fresh(formats_dir, ".flac", tmp_path)
    f = mutagen.File(song)
    f.tags.append(("genre", "trip-hop"))
    f.tags.append(("GENRE", "Downtempo"))
    f.tags.append(("Artist", "Massive Attack"))
    f.tags.append(("ARTIST", "Tracey Thorn"))
    f.save()
    assert read_library_fields(song) == LibraryFields(["trip-hop", "Downtempo"], "Massive Attack", None, None)


def test_a_file_that_cannot_hold_tags_has_none_and_a_missing_one_is_an_error(tmp_path):
    import soundfile as sf

    from conftest import music_like
    from libtagger.errors import ReadError

    au = tmp_path / "old.au"
    sf.write(au, music_like(1.0), 44100, format="AU", subtype="PCM_16")
    assert read_library_fields(au) == LibraryFields()
    with pytest.raises(ReadError):
        read_library_fields(tmp_path / "gone.flac")


# -- a real scan ------------------------------------------------------------------------------

SCAN = ("--model", "seed", "--min-confidence", "0", "--report", "json")


def scan(index: Path, *args: str) -> list[dict]:
    result = runner.invoke(app, ["scan", *args, *SCAN, "--index", str(index)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def rows_by_name(index: Path) -> dict[str, dict]:
    con = sqlite3.connect(index)
    con.row_factory = sqlite3.Row
    try:
        return {Path(r["path"]).name: dict(r) for r in con.execute("select * from tracks")}
    finally:
        con.close()


@pytest.fixture
def library(tmp_path) -> Path:
    root = tmp_path / "lib"
    tag(make_audio(root / "mine.flac", 6.0, seed=1), ["Bebop", "Cool Jazz"], "Art Pepper", None, "Meets the Rhythm Section")
    tag(make_audio(root / "bare.mp3", 6.0, seed=2), None, "Anonymous")
    tag(make_audio(root / "several.wma", 6.0, seed=3), ["Ambient", "Drone"], "Eno", "Brian Eno", "On Land")
    ours = make_audio(root / "ours.m4a", 6.0, seed=4)
    tag(ours, None, "Someone", None, None)
    write_genre(ours, "Blues")  # an earlier libtagger run's genre
    return root


def test_a_dry_run_indexes_each_files_own_fields_and_the_learner_gets_them(library, tmp_path):
    index = tmp_path / "i.db"
    report = scan(index, str(library), "--dry-run")
    assert len(report) == 4
    rows = rows_by_name(index)
    assert json.loads(rows["mine.flac"]["person_genres"]) == ["Bebop", "Cool Jazz"]
    assert (rows["mine.flac"]["artist"], rows["mine.flac"]["albumartist"], rows["mine.flac"]["album"]) == (
        "Art Pepper", None, "Meets the Rhythm Section")
    assert json.loads(rows["several.wma"]["person_genres"]) == ["Ambient", "Drone"]
    assert rows["several.wma"]["albumartist"] == "Brian Eno"
    assert rows["bare.mp3"]["person_genres"] is None and rows["bare.mp3"]["artist"] == "Anonymous"
    assert rows["ours.m4a"]["person_genres"] is None and rows["ours.m4a"]["artist"] == "Someone"
    assert all(r["tags_read_at"] for r in rows.values())

    index_ = Index(index)
    try:
        learning = list(index_.learning_rows())
    finally:
        index_.close()
    assert [Path(r.path).name for r in learning] == ["mine.flac", "several.wma"]  # ordered by path
    first = learning[0]
    assert first.person_genres == ["Bebop", "Cool Jazz"] and first.artist == "Art Pepper"
    assert first.features.ndim == 2 and first.features.shape[1] == 57 and first.features.shape[0] >= 1
    assert first.track_id == rows["mine.flac"]["id"]
    # the seed model reads features only, and the music check is off here: no taggrams stored
    assert first.taggrams is None


def test_a_changed_file_is_read_again_and_an_unchanged_one_keeps_its_fields(library, tmp_path):
    index = tmp_path / "i.db"
    scan(index, str(library), "--dry-run")
    before = rows_by_name(index)
    tag(library / "mine.flac", ["Post-Bop"], "Art Pepper", "Art Pepper", "Smack Up")
    report = {Path(r["path"]).name: r["status"] for r in scan(index, str(library), "--dry-run")}
    assert report["several.wma"] == "unchanged" and report["mine.flac"] != "unchanged"
    after = rows_by_name(index)
    assert json.loads(after["mine.flac"]["person_genres"]) == ["Post-Bop"]
    assert (after["mine.flac"]["albumartist"], after["mine.flac"]["album"]) == ("Art Pepper", "Smack Up")
    assert after["several.wma"] == before["several.wma"]  # not opened, not rewritten


def test_a_real_run_keeps_the_persons_genres_of_before_its_write(library, tmp_path):
    index = tmp_path / "i.db"
    scan(index, str(library))
    rows = rows_by_name(index)
    assert rows["bare.mp3"]["status"] == "tagged" and rows["bare.mp3"]["person_genres"] is None
    assert rows["mine.flac"]["status"] == "kept"
    assert json.loads(rows["mine.flac"]["person_genres"]) == ["Bebop", "Cool Jazz"]
    # the file now holds libtagger's genre: reading it again agrees that it is not a person's
    assert read_library_fields(library / "bare.mp3").person_genres is None


def test_rows_indexed_before_the_fields_existed_are_read_once_without_decoding(library, tmp_path):
    index = tmp_path / "i.db"
    scan(index, str(library), "--dry-run")
    con = sqlite3.connect(index)
    # what an index of the previous release holds after its migration: the columns, empty
    con.execute("update tracks set person_genres = null, artist = null, albumartist = null, "
                "album = null, tags_read_at = null")
    con.commit()
    analysed = {n: r["analysed_at"] for n, r in rows_by_name(index).items()}
    con.close()
    report = scan(index, str(library), "--dry-run")
    assert {r["status"] for r in report} <= {"unchanged", "would-tag", "kept", "unsure"}
    rows = rows_by_name(index)
    assert {n: r["analysed_at"] for n, r in rows.items()} == analysed  # nothing decoded again
    assert json.loads(rows["mine.flac"]["person_genres"]) == ["Bebop", "Cool Jazz"]
    assert rows["several.wma"]["album"] == "On Land" and rows["bare.mp3"]["artist"] == "Anonymous"
    assert all(r["tags_read_at"] for r in rows.values())


def test_show_prints_the_fields(library, tmp_path):
    index = tmp_path / "i.db"
    scan(index, str(library), "--dry-run")
    result = runner.invoke(app, ["show", str(library / "mine.flac"), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert "Art Pepper" in result.output and "Bebop; Cool Jazz" in result.output


# -- an index of the previous release -----------------------------------------------------------

#: The tracks table as libtagger 0.2.0 left it: 0.1's table, then reason and detector_id added.
OLD_TRACKS_SQL = (
    "CREATE TABLE [tracks] ([id] INTEGER PRIMARY KEY, [path] TEXT NOT NULL, [path_bytes] BLOB, "
    "[size] INTEGER, [mtime_ns] INTEGER, [fingerprint] TEXT, [format] TEXT, [duration] FLOAT, "
    "[samplerate] INTEGER, [channels] INTEGER, [status] TEXT, [error] TEXT, [genre] TEXT, "
    "[confidence] FLOAT, [runner_up] TEXT, [runner_up_confidence] FLOAT, [previous_genre] TEXT, "
    "[written] INTEGER DEFAULT 0, [written_genre] TEXT, [model_id] TEXT, [missing] INTEGER DEFAULT 0, "
    "[analysed_at] TEXT, [updated_at] TEXT, [run_id] INTEGER)")


def test_an_index_of_0_2_gains_the_columns_in_place_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute(OLD_TRACKS_SQL)
    con.execute("ALTER TABLE [tracks] ADD COLUMN [reason] TEXT")
    con.execute("ALTER TABLE [tracks] ADD COLUMN [detector_id] TEXT")
    con.execute("insert into tracks (id, path, status, genre, reason) values (7, '/m/a.flac', 'kept', 'Jazz', null)")
    con.execute("insert into tracks (id, path, status, reason) values (8, '/m/b.flac', 'rejected', 'not music: speech')")
    complete_old_index(con)  # the other tables libtagger 0.2 made beside it
    con.commit()
    schema_before = con.execute("select sql from sqlite_master where name = 'tracks'").fetchone()[0]
    con.close()

    index = Index(path)
    try:
        schema = index.db["tracks"].schema
        assert schema.startswith(schema_before[:-1])  # altered, not rebuilt: the old columns first
        for column in ("person_genres", "artist", "albumartist", "album", "tags_read_at"):
            assert column in index.db["tracks"].columns_dict
        a, b = index.track(7), index.track(8)
        assert (a.path, a.status, a.genre, a.person_genres, a.artist) == (
            "/m/a.flac", "kept", "Jazz", None, None)
        assert (b.status, b.reason) == ("rejected", "not music: speech")
        assert [r.id for r in index.tracks_without_tags_read()] == [7, 8]
        assert list(index.learning_rows()) == []
    finally:
        index.close()
    Index(path).close()  # opening it again changes nothing
    con = sqlite3.connect(path)
    assert con.execute("select count(*) from tracks").fetchone()[0] == 2
    con.close()


def test_rejected_and_too_short_files_keep_their_fields_too(tmp_path):
    root = tmp_path / "lib"
    # the suite's sine chords: the music detector rightly calls them a tone
    tone = make_audio(root / "chords.flac", 12.0, seed=5)
    tag(tone, ["Minimal", "Drone"], "La Monte Young", None, "The Well-Tuned Piano")
    short = make_audio(root / "short.mp3", 1.0, seed=6)
    tag(short, ["Grindcore"], "Napalm Death", None, "Scum")
    index = tmp_path / "i.db"
    report = {Path(r["path"]).name: r for r in scan(index, str(root), "--dry-run", "--music-check")}
    assert report["chords.flac"]["status"] == "rejected", report
    assert report["short.mp3"]["status"] == "error" and "too short" in report["short.mp3"]["error"]
    rows = rows_by_name(index)
    assert json.loads(rows["chords.flac"]["person_genres"]) == ["Minimal", "Drone"]
    assert rows["chords.flac"]["album"] == "The Well-Tuned Piano"
    assert json.loads(rows["short.mp3"]["person_genres"]) == ["Grindcore"]
    assert rows["short.mp3"]["artist"] == "Napalm Death"

    index_ = Index(index)
    try:
        [row] = list(index_.learning_rows())  # the short file has no segments to learn from
    finally:
        index_.close()
    assert (Path(row.path).name, row.status, row.person_genres) == ("chords.flac", "rejected", ["Minimal", "Drone"])
    # the detector reads taggrams, so they were stored: one (n_patches, 50) array per segment
    assert row.taggrams is not None and len(row.taggrams) == row.features.shape[0]
    assert all(t.ndim == 2 and t.shape[1] == 50 and t.shape[0] >= 1 for t in row.taggrams)
