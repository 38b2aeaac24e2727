"""Helpers for the end-to-end safety tests: ``libtagger scan`` as a real subprocess, a probe
inside its worker processes, and plain sqlite3 reads of the index.

The probe is a ``sitecustomize.py`` put on ``PYTHONPATH`` of the scan subprocess. Python
runs it at start-up in the main process and in every loky worker (they inherit the
environment), so it can watch and disturb the decoder without any hook in libtagger:

* ``LT_PROBE_LOG=FILE``: one line per ``decode.probe``/``decode.load`` call,
  ``<call>\\t<caller>\\t<pid>\\t<peak RSS kB>\\t<path>``, where caller is ``analyse`` (the
  analysis of a track), ``fingerprint`` (the move detector's fingerprint) or ``other``;
  and one ``done`` line per finished ``analysis.analyze_file`` with the worker's peak RSS;
* ``LT_PROBE_CRASH=TEXT``: ``decode.load`` of a path containing TEXT segfaults the worker;
* ``LT_PROBE_VANISH=TEXT``: the file is deleted right after its first ``decode.load``;
* ``LT_PROBE_CHANGE=TEXT``: the file's mtime moves right after its first ``decode.load``;
* ``LT_PROBE_REPLACE=TEXT`` and ``LT_PROBE_REPLACE_WITH=FILE``: right after the analysis of
  such a path, before the main process writes its tag, the file is replaced by a copy of FILE;
* ``LT_PROBE_SLOW_RESTORE=TEXT``: ``tags.restore`` of such a path (``undo``) sleeps ten minutes;
* ``LT_PROBE_SLOW=TEXT``: ``decode.load`` of such a path sleeps ten minutes first (a worker
  busy on a long file: the moment to interrupt a run).

To interrupt a run, :func:`start_scan` starts a scan in its own session (with :data:`SLOW` in a
file's name and ``probe_env(..., slow=SLOW)``, it is reliably still going), :func:`end_session`
kills what is left of it, and :func:`session_processes` and :func:`describe` show which of its
processes are still alive.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE_SOURCE = r'''
import os as _os

_LOG = _os.environ.get("LT_PROBE_LOG")
_CRASH = _os.environ.get("LT_PROBE_CRASH")
_VANISH = _os.environ.get("LT_PROBE_VANISH")
_CHANGE = _os.environ.get("LT_PROBE_CHANGE")
_SLOW = _os.environ.get("LT_PROBE_SLOW")
_REPLACE = _os.environ.get("LT_PROBE_REPLACE")
_SLOW_RESTORE = _os.environ.get("LT_PROBE_SLOW_RESTORE")


def _install():
    import functools
    import resource
    import sys

    import libtagger.audio.analysis as analysis
    import libtagger.audio.decode as decode

    def peak_kb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def caller():
        frame = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_name
            if name == "audio_fingerprint":
                return "fingerprint"
            if name == "_analyze":
                return "analyse"
            frame = frame.f_back
        return "other"

    def record(call, who, path):
        if _LOG:
            line = "%s\t%s\t%d\t%d\t" % (call, who, _os.getpid(), peak_kb())
            with open(_LOG, "ab") as f:
                f.write(line.encode() + _os.fsencode(path) + b"\n")

    done_once = set()

    def matches(text, path):
        return bool(text) and text in _os.fsdecode(path)

    original_probe, original_load, original_analyze = decode.probe, decode.load, analysis.analyze_file

    # functools.wraps keeps module and name: the patched analyze_file is still pickled by
    # reference (libtagger.audio.analysis.analyze_file) when it is sent to a worker.
    @functools.wraps(original_probe)
    def probe(path, *args, **kwargs):
        record("probe", caller(), path)
        return original_probe(path, *args, **kwargs)

    @functools.wraps(original_load)
    def load(path, *args, **kwargs):
        record("load", caller(), path)
        if matches(_SLOW, path):
            import time
            time.sleep(600)
        if matches(_CRASH, path):
            import ctypes
            ctypes.string_at(0)
        result = original_load(path, *args, **kwargs)
        key = _os.fsencode(path)
        if key not in done_once:
            done_once.add(key)
            if matches(_VANISH, path):
                _os.unlink(path)
            if matches(_CHANGE, path):
                st = _os.stat(path)
                _os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 7_000_000_000))
        return result

    @functools.wraps(original_analyze)
    def analyze_file(job):
        result = original_analyze(job)
        record("done", "analyse", job.path)
        if matches(_REPLACE, job.path):
            import shutil
            shutil.copyfile(_os.environ["LT_PROBE_REPLACE_WITH"], job.path)
        return result

    decode.probe, decode.load, analysis.analyze_file = probe, load, analyze_file

    if _SLOW_RESTORE:
        import libtagger.tags.storage as tags

        original_restore = tags.restore

        @functools.wraps(original_restore)
        def restore(path, *args, **kwargs):
            if matches(_SLOW_RESTORE, path):
                record("restore", "undo", path)
                import time
                time.sleep(600)
            return original_restore(path, *args, **kwargs)

        tags.restore = restore


if _LOG or _CRASH or _VANISH or _CHANGE or _SLOW or _REPLACE or _SLOW_RESTORE:
    _install()
'''


def require_seed_model() -> None:
    """Fail clearly when the ``seed`` model is not where libtagger looks for models."""
    from libtagger.paths import models_dir

    meta = models_dir() / "seed" / "meta.json"
    if not meta.is_file():
        pytest.fail(f"the seed model is missing: {meta} (ship models/seed, or set LIBTAGGER_MODELS)")


def probe_env(folder: Path, **probe: str) -> dict[str, str]:
    """The environment for a scan subprocess with the probe installed.

    ``probe`` keys: ``log`` (a file path), ``crash``, ``vanish``, ``change``, ``slow``, ``replace``
    ``slow_restore`` (path substrings) and ``replace_with`` (a file).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(PROBE_SOURCE)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for key, value in probe.items():
        env[f"LT_PROBE_{key.upper()}"] = str(value)
    return env


def probe_events(log: Path) -> list[tuple[str, str, int, bytes]]:
    """``(call, caller, peak_kb, path_bytes)`` for every line the probe wrote (none: [])."""
    if not log.exists():
        return []
    events = []
    for line in log.read_bytes().splitlines():
        call, who, _pid, peak, path = line.split(b"\t", 4)
        events.append((call.decode(), who.decode(), int(peak), path))
    return events


def decoded_paths(log: Path, caller: str | None = None) -> set[str]:
    """Names (basenames) of the files the probe saw decoded, optionally only by ``caller``."""
    return {os.fsdecode(os.path.basename(p)) for call, who, _, p in probe_events(log)
            if call in ("probe", "load") and (caller is None or who == caller)}


def cli_command(*args: str | os.PathLike) -> list[str]:
    return [sys.executable, "-m", "libtagger.cli", *map(os.fsdecode, args)]


def run_cli(*args: str | os.PathLike, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``libtagger ARGS`` in a fresh interpreter (text output)."""
    return subprocess.run(cli_command(*args), env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def json_report(result: subprocess.CompletedProcess) -> dict[str, dict[str, Any]]:
    """``--report json`` output as ``{basename: row}``; asserts the run finished."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-3000:]}"
    return {os.path.basename(r["path"]): r for r in json.loads(result.stdout)}


def rows(index: Path, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    """Rows of a query on the index file, read with plain sqlite3."""
    con = sqlite3.connect(index)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params)]
    finally:
        con.close()


def tracks_by_name(index: Path) -> dict[str, dict[str, Any]]:
    return {os.path.basename(r["path"]): r for r in rows(index, "select * from tracks")}


def last_run(index: Path) -> dict[str, Any]:
    run = rows(index, "select * from runs order by id desc limit 1")[0]
    run["counts"] = json.loads(run["counts"] or "{}")
    return run


def stderr_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Poll ``condition()`` until it holds; fail with the scan's stderr if ``proc`` ends first."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the scan ended (exit {proc.returncode}) before {what}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.005)


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0], ppid [1], session [3])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def session_processes(sid: int) -> list[int]:
    """Live processes of a session (the scan, its workers, loky's resource tracker), zombies excluded."""
    return [int(entry) for entry in os.listdir("/proc")
            if entry.isdigit() and (fields := proc_stat(int(entry))) and int(fields[3]) == sid and fields[0] != "Z"]


def describe(pids: list[int]) -> list[str]:
    """``"PID: command line"`` (its first 200 characters) of each process still alive, for messages."""
    out = []
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        out.append(f"{pid}: {command[:200]}")
    return out


#: A file whose name holds this takes ten minutes to decode under ``probe_env(..., slow=SLOW)``:
#: the scan is reliably still running, a worker busy on it, when a test interrupts or kills it.
SLOW = "zz slow"
#: The scan :func:`start_scan` runs: the seed model at any confidence with two workers (one can be
#: busy on the :data:`SLOW` file while the other goes on).
INTERRUPTIBLE_SCAN = ("--model", "seed", "--min-confidence", "0", "--jobs", "2")


def default_hang_up() -> None:
    """In a child before exec: SIGHUP back to its default action. Run under ``nohup`` (a CI
    wrapper, ``nohup pytest &``), the tests would pass the ignored SIGHUP on to the scans they
    start, which then rightly carry on through the hang-ups the tests send them."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def start_scan(lib: Path, index: Path, env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(cli_command("scan", lib, *INTERRUPTIBLE_SCAN, *extra, "--index", index), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=default_hang_up)


def end_session(proc: subprocess.Popen) -> None:
    """Kill what is left of a scan we started (its own process group only)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)



#: A writing scan with the seed model at any confidence, reported as JSON: the tests of what a
#: write does (undo, content check, a person's genre) need every file written, not accuracy.
SEED_WRITE_SCAN = ("--model", "seed", "--min-confidence", "0", "--report", "json")


def cli(*args: object) -> Any:
    """``libtagger ARGS`` in this process through typer's CliRunner (paths and numbers become text)."""
    from typer.testing import CliRunner

    from libtagger.cli import app

    return CliRunner().invoke(app, [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in args])


def seed_scan(lib: Path, index: Path, *extra: str, jobs: int = 1) -> dict[str, dict[str, Any]]:
    """A :data:`SEED_WRITE_SCAN` of ``lib`` (exit 0 asserted): its report lines by file name."""
    result = cli("scan", lib, *SEED_WRITE_SCAN, "--jobs", jobs, *extra, "--index", index)
    assert result.exit_code == 0, result.output
    return {Path(r["path"]).name: r for r in json.loads(result.stdout)}
