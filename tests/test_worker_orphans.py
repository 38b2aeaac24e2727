"""Workers end with their scan: ``kill -9`` of a real ``libtagger scan`` leaves no loky worker.

Before, each worker idled until loky's idle timeout (5 minutes, about 310 MB each) and one busy
on a file went on to the end of it. A probe (scan_harness.py) makes one file take ten minutes to
decode, so a worker is busy and another idle or busy when the scan is killed.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from conftest import make_audio
from scan_harness import (SLOW, decoded_paths, describe, end_session, probe_env, require_seed_model,
                          session_processes, start_scan, wait_for)

#: A generous bound for the workers to notice (they look once a second), not a timing assertion:
#: before the fix they outlived it by minutes.
GONE_WITHIN_SECONDS = 120


def workers_of(session: int) -> list[int]:
    """The loky worker processes of a scan's session (not the scan, not loky's resource tracker)."""
    return [pid for pid in session_processes(session)
            if pid != session and (line := " ".join(describe([pid])))
            and "loky" in line and "resource_tracker" not in line]


def test_kill_9_of_a_scan_ends_its_workers(tmp_path: Path) -> None:
    require_seed_model()
    lib = tmp_path / "Music"
    for i in range(4):
        make_audio(lib / f"t{i}.flac", 4.0, seed=i)
    make_audio(lib / f"{SLOW}.mp3", 4.0, seed=9)
    log = tmp_path / "decoded.log"
    scan = start_scan(lib, tmp_path / "index.db", probe_env(tmp_path / "probe", slow=SLOW, log=log))
    try:
        wait_for(lambda: f"{SLOW}.mp3" in decoded_paths(log, "analyse"), "the slow file to start", scan)
        workers = workers_of(scan.pid)
        assert len(workers) == 2, describe(session_processes(scan.pid))
        os.kill(scan.pid, signal.SIGKILL)  # the scan only: its workers are not told
        scan.wait(timeout=60)
        deadline = time.monotonic() + GONE_WITHIN_SECONDS
        while (left := [pid for pid in workers if pid in session_processes(scan.pid)]) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        end_session(scan)
    assert scan.returncode == -signal.SIGKILL
    assert left == [], f"workers outlived their killed scan: {describe(left)}"
