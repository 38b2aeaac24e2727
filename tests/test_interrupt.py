"""Killing ``libtagger scan`` mid-run: ``kill -9`` leaves a consistent index and intact files,
and the next run goes on where it stopped; Ctrl-C, SIGTERM and SIGHUP end it with status 130.

A probe in the scan's workers (scan_harness.py) makes one file take ten minutes to decode,
so the run is reliably still going when it is killed, with the other files already done.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import mutagen
import numpy as np
import pytest

from conftest import make_audio
from libtagger.genres import DISPLAY_NAMES
from scan_harness import (INTERRUPTIBLE_SCAN, SLOW, cli_command, decoded_paths, describe, end_session, last_run,
                          probe_env, require_seed_model, rows, run_cli, session_processes, start_scan,
                          tracks_by_name, wait_for)

EXTS = (".flac", ".mp3", ".ogg", ".wav")


@pytest.fixture(autouse=True)
def _seed():
    require_seed_model()


def pcm(path: Path) -> np.ndarray:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "s16le", "-"],
                         capture_output=True, check=True)
    return np.frombuffer(out.stdout, dtype=np.int16)


def count(index: Path, sql: str) -> int:
    if not index.exists():
        return 0
    con = sqlite3.connect(index, timeout=30)
    try:
        return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        con.close()


def test_kill_9_mid_run_then_the_next_run_finishes_the_rest(tmp_path):
    lib = tmp_path / "Music"
    for i in range(16):
        make_audio(lib / f"t{i:02d}{EXTS[i % 4]}", 4.0, seed=i)
    make_audio(lib / f"{SLOW}.flac", 4.0, seed=99)
    original = {p.name: (p.read_bytes(), pcm(p)) for p in lib.iterdir()}
    index = tmp_path / "index.db"

    scan = start_scan(lib, index, probe_env(tmp_path / "probe", slow=SLOW))
    try:
        # kill as soon as the first file is committed: the others are being written right now
        wait_for(lambda: count(index, "select count(*) from tracks where status = 'tagged'") >= 1,
                 "a committed file", scan)
        os.kill(scan.pid, signal.SIGKILL)
        scan.wait(timeout=60)
    finally:
        end_session(scan)
    assert scan.returncode == -signal.SIGKILL

    # the index opens and is consistent
    assert rows(index, "pragma integrity_check") == [{"integrity_check": "ok"}]
    assert rows(index, "pragma foreign_key_check") == []
    assert rows(index, "select outcome from runs") == [{"outcome": "running"}]  # nobody said otherwise yet
    for track in rows(index, "select * from tracks"):
        n = count(index, f"select count(*) from segments where track_id = {track['id']}")
        assert n >= 1, f"{track['path']} ({track['status']}) has no segments"
    before = tracks_by_name(index)
    committed = {name for name, t in before.items() if t["status"] == "tagged"}
    print(f"killed with {len(committed)} of 16 files committed, {len(before) - len(committed)} more indexed as would-tag")
    assert committed and f"{SLOW}.flac" not in before

    # every file decodes to its original audio and is either untouched or fully tagged
    genres = set(DISPLAY_NAMES.values())
    for path in lib.iterdir():
        if path.name.startswith("."):
            continue  # a temporary of the write that was killed: removed by the next write
        data, audio = original[path.name]
        assert np.array_equal(pcm(path), audio), f"audio of {path.name} changed"
        if path.read_bytes() != data:
            tags = mutagen.File(path).tags
            genre = (tags.get("TCON") or tags.get("genre"))
            genre = genre.text if hasattr(genre, "text") else genre
            assert list(genre)[0] in genres, f"{path.name} changed but holds no libtagger genre"
        if path.name in committed:
            assert path.read_bytes() != data, f"{path.name} is indexed as tagged but was not written"

    # the next run goes on where this one stopped, without redoing the finished files
    log = tmp_path / "again.log"
    again = run_cli("scan", lib, *INTERRUPTIBLE_SCAN, "--report", "json", "--index", index,
                    env=probe_env(tmp_path / "probe", log=log))
    assert again.returncode == 0, again.stderr
    assert last_run(index)["counts"].get("unchanged", 0) == len(committed), last_run(index)["counts"]
    assert not decoded_paths(log, "analyse") & committed, "finished files were analysed again"
    assert f"{SLOW}.flac" in decoded_paths(log, "analyse")
    assert [r["outcome"] for r in rows(index, "select outcome from runs order by id")] == ["interrupted", "finished"]
    after = tracks_by_name(index)
    # a file written just before the interruption already holds libtagger's genre: kept, not rewritten
    assert {t["status"] for t in after.values()} <= {"tagged", "kept"} and len(after) == 17
    assert all(t["written"] == 1 for t in after.values()), after
    for name in committed:
        assert after[name]["analysed_at"] == before[name]["analysed_at"]
    assert not [p.name for p in lib.iterdir() if p.name.startswith(".")], "a temporary was left behind"


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sighup"])
def test_ctrl_c_and_sigterm_exit_130_with_the_run_marked_interrupted(tmp_path, how):
    lib = tmp_path / "Music"
    make_audio(lib / "a.flac", 4.0, seed=1)
    make_audio(lib / f"{SLOW}.mp3", 4.0, seed=2)
    before = {p.name: p.read_bytes() for p in lib.iterdir()}
    index = tmp_path / "index.db"
    log = tmp_path / "decoded.log"
    scan = start_scan(lib, index, probe_env(tmp_path / "probe", slow=SLOW, log=log))
    try:
        wait_for(lambda: f"{SLOW}.mp3" in decoded_paths(log, "analyse"), "the slow file to start", scan)
        if how == "ctrl-c":
            os.killpg(scan.pid, signal.SIGINT)  # the terminal sends it to the whole foreground group
        elif how == "sigterm":
            os.kill(scan.pid, signal.SIGTERM)  # cron, systemd, kill: to the main process
        else:
            os.kill(scan.pid, signal.SIGHUP)  # tmux kill-session, a terminal closed (see test_hangup.py)
        out, err = scan.communicate(timeout=120)
        deadline = time.monotonic() + 30  # killed processes take a moment to be reaped
        while (left := describe(session_processes(scan.pid))) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        end_session(scan)
    assert scan.returncode == 130, err
    assert "libtagger: error: interrupted; the next run goes on where this one stopped" in err
    assert "Traceback" not in err
    assert rows(index, "select outcome from runs") == [{"outcome": "interrupted"}]
    assert rows(index, "pragma integrity_check") == [{"integrity_check": "ok"}]
    assert {p.name: p.read_bytes() for p in lib.iterdir()} == before
    assert left == [], f"worker processes outlived the interrupted scan: {left}"


def test_the_index_disk_filling_up_mid_run(tmp_path, small_tmpfs):
    """The index's disk fills during a run: a one-line fatal error, a consistent index, files
    untouched or fully tagged, and once there is room again the next run finishes the job."""
    lib = tmp_path / "Music"
    for i in range(6):
        make_audio(lib / f"n{i}.flac", 4.0, seed=i)
    original = {p.name: (p.read_bytes(), pcm(p)) for p in lib.iterdir()}
    disk = small_tmpfs(1 << 20, "index-disk")
    index = disk / "index.db"
    first = run_cli("scan", lib / "n0.flac", *INTERRUPTIBLE_SCAN, "--quiet", "--index", index)
    assert first.returncode == 0, first.stderr
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    filler.write_bytes(b"\0" * (free - 128 * 1024))  # room for a few index pages only

    full = run_cli("scan", lib, *INTERRUPTIBLE_SCAN, "--quiet", "--index", index)
    assert full.returncode == 1, full.stderr
    assert full.stderr.splitlines() == [f"libtagger: error: {index}: database or disk is full"]
    filler.unlink()
    assert rows(index, "pragma integrity_check") == [{"integrity_check": "ok"}]
    journaled = {Path(r["path"]).name for r in rows(index, "select path from journal")}
    for path in lib.iterdir():
        data, audio = original[path.name]
        assert np.array_equal(pcm(path), audio), path.name
        if path.read_bytes() != data:  # written: then journaled first, so undo can restore it
            assert path.name in journaled, f"{path.name} was tagged without a journal entry"

    again = run_cli("scan", lib, *INTERRUPTIBLE_SCAN, "--quiet", "--index", index)
    assert again.returncode == 0, again.stderr
    assert {t["status"] for t in tracks_by_name(index).values()} <= {"tagged", "kept"}
    assert all(t["written"] == 1 for t in tracks_by_name(index).values())
    assert len(tracks_by_name(index)) == 6
    assert rows(index, "pragma integrity_check") == [{"integrity_check": "ok"}]
    assert {Path(r["path"]).name for r in rows(index, "select path from journal where completed = 1")} == set(original)


def test_an_interrupted_undo_exits_130_and_running_it_again_finishes_it(tmp_path):
    lib = tmp_path / "Music"
    make_audio(lib / "a.flac", 4.0, seed=1)
    make_audio(lib / "b.flac", 4.0, seed=2)
    index = tmp_path / "index.db"
    assert run_cli("scan", lib, *INTERRUPTIBLE_SCAN, "--quiet", "--index", index).returncode == 0
    order = [Path(r["path"]).name for r in rows(index, "select path from journal order by id")]
    log = tmp_path / "undo.log"
    undo = subprocess.Popen(cli_command("undo", "--run", "1", "--index", index),
                            env=probe_env(tmp_path / "probe", slow_restore="b.flac", log=log),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: log.exists() and b"restore\tundo" in log.read_bytes(), "the slow restore", undo)
        os.kill(undo.pid, signal.SIGTERM)
        out, err = undo.communicate(timeout=120)
    finally:
        end_session(undo)
    assert undo.returncode == 130, err
    assert err.splitlines() == ["libtagger: error: interrupted; run the same undo again to finish it"]
    assert rows(index, "select kind, outcome from runs order by id") == [
        {"kind": "scan", "outcome": "finished"}, {"kind": "undo", "outcome": "interrupted"}]
    assert mutagen.File(lib / "b.flac").get("genre")  # not restored yet
    assert bool(mutagen.File(lib / "a.flac").get("genre")) == (order[0] == "b.flac")  # restored if it came first

    again = run_cli("undo", "--run", "1", "--index", index)
    assert again.returncode == 0, again.stderr
    assert mutagen.File(lib / "a.flac").get("genre") is None and mutagen.File(lib / "b.flac").get("genre") is None
