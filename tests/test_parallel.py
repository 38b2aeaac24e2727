"""The one joblib entry point: results in any order, and a segfaulting worker isolated."""

import ctypes
import os

from libtagger.scan.parallel import WorkerCrash, map_unordered


def double(x: int) -> int:
    return 2 * x


def crash_on_seven(x: int) -> int:
    if x == 7:
        ctypes.string_at(0)  # a real segfault, like a broken decoder
    return 2 * x


def worker_pid(_: int) -> int:
    return os.getpid()


def test_every_item_comes_back_once():
    out = list(map_unordered(double, range(25), jobs=2))
    assert sorted(out) == [(i, 2 * i) for i in range(25)]


def test_work_runs_outside_the_calling_process_even_with_one_job():
    pids = {pid for _, pid in map_unordered(worker_pid, range(4), jobs=1)}
    assert os.getpid() not in pids


def test_segfault_in_one_item_loses_nothing_else():
    out = dict(map_unordered(crash_on_seven, range(20), jobs=2))
    assert set(out) == set(range(20))
    assert isinstance(out[7], WorkerCrash)
    assert "crashed" in out[7].reason
    assert all(out[i] == 2 * i for i in range(20) if i != 7)
