"""README's recipe "a new index column", followed for real: one field, one place, seen everywhere.

The package is copied to tmp and ONE field is added to ``TrackRow`` in the copy's
``libtagger/store/records.py`` by a text edit, nothing else. With the copy first on
``PYTHONPATH`` (the shipped models reached through ``$LIBTAGGER_MODELS``), subprocesses scan a
generated file (``scan --dry-run --no-music-check``), set the new column through the Index
API, and read it back from ``show --json``, ``query -f json`` and the beets plugin's flexible
attributes (``beet import``, then ``beet ls``). Any of those needing a second edit fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, make_audio

BEET = Path(sys.executable).parent / "beet"
FIELD, VALUE = "recipe_note", "set by the recipe test"
#: The one edit: a field with a default, at the end of TrackRow's fields.
ANCHOR = "\n\n    @property\n    def verdict(self) -> Verdict:"


def _copy_with_new_field(dest: Path) -> Path:
    """The package copied under ``dest`` (the beets plugin where beets looks for it), one field added."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "libtagger", dest / "libtagger", ignore=ignore)
    # pyproject.toml maps beetsplug to this folder; on PYTHONPATH the copy is found first
    shutil.copytree(ROOT / "libtagger" / "integrations" / "beetsplug", dest / "beetsplug", ignore=ignore)
    records = dest / "libtagger" / "store" / "records.py"
    text = records.read_text()
    assert text.count(ANCHOR) == 1, "TrackRow's fields no longer end before its verdict property"
    records.write_text(text.replace(ANCHOR, f"\n    {FIELD}: str | None = None{ANCHOR}"))
    return dest


def _run(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(list(args), env=env, cwd=cwd, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr[-3000:]}"
    return done.stdout


def _libtagger(env: dict[str, str], cwd: Path, *args: str) -> str:
    return _run(env, cwd, sys.executable, "-c", "from libtagger.cli import app; app(prog_name='libtagger')", *args)


def test_one_field_in_the_record_is_a_column_in_show_query_and_beets(tmp_path):
    if not BEET.exists():
        pytest.skip(f"beets is not installed in this environment ({BEET}): pip install 'libtagger[beets]'")
    src = _copy_with_new_field(tmp_path / "src")
    song = make_audio(tmp_path / "music" / "album" / "song.flac", seconds=32.0)
    index = tmp_path / "index.db"
    env = {**os.environ, "PYTHONPATH": str(src), "LIBTAGGER_MODELS": str(ROOT / "models"),
           "XDG_DATA_HOME": str(tmp_path / "xdg"), "LIBTAGGER_INDEX": str(index),
           "LIBTAGGER_MUSIC_CHECK": "0", "BEETSDIR": str(tmp_path / "beetsdir")}

    _libtagger(env, tmp_path, "scan", str(tmp_path / "music"), "--dry-run", "--no-music-check",
               "--index", str(index))
    _run(env, tmp_path, sys.executable, "-c", (
        "import sys, libtagger\n"
        f"assert libtagger.__file__.startswith({str(src)!r}), libtagger.__file__\n"
        "from libtagger.store.index import Index\n"
        "from libtagger.store.records import TrackRow\n"
        f"index = Index({str(index)!r})\n"
        f"row = index.track_by_path({str(song)!r})\n"
        f"index.update_track(row.id, TrackRow.changes({FIELD}={VALUE!r}))\n"
        "index.close()\n"))

    shown = json.loads(_libtagger(env, tmp_path, "show", str(song), "--json", "--index", str(index)))
    assert shown[FIELD] == VALUE
    queried = json.loads(_libtagger(env, tmp_path, "query", "-f", "json", "--index", str(index)))
    assert [row[FIELD] for row in queried] == [VALUE]

    config = tmp_path / "beetsdir" / "config.yaml"
    config.parent.mkdir()
    config.write_text(f"directory: {tmp_path / 'library'}\nlibrary: {tmp_path / 'beetsdir' / 'library.db'}\n"
                      "plugins: libtagger\nimport:\n  copy: no\n  write: no\n"
                      f"libtagger:\n  auto: yes\n  index: {index}\n  music_check: no\n")
    beet = (str(BEET), "-c", str(config))
    _run(env, tmp_path, *beet, "import", "-A", "-q", str(tmp_path / "music"))
    listed = _run(env, tmp_path, *beet, "ls", "-f", f"$libtagger_status|$libtagger_{FIELD}")
    assert listed.split("\n")[0].split("|")[1] == VALUE, listed
