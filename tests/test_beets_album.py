"""The beets plugin's album genre, end to end with the real ``beet`` command (as tests/test_beets_plugin.py).

One import (``beet import -A``: each folder is an album task) of three albums:

* "Ripped": four John Lee Hooker clips (blues.00000-00003) whose files carry no genre, one of
  them (blues.00003) Jazz at 0.45 judged alone: pooled as one album, all four are Blues, so the
  album genre is Blues, on the Album and every item; a fifth clip carries a genre a person set
  and keeps it.
* "Mixed": classical, metal and hip-hop clips: pooled, still no genre is named by two thirds of
  the tracks, so the Album gets no genre and each item keeps its own verdict.
* "Persons": two blues clips, the first carrying a genre a person set, which beets gives the
  Album: the Album keeps it, the other item gets the album genre libtagger found.

Then another library with ``context: none`` imports two of the Hooker clips: each item is
judged alone, as before the album genre (blues.00003 stays unsure, the Album gets nothing).
"""

from __future__ import annotations

import doctest
import importlib
import subprocess
from pathlib import Path

import pytest

from conftest import require_ffmpeg
from test_beets_plugin import BEET, Beets, _file_genres

#: {folder: (artist, album, [(title, GTZAN clip, a genre a person set or None)])}; beets takes
#: the Album's fields from the first file (by name), so "Persons"' first file gives it its genre.
ALBUMS = {
    "ripped": ("John Lee Hooker", "Ripped", [("Bourbon", "blues.00000.wav", None),
                                             ("Mood", "blues.00001.wav", None),
                                             ("Jesse James", "blues.00003.wav", None),
                                             ("Think Twice", "blues.00002.wav", None),
                                             ("Sugar Mama", "blues.00005.wav", "Chicago Blues")]),
    "mixed": ("Various", "Mixed", [("Classical", "classical.00000.wav", None),
                                   ("Metal", "metal.00000.wav", None),
                                   ("Hip-Hop", "hiphop.00000.wav", None)]),
    "persons": ("John Lee Hooker", "Persons", [("Ground Hog", "blues.00007.wav", "Blues Rock"),
                                               ("Shake It", "blues.00008.wav", None)]),
}
ITEM_FIELDS = "$title|$genres|$libtagger_genre|$libtagger_status|$libtagger_reason"
ALBUM_FIELDS = "$album|$genres|$libtagger_album_genre|$libtagger_album_reason"


def _make_albums(gtzan: Path, incoming: Path, albums: dict) -> None:
    for folder, (artist, album, clips) in albums.items():
        (incoming / folder).mkdir(parents=True)
        for track, (title, clip, genre) in enumerate(clips, 1):
            tags = ["-metadata", f"artist={artist}", "-metadata", f"album={album}", "-metadata", f"title={title}",
                    "-metadata", f"track={track}"] + (["-metadata", f"genre={genre}"] if genre else [])
            out = incoming / folder / f"{track:02d}.mp3"
            subprocess.run([require_ffmpeg(), "-v", "error", "-y", "-i", str(gtzan / "audio" / clip),
                            "-c:a", "libmp3lame", "-b:a", "128k", *tags, str(out)], check=True)


def _items(beets: Beets) -> dict[str, dict[str, str]]:
    rows = (line.split("|") for line in beets.beet("ls", "-f", ITEM_FIELDS).splitlines())
    return {t: {"genres": g, "libtagger_genre": lg, "libtagger_status": st, "libtagger_reason": r}
            for t, g, lg, st, r in rows}


def _albums(beets: Beets) -> dict[str, dict[str, str]]:
    """{album: its fields}; a flexible attribute never set is "" (beets prints its template)."""
    rows = (line.split("|") for line in beets.beet("ls", "-a", "-f", ALBUM_FIELDS).splitlines())
    return {a: {"genres": g, "libtagger_album_genre": lg.removeprefix("$libtagger_album_genre"),
                "libtagger_album_reason": r.removeprefix("$libtagger_album_reason")} for a, g, lg, r in rows}


def _imported(gtzan: Path, home: Path, albums: dict, **options: object) -> Beets:
    """``albums`` made from GTZAN clips and imported by a real ``beet import`` (beets' default: threaded),
    with these libtagger plugin options (e.g. ``context="artist"``, ``min_confidence=0.5``; None: unset)."""
    if not BEET.exists():
        pytest.skip(f"beets is not installed in this environment ({BEET}): pip install 'libtagger[beets]'")
    _make_albums(gtzan, home / "incoming", albums)
    beets = Beets(home, write=True)
    set_options = "".join(f"  {name}: {value}\n" for name, value in options.items() if value is not None)
    beets.config.write_text(beets.config.read_text() + set_options)  # the libtagger section is the config's last
    done = subprocess.run([str(BEET), "-c", str(beets.config), "-v", "import", "-A", "-q", str(home / "incoming")],
                          env=beets.env, cwd=home, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    print("\n".join(line for line in done.stderr.splitlines() if line.startswith("libtagger:")))
    print(f"$ beet ls -f '{ITEM_FIELDS}'\n" + beets.beet("ls", "-f", ITEM_FIELDS))
    print(f"$ beet ls -a -f '{ALBUM_FIELDS}'\n" + beets.beet("ls", "-a", "-f", ALBUM_FIELDS))
    return beets


@pytest.fixture(scope="module")
def imported(gtzan, tmp_path_factory) -> Beets:
    return _imported(gtzan, tmp_path_factory.mktemp("beets-album"), ALBUMS)


def test_an_album_import_gets_one_album_genre_on_the_album_and_every_item(imported):
    items, files = _items(imported), imported.files()
    ripped = imported.beet("ls", "-f", "$title", "album:Ripped").split("\n")
    assert _albums(imported)["Ripped"] == {"genres": "Blues", "libtagger_album_genre": "Blues",
                                           "libtagger_album_reason": "Blues (5 of 5 tracks)"}
    for title in (t for t in ripped if t and t != "Sugar Mama"):
        assert items[title]["genres"] == items[title]["libtagger_genre"] == "Blues", items[title]
        assert items[title]["libtagger_status"] == "tagged", items[title]
        assert _file_genres(files[title]) == ["Blues"]  # beets wrote the file
    # blues.00003 alone is Jazz, unsure; with its album it is Blues (its pooled verdict is)
    assert items["Jesse James"]["libtagger_reason"] == "", items["Jesse James"]


def test_an_item_with_a_genre_a_person_set_keeps_it(imported):
    sugar = _items(imported)["Sugar Mama"]
    assert sugar["genres"] == "Chicago Blues" and sugar["libtagger_status"] == "kept", sugar
    assert sugar["libtagger_genre"] == "Blues"  # the album genre is recorded beside the kept genre
    assert _file_genres(imported.files()["Sugar Mama"]) == ["Chicago Blues"]


def test_an_album_whose_items_disagree_gets_no_album_genre(imported):
    items = _items(imported)
    mixed = _albums(imported)["Mixed"]
    assert mixed["genres"] == "" and mixed["libtagger_album_genre"] == "", mixed
    assert mixed["libtagger_album_reason"].startswith("tracks disagree"), mixed
    # each item keeps its own (pooled) verdict: not one genre on all three
    assert len({items[t]["libtagger_genre"] or items[t]["libtagger_status"] for t in ("Classical", "Metal",
                                                                                        "Hip-Hop")}) > 1, items
    assert items["Classical"]["genres"] == "Classical", items["Classical"]


def test_an_album_genre_a_person_set_is_kept_and_its_items_get_libtaggers(imported):
    items = _items(imported)
    persons = _albums(imported)["Persons"]
    assert persons["genres"] == "Blues Rock" and persons["libtagger_album_genre"] == "", persons
    assert persons["libtagger_album_reason"] == "Blues (2 of 2 tracks)", persons
    assert items["Ground Hog"]["genres"] == "Blues Rock" and items["Ground Hog"]["libtagger_status"] == "kept"
    assert items["Shake It"]["genres"] == "Blues" and items["Shake It"]["libtagger_status"] == "tagged"


def test_the_command_pools_each_album_and_force_replaces_a_persons_album_genre(imported):
    before = imported.database_dump()
    pretend = imported.beet("libtagger", "--pretend")
    print("$ beet libtagger --pretend\n" + pretend)
    lines = pretend.splitlines()
    assert "tagged    -     album genre Blues (5 of 5 tracks): John Lee Hooker - Ripped" in lines, pretend
    assert any(line.startswith("unsure") and line.endswith("Various - Mixed") for line in lines), pretend
    assert any(line.startswith("kept") and line.endswith("John Lee Hooker - Persons") for line in lines), pretend
    assert imported.database_dump() == before

    # A query matching a part of an album: its items are pooled with the whole album, the Album is left alone.
    part = imported.beet("libtagger", "--pretend", "title:Jesse James")
    assert part.splitlines() == [line for line in lines if line.endswith("Jesse James")], part

    forced = imported.beet("libtagger", "--force", "album:Persons")
    print("$ beet libtagger --force album:Persons\n" + forced)
    assert _albums(imported)["Persons"]["genres"] == "Blues"
    assert _items(imported)["Ground Hog"]["genres"] == "Blues"
    assert _items(imported)["Sugar Mama"]["genres"] == "Chicago Blues"  # another album: untouched


def test_context_none_judges_each_item_alone(gtzan, tmp_path):
    albums = {"ripped": ("John Lee Hooker", "Ripped", ALBUMS["ripped"][2][2:4])}  # blues.00003, blues.00002
    beets = _imported(gtzan, tmp_path, albums, context="none")
    items = _items(beets)
    assert items["Jesse James"]["libtagger_status"] == "unsure" and items["Jesse James"]["genres"] == ""
    assert items["Think Twice"]["genres"] == "Blues"
    # never judged as an album: the plugin set nothing on it
    assert _albums(beets)["Ripped"] == {"genres": "", "libtagger_album_genre": "", "libtagger_album_reason": ""}


def test_the_album_genre_rules_examples_run():
    # the plugin is not among test_doctests' pure modules: it imports beets
    pytest.importorskip("beets")
    assert doctest.testmod(importlib.import_module("beetsplug.libtagger")).failed == 0
