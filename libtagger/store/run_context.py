"""One run's hold on the index: the run lock taken, the index open, abandoned runs marked, all let go.

Every run that changes the index (a scan, the verdict API's dry-run scan, an undo) starts the
same way; :func:`locked_index` is that one way, so none of them forgets to close the index or
to mark the runs a killed process left ``running``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from libtagger.errors import IndexFileError
from libtagger.store.index import NO_INDEX_YET, Index, check_index_file
from libtagger.store.lock import RunLock, run_lock_held

__all__ = ["locked_index"]


@contextmanager
def locked_index(index_path: str | os.PathLike, *, wait: bool = False, create: bool = True) -> Iterator[Index]:
    """Hold the index's run lock and yield the open index; close it and release the lock after.

    Runs still marked ``running`` when the lock is taken were killed (``kill -9``, a power
    cut): they are marked ``interrupted`` before the block runs.

    Parameters
    ----------
    index_path : path-like
        The index file.
    wait : bool
        Wait for a run that holds the lock instead of raising
        :class:`~libtagger.errors.IndexLockedError`.
    create : bool
        Make the index when it does not exist yet (a scan). False (an undo): raise
        :class:`~libtagger.errors.IndexFileError` instead, before any lock file is made, unless
        a run holds the lock (it may be making the index): then as for any held lock.

    Examples
    --------
    >>> import tempfile, os
    >>> with locked_index(os.path.join(tempfile.mkdtemp(), "index.db")) as index:
    ...     index.runs()
    []
    """
    if (not create and check_index_file(Path(index_path)) in ("absent", "empty")
            and not run_lock_held(index_path)):  # a running scan may be making it: say that one runs
        raise IndexFileError(Path(index_path), NO_INDEX_YET)
    with RunLock(index_path, wait=wait):
        index = Index(index_path, create=create)
        try:
            index.mark_abandoned_runs()  # we hold the lock: a run still marked running was killed
            yield index
        finally:
            index.close()
