"""Find the audio files under some folders, in a stable order, each real file once.

>>> for path in iter_audio_files(["~/Music"]):            # doctest: +SKIP
...     print(path)

Rules, and why:

* Sorted by name within each folder (byte order of the name, so names that are not valid
  UTF-8 sort too), folders entered where they sort: the same tree always gives the same order,
  which keeps runs, logs and the index reproducible.
* Names starting with ``.`` are skipped unless ``include_hidden=True``: they are app caches,
  macOS ``._`` resource forks (which carry an audio extension but hold no audio) and trash.
* Symbolic links to regular files and folders are followed wherever they point: a library
  whose ``~/Music/Jazz`` links to an external drive is scanned as it looks in a file manager
  (as beets, mpd and music players do). Folders are entered once each (by ``st_dev`` and
  ``st_ino``), so loops end, and every real file is yielded once, at the first path that
  reaches it.
* A device, FIFO or socket with an audio name (directly or through a link) is refused: reading
  one would block the scan or never end.
* Problems (unreadable folder, entry vanished mid-walk, broken or looping link, not a regular
  file) never stop the walk: the entry is skipped and ``on_error(path, reason)`` is called if given.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from libtagger.formats import EXTENSIONS, format_for

__all__ = ["SUPPORTED_EXTENSIONS", "iter_audio_files", "is_supported"]

#: Every extension in :data:`libtagger.formats.FORMATS`: a file libtagger can decode is found,
#: whether or not it can hold a genre tag (one that cannot is analysed and reported).
SUPPORTED_EXTENSIONS: frozenset[str] = EXTENSIONS

OnError = Callable[[Path, str], None]


def is_supported(path: str | os.PathLike) -> bool:
    """True when the file name ends with one of :data:`SUPPORTED_EXTENSIONS` (any case)."""
    return format_for(path) is not None


def iter_audio_files(roots: Sequence[str | bytes | os.PathLike], *, include_hidden: bool = False,
                     on_error: OnError | None = None) -> Iterator[Path]:
    """Yield every supported audio file under ``roots`` (folders or single files).

    Parameters
    ----------
    roots : sequence of path-like
        Folders to walk recursively, or files to yield as they are. ``~`` is expanded.
    include_hidden : bool
        Also walk names starting with ``.``.
    on_error : callable(path, reason) or None
        Told about every entry that was skipped because of a problem.

    Yields
    ------
    pathlib.Path
        Paths as reached from the roots (not resolved), each real file once.
    """
    report: OnError = on_error if on_error is not None else (lambda path, reason: None)
    tops = [Path(os.path.expanduser(os.fsdecode(r))) for r in roots]
    seen_files: set[tuple[int, int]] = set()
    seen_dirs: set[tuple[int, int]] = set()

    for top in tops:
        try:
            st = top.stat()
        except FileNotFoundError:
            report(top, "broken symbolic link" if _is_link(top) else "no such file or folder")
            continue
        except OSError as exc:
            report(top, _reason(exc))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(top, st, include_hidden, seen_files, seen_dirs, report)
        elif stat.S_ISREG(st.st_mode):
            if not is_supported(top):
                report(top, "not a supported audio file extension")
            elif _first_time(seen_files, st):
                yield top
        else:
            report(top, "not a regular file or folder")


def _walk(top: Path, top_st: os.stat_result, include_hidden: bool,
          seen_files: set, seen_dirs: set, report: OnError) -> Iterator[Path]:
    # An explicit stack of iterators instead of recursion: deep trees cannot hit the recursion limit.
    if not _first_time(seen_dirs, top_st):
        return
    stack = [_sorted_entries(top, report)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if not include_hidden and entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            st = entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            report(path, "broken symbolic link" if _is_link(path) else "vanished during the scan")
            continue
        except OSError as exc:
            report(path, _reason(exc))
            continue
        if stat.S_ISDIR(st.st_mode):
            if _first_time(seen_dirs, st):
                stack.append(_sorted_entries(path, report))
        elif not is_supported(entry.name):
            continue
        elif not stat.S_ISREG(st.st_mode):
            report(path, "not a regular file (a device, FIFO or socket)")
        elif _first_time(seen_files, st):
            yield path


def _sorted_entries(folder: Path, report: OnError) -> Iterator[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except FileNotFoundError:
        report(folder, "vanished during the scan")
        return iter(())
    except OSError as exc:
        report(folder, _reason(exc))
        return iter(())
    entries.sort(key=lambda e: os.fsencode(e.name))
    return iter(entries)


def _is_link(path: Path) -> bool:
    try:
        return path.is_symlink()
    except OSError:
        return False


def _first_time(seen: set[tuple[int, int]], st: os.stat_result) -> bool:
    key = (st.st_dev, st.st_ino)
    if key in seen:
        return False
    seen.add(key)
    return True


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.ELOOP:  # stat of a link that leads back to itself
        return "symbolic link loop"
    return exc.strerror or str(exc)
