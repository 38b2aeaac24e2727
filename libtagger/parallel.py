"""Every joblib call of libtagger goes through this module.

:func:`map_unordered` runs a function over many items in worker processes and
yields results as they finish. It survives a worker that dies (a decoder that
segfaults, the OOM killer): results already received are kept, the items that
were in flight are retried one at a time in a fresh worker to find the one
that kills its process, that item gets an error result, and the rest go on in
parallel.

Local (loky) workers end with the process that started them: ``kill -9`` of a scan would
otherwise leave them idling, each with its memory, until loky's idle timeout (5 minutes).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

BACKENDS = ("loky", "dask")

#: Seconds a Dask run waits for the cluster to have a worker (after a crash, for its restart).
DASK_WORKER_WAIT = 120


@dataclass(frozen=True)
class WorkerCrash:
    """The result of an item whose worker process died while handling it."""

    reason: str


#: Peak memory of one worker process, MB: decoding, the 57 features and the NumPy MSD_musicnn
#: (libtagger.audio.musicnn_numpy): VmHWM 309 MB on a 5-min MP3 and on a two-hour FLAC, with or
#: without the front-end; the rest is margin. (TensorFlow and the Keras model alone take ~1 GB.)
WORKER_MEMORY_MB = 400

#: What the scanning process keeps for itself, MB: TensorFlow, the head and a batch of results.
MAIN_MEMORY_MB = 1200


def default_jobs() -> int:
    """Worker processes for ``jobs=0``: every core this process may use, but no more than the
    available memory (``MemAvailable`` of /proc/meminfo, less :data:`MAIN_MEMORY_MB`) holds at
    :data:`WORKER_MEMORY_MB` each, and at least one. ``--jobs N`` overrides it."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return jobs_for(cores, _available_memory_mb())


def jobs_for(cores: int, available_mb: float | None) -> int:
    """Workers for ``cores`` cores and ``available_mb`` MB of available memory (None: unknown).

    >>> jobs_for(8, 32000), jobs_for(8, 2400), jobs_for(1, 32000), jobs_for(4, 500), jobs_for(4, None)
    (8, 3, 1, 1, 4)
    """
    if available_mb is None:
        return max(cores, 1)
    return max(1, min(cores, int((available_mb - MAIN_MEMORY_MB) // WORKER_MEMORY_MB)))


def _available_memory_mb() -> float | None:
    """``MemAvailable`` in MB, or None where /proc/meminfo does not say (not Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


#: Seconds between a local worker's looks at whether the process that started it still lives.
ORPHAN_CHECK_SECONDS = 1.0


def _call(func: Callable[[T], Any], position: int, item: T) -> tuple[int, Any]:
    # A hang-up (closed terminal) reaches the whole process group: the process that started
    # the workers decides, marks its run interrupted and ends them; a worker killed by it
    # first would look like a crash of the file it was reading.
    with contextlib.suppress(ValueError):  # a Dask worker runs tasks in threads: its own business
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return position, func(item)


def _exit_with_owner(owner_pid: int) -> None:
    """Start a daemon thread that ends this worker process when its parent, the scan, dies.

    loky's workers notice a dead parent only after their idle timeout (5 minutes, with all the
    memory of a decoded file), so a scan killed with ``kill -9`` left them behind. loky runs
    this as each worker's initializer, once, when the worker starts (also a worker started
    after a crash, and one that never gets a task). A worker is a child of the process that
    configured the pool (:func:`backend_config`); when that process dies the kernel gives the
    worker another parent, which ``os.getppid`` shows at the next look.
    """
    parent = os.getppid()
    if parent != owner_pid and not _alive(owner_pid):
        os._exit(1)  # the scan died while this worker was starting: already an orphan
    threading.Thread(target=_watch_parent, args=(parent,), name="libtagger-orphan-watch",
                     daemon=True).start()


def _watch_parent(parent: int) -> None:
    # os._exit, not sys.exit: a thread cannot end its process otherwise, and a worker whose
    # scan is gone has nothing to flush (its results had nowhere to go).
    while os.getppid() == parent:
        threading.Event().wait(ORPHAN_CHECK_SECONDS)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _start_resource_tracker_deaf_to_hangups() -> None:
    """Start loky's resource tracker with SIGHUP ignored (it inherits that through exec).

    Killed by a hang-up sent to the process group, loky starts a fresh one that prints a
    KeyError traceback for every shared resource it is then told to forget. Only possible
    from the main thread; elsewhere the tracker starts as usual.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    from joblib.externals.loky.backend.resource_tracker import ensure_running

    handler = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        ensure_running()
    finally:
        signal.signal(signal.SIGHUP, handler)


def _crash_errors(backend: str) -> tuple[type[BaseException], ...]:
    from concurrent.futures.process import BrokenProcessPool

    from joblib.externals.loky.process_executor import TerminatedWorkerError
    errors: list[type[BaseException]] = [TerminatedWorkerError, BrokenProcessPool]
    if backend == "dask":  # importing distributed costs a second or two of start-up: only for Dask
        with contextlib.suppress(ImportError):
            from distributed.scheduler import KilledWorker
            errors.append(KilledWorker)
    return tuple(errors)


@contextlib.contextmanager
def backend_config(backend: str = "loky", *, scheduler: str | None = None) -> Iterator[None]:
    """Configure joblib for ``backend``; for ``dask`` connect a client to ``scheduler``.

    Examples
    --------
    >>> with backend_config("loky"):
    ...     pass
    """
    import joblib

    if backend == "loky":
        # Each worker starts a thread that ends it when this process dies (kill -9 included).
        with joblib.parallel_config(backend="loky", initializer=_exit_with_owner, initargs=(os.getpid(),)):
            yield
    elif backend == "dask":
        if not scheduler:
            raise ValueError("the dask backend needs a scheduler address, e.g. tcp://10.0.0.5:8786")
        from libtagger.errors import LibtaggerError

        try:
            from distributed import Client
        except ImportError:
            raise LibtaggerError("the dask backend needs Dask: pip install 'libtagger[dask]'") from None
        try:
            client = Client(scheduler, set_as_default=True)
        except (OSError, ValueError) as exc:  # unreachable, refused, or not an address
            raise LibtaggerError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        # A worker that a crashing file killed is restarted by its nanny, which can take more than
        # joblib's default 10 s on a busy machine: the run waits for one instead of failing.
        backend_instance = _dask_backend_class()(client=client, wait_for_workers_timeout=DASK_WORKER_WAIT)
        with client, joblib.parallel_config(backend=backend_instance):
            yield
    else:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def map_unordered(func: Callable[[T], Any], items: Iterable[T], *, jobs: int = 0,
                  backend: str = "loky", scheduler: str | None = None,
                  on_done: Callable[[int], None] | None = None) -> Iterator[tuple[T, Any]]:
    """Yield ``(item, func(item))`` pairs in the order they finish.

    ``func`` must be a picklable module-level function that returns its errors
    as values: an exception it raises stops the run. A worker process that
    dies yields ``(item, WorkerCrash(reason))`` for the item that killed it.

    Parameters
    ----------
    func : callable
        Runs in the workers.
    items : iterable
        Picklable work items.
    jobs : int
        Worker processes; 0 means :func:`default_jobs` (all cores, fewer when memory is
        short), 1 still uses one worker process (so that a crash cannot take the caller down).
    backend : {"loky", "dask"}
        Local processes, or a Dask distributed cluster at ``scheduler``.
    on_done : callable, optional
        Called with a count of items just finished in the workers, as they finish (from
        joblib's callback thread), even while the caller is busy with an earlier result:
        for a progress bar. Must be quick and never raise.
    """
    import joblib

    pending = list(enumerate(items))
    n_jobs = jobs if jobs > 0 else default_jobs()
    # Dask schedules on the cluster's workers; -1 means "all of them". joblib runs
    # n_jobs=1 in the calling process, where a crashing decoder would kill the
    # run: one job is two workers with one task in flight instead.
    parallel_jobs = -1 if backend == "dask" else max(n_jobs, 2)
    pre_dispatch = "1" if n_jobs == 1 and backend != "dask" else "2*n_jobs"
    crash_errors = _crash_errors(backend)
    # Stopping early (Ctrl-C, SIGTERM, a hang-up) drops finished results and cancels the tasks in
    # flight on purpose. joblib's warning starts with the first when there are any ("N tasks have
    # been successfully executed but not used. Additionally, ..."); the filter matches the start.
    warnings.filterwarnings("ignore", message=r"\d+ tasks (which were still being processed|have been "
                                              r"successfully executed)", category=UserWarning)
    if backend == "loky":
        _start_resource_tracker_deaf_to_hangups()
    with backend_config(backend, scheduler=scheduler):
        if backend == "dask":  # n_jobs=-1 is every thread of the cluster's workers
            from distributed import default_client

            n_jobs = max(sum(default_client().ncores().values()), 1)
        in_flight = 2 * max(n_jobs, 1) + 2  # joblib dispatches at most pre_dispatch=2*n_jobs ahead
        while pending:
            done: set[int] = set()
            by_position = dict(pending)
            try:
                parallel = _counting_parallel()(n_jobs=parallel_jobs, return_as="generator_unordered",
                                                batch_size=1, pre_dispatch=pre_dispatch)
                parallel.on_done = on_done
                for position, result in parallel(joblib.delayed(_call)(func, p, item)
                                                 for p, item in pending):
                    done.add(position)
                    yield by_position[position], result
                pending = []
            except crash_errors:
                remaining = [(p, item) for p, item in pending if p not in done]
                suspects, pending = remaining[:in_flight], remaining[in_flight:]
                for position, item in suspects:
                    yield item, _isolated(func, position, item, crash_errors)


@functools.cache
def _counting_parallel() -> type:
    """``joblib.Parallel`` that tells ``on_done`` of each task as it finishes.

    joblib calls ``print_progress`` from its callback thread when a task completes (its
    ``verbose`` output); the results themselves wait until the caller asks for them.
    """
    import joblib

    class CountingParallel(joblib.Parallel):
        on_done: Callable[[int], None] | None = None
        _reported = 0

        def print_progress(self) -> None:
            super().print_progress()
            finished = self.n_completed_tasks - self._reported
            if self.on_done is not None and finished > 0:
                self._reported += finished
                self.on_done(finished)

    return CountingParallel


@functools.cache
def _dask_backend_class() -> type:
    """joblib's Dask backend, made to report the tasks Dask gives up on and to stay on the cluster.

    When a task keeps killing its worker, Dask retries it on other workers and
    then fails its future with ``KilledWorker``. joblib 1.6's
    ``DaskDistributedBackend`` sets that exception on its own future but never
    calls joblib's completion callback, so a ``Parallel`` returning a generator
    waits for the task forever. Calling the callback with the error lets
    ``Parallel`` raise it, and :func:`map_unordered` isolates the item as it
    does for a crashed loky worker.
    """
    from joblib._dask import DaskDistributedBackend  # the class joblib registers as "dask"

    class _Failed:
        def __init__(self, error: BaseException) -> None:
            self.error = error

    class ReportingDaskBackend(DaskDistributedBackend):
        def effective_n_jobs(self, n_jobs: int) -> int:
            # joblib runs a call whose effective n_jobs is 1 in the calling process: with a
            # one-thread cluster (or one worker left after a crash) the analysis would
            # silently leave the cluster, and a crashing decoder would kill the scan.
            return max(super().effective_n_jobs(n_jobs), 2)

        def submit(self, func: Any, callback: Any = None) -> Any:
            future = super().submit(func, callback=callback)
            if callback is not None:
                def report_error(done: Any) -> None:
                    if not done.cancelled() and done.exception() is not None:
                        callback(_Failed(done.exception()))

                future.add_done_callback(report_error)
            return future

        def retrieve_result_callback(self, out: Any) -> Any:
            if isinstance(out, _Failed):
                raise out.error
            return super().retrieve_result_callback(out)

    return ReportingDaskBackend


def _isolated(func: Callable[[T], Any], position: int, item: T,
              crash_errors: tuple[type[BaseException], ...]) -> Any:
    """Run one item alone in a worker process; a crash now is this item's own."""
    import joblib

    try:
        (_, result), = joblib.Parallel(n_jobs=2)([joblib.delayed(_call)(func, position, item)])
        return result
    except crash_errors as exc:
        return WorkerCrash(_describe_crash(exc))


def _describe_crash(exc: BaseException) -> str:
    text = str(exc)
    for sig in (signal.SIGSEGV, signal.SIGKILL, signal.SIGABRT, signal.SIGBUS):
        if f"-{int(sig)}" in text or sig.name in text:
            return f"the worker process crashed ({sig.name}) while reading this file"
    return "the worker process crashed while reading this file"
