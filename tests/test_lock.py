"""One run at a time per index."""

import subprocess
import sys
import time

import pytest

from libtagger.errors import IndexLockedError
from libtagger.store.lock import RunLock


def test_second_holder_is_refused_with_a_clear_message(tmp_path):
    index = tmp_path / "index.db"
    with RunLock(index):
        with pytest.raises(IndexLockedError, match=r"another libtagger run \(pid \d+\).*--wait"):
            with RunLock(index):
                pass
    with RunLock(index):  # released again
        pass


def test_wait_gives_up_after_timeout(tmp_path):
    index = tmp_path / "index.db"
    with RunLock(index):
        with pytest.raises(IndexLockedError):
            with RunLock(index, wait=True, timeout=0.6):
                pass


def test_lock_of_a_killed_process_is_free(tmp_path):
    index = tmp_path / "index.db"
    code = f"from libtagger.store.lock import RunLock; l = RunLock({str(index)!r}).__enter__(); print('held', flush=True); import time; time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    with pytest.raises(IndexLockedError):
        with RunLock(index):
            pass
    child.kill()  # kill -9: no cleanup runs
    child.wait()
    time.sleep(0.1)
    with RunLock(index):
        pass
