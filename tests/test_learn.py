"""``libtagger learn`` end to end on a small real library (issue #11).

The library is encoded from the shared GTZAN clips with ffmpeg: FLAC files in one folder per
artist (artists from Sturm's GTZANindex.txt; unidentified clips in ``Unknown``), genres in a
person's own wording (``Hip Hop``, one ``hip-hop``, ``Pop``, metal and rock written ``Metal`` and
``Rock`` and merged by a mapping file into ``Rock``, three ``Jazz`` tracks: too few to learn
with ``--min-tracks 5``), one multi-valued genre, and some files left untagged. Then: a dry-run
scan indexes it, ``learn`` trains, ``scan --model`` tags the untagged files in the library's
spelling, ``undo`` puts them back.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mutagen
import pytest
from typer.testing import CliRunner

from libtagger.cli import app
from libtagger.paths import user_models_dir
from libtagger.training.dataset import load_artists
from libtagger.training.labels import label_key, read_mapping, spellings, track_label

from conftest import GTZAN, require_ffmpeg

runner = CliRunner()
NAME = "my-genres"
#: GTZAN genre -> (how the person wrote it, clips tagged, clips left untagged).
PLAN = {"hiphop": ("Hip Hop", range(0, 8), range(8, 10)), "pop": ("Pop", range(0, 8), range(8, 10)),
        "metal": ("Metal", range(0, 8), range(8, 10)), "rock": ("Rock", range(0, 8), range(8, 10)),
        "jazz": ("Jazz", range(0, 3), range(0))}
LEARNED_SPELLINGS = {"Hip Hop", "Pop", "Rock"}


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> dict:
    require_ffmpeg()
    if not (GTZAN / "audio" / "hiphop.00000.wav").exists():
        pytest.skip(f"GTZAN clips not found in {GTZAN / 'audio'}")
    root = tmp_path_factory.mktemp("learn-library")
    artists = load_artists(GTZAN)
    tagged, untagged = {}, []
    for genre, (written, with_genre, without) in PLAN.items():
        for n in [*with_genre, *without]:
            clip = f"{genre}.{n:05d}"
            artist = artists.get(clip) or ""
            folder = root / "music" / (artist or "Unknown")
            folder.mkdir(parents=True, exist_ok=True)
            out = folder / f"{clip}.flac"
            meta = ["-metadata", f"artist={artist}"] if artist else []
            value = written
            if clip == "hiphop.00007":
                value = "hip-hop"  # a minority spelling: the learned model still writes "Hip Hop"
            if n in with_genre:
                meta += ["-metadata", f"genre={value}"]
            subprocess.run(["ffmpeg", "-v", "error", "-i", str(GTZAN / "audio" / f"{clip}.wav"), "-c:a", "flac",
                            *meta, str(out)], check=True)
            if clip == "hiphop.00001":  # multi-valued: learned from its first value
                f = mutagen.File(out)
                f["genre"] = ["Hip Hop", "Rap"]
                f.save()
            (tagged.__setitem__(out, value) if n in with_genre else untagged.append(out))
    mapping = root / "mapping.txt"
    mapping.write_text("# my taxonomy\nMetal = Rock\n")
    return {"root": root / "music", "index": root / "index.db", "mapping": mapping, "tagged": tagged,
            "untagged": untagged, "artists": artists}


def _genres(path: Path) -> list[str]:
    f = mutagen.File(path)
    return list((f.tags or {}).get("genre", [])) if f is not None else []


def test_labels_normalise_map_and_spell():
    assert {label_key(x) for x in ("Hip Hop", "Hip-Hop", "hiphop", "HIP HOP")} == {"hiphop"}
    assert label_key("R&B") == label_key("RnB") == label_key("Rhythm & Blues") == "rnb"
    mapping = {"deathmetal": "metal"}
    assert track_label(["Death Metal", "Rock"], mapping) == "metal"
    assert track_label(["Rock", "Death Metal"], mapping, multi="skip") is None
    assert spellings([["Hip Hop"], ["hip-hop"], ["Hip Hop"]], ["hiphop"], {}) == {"hiphop": "Hip Hop"}


def test_mapping_file_lines(tmp_path):
    good = tmp_path / "m.txt"
    good.write_text("Death-Metal = Metal  # merged\n\nSpoken Word = -\n")
    assert read_mapping(good) == {"deathmetal": "metal", "spokenword": "-"}
    bad = tmp_path / "bad.txt"
    bad.write_text("Metal Rock\n")
    result = _invoke("learn", "x", "--mapping", str(bad), "--index", str(tmp_path / "none.db"))
    assert result.exit_code == 2 and "bad.txt:1" in result.output
    assert not (user_models_dir() / "x").exists()


def test_learn_refuses_without_enough_data_and_writes_nothing(tmp_path):
    from libtagger.store.index import Index

    index = tmp_path / "empty.db"
    Index(index).close()
    result = _invoke("learn", "nothing", "--index", str(index))
    assert result.exit_code == 1
    assert "too little to learn from" in result.output and "Nothing was written" in result.output
    assert not (user_models_dir() / "nothing").exists()


def test_learn_then_scan_writes_the_library_spelling_and_undo_restores(library):
    lib, index = library["root"], str(library["index"])
    # 1. index the library (a dry run: no file changes), reading the genres people set
    result = _invoke("scan", str(lib), "--index", index, "--dry-run", "--jobs", "2", "--report", "json")
    assert result.exit_code == 0, result.output

    # 2. default --min-tracks 20: every genre is too small, and nothing is written
    result = _invoke("learn", NAME, "--index", index, "--mapping", str(library["mapping"]))
    assert result.exit_code == 1 and "too little to learn from" in result.output, result.output
    assert "Hip Hop 8 tracks" in result.output and "Rock 16 tracks" in result.output
    assert not (user_models_dir() / NAME).exists()

    # 3. learn with --min-tracks 5
    result = _invoke("learn", NAME, "--index", index, "--mapping", str(library["mapping"]), "--min-tracks", "5")
    assert result.exit_code == 0, result.output
    assert "left out Jazz: 3 tracks" in result.output
    folder = user_models_dir() / NAME
    meta = json.loads((folder / "meta.json").read_text())
    assert set(meta["spellings"].values()) == LEARNED_SPELLINGS
    assert meta["metrics"]["data"]["tracks_per_genre"] == {"Hip Hop": 8, "Pop": 8, "Rock": 16}
    assert "Jazz" in meta["metrics"]["data"]["left_out"]
    for name in ("model.keras", "card.md", "confusion.png", "cv_oof.json"):
        assert (folder / name).is_file(), name
    card = (folder / "card.md").read_text()
    assert "grouped" in card and "LR baseline" in card and "shipped" in card
    # the scan's library context, scored on the same out-of-fold probabilities (issue 19)
    context = meta["metrics"]["validation"]["recipe"]["context"]
    assert 0.0 <= context["track_accuracy"] <= 1.0 and context["n_tracks"] == 32 and context["n_pooled"] > 0
    assert "with its album (else artist) as scan pools it" in card

    # grouped validation: each artist (else folder) sits in exactly one fold, and every
    # track was scored by a model that did not train on it
    oof = json.loads((folder / "cv_oof.json").read_text())["tracks"]
    assert len(oof) == 32
    fold_of_group: dict[str, set[int]] = {}
    for row in oof:
        artist = library["artists"].get(Path(row["path"]).stem) or ""
        group = artist or f"folder {Path(row['path']).parent}"
        fold_of_group.setdefault(group, set()).add(row["fold"])
    assert all(len(folds) == 1 for folds in fold_of_group.values()), fold_of_group
    assert len({row["fold"] for row in oof}) >= 3

    # 4. listed, and usable as --model NAME
    listing = _invoke("models", "--format", "json")
    row = next(r for r in json.loads(listing.stdout) if r["name"] == NAME)
    assert row["learned"] and row["n_tracks"] == 32 and set(row["genres"]) == LEARNED_SPELLINGS

    # evaluate scores it on the GTZAN clips of the genres it shares, in its own labels
    npz = GTZAN / "musicnn" / "training_data_GTZAN_MSDmusicnn_taggram.npz"
    result = _invoke("evaluate", "--model", NAME, "--taggrams", str(npz), "--split", "train", "--json")
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    train = (GTZAN / "splits" / "train_filtered.txt").read_text().split()
    assert scored["labels"] == sorted(LEARNED_SPELLINGS, key=lambda s: label_key(s))
    assert scored["n_tracks"] == sum(Path(c).name.split(".")[0] in PLAN and not c.startswith("jazz") for c in train)
    assert {t["true"] for t in scored["tracks"]} == LEARNED_SPELLINGS

    before = {p: _genres(p) for p in [*library["tagged"], *library["untagged"]]}
    result = _invoke("scan", str(lib), "--index", index, "--model", NAME, "--min-confidence", "0.4",
                     "--jobs", "2", "--report", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    written = {Path(r["path"]): r for r in report if r["status"] == "tagged"}
    assert written, report
    for path, r in written.items():
        assert path in library["untagged"], f"a person's genre was overwritten: {path}"
        assert _genres(path) == [r["genre"]] and r["genre"] in LEARNED_SPELLINGS
        assert r["confidence"] >= 0.4
    for path, value in library["tagged"].items():  # a person's genres are kept, byte for byte
        assert _genres(path) == before[path]
    # libtagger's own tags are never learned from: the learning rows are still the 35 person-tagged files
    from libtagger.store.index import Index

    db = Index(library["index"])
    assert len(list(db.learning_rows())) == len(library["tagged"])
    learned_run = max(r["id"] for r in db.runs(lock_held=False) if r["kind"] == "scan")
    db.close()

    # 5. undo the learned model's run: the untagged files are untagged again
    result = _invoke("undo", "--index", index, "--run", str(learned_run))
    assert result.exit_code == 0, result.output
    for path in library["untagged"]:
        assert _genres(path) == [], path

    # 6. removed; a shipped model never is
    assert _invoke("models", "--remove", "musicnn-head").exit_code == 2
    assert _invoke("models", "--remove", NAME).exit_code == 0
    assert not folder.exists()
