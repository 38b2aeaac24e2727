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

import pytest

from beets_harness import ALBUM_FIELDS, ITEM_FIELDS, Beets, file_genres, import_albums

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


def _items(beets: Beets) -> dict[str, dict[str, str]]:
    rows = (line.split("|") for line in beets.beet("ls", "-f", ITEM_FIELDS).splitlines())
    return {t: {"genres": g, "libtagger_genre": lg, "libtagger_status": st, "libtagger_reason": r}
            for t, g, lg, st, r in rows}


def _albums(beets: Beets) -> dict[str, dict[str, str]]:
    """{album: its fields}; a flexible attribute never set is "" (beets prints its template)."""
    rows = (line.split("|") for line in beets.beet("ls", "-a", "-f", ALBUM_FIELDS).splitlines())
    return {a: {"genres": g, "libtagger_album_genre": lg.removeprefix("$libtagger_album_genre"),
                "libtagger_album_reason": r.removeprefix("$libtagger_album_reason")} for a, g, lg, r in rows}


@pytest.fixture(scope="module")
def imported(gtzan, tmp_path_factory) -> Beets:
    return import_albums(gtzan, tmp_path_factory.mktemp("beets-album"), ALBUMS)


def test_an_album_import_gets_one_album_genre_on_the_album_and_every_item(imported):
    items, files = _items(imported), imported.files()
    ripped = imported.beet("ls", "-f", "$title", "album:Ripped").split("\n")
    assert _albums(imported)["Ripped"] == {"genres": "Blues", "libtagger_album_genre": "Blues",
                                           "libtagger_album_reason": "Blues (5 of 5 tracks)"}
    for title in (t for t in ripped if t and t != "Sugar Mama"):
        assert items[title]["genres"] == items[title]["libtagger_genre"] == "Blues", items[title]
        assert items[title]["libtagger_status"] == "tagged", items[title]
        assert file_genres(files[title]) == ["Blues"]  # beets wrote the file
    # blues.00003 alone is Jazz, unsure; with its album it is Blues (its pooled verdict is)
    assert items["Jesse James"]["libtagger_reason"] == "", items["Jesse James"]


def test_an_item_with_a_genre_a_person_set_keeps_it(imported):
    sugar = _items(imported)["Sugar Mama"]
    assert sugar["genres"] == "Chicago Blues" and sugar["libtagger_status"] == "kept", sugar
    assert sugar["libtagger_genre"] == "Blues"  # the album genre is recorded beside the kept genre
    assert file_genres(imported.files()["Sugar Mama"]) == ["Chicago Blues"]


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
    beets = import_albums(gtzan, tmp_path, albums, context="none")
    items = _items(beets)
    assert items["Jesse James"]["libtagger_status"] == "unsure" and items["Jesse James"]["genres"] == ""
    assert items["Think Twice"]["genres"] == "Blues"
    # never judged as an album: the plugin set nothing on it
    assert _albums(beets)["Ripped"] == {"genres": "", "libtagger_album_genre": "", "libtagger_album_reason": ""}


def test_the_album_genre_rules_examples_run():
    # the plugin is not among test_doctests' pure modules: it imports beets
    pytest.importorskip("beets")
    assert doctest.testmod(importlib.import_module("beetsplug.libtagger")).failed == 0
