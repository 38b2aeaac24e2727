"""The models search path (user folder, $LIBTAGGER_MODELS, shipped; first match wins),
``libtagger models`` and ``libtagger --version``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import make_audio
from libtagger.classify.classifier import available_models, locate_model, model_id_for
from libtagger.cli import app
from libtagger.errors import ModelError
from libtagger.genres import GENRES
from libtagger.paths import ENV, SHIPPED, USER, models_search_path, shipped_models_dir, user_models_dir
from scan_harness import last_run, run_cli

runner = CliRunner()
SHIPPED_DIR = shipped_models_dir()


def _meta(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())


def _copy_model(name: str, dest: Path, *, new_version: bool = False) -> str:
    """Copy a shipped model folder to ``dest``; ``new_version``: other bytes (a zip comment), so
    another model_id. Returns the copy's model_id."""
    shutil.copytree(SHIPPED_DIR / name, dest)
    if not new_version:
        return _meta(dest)["model_id"]
    with zipfile.ZipFile(dest / "model.keras", "a") as z:
        z.comment = b"libtagger test: a user's own version"
    meta = _meta(dest)
    meta["model_id"] = model_id_for(meta["name"], dest / "model.keras")
    (dest / "meta.json").write_text(json.dumps(meta))
    return meta["model_id"]


@pytest.fixture
def user_models(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = tmp_path / "data" / "libtagger" / "models"
    assert user_models_dir() == folder
    return folder


def test_the_shipped_models_come_with_the_package():
    assert SHIPPED_DIR is not None and (SHIPPED_DIR / "seed" / "meta.json").is_file()
    assert [f.source for f in models_search_path()] == [USER, SHIPPED]
    assert {"seed", "musicnn-head"} <= set(available_models())
    assert "musicnn" not in available_models()  # the front-end's folder has no meta.json: not a model


def test_user_folder_then_libtagger_models_then_shipped_first_match_wins(user_models, tmp_path, monkeypatch):
    first, second = tmp_path / "env1", tmp_path / "env2"
    monkeypatch.setenv("LIBTAGGER_MODELS", os.pathsep.join([str(first), "", str(second)]))
    assert [(f.source, f.path) for f in models_search_path()] == [
        (USER, user_models), (ENV, first), (ENV, second), (SHIPPED, SHIPPED_DIR)]

    assert locate_model("seed").source == SHIPPED
    _copy_model("seed", second / "seed")
    found = locate_model("seed")
    assert (found.source, found.folder, found.shadows) == (ENV, second / "seed", (SHIPPED_DIR / "seed",))
    _copy_model("seed", first / "seed")
    assert locate_model("seed").folder == first / "seed"  # the first folder of $LIBTAGGER_MODELS
    _copy_model("seed", user_models / "seed")
    found = locate_model("seed")
    assert (found.source, found.folder) == (USER, user_models / "seed")
    assert found.shadows == (first / "seed", second / "seed", SHIPPED_DIR / "seed")
    assert locate_model("musicnn-head").source == SHIPPED

    (user_models / "mine").mkdir()  # a folder without meta.json is not a model
    assert "mine" not in available_models()
    with pytest.raises(ModelError, match="'mine' not found") as err:
        locate_model("mine")
    assert str(user_models) in str(err.value) and "seed" in str(err.value)


def test_a_user_model_shadows_the_shipped_one_of_the_same_name_in_a_real_scan(user_models, tmp_path):
    user_id = _copy_model("seed", user_models / "seed", new_version=True)
    shipped_id = _meta(SHIPPED_DIR / "seed")["model_id"]
    assert user_id != shipped_id

    song = make_audio(tmp_path / "Music" / "song.flac", 6.0, seed=5)
    index = tmp_path / "index.db"
    result = run_cli("scan", "--dry-run", "--model", "seed", "--jobs", "1", "--report", "json",
                     "--index", index, song.parent, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    row, = json.loads(result.stdout)
    assert row["status"] in ("would-tag", "unsure") and row["genre"]
    assert last_run(index)["model_id"] == user_id

    listing = run_cli("models", "--format", "json", cwd=tmp_path)
    seed = {m["name"]: m for m in json.loads(listing.stdout)}["seed"]
    assert (seed["source"], seed["folder"], seed["model_id"]) == ("user", str(user_models / "seed"), user_id)
    assert seed["shadows"] == [str(SHIPPED_DIR / "seed")]


def test_models_lists_every_model_with_its_figures_and_what_they_were_measured_on():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    head, seed = _meta(SHIPPED_DIR / "musicnn-head"), _meta(SHIPPED_DIR / "seed")
    assert "musicnn-head *" in text and "seed *" not in text
    assert "* the default model" in text
    for meta in (head, seed):
        assert meta["model_id"] in text
    assert f"labels: {', '.join(GENRES)}" in text
    test = seed["metrics"]["test"]
    assert f"test {test['track_accuracy']:.3f} on {test['n_tracks']} tracks" in text
    validation = head["metrics"]["validation"]
    assert f"validation {validation['track_accuracy']:.3f} on {validation['n_tracks']} tracks; {validation['scheme']}" in text
    assert head["metrics"]["test"] is None  # not measured: scored only at review
    assert f"test: {head['metrics']['test_note']}" in text  # why a figure is missing, as the meta says
    assert head["metrics"]["protocol"] in text
    assert f"shipped {SHIPPED_DIR}" in text  # the folders searched

    rows = {m["name"]: m for m in json.loads(runner.invoke(app, ["models", "--format", "json"]).stdout)}
    assert [n for n, m in rows.items() if m["default"]] == ["musicnn-head"]
    assert rows["seed"]["labels"] == list(GENRES) and rows["seed"]["kind"] == "seed"
    assert rows["seed"]["metrics"] == seed["metrics"]
    figures = {f["name"]: f for f in rows["musicnn-head"]["figures"]}
    assert figures["validation"]["track_accuracy"] == validation["track_accuracy"]
    assert figures["validation"]["measured_on"] == validation["scheme"]
    assert figures["test"]["track_accuracy"] is None and figures["test"]["note"] == head["metrics"]["test_note"]
    assert "test_note" not in figures

    assert runner.invoke(app, ["models", "--format", "csv"]).exit_code == 2


def test_models_reports_an_unreadable_model_and_lists_the_others(user_models):
    broken = user_models / "broken"
    broken.mkdir(parents=True)
    (broken / "meta.json").write_text("{ not json")
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"libtagger: {broken / 'meta.json'}: not valid JSON")
    assert len(result.stderr.splitlines()) == 1
    assert "unreadable meta.json" in result.stdout and "seed-" in result.stdout
    rows = {m["name"]: m for m in json.loads(runner.invoke(app, ["models", "-f", "json"]).stdout)}
    assert rows["broken"]["source"] == "user" and "not valid JSON" in rows["broken"]["error"]


def test_version_names_the_package_and_the_default_models_id(user_models):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"libtagger {installed_version('libtagger')} "
                             f"(default model {_meta(SHIPPED_DIR / 'musicnn-head')['model_id']})\n")
    # the default model the user put first is the one named
    user_id = _copy_model("musicnn-head", user_models / "musicnn-head", new_version=True)
    assert runner.invoke(app, ["--version"]).stdout.endswith(f"(default model {user_id})\n")


def test_models_and_version_never_import_tensorflow():
    code = ("import sys\nfrom libtagger.cli import app\n"
            "for args in (['models'], ['models', '-f', 'json'], ['--version']):\n"
            "    try:\n        app(args)\n    except SystemExit as exc:\n        assert not exc.code, exc.code\n"
            "print('imported:', sorted(m for m in ('tensorflow', 'keras', 'librosa') if m in sys.modules),"
            " file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "imported: []"


def test_an_unknown_model_lists_only_the_genre_models_and_the_detector_is_refused(tmp_path):
    # The music detector cannot tag: `--model nosuch` offered it as a model to use.
    song = make_audio(tmp_path / "Music" / "song.flac", 6.0, seed=5)
    index = tmp_path / "index.db"
    for name in ("nosuch", "music-detector"):
        result = run_cli("scan", "--dry-run", "--model", name, "--jobs", "1", "--index", index, song.parent,
                         cwd=tmp_path)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        line, = result.stderr.splitlines()
        assert "seed" in line and "musicnn-head" in line, line
        assert line.count("music-detector") == (name == "music-detector"), line
    assert line.startswith("libtagger: error: model 'music-detector' is a music detector, not a genre model"), line
    assert locate_model("music-detector", genre=False).name == "music-detector"  # where the detector is wanted
    with pytest.raises(ModelError, match="'seed' is not a music detector"):
        locate_model("seed", genre=False)
