"""The one joblib entry point: results in any order, and a segfaulting worker isolated."""

import ctypes
import os

from libtagger.parallel import WorkerCrash, map_unordered


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


def test_default_workers_fit_the_cores_and_the_available_memory():
    from libtagger.parallel import MAIN_MEMORY_MB, WORKER_MEMORY_MB, default_jobs, jobs_for

    cores = len(os.sched_getaffinity(0))
    with open("/proc/meminfo") as f:
        available = next(int(line.split()[1]) / 1024 for line in f if line.startswith("MemAvailable:"))
    # MemAvailable moves a little between the two reads; compare with a margin of one worker
    expected = {jobs_for(cores, available - WORKER_MEMORY_MB), jobs_for(cores, available + WORKER_MEMORY_MB)}
    assert 1 <= default_jobs() <= cores and default_jobs() in expected | {jobs_for(cores, available)}
    # a single core, or too little memory for a second worker: one worker, never zero
    assert jobs_for(1, 64000) == 1
    assert jobs_for(4, MAIN_MEMORY_MB + 1.5 * WORKER_MEMORY_MB) == 1 and jobs_for(4, 100) == 1
    assert jobs_for(4, MAIN_MEMORY_MB + 3 * WORKER_MEMORY_MB) == 3


def test_stopping_early_with_results_waiting_prints_no_joblib_warning():
    # Ctrl-C while the scanning process is busy (the head, a write) and workers have finished
    # tasks it has not taken yet: joblib warned "N tasks have been successfully executed but
    # not used. Additionally, ...", which the filter for the cancelled tasks did not match.
    import threading
    import warnings

    finished = threading.Semaphore(0)
    with warnings.catch_warnings(record=True) as caught:
        results = map_unordered(double, range(20), jobs=2, on_done=lambda n: [finished.release() for _ in range(n)])
        try:
            for _ in results:
                for _ in range(3):  # this and two more done in the workers, not yet taken
                    assert finished.acquire(timeout=300)
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            results.close()  # what leaving the loop by the exception does in the pipeline
    assert [str(w.message) for w in caught if "tasks" in str(w.message)] == []
