"""The run history is honest: a run whose process is gone is never shown as ``running``.

A run records its pid and host. ``libtagger runs`` shows a ``running`` row as ``interrupted``
when no run holds the index's lock or its process on this machine is gone, without changing
the index; the next scan (or undo), holding the lock, records it so in the index.
"""

from __future__ import annotations

import fcntl
import inspect
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import complete_old_index, make_audio
from libtagger.store.index import Index
from libtagger.store.lock import RunLock, run_lock_held
from scan_harness import (cli_command, decoded_paths, probe_env, require_seed_model, rows, run_cli,
                          session_processes, wait_for)

SCAN = ("--model", "seed", "--min-confidence", "0", "--jobs", "2")
SLOW = "zz slow"


def shown_runs(index: Path) -> list[dict]:
    """``libtagger runs --format json``, from a separate process as a person would run it."""
    result = run_cli("runs", "--format", "json", "--index", index)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)




def test_a_scan_killed_with_kill_9_is_shown_interrupted_then_recorded_so(tmp_path):
    require_seed_model()
    lib = tmp_path / "Music"
    make_audio(lib / "a.flac", 4.0, seed=1)
    make_audio(lib / f"{SLOW}.flac", 4.0, seed=2)
    index = tmp_path / "index.db"
    log = tmp_path / "decoded.log"
    scan = subprocess.Popen(cli_command("scan", lib, *SCAN, "--quiet", "--index", index),
                            env=probe_env(tmp_path / "probe", slow=SLOW, log=log),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: f"{SLOW}.flac" in decoded_paths(log, "analyse"), "the slow file to start", scan)
        [live] = shown_runs(index)
        assert live["outcome"] == "running"  # a run that is going on is shown so
        assert run_lock_held(index)
        [stored] = rows(index, "select pid, host from runs")
        assert stored == {"pid": scan.pid, "host": socket.gethostname()}

        os.kill(scan.pid, signal.SIGKILL)  # nothing of libtagger runs any more in that process
        scan.wait(timeout=60)
        [dead] = shown_runs(index)
        assert dead["outcome"] == "interrupted", dead
        assert dead["finished_at"] is None  # nobody saw it end
        # `runs` only reads: the index says what the killed run left there
        assert rows(index, "select outcome from runs") == [{"outcome": "running"}]
    finally:
        for pid in session_processes(scan.pid):  # its orphaned workers: kill -9 leaves them behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if scan.poll() is None:
            scan.kill()
        scan.wait(timeout=60)

    again = run_cli("scan", lib, *SCAN, "--quiet", "--index", index)
    assert again.returncode == 0, again.stderr
    assert [r["outcome"] for r in rows(index, "select outcome from runs order by id")] == ["interrupted", "finished"]
    assert [r["outcome"] for r in shown_runs(index)] == ["finished", "interrupted"]


def _insert_running(index: Path, *, pid: int, host: str) -> None:
    db = Index(index)
    run = db.start_run(kind="scan", arguments={})
    db.db["runs"].update(run, {"pid": pid, "host": host})
    db.close()


def test_a_running_row_is_shown_running_only_while_a_run_holds_the_lock(tmp_path):
    index = tmp_path / "index.db"
    # this test's own process: alive, on this host; only the lock tells whether a run goes on
    _insert_running(index, pid=os.getpid(), host=socket.gethostname())
    assert not run_lock_held(index)
    assert [r["outcome"] for r in shown_runs(index)] == ["interrupted"]
    with RunLock(index):
        assert run_lock_held(index)
        assert [r["outcome"] for r in shown_runs(index)] == ["running"]


def test_a_run_of_another_machine_is_judged_by_the_lock_only(tmp_path):
    index = tmp_path / "index.db"
    child = subprocess.Popen(["true"])  # a pid that has surely ended
    child.wait()
    _insert_running(index, pid=child.pid, host="another-machine.example")
    with RunLock(index):  # its pid means nothing here: while the lock is held it may be going on
        assert [r["outcome"] for r in shown_runs(index)] == ["running"]
    assert [r["outcome"] for r in shown_runs(index)] == ["interrupted"]
    # on this host the same dead pid is enough, lock or not
    _insert_running(index, pid=child.pid, host=socket.gethostname())
    with RunLock(index):
        assert [r["outcome"] for r in shown_runs(index)] == ["interrupted", "running"]


def test_an_undo_records_killed_runs_too(tmp_path):
    index = tmp_path / "index.db"
    _insert_running(index, pid=os.getpid(), host=socket.gethostname())
    result = run_cli("undo", "--run", "1", "--index", index)
    assert result.returncode == 1 and "changed no file" in result.stderr  # nothing to undo, but:
    assert rows(index, "select outcome from runs order by id") == [{"outcome": "interrupted"}]


def test_an_old_index_gains_the_host_column_in_place(tmp_path):
    index = tmp_path / "index.db"
    con = sqlite3.connect(index)
    old_sql = ("CREATE TABLE [runs] ([id] INTEGER PRIMARY KEY, [kind] TEXT, [started_at] TEXT, "
               "[finished_at] TEXT, [outcome] TEXT, [arguments] TEXT, [model_id] TEXT, "
               "[dry_run] INTEGER, [counts] TEXT)")
    con.execute(old_sql)
    con.execute("insert into runs (id, kind, started_at, finished_at, outcome, arguments, dry_run, counts) "
                "values (7, 'scan', '2026-01-01T00:00:00+00:00', '2026-01-01T00:10:00+00:00', 'finished', '{}', 0, '{\"tagged\": 3}')")
    complete_old_index(con)  # the other tables an older libtagger made beside it
    con.commit()
    con.close()

    Index(index).close()
    [table_sql] = [r["sql"] for r in rows(index, "select sql from sqlite_master where name = 'runs'")]
    assert table_sql.startswith(old_sql[:-1]), table_sql  # altered, not rebuilt
    assert {"pid", "host"} <= {r["name"] for r in rows(index, "pragma table_info(runs)")}
    [run] = rows(index, "select * from runs")
    assert run["id"] == 7 and run["counts"] == '{"tagged": 3}' and run["pid"] is None and run["host"] is None
    assert [r["outcome"] for r in shown_runs(index)] == ["finished"]


def test_asking_whether_the_lock_is_held_never_makes_a_run_fail_to_start(tmp_path):
    """run_lock_held() takes a shared lock for an instant; a run starting then waits it out."""
    index = tmp_path / "index.db"
    RunLock(index).__enter__().__exit__(None, None, None)  # the lock file exists
    fd = os.open(f"{index}.lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)  # as run_lock_held() does, held long enough to be met
    release = threading.Timer(0.3, lambda: fcntl.flock(fd, fcntl.LOCK_UN))
    release.start()
    try:
        with RunLock(index):  # without waiting on a reader this raises IndexLockedError
            assert run_lock_held(index)
    finally:
        release.join()
        os.close(fd)
    assert not run_lock_held(index)


def test_a_transaction_an_interrupt_left_open_does_not_swallow_the_run_row(tmp_path):
    """Ctrl-C or a hang-up between ``BEGIN`` and the ``try`` of ``atomic()`` leaves a transaction
    nobody ends. ``finish_run`` (called from a ``finally``) must still record the run, and the
    half-done work stays undone."""
    path = tmp_path / "index.db"
    index = Index(path)
    run_id = index.start_run(kind="scan", arguments={})
    index.db.conn.execute("BEGIN")  # what the interrupt left: an open transaction, half done
    index.db.execute("update runs set arguments = 'half done' where id = ?", [run_id])
    index.finish_run(run_id, outcome="interrupted", counts={})
    index.close()
    [run] = rows(path, "select outcome, finished_at, arguments from runs")
    assert run["outcome"] == "interrupted" and run["finished_at"]
    assert run["arguments"] == "{}"


def test_an_interrupt_right_after_begin_leaves_no_transaction_open(tmp_path):
    """The index's ``atomic()`` rolls back a KeyboardInterrupt that lands on the very next line after
    its ``BEGIN`` (where sqlite-utils' own ``atomic()`` has its gap). The interrupt is raised there
    by a trace function: fault injection from outside, no hook in the library."""
    index = Index(tmp_path / "index.db")
    atomic = inspect.unwrap(type(index.db).atomic)
    lines, first = inspect.getsourcelines(atomic)
    begin = first + next(i for i, line in enumerate(lines) if "BEGIN" in line)
    seen_begin = False

    def in_atomic(frame, event, arg):
        nonlocal seen_begin
        if event == "line":
            if seen_begin:
                sys.settrace(None)
                frame.f_trace = None
                raise KeyboardInterrupt
            seen_begin = frame.f_lineno == begin
        return in_atomic

    def tracer(frame, event, arg):
        return in_atomic if frame.f_code is atomic.__code__ else None

    sys.settrace(tracer)
    try:
        with pytest.raises(KeyboardInterrupt):
            with index.db.atomic():
                index.db.execute("update runs set outcome = 'never'")
    finally:
        sys.settrace(None)
    assert seen_begin, "the trace never reached BEGIN: the test did not run what it claims"
    assert not index.db.conn.in_transaction
    index.close()
