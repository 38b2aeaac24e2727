"""The scan's library context (issue 19): verdicts pooled with the album's, else the artist's, tracks.

A real library from the shared GTZAN clips, tagged with the artists of Sturm's index: Bob
Marley's "Legend" (two reggae clips), a compilation ("Various Artists": a Bob Marley clip and a
Wu-Tang Clan clip), a folder of untagged files, and one John Lee Hooker blues clip on its
album, which the default model judges Jazz (0.45) on its own. A first writing scan (threshold
0.4) writes Jazz on it. Then the rest of that album arrives: four more Hooker clips and one
whose genre a person set ("Rock"). A dry run reports that the first clip would become Blues,
from its stored row, without decoding it again; a real run rewrites it through the journaled
write; undo puts Jazz back; the person's genre is never touched.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import mutagen
import numpy as np
import pytest

from gtzan_harness import gtzan_copy
from scan_harness import cli, decoded_paths, last_run, probe_env, run_cli
from tags_harness import tag
from libtagger.classify import context as rule
from libtagger.scan.library_context import pool, to_decide
from libtagger.store.index import Index
from libtagger.store.records import TrackRow

GENRES = ("blues", "rock")
SPELT = ("Blues", "Rock")
HOOKER = {"artist": "John Lee Hooker", "album": "The Healer"}
FIRST_CLIP = "hooker/healer/jesse_james.flac"  # blues.00003: Jazz 0.45 alone, Blues 0.65 with its album

#: name in the library: (GTZAN clip, tags), artists as Sturm's index has them.
FIRST = {
    "marley/legend/is_this_love.flac": ("reggae.00000.wav", {"artist": "Bob Marley", "album": "Legend"}),
    "marley/legend/no_woman_no_cry.flac": ("reggae.00001.wav", {"artist": "Bob Marley", "album": "Legend"}),
    FIRST_CLIP: ("blues.00003.wav", HOOKER),
    "mix/could_you_be_loved.flac": ("reggae.00002.wav", {"artist": "Bob Marley", "albumartist": "Various Artists",
                                                         "album": "Sunday Best"}),
    "mix/wu_tang.flac": ("hiphop.00001.wav", {"artist": "Wu-Tang Clan", "albumartist": "Various Artists",
                                              "album": "Sunday Best"}),
    "untagged/01.flac": ("jazz.00000.wav", {}),
    "untagged/02.flac": ("classical.00000.wav", {}),
}
#: The rest of the album, added later.
ADDED = {f"hooker/healer/{i:02d}.flac": (f"blues.0000{i}.wav", HOOKER) for i in (0, 1, 2, 4, 5)}
PERSON = "hooker/healer/05.flac"  # a person set its genre: Rock
#: Every run writes at 0.4, so that the first clip's Jazz 0.45 is written and can be rewritten.
THRESHOLD = ("--min-confidence", "0.4")


def genre_of(path: Path) -> list[str]:
    return list(mutagen.File(path).get("genre") or [])


def build(root: Path, files: dict[str, tuple[str, dict[str, str]]]) -> None:
    for name, (clip, texts) in files.items():
        path = gtzan_copy(clip, root / name, seconds=30.0)
        if texts:
            tag(path, **texts)


def scan(lib: Path, index: Path, log: Path, *extra: str) -> dict[str, dict]:
    env = probe_env(log.parent / "probe", log=log)
    result = run_cli("scan", lib, "--jobs", "2", "--report", "json", *THRESHOLD, *extra, "--index", index, env=env)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-3000:]}"
    return {Path(r["path"]).relative_to(lib).as_posix(): r for r in json.loads(result.stdout)}


def stored(index: Path, lib: Path) -> dict[str, TrackRow]:
    db = Index(index)
    try:
        return {Path(r.path).relative_to(lib).as_posix(): r for r in db.tracks_matching()}
    finally:
        db.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The library, its index, and the reports of the three runs (first, dry run after adding, real)."""
    root = tmp_path_factory.mktemp("ctx")
    lib, index = root / "Music", root / "index.db"
    build(lib, FIRST)
    first = scan(lib, index, root / "1.log")
    rows_first = stored(index, lib)
    genre_after_first = genre_of(lib / FIRST_CLIP)
    build(lib, ADDED)
    person = mutagen.File(lib / PERSON)
    person["genre"] = ["Rock"]
    person.save()
    first_bytes = (lib / FIRST_CLIP).read_bytes()
    dry = scan(lib, index, root / "2.log", "--dry-run")
    dry_counts = last_run(index)["counts"]
    unchanged_by_dry_run = (lib / FIRST_CLIP).read_bytes() == first_bytes
    real = scan(lib, index, root / "3.log")
    return {"lib": lib, "index": index, "root": root, "first": first, "rows_first": rows_first, "genre_after_first": genre_after_first, "dry": dry,
            "dry_counts": dry_counts, "unchanged_by_dry_run": unchanged_by_dry_run, "real": real,
            "real_run": last_run(index)}


def test_albums_pool_a_compilation_falls_back_to_the_artist_and_untagged_files_stand_alone(runs):
    rows = runs["rows_first"]
    legend = rows["marley/legend/is_this_love.flac"]
    assert (legend.context_level, legend.context_size, legend.context_key) == ("album", 1, "bob marley / legend")
    for name in ("mix/could_you_be_loved.flac", "mix/wu_tang.flac"):
        assert rows[name].context_level != "album" and "sunday best" not in (rows[name].context_key or ""), name
    # the compilation's Bob Marley track votes with Bob Marley's other tracks (his artist tier)
    assert rows["mix/could_you_be_loved.flac"].context_key == "bob marley"
    assert rows["mix/could_you_be_loved.flac"].context_size == 2
    assert rows["mix/wu_tang.flac"].context_level is None  # no other Wu-Tang Clan track
    assert rows["untagged/01.flac"].context_level is None and rows["untagged/02.flac"].context_level is None
    # every track keeps its own verdict beside the pooled one
    for row in rows.values():
        assert row.own_genre is not None and len(json.loads(row.own_probabilities)) == 10
    assert all(r["status"] in ("tagged", "unsure", "rejected") for r in runs["first"].values()), runs["first"]
    assert rows[FIRST_CLIP].context_level is None and rows[FIRST_CLIP].own_genre == "Jazz"
    assert runs["genre_after_first"] == ["Jazz"]


def test_show_explains_the_verdict_with_its_group(runs):
    result = cli("show", runs["lib"] / "marley/legend/is_this_love.flac", "--index", runs["index"])
    assert result.exit_code == 0, result.output
    assert re.search(r"verdict: album context: 1 other track, Reggae 0\.\d\d; alone: Reggae 0\.\d\d", result.output), \
        result.output
    alone = cli("show", runs["lib"] / "untagged/01.flac", "--index", runs["index"])
    assert "alone: " in alone.output and "no other track of its album or artist voted" in alone.output


def test_a_dry_run_reports_what_the_new_tracks_change_without_decoding_the_old_ones(runs):
    dry, root = runs["dry"], runs["root"]
    first = dry[FIRST_CLIP]
    assert first["status"] == "would-tag" and first["genre"] == "Blues" and first["confidence"] >= 0.6, first
    assert first["own_genre"] == "Jazz" and first["context_level"] == "album" and first["context_size"] == 5
    assert runs["dry_counts"].get("re-voted") == 1, runs["dry_counts"]
    assert runs["unchanged_by_dry_run"]
    assert decoded_paths(root / "2.log", "analyse") == {Path(n).name for n in ADDED}
    # the others of the library were not touched by this run: reported unchanged, once each
    assert dry["marley/legend/is_this_love.flac"]["status"] == "unchanged"
    assert sum(runs["dry_counts"].values()) - runs["dry_counts"].get("re-voted", 0) == len(FIRST) + len(ADDED)


def test_the_real_run_rewrites_the_changed_genre_and_never_a_persons(runs):
    lib, real = runs["lib"], runs["real"]
    assert real[FIRST_CLIP]["status"] == "tagged"
    assert genre_of(lib / FIRST_CLIP) == ["Blues"]
    # the person's Rock stays, though its own verdict and its album's say Blues
    person = stored(runs["index"], lib)[PERSON]
    assert genre_of(lib / PERSON) == ["Rock"] and person.status in ("kept", "unsure") and person.genre == "Blues"
    assert decoded_paths(runs["root"] / "3.log", "analyse") == set()  # everything from stored rows
    stats = json.loads(cli("stats", "--json", "--index", runs["index"]).stdout)
    assert stats["context"]["album"]["changed"] >= 1, stats


def test_undo_puts_the_album_context_rewrite_back(runs):
    lib, index = runs["lib"], runs["index"]
    result = cli("undo", "--run", runs["real_run"]["id"], "--index", index)
    assert result.exit_code == 0, result.output
    assert genre_of(lib / FIRST_CLIP) == ["Jazz"]
    assert genre_of(lib / PERSON) == ["Rock"]


def test_context_none_judges_every_track_alone(tmp_path):
    lib, index = tmp_path / "Music", tmp_path / "i.db"
    build(lib, {k: FIRST[k] for k in ("marley/legend/is_this_love.flac", "marley/legend/no_woman_no_cry.flac")})
    report = scan(lib, index, tmp_path / "1.log", "--context", "none", "--dry-run")
    for row in report.values():
        assert row["context_level"] is None and row["genre"] == row["own_genre"], row
    bad = cli("scan", lib, "--context", "genre", "--index", index)
    assert bad.exit_code == 2 and "--context" in bad.output


# -- the stage on made-up rows (no audio) ----------------------------------------------------------

def row(i: int, probs: tuple[float, float], *, artist: str | None = "A", album: str | None = "X",
        person: str | None = None, run_id: int = 1, status: str = "pending", path: str = "/m/x/01.flac") -> TrackRow:
    return TrackRow(id=i, path=path, artist=artist, album=album, compilation=0, run_id=run_id, status=status,
                    genre=SPELT[int(np.argmax(probs))], confidence=max(probs), own_genre=SPELT[int(np.argmax(probs))],
                    own_confidence=max(probs), own_probabilities=json.dumps(list(probs)),
                    person_genres=json.dumps([person]) if person else None)


def pooled(rows: list[TrackRow], level: str = "album", **kw):
    return pool(rows, level=level, labels=GENRES, spellings=SPELT,
                label_of=lambda g: g.lower() if g and g.lower() in GENRES else None, **kw)


def test_pool_matches_the_rule_and_leaves_a_track_out_of_its_own_group():
    rows = [row(1, (0.6, 0.4)), row(2, (0.1, 0.9)), row(3, (0.2, 0.8))]
    out = pooled(rows)
    expected = rule.combine(np.log([[0.6, 0.4], [0.1, 0.9], [0.2, 0.8]]), np.array([0, 0, 0]))
    assert np.allclose([json.loads(p.context.context_probabilities) for p in out], expected, atol=1e-5)
    assert [p.verdict.genre for p in out] == ["Rock", "Rock", "Rock"] and out[0].context.context_size == 2


def test_album_first_then_the_artist_and_a_persons_genre_is_evidence():
    rows = [row(1, (0.4, 0.6), album="X"), row(2, (0.9, 0.1), album="Y"), row(3, (0.9, 0.1), album="Z"),
            row(4, (0.45, 0.55), album="W", artist="B"), row(5, (0.5, 0.5), album="W", artist="B", person="Blues")]
    out = {p.row.id: p for p in pooled(rows)}
    assert out[1].context.context_level == "artist" and out[1].verdict.genre == "Blues"  # no album sibling
    assert out[4].context.context_level == "album" and out[4].verdict.genre == "Blues"  # the person's Blues
    assert pooled(rows, level="artist")[3].context.context_level == "artist"


def test_only_the_runs_groups_are_decided_again():
    old = [row(1, (0.2, 0.8), album="X", run_id=0, status="tagged"),
           row(2, (0.2, 0.8), album="Q", artist="C", run_id=0, status="tagged")]
    new = [row(3, (0.95, 0.05), album="X", run_id=5), row(4, (0.95, 0.05), album="X", run_id=5)]
    decided = {p.row.id for p in to_decide(pooled(old + new), 5)}
    assert decided == {1, 3, 4}  # track 2's group was not touched


def test_the_folder_is_an_album_only_when_asked():
    rows = [row(1, (0.4, 0.6), artist=None, album=None, path="/m/f/01.flac"),
            row(2, (0.9, 0.1), artist=None, album=None, path="/m/f/02.flac")]
    assert [p.context.context_level for p in pooled(rows)] == [None, None]
    assert [p.context.context_level for p in pooled(rows, folder_as_album=True)] == ["album", "album"]


def test_a_genre_another_program_wrote_from_libtaggers_verdict_is_no_persons_evidence():
    rows = [row(1, (0.45, 0.55), album="W", artist="B"), row(2, (0.5, 0.5), album="W", artist="B", person="Blues")]
    assert pooled(rows)[0].verdict.genre == "Blues"  # a person's Blues pulls its sibling
    rows[1] = rows[1].with_changes({"written_genre": "Blues"})  # beets wrote it from our verdict
    assert pooled(rows)[0].verdict.genre == "Rock"


def test_switching_the_context_re_votes_the_indexed_tracks_without_decoding(tmp_path):
    """--context none, then album (as after an upgrade from a libtagger without it), then none again."""
    lib, index = tmp_path / "Music", tmp_path / "i.db"
    build(lib, {FIRST_CLIP: FIRST[FIRST_CLIP], **{k: v for k, v in ADDED.items() if k != PERSON}})
    scan(lib, index, tmp_path / "1.log", "--context", "none")
    assert genre_of(lib / FIRST_CLIP) == ["Jazz"]
    # an index an older libtagger wrote: no own-verdict columns, runs without a context option
    with sqlite3.connect(index) as db:
        db.execute("update tracks set own_genre = null, own_confidence = null, own_probabilities = null")
        db.execute("update runs set arguments = json_remove(arguments, '$.context')")
    album = scan(lib, index, tmp_path / "2.log")
    assert album[FIRST_CLIP]["status"] == "tagged" and genre_of(lib / FIRST_CLIP) == ["Blues"]
    assert album[FIRST_CLIP]["own_genre"] == "Jazz" and album[FIRST_CLIP]["context_size"] == 4
    assert decoded_paths(tmp_path / "2.log", "analyse") == set()
    alone = scan(lib, index, tmp_path / "3.log", "--context", "none")
    assert alone[FIRST_CLIP]["status"] == "tagged" and genre_of(lib / FIRST_CLIP) == ["Jazz"]
    assert alone[FIRST_CLIP]["context_level"] is None
    assert decoded_paths(tmp_path / "3.log", "analyse") == set()


def test_a_track_with_no_group_has_its_tags_read_once_and_an_album_track_again_when_decided(tmp_path, monkeypatch):
    """Tag reads of a writing scan with the album context, counted per file (the file opens of
    libtagger.tags.storage.fields, which read_tag_state and read_library_fields share; the
    write's own snapshot is not one of them). A file with no album or artist is decided at
    once from the read that found it has no group; an album's track is read when analysed (to
    know its album) and again when its album's verdict is decided at the end of the run, which
    must see the file's genre as it is then."""
    from conftest import make_audio
    from libtagger.tags.storage import fields

    lib, index = tmp_path / "Music", tmp_path / "i.db"
    for i in (1, 2):
        tag(make_audio(lib / "album" / f"{i:02d}.flac", 6.0, seed=40 + i), artist="A", album="X")
    make_audio(lib / "untagged.flac", 6.0, seed=43)
    reads: dict[str, int] = {}
    opened = fields.open_path

    def counting(path):
        reads[Path(path).name] = reads.get(Path(path).name, 0) + 1
        return opened(path)

    monkeypatch.setattr(fields, "open_path", counting)
    result = cli("scan", lib, "--model", "seed", "--min-confidence", "0", "--report", "json", "--jobs", "1",
                 "--index", index)
    assert result.exit_code == 0, result.output
    report = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert {name: r["status"] for name, r in report.items()} == {"01.flac": "tagged", "02.flac": "tagged",
                                                                 "untagged.flac": "tagged"}
    assert report["01.flac"]["context_level"] == "album" and report["untagged.flac"]["context_level"] is None
    assert reads == {"01.flac": 2, "02.flac": 2, "untagged.flac": 1}
