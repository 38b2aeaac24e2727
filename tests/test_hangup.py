"""A closed terminal or a dropped ssh session (SIGHUP) ends ``libtagger scan`` like Ctrl-C:
exit 130, the run marked ``interrupted``, no worker left behind, a consistent index, and the
next run finishes the job. And on a terminal, the lines printed while the progress bar shows
stay whole.

The scan runs on a real pseudo-terminal as the leader of its own session, the terminal being
its controlling terminal: closing the master side is a hang-up, and the kernel sends SIGHUP
to the session leader, exactly as when a terminal window is closed. A shell that hangs up
instead sends SIGHUP to the whole process group of its foreground job (the scan and its
workers): the second way.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import subprocess
import termios
import threading
import time
from pathlib import Path

import pytest

from conftest import make_audio
from scan_harness import (cli_command, decoded_paths, default_hang_up, probe_env, require_seed_model, rows,
                          run_cli, proc_stat, session_processes, tracks_by_name)

SCAN = ("--model", "seed", "--min-confidence", "0", "--jobs", "2")
SLOW = "zz slow"
EXTS = (".flac", ".mp3", ".ogg", ".wav")


@pytest.fixture(autouse=True)
def _seed():
    require_seed_model()


class Terminal:
    """A command running on a pseudo-terminal, as the leader of its own session.

    Everything it writes is collected in :attr:`screen` (raw bytes, as a terminal gets them).
    """

    def __init__(self, args: list[str], env: dict[str, str], *, columns: int = 100,
                 cwd: Path | None = None) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, bytes([24, 0, columns, 0, 0, 0, 0, 0]))

        def controlling_terminal() -> None:  # runs in the child after setsid(): stdin is the pty
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            default_hang_up()  # as in a terminal, even when these tests run under nohup

        self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, preexec_fn=controlling_terminal)
        os.close(slave)
        self.screen = b""
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: the child side is closed
                    return
                if not data:
                    return
                self.screen += data

    def hang_up(self) -> None:
        """Close the terminal (the master side): the kernel sends SIGHUP to the session leader."""
        self._stop.set()
        self._reader.join()
        os.close(self.master)
        self.master = -1

    def wait(self, timeout: float = 300) -> int:
        code = self.proc.wait(timeout=timeout)
        if self.master >= 0:
            self._reader.join(timeout=10)  # collects what is still in the pty
            self._stop.set()
            os.close(self.master)
            self.master = -1
        return code

    def kill_all(self) -> None:
        """Kill whatever is left of the session (only the processes this test started)."""
        for pid in session_processes(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=60)
        if self.master >= 0:
            self._stop.set()
            self._reader.join(timeout=10)
            os.close(self.master)
            self.master = -1




def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (by parent pid)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := proc_stat(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> list[str]:
    """The command lines of the ``pids`` still running (zombies are dead)."""
    out = []
    for pid in sorted(pids):
        fields = proc_stat(pid)
        if fields is None or fields[0] == "Z":
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out.append(f"{pid}: {command[:160]}")
    return out


def wait_for(condition, what: str, term: Terminal, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if term.proc.poll() is not None:
            raise AssertionError(f"the scan ended (exit {term.proc.returncode}) before {what}: "
                                 f"{term.screen.decode(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def tagged_count(index: Path) -> int:
    if not index.exists():
        return 0
    try:
        return rows(index, "select count(*) as n from tracks where status = 'tagged'")[0]["n"]
    except Exception:  # tables not created yet (sqlite3.OperationalError)
        return 0


@pytest.mark.parametrize("how", ["terminal closed", "SIGHUP to the job"])
def test_a_hang_up_mid_write_ends_the_scan_like_ctrl_c(tmp_path, how):
    lib = tmp_path / "Music"
    for i in range(16):
        make_audio(lib / f"t{i:02d}{EXTS[i % 4]}", 4.0, seed=i)
    make_audio(lib / f"{SLOW}.flac", 4.0, seed=99)
    index = tmp_path / "index.db"
    log = tmp_path / "decoded.log"
    term = Terminal(cli_command("scan", lib, *SCAN, "--index", index),
                    probe_env(tmp_path / "probe", slow=SLOW, log=log))
    try:
        # mid-write: files are being committed while a worker is busy with the slow one
        wait_for(lambda: tagged_count(index) >= 1 and f"{SLOW}.flac" in decoded_paths(log, "analyse"),
                 "a committed file and the slow one started", term)
        workers = descendants(term.proc.pid)
        assert workers, "the scan has no worker processes to check"
        if how == "terminal closed":
            term.hang_up()
        else:  # what a shell does to its jobs when its own terminal goes away
            os.killpg(term.proc.pid, signal.SIGHUP)
        code = term.wait(timeout=120)
        deadline = time.monotonic() + 30  # killed processes take a moment to be reaped
        while (left := alive(workers | set(session_processes(term.proc.pid)))) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        term.kill_all()
    screen = term.screen.decode(errors="replace")
    assert code == 130, screen[-3000:]
    assert left == [], f"processes of the scan outlived the hang-up: {left}"
    assert "Traceback" not in screen
    if how != "terminal closed":  # the terminal is still there to say why
        assert "libtagger: error: interrupted; the next run goes on where this one stopped" in screen

    assert rows(index, "pragma integrity_check") == [{"integrity_check": "ok"}]
    assert rows(index, "pragma foreign_key_check") == []
    [run] = rows(index, "select outcome, finished_at, pid from runs")
    assert run["outcome"] == "interrupted" and run["finished_at"], run
    assert run["pid"] == term.proc.pid
    committed = {name for name, t in tracks_by_name(index).items() if t["status"] == "tagged"}
    assert committed and f"{SLOW}.flac" not in committed

    again = run_cli("scan", lib, *SCAN, "--quiet", "--index", index)
    assert again.returncode == 0, again.stderr
    assert [r["outcome"] for r in rows(index, "select outcome from runs order by id")] == ["interrupted", "finished"]
    after = tracks_by_name(index)
    # a file written just before the hang-up already holds libtagger's genre: kept, not rewritten
    assert len(after) == 17 and {t["status"] for t in after.values()} <= {"tagged", "kept"}, after
    assert all(t["written"] == 1 for t in after.values()), after


def test_a_hang_up_during_undo_exits_130_with_the_undo_marked_interrupted(tmp_path):
    lib = tmp_path / "Music"
    make_audio(lib / "a.flac", 4.0, seed=1)
    make_audio(lib / "b.flac", 4.0, seed=2)
    index = tmp_path / "index.db"
    assert run_cli("scan", lib, *SCAN, "--quiet", "--index", index).returncode == 0
    log = tmp_path / "undo.log"
    term = Terminal(cli_command("undo", "--run", "1", "--index", index),
                    probe_env(tmp_path / "probe", slow_restore="b.flac", log=log))
    try:
        wait_for(lambda: log.exists() and b"restore\tundo" in log.read_bytes(), "the slow restore", term)
        term.hang_up()
        code = term.wait(timeout=120)
    finally:
        term.kill_all()
    assert code == 130, term.screen.decode(errors="replace")
    assert rows(index, "select kind, outcome from runs order by id") == [
        {"kind": "scan", "outcome": "finished"}, {"kind": "undo", "outcome": "interrupted"}]
    assert rows(index, "pragma integrity_check") == [{"integrity_check": "ok"}]
    assert run_cli("undo", "--run", "1", "--index", index).returncode == 0


def test_nohup_keeps_a_hang_up_ignored(tmp_path):
    """Started under nohup (SIGHUP ignored), a scan carries on through a hang-up."""
    lib = tmp_path / "Music"
    make_audio(lib / "a.flac", 4.0, seed=1)
    make_audio(lib / f"{SLOW}.flac", 4.0, seed=2)
    index = tmp_path / "index.db"
    log = tmp_path / "decoded.log"
    # nohup writes nohup.out in the working folder when its output is a terminal
    term = Terminal(["nohup", *cli_command("scan", lib, *SCAN, "--quiet", "--index", index)],
                    probe_env(tmp_path / "probe", slow=SLOW, log=log), cwd=tmp_path)
    try:
        wait_for(lambda: f"{SLOW}.flac" in decoded_paths(log, "analyse"), "the slow file to start", term)
        os.kill(term.proc.pid, signal.SIGHUP)
        time.sleep(2)  # not a timing assertion: only gives a wrongly handled signal time to act
        assert term.proc.poll() is None, "the scan ended on a SIGHUP that nohup said to ignore"
        assert rows(index, "select outcome from runs") == [{"outcome": "running"}]
    finally:
        term.kill_all()


# --- lines printed while the progress bar shows -------------------------------------------

LINE = re.compile(rb"libtagger: (?P<path>/[^\r\n]*?): (?P<reason>[^\r\n]*)")


def test_error_lines_stay_whole_beside_the_progress_bar(tmp_path):
    lib = tmp_path / "Music"
    for i in range(24):
        make_audio(lib / f"t{i:02d}{EXTS[i % 4]}", 3.0, seed=i)
    (lib / "broken one.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x10not really an mp3")
    (lib / "broken two.flac").write_bytes(b"fLaC\x00\x00\x00\x22" + b"\x00" * 40)
    index = tmp_path / "index.db"
    term = Terminal(cli_command("scan", lib, *SCAN, "--index", index), dict(os.environ))
    try:
        assert term.wait(timeout=600) == 0, term.screen.decode(errors="replace")
    finally:
        term.kill_all()
    screen = term.screen
    assert b"analysing" in screen and b"file/s" in screen, f"no progress bar was shown: {screen!r}"

    # What a terminal shows: a \r returns to the line's start, \x1b[A moves a line up, \n ends a line.
    # Every error line must arrive as one piece between line starts, with nothing of the bar in it.
    pieces = re.split(rb"\r|\n|\x1b\[A", screen)
    errors = [p for p in pieces if b"libtagger: " in p]
    names = {b"broken one.mp3", b"broken two.flac"}
    assert len(errors) == 2, errors
    for piece in errors:
        match = LINE.fullmatch(piece)
        assert match, f"an error line is not whole on its own line: {piece!r}"
        assert Path(match["path"].decode()).name.encode() in names
        assert b"analysing" not in piece and b"file/s" not in piece and b"|" not in piece
        names.discard(Path(match["path"].decode()).name.encode())
    assert not names
    # each error line starts at the start of a terminal line: what precedes it is a line start
    for match in LINE.finditer(screen):
        before = screen[:match.start()]
        assert before == b"" or before.endswith((b"\r", b"\n")), f"mid-line: {screen[match.start() - 60:match.end()]!r}"
    # the closing summary line is as it was
    assert re.search(rb"(^|\n)run 1: [^\r\n]*\b2 error\b", screen), screen[-500:]
