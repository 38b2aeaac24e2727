"""Running ``libtagger scan`` from cron: one run per index at a time, ``--wait``, ``--quiet``
for cron's mail and ``--log`` for the record."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import make_audio
from libtagger.cli import app
from libtagger.store.lock import RunLock
from scan_harness import cli_command, require_seed_model, rows, run_cli, stderr_lines

runner = CliRunner()
SCAN = ("--model", "seed", "--min-confidence", "0", "--jobs", "2")
DEFAULT_MODEL = ("--min-confidence", "0", "--jobs", "2")
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"


@pytest.fixture(autouse=True)
def _seed():
    require_seed_model()


@pytest.fixture
def library(tmp_path) -> Path:
    lib = tmp_path / "Music"
    make_audio(lib / "good.flac", 6.0, seed=1)
    (lib / "broken.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x10not really an mp3")
    return lib


def test_a_second_run_exits_3_at_once_naming_the_running_one(library, tmp_path):
    index = tmp_path / "index.db"
    log = tmp_path / "scan.log"
    with RunLock(index):
        # in this thread: had it waited for the lock held just above, the test would hang
        result = runner.invoke(app, ["scan", str(library), *SCAN, "--index", str(index), "--log", str(log)])
        undo = runner.invoke(app, ["undo", "--run", "1", "--index", str(index)])
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == (f"libtagger: error: another libtagger run (pid {os.getpid()}) is using "
                                     f"the index {index} (use --wait to wait for it)")
    assert not index.exists()  # nothing was started
    assert re.fullmatch(rf"{STAMP} not started: another libtagger run .*\n", log.read_text())
    assert undo.exit_code == 3 and "another libtagger run" in undo.stderr


def test_wait_waits_for_the_running_one_then_scans(library, tmp_path):
    index = tmp_path / "index.db"
    lock = RunLock(index)
    lock.__enter__()
    try:
        waiting = subprocess.Popen(cli_command("scan", library, *SCAN, "--wait", "--quiet", "--index", index),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL)
        time.sleep(3)
        assert waiting.poll() is None, waiting.communicate()  # still waiting while the lock is held
        assert not index.exists()
    finally:
        lock.__exit__(None, None, None)
    out, err = waiting.communicate(timeout=600)
    assert waiting.returncode == 0, err
    assert [r["status"] for r in rows(index, "select status from tracks order by path")] == ["error", "tagged"]


def test_quiet_prints_only_error_lines_and_log_appends_across_runs(library, tmp_path):
    index = tmp_path / "index.db"
    log = tmp_path / "logs" / "scan.log"
    log.parent.mkdir()
    # the default model, as the README's crontab line runs it (TensorFlow and musicnn must stay quiet)
    first = run_cli("scan", library, *DEFAULT_MODEL, "--quiet", "--log", log, "--index", index)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    assert stderr_lines(first) == [f"libtagger: {library / 'broken.mp3'}: "
                                   + rows(index, "select error from tracks where status = 'error'")[0]["error"]]
    text = log.read_text()
    lines = text.splitlines()
    assert all(re.match(rf"{STAMP} ", line) for line in lines), lines
    assert any(line.endswith(f"tagged {rows(index, 'select genre from tracks where status = ?', ('tagged',))[0]['genre']} "
                             f"{library / 'good.flac'}") for line in lines), lines
    assert any(f"error - {library / 'broken.mp3'}: " in line for line in lines), lines
    assert re.search(rf"{STAMP} run 1 finished: 1 error, 1 tagged$", text, re.M), text

    make_audio(library / "new.mp3", 6.0, seed=2)
    second = run_cli("scan", library, *DEFAULT_MODEL, "--quiet", "--log", log, "--index", index)
    assert second.returncode == 0 and second.stdout == ""
    again = log.read_text()
    assert again.startswith(text)  # appended, not rewritten
    added = again[len(text):].splitlines()
    assert any(line.endswith(f"{library / 'new.mp3'}") and " tagged " in line for line in added), added
    assert not any("good.flac" in line for line in added)  # unchanged files are not logged
    assert re.search(rf"{STAMP} run 2 finished: 1 error, 1 tagged, 1 unchanged$", again, re.M), again


def test_quiet_keeps_a_report_asked_for_by_name_and_only_error_lines_on_stderr(library, tmp_path):
    """--quiet silences progress and the closing count, never the report --report asked for."""
    untouched = tmp_path / "Untouched"
    shutil.copytree(library, untouched)  # for the seed runs below: no genre written yet
    index = tmp_path / "index.db"
    result = run_cli("scan", library, *DEFAULT_MODEL, "--quiet", "--report", "json", "--index", index)
    assert result.returncode == 0, result.stderr
    report = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert set(report) == {"good.flac", "broken.mp3"}
    assert report["good.flac"]["status"] == "tagged" and report["good.flac"]["genre"]
    assert report["broken.mp3"]["status"] == "error"
    assert stderr_lines(result) == [f"libtagger: {library / 'broken.mp3'}: {report['broken.mp3']['error']}"]

    table = runner.invoke(app, ["scan", str(untouched), *SCAN, "--quiet", "--report", "table",
                                "--index", str(tmp_path / "seed.db")])
    assert table.exit_code == 0, table.output
    assert str(untouched / "good.flac") in table.stdout and "tagged" in table.stdout
    assert table.stdout.rstrip().endswith("run 1: 1 error, 1 tagged")  # the table's own closing line
    assert table.stderr.splitlines() == [f"libtagger: {untouched / 'broken.mp3'}: {report['broken.mp3']['error']}"]
    csv = runner.invoke(app, ["scan", str(untouched), *SCAN, "--quiet", "--report", "csv", "--rescan",
                              "--index", str(tmp_path / "seed.db")])
    assert csv.exit_code == 0, csv.output
    assert csv.stdout.splitlines()[0].startswith("path,status,genre")
    assert len(csv.stdout.splitlines()) == 3 and len(csv.stderr.splitlines()) == 1


def test_the_readme_crontab_line_works_on_a_fresh_machine(library, tmp_path, monkeypatch):
    """`--log ~/.local/share/libtagger/scan.log` before any run: the folder does not exist yet."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("LIBTAGGER_INDEX", raising=False)
    result = runner.invoke(app, ["scan", str(library), *SCAN, "--quiet", "--log",
                                 "~/.local/share/libtagger/scan.log"])
    assert result.exit_code == 0, result.output
    log = tmp_path / "home" / ".local" / "share" / "libtagger" / "scan.log"
    assert re.search(rf"{STAMP} run 1 finished: 1 error, 1 tagged$", log.read_text(), re.M)
    assert (log.parent / "index.db").exists()


def test_an_unusable_index_or_log_is_a_one_line_fatal_error(library, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    for args in (["--index", str(blocker / "index.db")],
                 ["--index", str(tmp_path / "index.db"), "--log", str(blocker / "scan.log")]):
        result = runner.invoke(app, ["scan", str(library), *SCAN, *args])
        assert result.exit_code == 1, result.output
        assert result.stdout == ""
        line, = result.stderr.splitlines()
        assert line.startswith(f"libtagger: error: {blocker}"), line
    result = runner.invoke(app, ["undo", "--run", "1", "--index", str(blocker / "index.db")])
    assert result.exit_code == 1 and result.stderr.startswith("libtagger: error: ")
