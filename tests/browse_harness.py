"""Helpers for the tests of ``libtagger browse`` (tests/test_browse*.py): the real program run as a
subprocess on a free local port.

* :func:`libtagger_command`: the installed ``libtagger`` program (the console script beside this Python);
* :func:`free_port`: a TCP port on 127.0.0.1 that nothing listens on;
* :func:`browsing`: ``libtagger browse --no-open`` on an index, as a context manager that yields the
  server's base URL once it answers and stops the server afterwards; its output goes to
  ``browse.log`` beside the index.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def libtagger_command() -> list[str]:
    """The installed ``libtagger`` program (the console script beside this Python)."""
    script = Path(sys.executable).parent / "libtagger"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from libtagger.cli import app; app()"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def browsing(index_path: Path) -> Iterator[str]:
    """``libtagger browse --no-open`` on ``index_path`` as a subprocess; yields its base URL."""
    port = free_port()
    log = index_path.with_name("browse.log")  # a file, not a pipe: a full pipe would stall the server
    with open(log, "w") as output:
        process = subprocess.Popen([*libtagger_command(), "browse", "--index", str(index_path),
                                    "--no-open", "--port", str(port)], stdout=output, stderr=output)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a wait for start-up, not a timing assertion
        while True:
            try:
                urllib.request.urlopen(f"{base}/-/versions.json", timeout=5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"libtagger browse did not start: {log.read_text()}")
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)
