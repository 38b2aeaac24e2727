"""Incremental runs through ``libtagger scan``: what is decoded again, and what is not.

"Not decoded" is proved, not inferred: the scans run as subprocesses with the probe of
scan_harness.py, which logs every ``decode.probe``/``decode.load`` call made in the main
process or in any worker.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import mutagen
import pytest

from conftest import make_audio
from scan_harness import (decoded_paths, json_report, last_run, probe_env, probe_events,
                          require_seed_model, rows, run_cli, tracks_by_name)

SCAN = ("--model", "seed", "--min-confidence", "0", "--jobs", "2", "--report", "json")


@pytest.fixture(autouse=True)
def _seed():
    require_seed_model()


def scan(lib: Path, index: Path, log: Path, *extra: str, env_extra: dict | None = None):
    env = probe_env(log.parent / "probe", log=log)
    env.update(env_extra or {})
    return run_cli("scan", lib, *SCAN, *extra, "--index", index, env=env)


def test_unchanged_moved_changed_and_deleted_files(tmp_path):
    lib = tmp_path / "Music"
    for i, name in enumerate(["keep.flac", "retouch.mp3", "reaudio.wav", "mover.flac", "gone.ogg"]):
        make_audio(lib / name, 6.0, seed=i)
    index = tmp_path / "index.db"

    first = json_report(scan(lib, index, tmp_path / "1.log"))
    assert {r["status"] for r in first.values()} == {"tagged"}
    assert {r["segments"] for r in first.values()} == {1}  # one 30-s window in a 6-s file
    after_first = tracks_by_name(index)
    bytes_after_first = {p.name: p.read_bytes() for p in lib.iterdir()}

    # 1. nothing changed, and libtagger's own tag writes are not changes: nothing is decoded
    second = scan(lib, index, tmp_path / "2.log")
    assert {r["status"] for r in json_report(second).values()} == {"unchanged"}
    assert probe_events(tmp_path / "2.log") == [], "an unchanged file was decoded again"
    assert last_run(index)["counts"] == {"unchanged": 5}
    assert tracks_by_name(index) == after_first
    assert {p.name: p.read_bytes() for p in lib.iterdir()} == bytes_after_first

    # 2. change, touch, move (with new tags), delete
    make_audio(lib / "reaudio.wav", 6.0, seed=99)                # other audio, no genre
    st = (lib / "retouch.mp3").stat()
    os.utime(lib / "retouch.mp3", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # only touched
    moved = lib / "Sub Folder" / "renamed.flac"
    moved.parent.mkdir()
    (lib / "mover.flac").rename(moved)
    tagged = mutagen.File(moved)
    tagged["title"] = "A title added after the move"
    tagged["artist"] = "Someone"
    tagged.save()
    (lib / "gone.ogg").unlink()
    segments_before = rows(index, "select * from segments where track_id = ? order by idx",
                           (after_first["mover.flac"]["id"],))

    third = json_report(scan(lib, index, tmp_path / "3.log"))
    analysed = decoded_paths(tmp_path / "3.log", "analyse")
    assert analysed == {"reaudio.wav", "retouch.mp3"}, analysed
    # retouch.mp3 is analysed again and already holds its verdict's genre: kept, not written again
    assert third["reaudio.wav"]["status"] == "tagged" and third["retouch.mp3"]["status"] == "kept"
    assert third["keep.flac"]["status"] == "unchanged"
    counts = last_run(index)["counts"]
    assert counts.get("moved") == 1 and counts.get("unchanged") == 1, counts

    now = tracks_by_name(index)
    # the move kept the track: same id, same analysis, no second analysis of its audio
    assert "mover.flac" not in now
    assert now["renamed.flac"]["id"] == after_first["mover.flac"]["id"]
    assert now["renamed.flac"]["analysed_at"] == after_first["mover.flac"]["analysed_at"]
    assert now["renamed.flac"]["path"] == str(moved) and now["renamed.flac"]["missing"] == 0
    assert rows(index, "select * from segments where track_id = ? order by idx",
                (now["renamed.flac"]["id"],)) == segments_before
    assert "renamed.flac" in decoded_paths(tmp_path / "3.log", "fingerprint")  # found by its audio
    assert mutagen.File(moved)["title"] == ["A title added after the move"]
    assert now["renamed.flac"]["size"] == moved.stat().st_size  # the new tags are the new state
    # the deleted file is missing, not deleted
    assert now["gone.ogg"]["missing"] == 1 and now["gone.ogg"]["genre"] == after_first["gone.ogg"]["genre"]
    missing = run_cli("query", "--missing", "--format", "json", "--index", index)
    assert [Path(r["path"]).name for r in json.loads(missing.stdout)] == ["gone.ogg"]

    # 3. and the run after that decodes nothing at all
    fourth = scan(lib, index, tmp_path / "4.log")
    assert {r["status"] for r in json_report(fourth).values()} == {"unchanged"}
    assert probe_events(tmp_path / "4.log") == []


def _new_model_version(target: Path, name: str = "seed") -> str:
    """Copy a model to ``target/name`` as a new version: other bytes, same network.

    The other folders of the models directory (the musicnn front-end) are linked beside it.
    """
    from libtagger.classify.classifier import model_id_for
    from libtagger.paths import models_dir

    folder = target / name
    shutil.copytree(models_dir() / name, folder)
    for other in models_dir().iterdir():
        if other.is_dir() and not (target / other.name).exists():
            (target / other.name).symlink_to(other.resolve())
    with zipfile.ZipFile(folder / "model.keras", "a") as z:  # a zip comment: a new file, same weights
        z.comment = b"libtagger test: retrained"
    meta = json.loads((folder / "meta.json").read_text())
    meta["model_id"] = model_id_for(name, folder / "model.keras")
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta["model_id"]


def test_rescan_decodes_again_and_a_new_model_reclassifies_without_decoding(tmp_path):
    lib = tmp_path / "Music"
    make_audio(lib / "one.flac", 6.0, seed=1)
    make_audio(lib / "two.mp3", 6.0, seed=2)
    index = tmp_path / "index.db"
    json_report(scan(lib, index, tmp_path / "1.log"))
    old = tracks_by_name(index)

    rescan = json_report(scan(lib, index, tmp_path / "2.log", "--rescan"))
    assert decoded_paths(tmp_path / "2.log", "analyse") == {"one.flac", "two.mp3"}
    assert {r["status"] for r in rescan.values()} == {"kept"}  # same verdict: its own genre, kept as is

    new_id = _new_model_version(tmp_path / "models")
    assert new_id != old["one.flac"]["model_id"]
    third = json_report(scan(lib, index, tmp_path / "3.log",
                             env_extra={"LIBTAGGER_MODELS": str(tmp_path / "models")}))
    assert probe_events(tmp_path / "3.log") == [], "re-classifying decoded audio"
    now = tracks_by_name(index)
    for name in ("one.flac", "two.mp3"):
        assert now[name]["model_id"] == new_id
        assert now[name]["id"] == old[name]["id"]
        assert third[name]["status"] == "kept"  # the same verdict, already in the file
    assert last_run(index)["model_id"] == new_id
    # stored features give the same verdict: same network, same numbers
    assert now["one.flac"]["confidence"] == pytest.approx(old["one.flac"]["confidence"], abs=1e-5)


def test_a_new_default_model_reclassifies_from_stored_taggrams_without_decoding(tmp_path):
    """The default model (musicnn-head) also needs the musicnn taggrams: they are stored too."""
    lib = tmp_path / "Music"
    make_audio(lib / "one.ogg", 6.0, seed=3)
    index = tmp_path / "index.db"
    default = ("--min-confidence", "0", "--jobs", "2", "--report", "json")
    env = probe_env(tmp_path / "probe", log=tmp_path / "1.log")
    first = json_report(run_cli("scan", lib, *default, "--index", index, env=env))
    assert first["one.ogg"]["status"] == "tagged"
    old = tracks_by_name(index)["one.ogg"]
    assert rows(index, "select count(*) as n from segments where track_id = ? and taggram is not null",
                (old["id"],)) == [{"n": 1}]

    new_id = _new_model_version(tmp_path / "models", old["model_id"].rsplit("-", 1)[0])
    env = probe_env(tmp_path / "probe", log=tmp_path / "2.log")
    env["LIBTAGGER_MODELS"] = str(tmp_path / "models")
    second = json_report(run_cli("scan", lib, *default, "--index", index, env=env))
    assert probe_events(tmp_path / "2.log") == [], "re-classifying decoded audio"
    now = tracks_by_name(index)["one.ogg"]
    assert now["model_id"] == new_id != old["model_id"]
    assert second["one.ogg"]["status"] == "kept"  # the same genre, already in the file
    # float16 taggrams give (nearly) the verdict of the float32 ones computed from the audio
    assert now["genre"] == old["genre"]
    assert now["confidence"] == pytest.approx(old["confidence"], abs=0.01)
