"""The beets plugin knows the genres it set for its own after an unsure run, end to end with the real
``beet`` command (as tests/test_beets_plugin.py).

The bug this guards: an item libtagger tagged, then judged unsure (or rejected, or failed) on a later
run, lost ``libtagger_genre`` (rightly: libtagger no longer stands behind a genre) but kept the genres
libtagger had set, and every later run took them for a person's and kept them for ever ("kept", "a
genre a person set") unless ``--force``. ``libtagger_written_genres`` now records what the plugin set
in the item's genres, as long as they are still that, so libtagger's own genres stay its own.

Three one-track albums, each by its own artist, at ``min_confidence: 0.5``:

* "Own": blues.00000, a clear Blues (0.815): tagged, then unsure at ``--min-confidence 0.99`` (its
  Blues stays), then tagged again at the normal threshold, and its Album's genre stays libtagger's;
* "Torn": jazz.00000, whose verdict has a close runner-up (as in tests/test_beets_second_genre.py):
  ``--second-genre`` sets the pair, the unsure run leaves it, the normal run without the option
  replaces it with one genre (the pair was libtagger's, not a person's);
* "Changed": blues.00002: tagged, unsure, then a person sets the Album's genre (and so its item's)
  with ``beet modify -a``: the person's genre is kept on the item and the Album.

The genres themselves come from the model; what is asserted is which genres are libtagger's own.
"""

from __future__ import annotations

import pytest

from beets_harness import MIN_CONFIDENCE, Beets, file_genres, genres_by_rule, import_albums

ALBUMS = {
    "own": ("Own Artist", "Own Album", [("Own", "blues.00000.wav", None)]),
    "torn": ("Torn Artist", "Torn Album", [("Torn", "jazz.00000.wav", None)]),
    "changed": ("Changed Artist", "Changed Album", [("Changed", "blues.00002.wav", None)]),
}
FIELDS = "$title|$genres|$libtagger_genre|$libtagger_second_genre|$libtagger_written_genres|$libtagger_status"
ALBUM_FIELDS = "$album|$genres|$libtagger_album_genre"


def _items(beets: Beets) -> dict[str, dict[str, str]]:
    """{title: fields}; a flexible attribute that is not set is "" (beets prints its template)."""
    out = {}
    for line in beets.beet("ls", "-f", FIELDS).splitlines():
        title, genres, genre, second, written, status = line.split("|")
        out[title] = {"genres": genres, "libtagger_genre": genre,
                      "libtagger_second_genre": second.removeprefix("$libtagger_second_genre"),
                      "libtagger_written_genres": written.removeprefix("$libtagger_written_genres"),
                      "libtagger_status": status}
    return out


def _albums(beets: Beets) -> dict[str, dict[str, str]]:
    rows = (line.split("|") for line in beets.beet("ls", "-a", "-f", ALBUM_FIELDS).splitlines())
    return {a: {"genres": g, "libtagger_album_genre": lg.removeprefix("$libtagger_album_genre")} for a, g, lg in rows}


def _run(beets: Beets, *args: str) -> dict[str, str]:
    """Runs ``beet libtagger ARGS``; {item title or album: its report line}."""
    out = beets.beet("libtagger", *args)
    print(f"$ beet libtagger {' '.join(args)}\n{out}")
    return {line.rsplit(" - ", 1)[-1]: line for line in out.splitlines()}


@pytest.fixture(scope="module")
def library(gtzan, tmp_path_factory) -> Beets:
    return import_albums(gtzan, tmp_path_factory.mktemp("beets-own"), ALBUMS, min_confidence=MIN_CONFIDENCE)


def test_libtaggers_genres_stay_its_own_after_an_unsure_run_and_a_persons_stay_theirs(library):
    files = library.files()
    rule, one = genres_by_rule(library), genres_by_rule(library, second_genre=False)
    print("the rule on the stored verdicts:", rule, "without the option:", one)
    assert all(len(one[title]) == 1 for title in ("Own", "Torn", "Changed")), one  # all sure at 0.5
    assert len(rule["Torn"]) == 2, f"the torn clip has no close runner-up any more: {rule}"

    # Run 1: the import tagged each item (one genre), and --second-genre gives Torn the pair.
    _run(library, "--second-genre")
    items = _items(library)
    tagged = {title: rule[title] for title in ("Own", "Torn", "Changed")}
    for title, wanted in tagged.items():
        assert items[title]["libtagger_status"] == "tagged", items[title]
        assert items[title]["genres"] == items[title]["libtagger_written_genres"] == "; ".join(wanted), items[title]
        assert file_genres(files[title]) == list(wanted)
    assert _albums(library)["Own Album"] == {"genres": one["Own"][0], "libtagger_album_genre": one["Own"][0]}

    # Run 2: nothing is sure at 0.99: unsure, nothing set or written, libtagger_genre (what libtagger
    # stands behind now) empty; the genres libtagger set earlier stay, and stay recorded as its own.
    written = {t: (p.read_bytes(), p.stat().st_mtime_ns) for t, p in files.items()}
    lines = _run(library, "--second-genre", "--min-confidence", "0.99")
    items = _items(library)
    for title, wanted in tagged.items():
        assert lines[title].startswith("unsure"), lines
        assert items[title]["libtagger_status"] == "unsure", items[title]
        assert items[title]["libtagger_genre"] == items[title]["libtagger_second_genre"] == "", items[title]
        assert items[title]["genres"] == items[title]["libtagger_written_genres"] == "; ".join(wanted), items[title]
    assert lines["Own Album"].startswith("unsure"), lines  # no album genre: the Album is left alone
    assert _albums(library)["Own Album"] == {"genres": one["Own"][0], "libtagger_album_genre": one["Own"][0]}
    assert {t: (p.read_bytes(), p.stat().st_mtime_ns) for t, p in files.items()} == written

    # A person sets the Changed Album's genre (beets gives it to its item, and writes the file).
    library.beet("modify", "-a", "-y", "album:Changed Album", "genres=Delta Blues")
    assert _items(library)["Changed"]["genres"] == "Delta Blues"

    # Run 3, at the normal threshold without the option: libtagger's own genres are its own (tagged, not
    # kept); Torn's pair is replaced by its one genre; the person's genre is kept, on the item and the Album.
    lines = _run(library)
    items, albums = _items(library), _albums(library)
    for title in ("Own", "Torn"):
        assert lines[title].startswith("tagged"), lines
        assert items[title]["libtagger_status"] == "tagged", items[title]
        assert items[title]["genres"] == items[title]["libtagger_genre"] == one[title][0], items[title]
        assert items[title]["libtagger_written_genres"] == one[title][0], items[title]
        assert items[title]["libtagger_second_genre"] == "", items[title]
        assert file_genres(files[title]) == list(one[title])
    assert lines["Own Album"].startswith("tagged"), lines
    assert albums["Own Album"] == {"genres": one["Own"][0], "libtagger_album_genre": one["Own"][0]}
    changed = items["Changed"]
    assert lines["Changed"].startswith("kept"), lines
    assert changed["libtagger_status"] == "kept" and changed["genres"] == "Delta Blues", changed
    assert changed["libtagger_genre"] == one["Changed"][0] and changed["libtagger_written_genres"] == "", changed
    assert file_genres(files["Changed"]) == ["Delta Blues"]
    assert lines["Changed Album"].startswith("kept"), lines
    # the Album's genre is the person's now: libtagger's record of its own is gone
    assert albums["Changed Album"] == {"genres": "Delta Blues", "libtagger_album_genre": ""}, albums

    # Again, sure or not, the person's genre stays theirs.
    for args in ((), ("--min-confidence", "0.99")):
        _run(library, *args)
        assert _items(library)["Changed"]["genres"] == "Delta Blues"
    lines = _run(library)
    assert lines["Changed"].startswith("kept") and lines["Changed Album"].startswith("kept"), lines
    assert file_genres(files["Changed"]) == ["Delta Blues"]


# -- the rule on items in memory (no beet, no audio): the cases the run above does not reach --------------


def _plugin():
    return pytest.importorskip("beetsplug.libtagger")


def _verdict(genre: str | None = "Jazz", confidence: float = 0.8, status: str = "would-tag"):
    from libtagger.store.records import TrackRow

    return TrackRow(path="x.mp3", status=status, genre=genre, confidence=confidence, model_id="m")


def test_an_item_tagged_before_the_field_existed_keeps_its_genres_as_libtaggers():
    plugin = _plugin()
    from beets.library import Item

    old = Item(genres=["Blues"], libtagger_genre="Blues", libtagger_status="tagged")  # no written genres
    assert plugin._apply(old, _verdict(), force=False, min_confidence=0.6) == ("tagged", True)
    assert old.genres == ["Jazz"] and old[plugin.WRITTEN] == ["Jazz"]
    # before the field, a kept genre was a person's, and stays one
    kept = Item(genres=["Blues"], libtagger_genre="Jazz", libtagger_status="kept")
    assert plugin._apply(kept, _verdict(), force=False, min_confidence=0.6) == ("kept", False)
    assert kept.genres == ["Blues"] and kept[plugin.WRITTEN] == []


def test_a_rejected_or_failed_verdict_leaves_libtaggers_genres_its_own_and_a_persons_theirs():
    plugin = _plugin()
    from beets.library import Item

    for verdict in (_verdict(None, 0.0, status="rejected"), _verdict(None, 0.0, status="error")):
        ours = Item(genres=["Blues"], libtagger_genre="Blues", libtagger_status="tagged",
                    libtagger_written_genres=["Blues"])
        assert plugin._apply(ours, verdict, force=False, min_confidence=0.6)[1] is False
        assert ours.genres == ["Blues"] and ours[plugin.WRITTEN] == ["Blues"] and ours["libtagger_genre"] == ""
        changed = Item(genres=["Delta Blues"], libtagger_genre="Blues", libtagger_written_genres=["Blues"])
        plugin._apply(changed, verdict, force=False, min_confidence=0.6)
        assert changed.genres == ["Delta Blues"] and changed[plugin.WRITTEN] == []
        # ...and the next confident verdict keeps the person's genre
        assert plugin._apply(changed, _verdict(), force=False, min_confidence=0.6) == ("kept", False)


def test_a_persons_genre_equal_to_the_verdict_is_not_taken_for_libtaggers():
    plugin = _plugin()
    from beets.library import Album, Item

    item = Item(genres=["Jazz"])
    assert plugin._apply(item, _verdict(), force=False, min_confidence=0.6) == ("kept", False)
    assert plugin._apply(item, _verdict("Rock"), force=False, min_confidence=0.6) == ("kept", False)
    assert item.genres == ["Jazz"]
    album = Album(genres=["Blues"])
    decided = plugin.AlbumVerdict("Blues", "Blues (2 of 2 tracks)")
    assert plugin._apply_album(album, decided, force=False).status == "kept"
    assert "libtagger_album_genre" not in album
    assert plugin._apply_album(album, decided, force=True).status == "tagged"
    assert album["libtagger_album_genre"] == "Blues"
