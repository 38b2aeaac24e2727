"""One run at a time per index: an advisory lock file beside the index.

``flock`` is released by the kernel when the process dies, even by ``kill -9``,
so a crashed run never leaves a stale lock behind. That also makes the lock the proof
that a run is going: :func:`run_lock_held` lets ``libtagger runs`` tell a live run from
one whose process was killed before it could record its end.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from libtagger.errors import IndexLockedError
from libtagger.store.index import check_index_file


class RunLock:
    """Hold ``<index>.lock`` for the length of a ``with`` block.

    Entering raises :class:`~libtagger.errors.IndexFileError` (and makes no lock file) when
    the index path holds something that is not a libtagger index (:func:`check_index_file`).

    Parameters
    ----------
    index_path : path-like
        The index file the lock guards.
    wait : bool
        Wait for the running scan to finish instead of failing at once.
    timeout : float or None
        With ``wait``, give up after this many seconds (None: wait forever).

    Examples
    --------
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> with RunLock(os.path.join(folder, "index.db")):
    ...     pass
    """

    def __init__(self, index_path: str | os.PathLike, *, wait: bool = False,
                 timeout: float | None = None) -> None:
        self.index_path = Path(index_path)
        self.path = Path(f"{os.fspath(index_path)}.lock")
        self.wait = wait
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        # Before the lock file is made beside it: a mistyped --index naming another program's
        # database (or a folder) gets no INDEX.lock next to it either.
        check_index_file(self.index_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        reader_retries = 100
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if reader_retries and _only_readers(fd):
                    # run_lock_held() holds a shared lock for an instant: not a run, try again.
                    reader_retries -= 1
                    time.sleep(0.01)
                    continue
                if not self.wait or (deadline is not None and time.monotonic() > deadline):
                    holder = self._holder(fd)
                    os.close(fd)
                    raise IndexLockedError(
                        f"another libtagger run{holder} is using the index {self.path.with_suffix('')}"
                        " (use --wait to wait for it)") from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            pid = os.pread(fd, 32, 0).decode().strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _only_readers(fd: int) -> bool:
    """Whether the lock on ``fd``'s file is held only shared (by :func:`run_lock_held`), not by a run."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


def run_lock_held(index_path: str | os.PathLike) -> bool:
    """Whether a run (scan or undo) holds the lock of the index at ``index_path`` right now.

    Takes a shared lock for an instant, which fails while a run holds its exclusive one;
    :class:`RunLock` retries past such an instant, so asking never makes a run fail to start.
    """
    try:
        fd = os.open(f"{os.fspath(index_path)}.lock", os.O_RDONLY)
    except FileNotFoundError:
        return False  # no run ever took it
    except OSError:
        return True  # unreadable: cannot tell, so never call a run dead on that ground
    try:
        return not _only_readers(fd)
    finally:
        os.close(fd)
