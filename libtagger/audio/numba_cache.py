"""Keep numba's on-disk cache consistent when several processes compile the same functions at once.

librosa's kernels and libtagger's own (:mod:`libtagger.audio.features`) are compiled with
``cache=True``: the first process to use one writes its machine code beside the source
(``__pycache__/*.nbi``, ``*.nbc``) or under ``NUMBA_CACHE_DIR``, and later processes load it. A
scan's worker processes, and the tests, compile them at the same moment on a fresh install.
numba (0.68 and earlier; issue #10128 is open) has two races there, each leaving a cache that crashes every
later process until it is deleted:

1. ``IndexDataCacheFile.save`` reads the function's index, picks the first unused data file
   name, writes the index, then the data, with no lock between processes. Two processes
   saving different signatures at once both pick ``NAME.1.nbc``; the index can then map one
   signature to the other's code.
2. A ``guvectorize`` kernel and its ufunc wrapper are cached in two files (``NAME.k.nbc``,
   ``guf-NAME.k.nbc``). The wrapper finds the kernel by its mangled name, which carries a
   per-process counter (``v<uid>``, the order functions were compiled in). When the kernel
   file and the wrapper file come from different processes, the wrapper's entry point is
   not found: numba hands NumPy a null loop pointer and the first call segfaults (librosa's
   ``piptrack`` through ``_pi_wrapper``; numba issue #10128).

:func:`install` fixes both in the running process, before librosa is imported:

1. index and data are read under a shared ``fcntl.flock`` and written under an exclusive one
   (one lock file per cache folder), so a save is atomic for every guarded process;
2. a cached gufunc wrapper is used only if it defines the entry point of the kernel this
   process holds; otherwise it is compiled again and the cache entry replaced, which also
   repairs a cache left inconsistent by an earlier, unguarded run.

If numba's internals differ from what this module patches (a future numba, or no
``fcntl``), :func:`install` gives the process its own cache folder instead: always
correct, only slower (every process compiles what it uses).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

#: The lock file in each numba cache folder (``__pycache__`` or a ``NUMBA_CACHE_DIR`` subfolder).
LOCK_NAME = "libtagger-numba-cache.lock"

#: How numba's cache is guarded in this process: None (not yet), "locked" or "private folder".
_mode: str | None = None


def install() -> str:
    """Guard numba's on-disk cache in this process; call before importing librosa. Idempotent.

    Returns
    -------
    str
        ``"locked"`` (numba's cache patched: shared, locked and checked) or ``"private folder"``
        (numba's internals were not as expected: this process caches in a folder of its own).
    """
    global _mode
    if _mode is None:
        _mode = "locked" if _patch_numba() else _use_private_cache_folder()
    return _mode


def mode() -> str | None:
    """How numba's cache is guarded in this process (see :func:`install`); None before it ran."""
    return _mode


@contextlib.contextmanager
def folder_lock(folder: str, *, exclusive: bool) -> Iterator[None]:
    """Hold ``fcntl.flock`` on ``folder``'s lock file; a folder that cannot hold one is not locked.

    Nothing to lock in a missing folder (no cache yet) or a read-only one (nothing there is
    written by this process, and numba falls back to another folder for writing).
    """
    import fcntl

    try:
        fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def _patch_numba() -> bool:
    """Wrap numba's cache file and gufunc wrapper methods; False when they are not what we expect."""
    try:
        import fcntl  # noqa: F401  (POSIX only)

        from numba.core.caching import IndexDataCacheFile
        from numba.np.ufunc import wrappers
    except ImportError:
        return False
    gufunc_wrapper = getattr(wrappers, "_GufuncWrapper", None)
    needed = [(IndexDataCacheFile, "save"), (IndexDataCacheFile, "load"), (gufunc_wrapper, "_compile_wrapper")]
    if gufunc_wrapper is None or not all(callable(getattr(cls, name, None)) for cls, name in needed):
        return False
    if getattr(IndexDataCacheFile.save, "_libtagger_guard", False):
        return True  # patched already (the module was imported twice under two names)
    IndexDataCacheFile.save = _locked(IndexDataCacheFile.save, exclusive=True)
    IndexDataCacheFile.load = _locked(IndexDataCacheFile.load, exclusive=False)
    gufunc_wrapper._compile_wrapper = _checked_gufunc_wrapper(gufunc_wrapper._compile_wrapper)
    return True


def _locked(method: Callable[..., Any], *, exclusive: bool) -> Callable[..., Any]:
    """``method`` of ``IndexDataCacheFile`` run under its cache folder's lock."""

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        folder = getattr(self, "_cache_path", None)
        if folder is None:
            return method(self, *args, **kwargs)
        with folder_lock(folder, exclusive=exclusive):
            return method(self, *args, **kwargs)

    guarded._libtagger_guard = True  # type: ignore[attr-defined]
    return guarded


def _checked_gufunc_wrapper(compile_wrapper: Callable[..., Any]) -> Callable[..., Any]:
    """``_GufuncWrapper._compile_wrapper`` that never returns a wrapper without this kernel's entry point."""

    @functools.wraps(compile_wrapper)
    def checked(self: Any, wrapper_name: str) -> Any:
        library = compile_wrapper(self, wrapper_name)
        if getattr(self, "is_parfors", False) or library.get_pointer_to_function(wrapper_name):
            return library
        # The cached wrapper was built around another process's compile of the kernel (another
        # mangled name): build it again around ours, and replace the cache entry for later loads.
        cache = self.cache
        cache.disable()
        try:
            library = compile_wrapper(self, wrapper_name)
        finally:
            cache.enable()
        cache.save_overload(self.cres.signature, library)
        return library

    return checked


def _use_private_cache_folder() -> str:
    """Point numba's cache at a new folder of this process's own, removed when it exits."""
    folder = tempfile.mkdtemp(prefix="libtagger-numba-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    try:
        from numba.core import config
    except ImportError:
        return "private folder"
    config.CACHE_DIR = folder  # read when a cached function is defined, i.e. when librosa is imported
    return "private folder"
