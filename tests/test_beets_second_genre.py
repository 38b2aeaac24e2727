"""The beets plugin's second genre (config ``second_genre``, ``beet libtagger --second-genre``), end to end
with the real ``beet`` command (as tests/test_beets_plugin.py).

Three one-track albums (named "<title> Album"), each by its own artist (so libtagger's index pools
none of them with another album), at ``min_confidence: 0.5``:

* "Torn": jazz.00000, whose verdict has a close runner-up (the MP3 is Classical 0.55, Jazz 0.38 as
  measured when this test was written);
* "Clear": blues.00000, a clear Blues (runner-up below 0.1): one genre with or without the option;
* "Kept": blues.00003 carrying a genre a person set, which is kept.

What each item should get is not written down here: it is what the scan's own rule
(:func:`libtagger.scan.policy.genres_to_write`) says of the verdict libtagger's index holds for its
file, so the test follows the model. That at least one item gets two genres is asserted, so it
cannot pass with the option doing nothing.

The same library goes through: an import with the option off (one value everywhere), ``beet
libtagger --second-genre --pretend`` (nothing changes), ``--second-genre`` (the pair in beets'
database and in the file's own tag), ``--second-genre`` again (the pair is libtagger's own: tagged,
not kept, not rewritten), the option off again (the pair replaced by one value), ``--force``
(a person's genre replaced by the pair), and then a second import with ``second_genre: yes`` in
the config (the import stage writes the pair).
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import mutagen
import pytest

from beets_harness import (BEET, MIN_CONFIDENCE, Beets, file_genres, genres_by_rule, import_albums,
                           make_albums)

#: beets' own tag reader (a beets dependency; the test is skipped without beets).
MediaFile = pytest.importorskip("mediafile").MediaFile

#: {folder: (artist, album, [(title, GTZAN clip, a genre a person set or None)])}
ALBUMS = {
    "torn": ("Torn Artist", "Torn Album", [("Torn", "jazz.00000.wav", None)]),
    "clear": ("Clear Artist", "Clear Album", [("Clear", "blues.00000.wav", None)]),
    "kept": ("Kept Artist", "Kept Album", [("Kept", "blues.00003.wav", "Delta Blues")]),
}
FIELDS = "$title|$genres|$libtagger_genre|$libtagger_second_genre|$libtagger_status"


def _items(beets: Beets) -> dict[str, dict[str, str]]:
    """{title: fields}; a flexible attribute that is not set is "" (beets prints its template)."""
    rows = (line.split("|") for line in beets.beet("ls", "-f", FIELDS).splitlines())
    return {t: {"genres": g, "libtagger_genre": lg, "libtagger_second_genre": ls.removeprefix("$libtagger_second_genre"),
                "libtagger_status": st} for t, g, lg, ls, st in rows}


def _album_genres(beets: Beets) -> dict[str, str]:
    return dict(line.split("|") for line in beets.beet("ls", "-a", "-f", "$album|$genres").splitlines())


def _tags(path: Path) -> tuple[list[str], list[str]]:
    """The file's genres as beets' MediaFile reads them, and the ID3 TCON frame's own text list."""
    return list(MediaFile(path).genres or []), list(mutagen.File(path).tags["TCON"].text)


def _run(beets: Beets, *args: str) -> str:
    out = beets.beet(*args)
    print(f"$ beet {' '.join(args)}\n{out}")
    return out


@pytest.fixture(scope="module")
def library(gtzan, tmp_path_factory) -> Beets:
    # beets' threaded import (its default): one album's import stage opens libtagger's index while
    # the previous album's files are noted in it; the index waits instead of failing
    # (tests/test_index_concurrency.py).
    return import_albums(gtzan, tmp_path_factory.mktemp("beets-second"), ALBUMS, min_confidence=MIN_CONFIDENCE)


def test_second_genre_in_database_and_file_only_when_asked_and_libtaggers_pair_is_its_own(library):
    rule, one, files = genres_by_rule(library), genres_by_rule(library, second_genre=False), library.files()
    print("the rule on the stored verdicts:", rule, "without the option:", one)
    assert any(len(genres) == 2 for genres in rule.values()), f"no verdict has a close runner-up: {rule}"
    assert rule["Clear"] == one["Clear"] and len(one["Clear"]) == 1, rule

    # Off (the default): one value, as before the option.
    items = _items(library)
    for title in ("Torn", "Clear"):
        assert items[title]["libtagger_status"] == ("tagged" if one[title] else "unsure"), items[title]
        assert items[title]["genres"] == items[title]["libtagger_genre"] == "".join(one[title]), items[title]
        assert items[title]["libtagger_second_genre"] == "", items[title]
        assert file_genres(files[title]) == list(one[title])
    assert items["Kept"]["genres"] == "Delta Blues", items["Kept"]

    # --pretend says what the option would do and changes nothing.
    before_db = library.database_dump()
    before_files = {t: p.read_bytes() for t, p in files.items()}
    pretend = _run(library, "libtagger", "--pretend", "--second-genre")
    lines = {line.rsplit(" - ", 1)[-1]: line for line in pretend.splitlines()}
    for title in ("Torn", "Clear"):
        status = "unsure" if not rule[title] else "would-tag" if rule[title] != one[title] else "tagged"
        assert lines[title].startswith(status), pretend
        assert not rule[title] or f" {'; '.join(rule[title])}: " in lines[title], pretend
    assert library.database_dump() == before_db
    assert {t: p.read_bytes() for t, p in files.items()} == before_files

    # On: the pair where the rule gives one, in beets' database and in the file's own tag.
    _run(library, "libtagger", "--second-genre")
    items = _items(library)
    for title in (t for t in ("Torn", "Clear") if rule[t]):
        wanted = rule[title]
        assert items[title]["libtagger_status"] == "tagged", items[title]
        assert items[title]["genres"] == "; ".join(wanted), items[title]
        assert items[title]["libtagger_genre"] == wanted[0], items[title]
        assert items[title]["libtagger_second_genre"] == (wanted[1] if len(wanted) == 2 else ""), items[title]
        # beets writes ID3v2.4: one TCON frame holding two values, not "Classical; Jazz" as one
        assert _tags(files[title]) == (list(wanted), list(wanted))
    assert any("; " in items[t]["genres"] for t in ("Torn", "Clear")), items
    # libtagger's index knows both written values for its own (the library context never takes
    # the second for a person's genre when it reads the file again).
    with sqlite3.connect(library.index) as con:
        index_rows = {path: (first, second) for path, first, second in
                      con.execute("select path, written_genre, second_genre from tracks")}
    for title in (t for t in ("Torn", "Clear") if rule[t]):
        wanted = rule[title]
        assert index_rows[str(files[title])] == (wanted[0], wanted[1] if len(wanted) == 2 else None)
    # A person's genre is kept; libtagger's verdict, the pair too, is recorded beside it.
    assert items["Kept"]["genres"] == "Delta Blues" and items["Kept"]["libtagger_status"] == "kept", items["Kept"]
    assert items["Kept"]["libtagger_second_genre"] == (rule["Kept"][1] if len(rule["Kept"]) == 2 else "")
    assert file_genres(files["Kept"]) == ["Delta Blues"]
    # The Album keeps one genre (the album genre, when its track is sure enough to name one).
    assert all("; " not in genres for genres in _album_genres(library).values()), _album_genres(library)

    # Again: the pair is libtagger's own, not a person's genre: tagged, nothing rewritten.
    written = {t: (p.read_bytes(), p.stat().st_mtime_ns) for t, p in files.items()}
    again = _run(library, "libtagger", "--second-genre")
    torn, = (line for line in again.splitlines() if line.endswith(" - Torn"))
    assert torn.startswith("tagged") and f" {'; '.join(rule['Torn'])}: " in torn, again
    assert _items(library) == items
    assert {t: (p.read_bytes(), p.stat().st_mtime_ns) for t, p in files.items()} == written

    # Off again: libtagger's pair is replaced by its one genre (it was never a person's).
    assert any(len(rule[t]) == 2 and one[t] for t in ("Torn", "Clear")), (rule, one)
    _run(library, "libtagger")
    items = _items(library)
    for title in (t for t in ("Torn", "Clear") if one[t]):
        assert items[title]["libtagger_status"] == "tagged", items[title]
        assert items[title]["genres"] == one[title][0] and items[title]["libtagger_second_genre"] == "", items[title]
        assert _tags(files[title]) == (list(one[title]), list(one[title]))

    # --force replaces a person's genre, with the pair when the rule gives one.
    _run(library, "libtagger", "--second-genre", "--force", "title:Kept")
    kept = _items(library)["Kept"]
    if rule["Kept"]:
        assert kept["libtagger_status"] == "tagged" and kept["genres"] == "; ".join(rule["Kept"]), kept
        assert file_genres(files["Kept"]) == list(rule["Kept"])
    else:  # unsure even as a pair: nothing to force
        assert kept["libtagger_status"] == "unsure" and kept["genres"] == "Delta Blues", kept


def test_the_config_option_sets_the_pair_on_import(library, gtzan):
    # The same torn clip again, as another album by another artist, imported with the option on.
    incoming = library.home / "incoming-on"
    make_albums(gtzan, incoming, {"again": ("Again Artist", "Again Album", [("Again", "jazz.00000.wav", None)])})
    library.config.write_text(library.config.read_text() + "  second_genre: yes\n")
    done = subprocess.run([str(BEET), "-c", str(library.config), "-v", "import", "-A", "-q", str(incoming)],
                          env=library.env, cwd=library.home, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    print("\n".join(line for line in done.stderr.splitlines() if line.startswith("libtagger:")))
    wanted = genres_by_rule(library)["Again"]
    assert len(wanted) == 2, f"the torn clip again, but its verdict has no close runner-up: {wanted}"
    again = _items(library)["Again"]
    assert again["libtagger_status"] == "tagged" and again["genres"] == "; ".join(wanted), again
    assert again["libtagger_second_genre"] == wanted[1], again
    assert _tags(library.files()["Again"]) == (list(wanted), list(wanted))
    assert _album_genres(library)["Again Album"] in ("", wanted[0])  # never a pair
