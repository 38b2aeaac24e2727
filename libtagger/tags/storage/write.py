"""Snapshot, write and restore a file's genre state, each write checked before it lands.

Every write goes through :func:`libtagger.tags.safe_write.atomic_update`: a hidden copy
beside the file is edited, re-read and checked (the genre state reads back as wanted; every
other tag, the cover art and the stream parameters are unchanged), fsynced and renamed over
the original. Only the genre, the marker and a format's own genre places (MP4 ``gnre``, a
WAV's ``IGNR``, an MP3's APEv2 ``Genre``) are touched; bytes can still move (a tag block may be
re-padded, and mutagen rewrites the whole tag it saves, values unchanged). Writing a genre
that is already there (with our marker) does nothing.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Callable

from libtagger.errors import ReadError, WriteError
from libtagger.tags import exact, riff_info
from libtagger.tags.safe_write import WriteResult, atomic_update
from libtagger.tags.storage.base import Storage
from libtagger.tags.storage.snapshots import ABSENT, Snapshot
from libtagger.tags.storage.table import cannot_hold, open_tags, storage_for

#: Called as ``watch(path, checked_copy)`` after a write's copy passed its checks and before it
#: is renamed over the file: the one moment both versions exist (the journal records the
#: changed bytes then, see :mod:`libtagger.tags.exact`). Raising abandons the write.
EditWatcher = Callable[[Path, Path], None]

#: The fields a write sets and checks on every format (a format adds its ``extra_keys``).
_CHECKED = ("genres", "marker", "mp4_gnre")


def read_state(storage: Storage, f: Any, path: Path) -> Snapshot:
    """The genre state of the loaded file ``f`` (at ``path``)."""
    return Snapshot(format=storage.kind, genres=storage.raw(f), has_tags=storage.has_tags(f),
                    marker=storage.marker(f), **storage.extra_state(f, path))


def snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Everything needed to put the file's genre state back exactly (see :class:`Snapshot`).

    Raises
    ------
    ReadError
        The file is missing or its tags cannot be parsed.
    """
    p = Path(path)
    storage = storage_for(p)
    if storage is None:
        if not p.exists():
            raise ReadError(p, "file not found")
        return Snapshot(format=None, genres=[], has_tags=False, marker=None)
    return read_state(storage, open_tags(storage, p), p)


def _stat_result(p: Path) -> WriteResult:
    st = p.stat()
    return WriteResult(size=st.st_size, mtime_ns=st.st_mtime_ns)


def _times(p: Path) -> tuple[int, int] | None:
    """atime/mtime before we read the file (reading it moves atime on most mounts)."""
    try:
        st = p.stat()
    except OSError:
        return None  # reported properly by the read that follows
    return st.st_atime_ns, st.st_mtime_ns


def _stream_info(f: Any) -> tuple:
    info = f.info
    return (round(float(getattr(info, "length", 0.0)), 3), getattr(info, "sample_rate", None),
            getattr(info, "channels", None))


def _apply(p: Path, storage: Storage, target: Snapshot, *, preserve_mtime: bool,
           times: tuple[int, int] | None, watch: EditWatcher | None = None) -> WriteResult:
    """Atomically give ``p`` the genre state ``target``."""

    def edit(tmp: Path) -> None:
        f = open_tags(storage, tmp, WriteError)
        before_others = storage.others(f)
        before_info = _stream_info(f)
        storage.ensure_tags(f)
        storage.set_raw(f, list(target.genres))
        storage.set_marker(f, target.marker)
        storage.set_extra_state(f, target)
        if not target.has_tags and storage.is_empty(f):
            storage.delete_tags(f)
        else:
            storage.save(f, target.id3_version if target.has_tags else None)
        # Read the copy back: the genre state must be the target, nothing else may differ.
        g = open_tags(storage, tmp, WriteError)
        got = read_state(storage, g, tmp)
        for key in (*_CHECKED, *storage.extra_keys):
            if getattr(got, key) != getattr(target, key):
                raise WriteError(p, f"verification failed: {key} reads back as {getattr(got, key)!r}, "
                                    f"expected {getattr(target, key)!r}")
        if storage.others(g) != before_others:
            raise WriteError(p, "verification failed: other tags changed; left as it was")
        if _stream_info(g) != before_info:
            raise WriteError(p, "verification failed: audio stream parameters changed; left as it was")
        if watch is not None:
            watch(p, tmp)

    return atomic_update(p, edit, preserve_mtime=preserve_mtime, original_times_ns=times)


def _apply_bytes(p: Path, recipe: exact.ByteRecipe, *, preserve_mtime: bool, times: tuple[int, int] | None,
                 watch: EditWatcher | None) -> WriteResult:
    """Atomically give ``p`` the exact bytes ``recipe`` rebuilds from it (byte-exact undo);
    ``times``: its :func:`_times` before anything read it."""

    def edit(tmp: Path) -> None:
        try:
            exact.rebuild(recipe, p, tmp)
        except exact.RebuildError as exc:
            raise WriteError(p, f"cannot rebuild the original bytes: {exc}") from exc
        if watch is not None:
            watch(p, tmp)

    return atomic_update(p, edit, preserve_mtime=preserve_mtime, original_times_ns=times)


def _genre_values(genre: str | Sequence[str]) -> tuple[str, ...]:
    """``genre`` (one value, or several in order) as a checked tuple of distinct genres.

    >>> _genre_values("Rock"), _genre_values(("Rock", "Metal"))
    (('Rock',), ('Rock', 'Metal'))
    """
    values = (genre,) if isinstance(genre, str) else tuple(genre)
    for value in values:
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            raise ValueError(f"a genre must be a non-empty string without NUL characters, got {value!r}")
    if not values or len(set(values)) != len(values):
        raise ValueError(f"genres must be one or more distinct values, got {values!r}")
    return values


def write_genre(path: str | os.PathLike[str], genre: str | Sequence[str], *, preserve_mtime: bool = False,
                watch: EditWatcher | None = None) -> WriteResult:
    """Set the genre to ``genre`` (one value, or several) and mark it as written by libtagger.

    Several genres are written as real multi-valued tags: ID3v2.4 ``TCON`` null-separated,
    Vorbis ``GENRE`` repeated, MP4 ``©gen`` and ASF ``WM/Genre`` with several values, an MP3's
    APEv2 ``Genre`` (when there) with several values. Where one value fits, the first is
    written: a WAV's RIFF INFO ``IGNR``, and an ID3v2.3 tag (which keeps its version; v2.3 has
    no multi-value text, see :meth:`~libtagger.tags.storage.id3.ID3Storage.write_target`).

    Parameters
    ----------
    path
        An audio file with an extension in :data:`TAGGABLE_EXTENSIONS`, or whose content is
        a format that holds a tag (:func:`~libtagger.tags.storage.table.storage_for`).
    genre
        The display spelling, e.g. ``"Hip-Hop"``, or several in order, e.g. ``("Rock", "Metal")``.
    preserve_mtime
        Keep the file's modification time (default: it becomes now).
    watch
        See :data:`EditWatcher`; not called when the file already holds this genre.

    Raises
    ------
    WriteError
        Nothing was changed; ``reason`` says why (read-only, disk full, ...).
    """
    p = Path(path)
    genres = _genre_values(genre)
    times = _times(p)  # before any read: finding the storage reads the file's first bytes
    storage = storage_for(p)
    if storage is None:
        if not p.exists():
            raise WriteError(p, "file not found")
        raise cannot_hold(p)
    current = read_state(storage, open_tags(storage, p, WriteError), p)
    try:
        target = storage.write_target(current, genres)
    except riff_info.RiffError as exc:  # a damaged INFO chunk: refused before anything is written
        raise WriteError(p, str(exc)) from exc
    if current == target:
        return _stat_result(p)  # already written by us: leave the file (and its mtime) alone
    return _apply(p, storage, target, preserve_mtime=preserve_mtime, times=times, watch=watch)


def restore(path: str | os.PathLike[str], snap: Snapshot, *, preserve_mtime: bool = False,
            original_bytes: exact.ByteRecipe | None = None, watch: EditWatcher | None = None) -> WriteResult:
    """Put back the genre state recorded by :func:`snapshot` (undo).

    With ``original_bytes`` (the file still holds exactly what the recipe's write produced),
    the file gets back its original bytes, checked against their SHA-256. Otherwise only the
    genre, the marker and a format's own genre places (MP4 ``gnre``, WAV INFO, MP3 APEv2) are
    set back, those the snapshot holds; a tag block that did not exist is removed again if
    nothing else is in it. Restoring a state the file already has does not touch it, so
    restoring twice is harmless. To undo an undo, take a snapshot before restoring and restore
    that. ``watch``: see :data:`EditWatcher`.

    Raises
    ------
    WriteError
        ``snap`` is no :class:`Snapshot` or is for another tag format, or the write failed
        (file untouched).
    """
    p = Path(path)
    if not isinstance(snap, Snapshot):
        raise WriteError(p, "not a genre snapshot this version of libtagger understands")
    times = _times(p)  # before any read: finding the storage reads the file's first bytes
    storage = storage_for(p)
    if storage is None:
        if snap.format is not None:
            raise WriteError(p, f"snapshot holds {snap.format} tags but {cannot_hold(p).reason}")
        if not p.exists():
            raise WriteError(p, "file not found")
        return _stat_result(p)
    if snap.format != storage.kind:
        raise WriteError(p, f"snapshot holds {snap.format} tags but this file holds {storage.kind} tags")
    if original_bytes is not None:
        return _apply_bytes(p, original_bytes, preserve_mtime=preserve_mtime, times=times, watch=watch)
    f = open_tags(storage, p, WriteError)
    current = read_state(storage, f, p)
    target = _restore_target(storage, current, snap)
    same = all(getattr(current, k) == getattr(target, k) for k in (*_CHECKED, *storage.extra_keys))
    # With the genre state already right, a write is only needed to remove a tag
    # block the file did not have, and only if nothing else is in it.
    if same and (target.has_tags or not current.has_tags or not storage.is_empty(f)):
        return _stat_result(p)
    return _apply(p, storage, target, preserve_mtime=preserve_mtime, times=times, watch=watch)


def _restore_target(storage: Storage, current: Snapshot, snap: Snapshot) -> Snapshot:
    """The state restoring ``snap`` gives a file now in state ``current``."""
    # A format's own fields only when journaled (a snapshot from before a field existed leaves it alone).
    own = {k: getattr(snap, k) for k in storage.extra_keys if getattr(snap, k) is not ABSENT}
    version = snap.id3_version if snap.has_tags and snap.id3_version else current.id3_version
    return replace(current, genres=list(snap.genres), marker=snap.marker, mp4_gnre=snap.mp4_gnre,
                   has_tags=snap.has_tags, id3_version=version, **own)
