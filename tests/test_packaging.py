"""An installed libtagger (a wheel, ``pip install .``, ``pipx install .``) carries its models
and scans from any folder, not only from an editable install beside the repository.

The wheel is built from a copy of the source tree (setuptools writes build/ into the tree it
builds, and a stale build/lib could hide a file missing from the package) and installed with
``--no-deps`` into a fresh venv whose dependencies come from this test run's own environment
through a .pth file, so the test needs neither the network nor a second TensorFlow install.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import make_audio
from libtagger.genres import GENRES, display_name

ROOT = Path(__file__).resolve().parent.parent
#: Not part of the source tree: environments, caches, earlier builds, benchmark output.
_NOT_SOURCE = {".venv", ".git", "build", "dist", "__pycache__", ".pytest_cache", "out"}


def _ignore(folder: str, names: list[str]) -> set[str]:
    skipped = {n for n in names if n in _NOT_SOURCE and (n != "out" or Path(folder).name == "benchmarks")}
    return skipped | {n for n in names if n.endswith(".egg-info")}


def _run(*args: str | os.PathLike, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([os.fspath(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _pyproject_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert match, "pyproject.toml has no version"
    return match.group(1)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, work / "src", ignore=_ignore)
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                 "-q", work / "src", "-w", work / "dist")
    assert built.returncode == 0, built.stderr[-3000:]
    wheel, = (work / "dist").glob("libtagger-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv (outside the repository) with the wheel installed; returns its bin folder."""
    venv = tmp_path_factory.mktemp("venv") / "libtagger-venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    # The dependencies (TensorFlow, librosa, ...) from this environment; libtagger itself from the wheel,
    # which comes first on sys.path. Editable-install hooks there are .pth files, not processed this way.
    (site / "libtagger-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # The test extra's matplotlib is there too; a plain install has none (``import matplotlib`` fails).
    (site / "libtagger-test-plain.pth").write_text("import sys; sys.modules['matplotlib'] = None\n")
    done = _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel)
    assert done.returncode == 0, done.stderr[-3000:]
    where = _run(python, "-c", "import libtagger; print(libtagger.__file__)", cwd=venv)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr
    return venv / "bin"


def test_the_wheel_holds_every_module_and_every_shipped_model_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = [p.relative_to(ROOT).as_posix() for p in (ROOT / "libtagger").rglob("*.py") if "__pycache__" not in p.parts]
    assert "libtagger/cli.py" in modules
    # The beets plugin's folder is installed as the beetsplug namespace (package-dir in pyproject.toml).
    plugin_folder = "libtagger/integrations/beetsplug/"
    modules = [f"beetsplug/{m.removeprefix(plugin_folder)}" if m.startswith(plugin_folder) else m for m in modules]
    assert "beetsplug/libtagger.py" in modules
    # beetsplug is shared with beets' own plugins: an __init__.py would hide them.
    assert "beetsplug/__init__.py" not in names
    missing = [m for m in modules if m not in names]
    assert not missing, f"modules left out of the wheel (list the package in pyproject.toml): {missing}"

    model_files = [p.relative_to(ROOT / "models").as_posix() for p in (ROOT / "models").rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")]
    for needed in ("seed/model.keras", "seed/meta.json", "musicnn-head/model.keras", "musicnn-head/meta.json",
                   "musicnn/msd_musicnn.weights.h5", "__init__.py"):
        assert needed in model_files, f"models/{needed} is not in the repository"
    missing = [f for f in model_files if f"libtagger/shipped_models/{f}" not in names]
    assert not missing, f"model files left out of the wheel (see package-data in pyproject.toml): {missing}"
    assert f"libtagger-{_pyproject_version()}.dist-info/entry_points.txt" in names


def test_the_installed_command_knows_its_version_and_its_models_from_any_folder(installed, tmp_path):
    version = _run(installed / "libtagger", "--version", cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    head_id = json.loads((ROOT / "models" / "musicnn-head" / "meta.json").read_text())["model_id"]
    assert version.stdout == f"libtagger {_pyproject_version()} (default model {head_id})\n"

    listing = _run(installed / "libtagger", "models", "--format", "json", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    models = {m["name"]: m for m in json.loads(listing.stdout)}
    assert {"seed", "musicnn-head"} <= set(models)
    for model in models.values():
        assert model["source"] == "shipped" and model["error"] is None, model
        # read from the installed package, not from the repository beside it
        assert Path(model["folder"]).is_relative_to(installed.parent), model["folder"]
    assert models["musicnn-head"]["default"] and models["musicnn-head"]["model_id"] == head_id


def test_the_installed_command_scans_a_file_with_the_shipped_default_model(installed, tmp_path):
    song = make_audio(tmp_path / "Music" / "song.wav", 12.0, seed=4)
    before = song.read_bytes()
    index = tmp_path / "index.db"
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = _run(installed / "libtagger", "scan", "--dry-run", "--jobs", "1", "--report", "json",
                  "--index", index, song.parent, cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    row, = json.loads(result.stdout)
    assert row["path"] == str(song)
    assert row["status"] in ("would-tag", "unsure"), row
    assert row["genre"] in {display_name(g) for g in GENRES}
    assert 0.0 < row["confidence"] <= 1.0
    assert song.read_bytes() == before  # a dry run


def test_the_installed_command_learns_without_matplotlib(installed, tmp_path):
    # issue 17 item 5: `learn` crashed with "No module named 'matplotlib'" (only the test extra has it)
    import mutagen

    assert _run(installed.parent / "bin" / "python", "-c", "import matplotlib").returncode != 0
    music = tmp_path / "Music"
    for n, (genre, artist) in enumerate([(g, a) for g in ("Pop", "Rock") for a in ("A", "B") for _ in range(2)]):
        song = make_audio(music / f"{genre} {artist}" / f"{n}.flac", 8.0, seed=n)
        tags = mutagen.File(song)
        tags["genre"], tags["artist"] = genre, f"{genre} {artist}"
        tags.save()
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    index = tmp_path / "index.db"
    scanned = subprocess.run([installed / "libtagger", "scan", "--dry-run", "--jobs", "1", "--quiet", "--index", index,
                              music], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert scanned.returncode == 0, scanned.stderr[-3000:]
    learned = subprocess.run([installed / "libtagger", "learn", "mine", "--min-tracks", "2", "--index", index],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert learned.returncode == 0, learned.stderr[-3000:]
    folder = tmp_path / "data" / "libtagger" / "models" / "mine"
    assert {"model.keras", "meta.json", "card.md", "cv_oof.json"} <= {p.name for p in folder.iterdir()}
    assert not (folder / "confusion.png").exists()
    said = [line for line in learned.stderr.splitlines() if "confusion.png" in line]
    assert len(said) == 1 and "pip install 'libtagger[plot]'" in said[0], learned.stderr[-3000:]
    card = (folder / "card.md").read_text()
    assert "| true / predicted | Pop | Rock |" in card and "](confusion.png)" not in card
