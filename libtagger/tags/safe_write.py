"""Change a file atomically: edit a copy, check it, then swap it in with one rename.

:func:`atomic_update` is how :mod:`libtagger.tags.storage.write` writes every tag. A copy of the
file is made beside it (same folder, so the final rename never crosses file
systems) under a hidden name ``.NAME.libtagger-XXXXXXXX.tmp``; the edit and a
read-back check run on the copy; the copy is flushed to disk with ``fsync`` and
only then renamed over the original with :func:`os.replace`, and the folder is
fsynced so the rename itself is durable. A rename is atomic: whatever happens
(an exception, Ctrl-C, SIGKILL, a full disk), the file at ``path`` is either the
old bytes or the complete new bytes, never a mix. A killed process can leave the
hidden temporary behind; :func:`remove_stale_temporaries` removes those.

Policy, stated honestly:

* **Permissions**: the mode bits (and, on Linux, extended attributes such as
  ACLs where the kernel allows copying them) are copied from the original. On
  file systems that cannot store them (FAT/exFAT drives) this is skipped.
* **Ownership**: kept when the process may set it (root, or the owner keeping
  the group). A non-root user who can write a file owned by someone else ends
  up owning the new file; mode and group are still copied where allowed.
* **Read-only**: a file without any write bit (``chmod a-w``) or one the user may
  not write is refused, even for root (root bypasses permission bits, but a
  read-only file is a clear statement that it must not change). Likewise a
  folder without write bits is refused. Note a rename only needs permission on
  the folder, so without this check a read-only file would be silently replaced.
* **mtime**: by default the file's modification time becomes *now*, because the
  file did change and sync/backup tools must see that. ``preserve_mtime=True``
  puts the original access and modification times back. The inode change time
  (ctime) and birth time cannot be preserved.
* **Hard links**: the rename gives ``path`` a new inode. Other hard links to the
  old inode keep the old bytes (they are not updated). Symlinks are followed:
  the link's target is replaced and the link itself stays.
* **Concurrent change**: if the original changes (size, mtime or inode) while
  we work on the copy, the write is abandoned and the original left alone.
* Durability against power loss relies on ``fsync`` of the file and the folder;
  killing the process is tested (tests/test_tag_crash.py), power loss is not.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from libtagger.errors import WriteError

#: Hidden temporaries made by :func:`atomic_update`: ``.NAME.libtagger-XXXXXXXX.tmp``.
_TEMP_RE = re.compile(r"^\..*\.libtagger-[a-z0-9_]{8}\.tmp$", re.DOTALL)
_TEMP_MARK = ".libtagger-"
#: Keep temp names well under NAME_MAX (255 bytes) even for very long file names.
_MAX_STEM_BYTES = 180


@dataclass(frozen=True)
class WriteResult:
    """The file's size and modification time (ns) right after a write."""

    size: int
    mtime_ns: int


def _reason_for(exc: OSError, step: str) -> str:
    """One human line for an OSError raised during ``step``."""
    code = exc.errno
    if code == errno.ENOSPC:
        return "disk full: not enough free space to write the tag safely"
    if code == errno.EDQUOT:
        return "disk quota exceeded: not enough space to write the tag safely"
    if code == errno.EROFS:
        return "the file system is read-only"
    if code in (errno.EACCES, errno.EPERM):
        if step == "create":
            return "folder is read-only (no permission to create a file in it)"
        if step == "replace":
            return "permission denied replacing the file (folder is read-only or the file is protected)"
        return f"permission denied ({step})"
    if code == errno.ENOENT:
        return "file vanished while it was being tagged" if step != "stat" else "file not found"
    if code == errno.EISDIR:
        return "is a folder, not a file"
    return f"{os.strerror(code) if code else exc} ({step})"


def find_oserror(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``, looking through mutagen's re-wrapping."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno is not None:
            return e
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        todo.extend([e.__cause__, e.__context__])
    return None


def _temp_prefix(name: str) -> str:
    # Shorten by characters, not bytes, so a multi-byte character is never cut in half.
    while len(os.fsencode(name)) > _MAX_STEM_BYTES:
        name = name[:-1]
    return "." + name + _TEMP_MARK


def _fsync_path(path: str | os.PathLike[str], *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_owner(src: os.stat_result, dst: str) -> None:
    """Give ``dst`` the owner and group of ``src`` where this process may (see module doc)."""
    for uid, gid in ((src.st_uid, src.st_gid), (-1, src.st_gid)):
        try:
            os.chown(dst, uid, gid)
            return
        except PermissionError:
            continue


def check_writable(path: Path, st: os.stat_result) -> None:
    """Refuse read-only files and folders up front, with a clear reason."""
    if not stat.S_ISREG(st.st_mode):
        raise WriteError(path, "not a regular file")
    if not (st.st_mode & 0o222) or not os.access(path, os.W_OK):
        raise WriteError(path, "file is read-only")
    folder = path.parent
    try:
        dst = folder.stat()
    except OSError as exc:
        raise WriteError(path, _reason_for(exc, "stat folder")) from exc
    if not (dst.st_mode & 0o222) or not os.access(folder, os.W_OK | os.X_OK):
        raise WriteError(path, "folder is read-only (no permission to create a file in it)")
    try:
        vfs = os.statvfs(folder)
    except OSError:
        return
    if vfs.f_flag & os.ST_RDONLY:
        raise WriteError(path, "the file system is read-only")
    # A full copy lives beside the original until the rename; ask for that plus slack.
    if vfs.f_bavail * vfs.f_frsize < st.st_size + 64 * 1024:
        raise WriteError(path, "disk full: not enough free space to write the tag safely")


def _copy_metadata(real: Path, st: os.stat_result, tmp: str, *, preserve_mtime: bool,
                   original_times_ns: tuple[int, int] | None) -> None:
    """Give the copy ``tmp`` the original's mode, xattrs, owner and times (see module doc)."""
    try:
        shutil.copystat(real, tmp)  # mode, xattrs/ACLs, flags (times are set below)
    except OSError:
        # e.g. FAT/exFAT music drives cannot store modes: nothing there to preserve
        pass
    _copy_owner(st, tmp)
    atime, mtime = original_times_ns or (st.st_atime_ns, st.st_mtime_ns)
    os.utime(tmp, ns=(atime, mtime) if preserve_mtime else (atime, time.time_ns()))


def _write_error(exc: Exception, given: Path, real: Path, step: str) -> WriteError:
    """The one-line :class:`WriteError` of ``exc``, raised by :func:`atomic_update` during ``step``."""
    os_err = find_oserror(exc)
    if step == "edit" and os_err is None:
        return WriteError(given, f"could not write the tag: {exc}")
    if os_err is None:
        return WriteError(given, f"{exc} ({step})")
    if os_err.errno == errno.ENOENT and step in ("copy", "replace") and not real.exists():
        return WriteError(given, "file vanished while it was being tagged")
    return WriteError(given, _reason_for(os_err, step))


def atomic_update(path: str | os.PathLike[str], edit: Callable[[Path], None], *,
                  preserve_mtime: bool = False,
                  original_times_ns: tuple[int, int] | None = None) -> WriteResult:
    """Apply ``edit`` to a copy of ``path`` and swap the copy in atomically.

    Parameters
    ----------
    path
        The file to change. Symlinks are followed (the target is replaced).
    edit
        ``edit(temp_path)`` changes the copy in place and checks the result; it
        raises to abandon the write (a :class:`WriteError` is passed through, any
        other exception becomes one).
    preserve_mtime
        Keep the original atime/mtime instead of setting mtime to now.
    original_times_ns
        ``(atime_ns, mtime_ns)`` to put back with ``preserve_mtime``, when the
        caller read the file first (reading updates atime); default: as found now.

    Returns
    -------
    WriteResult
        Size and mtime of the file after the swap.

    Raises
    ------
    WriteError
        Anything went wrong; the original file is untouched and no temporary is left.
    """
    given = Path(path)
    try:
        real = Path(os.path.realpath(given))
        st = real.stat()
    except OSError as exc:
        raise WriteError(given, _reason_for(exc, "stat")) from exc
    check_writable(real, st)

    tmp: str | None = None
    step = "create"
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(real.name), suffix=".tmp", dir=real.parent)
        os.close(fd)
        step = "copy"
        shutil.copyfile(real, tmp)
        step = "edit"
        edit(Path(tmp))
        step = "set permissions"
        _copy_metadata(real, st, tmp, preserve_mtime=preserve_mtime, original_times_ns=original_times_ns)
        step = "flush"
        _fsync_path(tmp)
        step = "replace"
        now = real.stat()
        if (now.st_ino, now.st_size, now.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
            raise WriteError(given, "file changed while it was being tagged; left as it was")
        # The copy's size and times are the file's once renamed. Taken now, because nothing may
        # fail after the rename: a WriteError says "the file is as it was", and the journal
        # marks such a write not_written, which undo passes over.
        done = os.stat(tmp)
        os.replace(tmp, real)
        tmp = None
        try:
            _fsync_path(real.parent, directory=True)
        except OSError:
            pass  # some file systems refuse fsync on folders; the rename is done either way
        return WriteResult(size=done.st_size, mtime_ns=done.st_mtime_ns)
    except WriteError:
        raise
    except Exception as exc:
        raise _write_error(exc, given, real, step) from exc
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass  # left for remove_stale_temporaries


def is_temporary(name: str) -> bool:
    """True for names made by :func:`atomic_update`.

    >>> is_temporary(".song.mp3.libtagger-ab12cd_9.tmp"), is_temporary("song.mp3")
    (True, False)
    """
    return bool(_TEMP_RE.match(name))


def remove_stale_temporaries(folder: str | os.PathLike[str], *, recursive: bool = False,
                             min_age_seconds: float = 0.0) -> list[Path]:
    """Delete hidden temporaries left by killed writes in ``folder``.

    Only ``folder`` itself is looked at (one directory listing, cheap enough to
    call before the first write in each folder); ``recursive=True`` walks the
    whole tree below it. ``min_age_seconds`` spares temporaries younger than that.

    Only regular files whose names match ``.NAME.libtagger-XXXXXXXX.tmp`` exactly
    are removed (never symlinks, never anything else). Removing the temporary of
    a write still running elsewhere is safe: that write fails and its original
    stays as it was.

    Returns
    -------
    list of Path
        The files removed, sorted.
    """
    removed: list[Path] = []
    cutoff = time.time() - min_age_seconds
    for top, dirs, files in os.walk(folder):
        if not recursive:
            dirs.clear()
        for name in files:
            if _TEMP_MARK not in name or not is_temporary(name):
                continue
            p = Path(top) / name
            try:
                st = p.lstat()
                if stat.S_ISREG(st.st_mode) and st.st_mtime <= cutoff:
                    p.unlink()
                    removed.append(p)
            except FileNotFoundError:
                continue
    return sorted(removed)
