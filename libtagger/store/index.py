"""The SQLite index of every file libtagger has seen (through sqlite-utils).

Tables (see README.md, "The index"):

``tracks``
    One row per file: path, size, mtime, audio fingerprint, duration, format,
    status, error, genre, confidence, runner-up, previous genre, whether
    libtagger wrote the tag, model id, times; the genres a person set in the file, its
    artist, album artist and album.
``segments``
    One row per analysed 30-s window: start, end, probabilities, and the
    features (and taggram) it was classified from, so that a new model can
    re-classify without decoding.
``runs``
    One row per ``scan`` or ``undo``: when, arguments, counts, how it ended, and the
    process (pid and host) that ran it, so that a run whose process is gone is never
    taken for one still going.
``journal``
    The tag state of a file before each libtagger write, so that ``undo`` can
    put it back.

Every change to one file is one transaction, and the database runs in WAL
mode with ``synchronous=FULL``: a run killed at any moment leaves the index
consistent, and ``libtagger query`` can read while a scan writes.

This is the only module that writes SQL: the rest of libtagger asks through named
methods that return records (:class:`~libtagger.store.records.TrackRow`, :class:`FileState`,
:class:`JournalEntry`, :class:`IndexCounts`) and filters with a :class:`TrackFilter`. The
``tracks`` table is made from :class:`~libtagger.store.records.TrackRow`'s fields.

Example::

    >>> index = Index(":memory:")
    >>> index.tracks_count()
    0
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import sqlite_utils

from libtagger.errors import IndexFileError
from libtagger.store.records import TrackRow, check_columns, column_types

SCHEMA_VERSION = 1

#: libtagger's mark in the SQLite header (``PRAGMA application_id``, bytes 68-71: ``LTAG``),
#: set when an index is created: the proof that a file is an index and not another program's.
APPLICATION_ID = int.from_bytes(b"LTAG", "big")

#: What every libtagger index held before the mark existed (made in one transaction since the
#: first release). A file without the mark is taken for an older index only when it has all of
#: these tables and a ``schema_version`` row in ``meta``; opened for writing, it gets the mark.
PRE_MARK_TABLES = frozenset({"meta", "tracks", "runs", "journal"})

#: Why a command that only reads finds nothing to read.
NO_INDEX_YET = "no index yet (run `libtagger scan` first, or pass --index)"

#: Final statuses a track can hold in the index (``unchanged`` exists only in run reports).
STATUSES = ("tagged", "would-tag", "kept", "unsure", "rejected", "error")

#: Columns of ``runs`` and ``journal`` added after the first release, with their types: an index
#: made by an older libtagger gains them in place when it is opened (ALTER TABLE, never a
#: rebuild). runs ``pid``/``host``: the process that ran it. journal ``after`` (JSON snapshot of
#: the state the write left), ``exact`` (JSON of a :class:`libtagger.tags.exact.ByteRecipe`:
#: hashes, sizes, pieces) and ``exact_bytes`` (its literal old bytes): what byte-exact undo needs.
#: journal ``not_written``: why a write failed and left the file as it was (NULL: it did not fail
#: so, or an older libtagger journaled it); ``undo`` passes such entries over.
#: segments ``pulse``: the segment's pulse clarity (the music detector's beat check; NULL in rows
#: analysed before it). The ``tracks`` columns come from :class:`~libtagger.store.records.TrackRow` (see
#: :func:`tracks_schema`).
ADDED_COLUMNS: dict[str, dict[str, type]] = {
    "runs": {"pid": int, "host": str},
    "journal": {"after": str, "exact": str, "exact_bytes": bytes, "not_written": str},
    "segments": {"pulse": float}}

#: The last ``tracks`` column of a new index's CREATE statement (history, never edited): every
#: later field of TrackRow is added with ALTER TABLE, on a new index too, as it always was.
LAST_CREATED_TRACK_COLUMN = "content_check"

#: The ``tracks`` columns older libtaggers added in place, in the order they added them (history,
#: never edited): an index lacking some gains them in this order, then any later field of
#: TrackRow in the record's order.
TRACK_COLUMNS_ADDED_EARLIER = ("reason", "detector_id", "person_genres", "artist", "albumartist",
                               "album", "tags_read_at", "content_check")


def tracks_schema() -> tuple[dict[str, type], dict[str, type]]:
    """The ``tracks`` table, derived from :class:`~libtagger.store.records.TrackRow`'s fields.

    Returns the columns of the CREATE statement and those added in place (on every index,
    in the order added), each with its type.

    >>> created, added = tracks_schema()
    >>> list(created)[:3], list(added)[:2]
    (['id', 'path', 'path_bytes'], ['reason', 'detector_id'])
    """
    types = column_types()
    names = list(types)
    created = names[:names.index(LAST_CREATED_TRACK_COLUMN) + 1]
    order = {name: i for i, name in enumerate(TRACK_COLUMNS_ADDED_EARLIER)}
    added = sorted((n for n in names if n not in created or n in order),
                   key=lambda n: (order.get(n, len(order)), names.index(n)))
    return {n: types[n] for n in created}, {n: types[n] for n in added}


#: Width of a stored taggram row: the MSD_musicnn tags (``len(libtagger.audio.musicnn.TAGS)``).
TAGGRAM_WIDTH = 50


def now() -> str:
    """The current UTC time as ISO 8601 text (what every ``*_at`` column holds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def path_key(path: str | bytes | os.PathLike) -> tuple[str, bytes | None]:
    """The text stored in ``tracks.path``, and the raw bytes when the name is not valid UTF-8.

    SQLite text must be valid UTF-8, but Linux file names are bytes. A name that
    does not decode is stored readable (``\\xff`` escapes) with its exact bytes
    in ``path_bytes``, so the file can still be found again.

    >>> path_key("/music/a.mp3")
    ('/music/a.mp3', None)
    >>> path_key(b"/music/\\xff.mp3")
    ('/music/\\\\xff.mp3', b'/music/\\xff.mp3')
    """
    raw = os.fsencode(path)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), raw


def real_path(row: Mapping[str, Any]) -> str:
    """The file-system path of an SQL ``tracks`` row (inverse of :func:`path_key`; a
    :class:`~libtagger.store.records.TrackRow` has it as ``.real_path``)."""
    raw = row.get("path_bytes")
    return os.fsdecode(raw) if raw else row["path"]


def pack_array(array: np.ndarray | None, dtype: str) -> bytes | None:
    return None if array is None else np.ascontiguousarray(array, dtype=dtype).tobytes()


def unpack_array(blob: bytes | None, dtype: str, width: int) -> np.ndarray | None:
    """Inverse of :func:`pack_array`: shape (n, width)."""
    if blob is None:
        return None
    return np.frombuffer(blob, dtype=dtype).reshape(-1, width)


class FileState(NamedTuple):
    """What a scan needs to know of an indexed file before opening it (see :meth:`Index.file_states`)."""

    track_id: int
    size: int | None
    mtime_ns: int | None
    status: str | None
    model_id: str | None
    confidence: float | None
    detector_id: str | None = None


@dataclass(frozen=True)
class JournalEntry:
    """One ``journal`` row: a file's tag state before libtagger changed it (see :meth:`Index.journal_entries`)."""

    id: int
    track_id: int | None
    run_id: int
    path: str  # as stored, see path_key
    path_bytes: bytes | None
    action: str  # "write" (a scan set a genre) or "undo" (an undo restored a state)
    at: str
    before: dict[str, Any]  # a libtagger.tags.storage.Snapshot as JSON (Snapshot.from_json reads it)
    genre: str | None  # the genre written (None for an undo)
    completed: bool  # False: the run stopped or the write failed after journaling
    after: dict[str, Any] | None = None  # the Snapshot right after the write, as JSON (None: older entry)
    exact: str | None = None  # JSON of the write's ByteRecipe (None: none recorded)
    exact_bytes: bytes | None = None  # the recipe's literal old bytes
    #: why the write failed with the file left as it was (None: written, or stopped mid-write by a
    #: crash or a kill, when the file may hold either state, or journaled by an older libtagger)
    not_written: str | None = None

    @property
    def real_path(self) -> str:
        """The file-system path the entry was journaled for."""
        return os.fsdecode(self.path_bytes) if self.path_bytes else self.path

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> JournalEntry:
        values = {f.name: row.get(f.name) for f in fields(cls)}
        return cls(**values | {"before": json.loads(values["before"]),
                               "after": json.loads(values["after"]) if values["after"] else None,
                               "completed": bool(values["completed"])})


@dataclass(frozen=True)
class TrackFilter:
    """Which tracks :meth:`Index.tracks_matching` returns; every field that is set must match.

    The values are taken as they are stored (:mod:`libtagger.store.query` parses what
    a person types into them).
    """

    genre: str | None = None  # the display spelling, e.g. "Hip-Hop"
    status: str | None = None
    min_confidence: float | None = None  # inclusive
    max_confidence: float | None = None  # inclusive
    path_glob: str | None = None  # an SQLite GLOB over the whole stored path, e.g. "*/Jazz/*"
    missing: bool | None = None  # True: only files that are gone; False: only present ones
    with_previous_genre: bool = False  # only tracks with both a previous genre and a verdict
    #: only those whose previous genre is not the very text of the verdict (the ones that may
    #: disagree: "Rock; Alternative" vs "Rock" still needs libtagger.genres to tell)
    previous_genre_differs: bool = False
    reason: str | None = None  # a rejected track's reason, e.g. "not music: speech"
    reason_contains: str | None = None  # a reason holding this text, ASCII case ignored ("Speech")
    album: str | None = None  # the album tag, exactly but ASCII case ignored ("illmatic")
    artist: str | None = None  # the artist or album artist tag, exactly but ASCII case ignored


@dataclass(frozen=True)
class LearningRow:
    """One present, analysed track whose file holds genres a person set (see :meth:`Index.learning_rows`).

    ``features``: shape (n_segments, 57), float32, one row per analysed segment in order;
    ``taggrams``: one array of shape (n_patches, 50), float32, per segment, or None when the
    track's segments were stored without taggrams.
    """

    track_id: int
    path: str  # the file-system path (see real_path)
    person_genres: list[str]  # never empty
    artist: str | None
    albumartist: str | None
    album: str | None
    features: np.ndarray
    taggrams: list[np.ndarray] | None
    status: str | None = None  # the track's scan status (``rejected``: the music detector's no)


class GroupFields(NamedTuple):
    """The fields of a track that place it in an album and an artist group (and its run)."""

    id: int
    path: str
    path_bytes: bytes | None
    run_id: int | None
    artist: str | None
    albumartist: str | None
    album: str | None
    compilation: int | None

    @property
    def real_path(self) -> str:
        """The file-system path (as :attr:`TrackRow.real_path <libtagger.store.records.TrackRow.real_path>`)."""
        return os.fsdecode(self.path_bytes) if self.path_bytes else self.path


class _Database(sqlite_utils.Database):
    """sqlite-utils' Database whose outermost transactions begin ``IMMEDIATE``.

    A deferred transaction that reads before it writes (``if_not_exists`` checks, sqlite-utils'
    ``update``, which looks the row up first) cannot wait for another writer: when that writer
    commits in between, SQLite refuses the upgrade at once with "database is locked", whatever
    the busy timeout. Two connections writing one index meet this: beets' threaded import (one
    album's verdicts noted while the next album opens the index) lost an album's genres so.
    ``BEGIN IMMEDIATE`` takes the write lock first, waiting up to the busy timeout. Nested
    blocks are savepoints, as in sqlite-utils.

    ``BEGIN`` runs inside the ``try`` (sqlite-utils runs it just before): Ctrl-C, SIGTERM or
    SIGHUP landing right after it is rolled back here instead of leaving a transaction nobody
    ends, inside which the run's last row would be written and then lost on close.
    """

    @contextlib.contextmanager
    def atomic(self) -> Generator[sqlite_utils.Database, None, None]:
        if self.conn.in_transaction:
            with super().atomic() as db:
                yield db
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            yield self
        except BaseException:
            self.conn.rollback()  # a no-op when the error already ended the transaction
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.rollback()
                raise


class IndexCounts(NamedTuple):
    """Totals for ``libtagger stats`` (present tracks only, except ``missing``)."""

    by_genre: dict[str | None, int]  # most common first; None: tracks without a verdict
    by_status: dict[str, int]  # most common first
    missing: int
    runs: int
    by_reason: dict[str, int] | None = None  # rejected tracks per reason, most common first
    #: per context level (album, artist): (tracks pooled with their group, of those whose genre
    #: differs from their own verdict: the changes the library context made)
    by_context: dict[str, tuple[int, int]] | None = None


def _track_where(wanted: TrackFilter) -> tuple[str, list[Any]]:
    """The SQL condition and parameters of a :class:`TrackFilter` (values always as parameters)."""
    where, params = ["1"], []
    for column, op, value in (("genre", "=", wanted.genre), ("status", "=", wanted.status),
                              ("confidence", ">=", wanted.min_confidence),
                              ("confidence", "<=", wanted.max_confidence),
                              ("path", "glob", wanted.path_glob), ("reason", "=", wanted.reason)):
        if value is not None:
            where.append(f"{column} {op} ?")
            params.append(value)
    if wanted.missing is not None:
        where.append("missing = ?")
        params.append(int(wanted.missing))
    if wanted.with_previous_genre or wanted.previous_genre_differs:
        where.append("previous_genre is not null and genre is not null")
    if wanted.previous_genre_differs:
        where.append("previous_genre != genre")
    if wanted.reason_contains is not None:
        where.append("instr(lower(reason), lower(?)) > 0")
        params.append(wanted.reason_contains)
    if wanted.album is not None:
        where.append("lower(album) = lower(?)")
        params.append(wanted.album)
    if wanted.artist is not None:
        where.append("(lower(artist) = lower(?) or lower(albumartist) = lower(?))")
        params.extend([wanted.artist, wanted.artist])
    return " and ".join(where), params


def check_index_file(path: str | os.PathLike) -> str:
    """What the file at ``path`` is, read without writing a byte; raises when it is no index.

    Returns ``"absent"``, ``"empty"`` (0 bytes, or an SQLite file without any table: a new
    index may be made there), ``"older"`` (an index of a libtagger from before the mark, see
    :data:`PRE_MARK_TABLES`) or ``"libtagger"``.

    Raises
    ------
    IndexFileError
        A folder, a file that is not SQLite, another program's SQLite database, a truncated
        or unreadable file: nothing is written to it.
    """
    path = Path(path)
    problem = _header_problem(path)
    if problem is not None:
        raise IndexFileError(path, problem)
    if not path.exists():
        return "absent"
    if path.stat().st_size == 0:
        return "empty"
    try:
        conn = _checking_connection(path)
    except sqlite3.Error as exc:
        raise IndexFileError(path, _sqlite_problem(exc)) from None
    try:
        return _index_kind(conn, path)
    except sqlite3.DatabaseError as exc:  # a damaged page 1 or schema
        raise IndexFileError(path, _sqlite_problem(exc)) from None
    finally:
        conn.close()


def index_writable(path: str | os.PathLike) -> bool:
    """Whether the index at ``path`` can be opened for writing (False on a read-only file system).

    SQLite writes ``PATH-wal`` and ``PATH-shm`` beside the file, so its folder must take
    writes too.
    """
    path = Path(path)
    if not os.access(path.parent if str(path.parent) else ".", os.W_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


def _header_problem(path: Path) -> str | None:
    """Why the file at ``path`` cannot be an index, told from its first 100 bytes (None: it may be).

    Read with ``open``, so that SQLite never opens a file that is not a database.
    """
    if path.is_dir():
        return "is a folder, not an index file"
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
            size = os.fstat(handle.fileno()).st_size
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot read the index ({exc.strerror or exc})"
    if not header:
        return None  # empty: a new index goes there
    if not header.startswith(b"SQLite format 3\x00"):
        return "not a libtagger index (not an SQLite database); left as it was"
    if len(header) < 100:
        return f"the index is damaged: truncated to {size} bytes"
    return _truncation(path, header, size)


def _truncation(path: Path, header: bytes, size: int) -> str | None:
    """Whether the file is shorter than the page count in its header says."""
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The count holds only when the change counter (24) equals the version-valid-for number (92)
    # (SQLite file format 1.3.7); with frames waiting in PATH-wal, the newest page count is there.
    if not pages or header[24:28] != header[92:96] or _wal_pending(path):
        return None
    if size < pages * page_size:
        return f"the index is damaged: truncated ({size} of its {pages * page_size} bytes)"
    return None


def _wal_pending(path: Path) -> bool:
    try:
        return os.path.getsize(f"{path}-wal") > 0
    except OSError:
        return False


def _read_only_connection(path: Path) -> sqlite3.Connection:
    """A connection that cannot write: ``mode=ro``, else ``immutable=1`` on a read-only file system.

    A ``mode=ro`` reader of a WAL database needs ``PATH-shm``; where that file is absent and
    cannot be made (a read-only mount), SQLite refuses to open it, and only ``immutable=1``
    reads it (ignoring a write-ahead log a crashed run left behind, which there nothing can
    write back anyway).
    """
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("select count(*) from sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        if index_writable(path):
            raise
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)


def _checking_connection(path: Path) -> sqlite3.Connection:
    """A connection for :func:`check_index_file` that makes no file beside ``path``.

    A ``mode=ro`` reader of a WAL database leaves ``PATH-wal`` and ``PATH-shm`` behind. With
    no ``PATH-wal``, the file holds the whole database (no pages waiting), and ``immutable=1``
    reads it as it is; with one, those files are there already and ``mode=ro`` uses them.
    """
    if os.path.exists(f"{path}-wal"):
        return _read_only_connection(path)
    return sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)


def _index_kind(conn: sqlite3.Connection, path: Path) -> str:
    """``"libtagger"``, ``"older"`` or ``"empty"`` (see :func:`check_index_file`); raises otherwise."""
    application_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if application_id == APPLICATION_ID:
        newer = _newer_schema(conn)
        if newer is not None:
            # Its rows may mean what this version cannot know, and opening it would stamp it
            # back to this version's schema: refused before anything is read or written.
            raise IndexFileError(path, f"made by a newer libtagger (index schema {newer}, this libtagger reads "
                                       f"up to {SCHEMA_VERSION}): upgrade libtagger to use it; left as it was")
        return "libtagger"
    objects = conn.execute("select type, name from sqlite_master").fetchall()
    tables = sorted(name for kind, name in objects if kind == "table")
    if application_id == 0 and not objects:
        return "empty"
    if application_id == 0 and PRE_MARK_TABLES <= set(tables) and _stated_schema(conn) is not None:
        return "older"
    if tables:
        what = "tables " + ", ".join(tables[:4]) + (", ..." if len(tables) > 4 else "")
    else:
        what = f"application id {application_id:#x}"
    raise IndexFileError(path, f"not a libtagger index (another program's SQLite database: {what});"
                               " left as it was")


def _stated_schema(conn: sqlite3.Connection) -> str | None:
    """The ``schema_version`` value in an index's ``meta``; None without one (or without such a table)."""
    try:
        row = conn.execute("select value from meta where key = 'schema_version'").fetchone()
    except sqlite3.OperationalError:  # a meta table of another shape: another program's
        return None
    return None if row is None else str(row[0])


def _newer_schema(conn: sqlite3.Connection) -> int | None:
    """The schema version an index states when it is newer than :data:`SCHEMA_VERSION`, else None."""
    stated = _stated_schema(conn)
    return int(stated) if stated is not None and stated.isdigit() and int(stated) > SCHEMA_VERSION else None


def index_error_reason(exc: sqlite3.Error) -> str:
    """An SQLite error met on an index, in a user's words (the reason of a one-line message).

    >>> index_error_reason(sqlite3.OperationalError("database is locked"))
    'database is locked'
    """
    if _is_damage(exc):
        return (f"the index is damaged ({exc}); move it aside and scan again, "
                "or try sqlite3's .recover on it")
    return str(exc)


def _is_damage(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB


def _sqlite_problem(exc: sqlite3.Error) -> str:
    """The reason of an SQLite error met while checking a file (see :func:`check_index_file`)."""
    return index_error_reason(exc) if _is_damage(exc) else f"cannot read the index ({exc})"


class Index:
    """A libtagger index file. Creates the tables on first use.

    Opening checks the file first (:func:`check_index_file`): another program's database, a
    damaged or truncated file or a folder raises :class:`~libtagger.errors.IndexFileError`
    before anything is written. An index of an older libtagger gains the mark and any new
    columns in place.

    Parameters
    ----------
    path : path-like or ":memory:"
        The SQLite file; its folder is created when missing.
    create : bool
        Make a new index when the file is absent or empty (False: raise IndexFileError).
    read_only : bool
        Open without writing (implies ``create=False``): no WAL switch, no new columns, and
        the file may sit on a read-only file system.
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True, read_only: bool = False) -> None:
        if str(path) != ":memory:":
            self.path: Path | None = Path(path)
            kind = check_index_file(self.path)
            if kind in ("absent", "empty") and (read_only or not create):
                raise IndexFileError(self.path, NO_INDEX_YET)
            if read_only:
                self.db = sqlite_utils.Database(_read_only_connection(self.path))
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = _Database(path)
        else:
            self.path = None
            self.db = _Database(memory=True)
        try:
            self._set_up()
        except BaseException:
            # A page damaged past the header fails here: closed at once, SQLite removes its
            # PATH-wal and PATH-shm instead of leaving them for the garbage collector.
            self.db.close()
            raise

    def _set_up(self) -> None:
        self.db.conn.execute("PRAGMA busy_timeout = 30000")
        if self.path is not None:
            self.db.enable_wal()
        # FULL: the journal row of a file's original tags must be on disk before the file changes.
        self.db.conn.execute("PRAGMA synchronous = FULL")
        self.db.conn.execute("PRAGMA foreign_keys = ON")
        self._create_tables()

    def close(self) -> None:
        self.db.close()

    # -- schema ---------------------------------------------------------------------------

    def _create_tables(self) -> None:
        db = self.db
        with db.atomic():
            db["runs"].create({
                "id": int, "kind": str, "started_at": str, "finished_at": str, "outcome": str,
                "pid": int, "host": str, "arguments": str, "model_id": str, "dry_run": int,
                "counts": str,
            }, pk="id", if_not_exists=True)
            created, added = tracks_schema()
            db["tracks"].create(created, pk="id", not_null={"path"}, defaults={"written": 0, "missing": 0},
                                foreign_keys=[("run_id", "runs", "id")], if_not_exists=True)
            db["segments"].create({
                "track_id": int, "idx": int, "start": float, "end": float, "genre": str,
                "confidence": float, "probabilities": str, "features": bytes, "taggram": bytes,
            }, pk=("track_id", "idx"), foreign_keys=[("track_id", "tracks", "id")],
                if_not_exists=True)
            db["journal"].create({
                "id": int, "track_id": int, "run_id": int, "path": str, "path_bytes": bytes,
                "action": str, "at": str, "before": str, "genre": str, "completed": int,
                "after": str, "exact": str, "exact_bytes": bytes,
            }, pk="id", foreign_keys=[("track_id", "tracks", "id"), ("run_id", "runs", "id")],
                if_not_exists=True)
            db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
            db["meta"].upsert({"key": "schema_version", "value": str(SCHEMA_VERSION)}, pk="key")
            # libtagger's mark, in the same transaction as the tables (an older index gets it here)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            for table, columns in {"tracks": added, **ADDED_COLUMNS}.items():
                have = db[table].columns_dict
                for column, kind in columns.items():
                    if column not in have:
                        db[table].add_column(column, kind)
            db["tracks"].create_index(["path"], unique=True, if_not_exists=True)
            db["tracks"].create_index(["fingerprint"], if_not_exists=True)
            db["tracks"].create_index(["genre"], if_not_exists=True)
            db["tracks"].create_index(["status"], if_not_exists=True)
            # `stats` and `query --missing` at 100,000 tracks: counted from these covering
            # indexes instead of full scans of tracks (benchmarks/bench_index.py).
            db["tracks"].create_index(["missing", "genre"], if_not_exists=True)
            db["tracks"].create_index(["missing", "status", "reason"], if_not_exists=True)
            db["journal"].create_index(["track_id"], if_not_exists=True)
            db["journal"].create_index(["run_id"], if_not_exists=True)

    # -- runs -----------------------------------------------------------------------------

    def start_run(self, *, kind: str, arguments: dict[str, Any], model_id: str | None = None,
                  dry_run: bool = False) -> int:
        """Record the start of a run; returns its id."""
        with self.db.atomic():
            table = self.db["runs"].insert({
                "kind": kind, "started_at": now(), "outcome": "running", "pid": os.getpid(),
                "host": socket.gethostname(),
                "arguments": json.dumps(arguments, default=str), "model_id": model_id,
                "dry_run": int(dry_run),
            })
        return int(table.last_pk)

    def finish_run(self, run_id: int, *, outcome: str, counts: dict[str, int]) -> None:
        """Record how a run ended, in a transaction of its own.

        Called from a ``finally``: a transaction an interrupt left open (``atomic()`` closes its
        own gap; this guards any other) would hold the run row and lose it on close, leaving the
        run ``running`` (seen once in CI). Its half-done work is rolled back here first, as
        closing would have done.
        """
        if self.db.conn.in_transaction:
            self.db.conn.rollback()
        with self.db.atomic():
            self.db["runs"].update(run_id, {"finished_at": now(), "outcome": outcome,
                                            "counts": json.dumps(counts)})

    def mark_abandoned_runs(self) -> int:
        """Runs still marked ``running`` were killed (we hold the lock): call them ``interrupted``.

        Their ``finished_at`` stays empty: nobody saw them end (``kill -9``, power loss, the
        OOM killer). Returns how many were marked.
        """
        with self.db.atomic():
            cursor = self.db.execute(
                "update runs set outcome = 'interrupted' where outcome = 'running'")
        return cursor.rowcount

    def runs(self, limit: int = 20, *, lock_held: bool = True) -> list[dict[str, Any]]:
        """The latest runs, newest first, as the reader should see them.

        A row still marked ``running`` whose run cannot be going on any more is shown as
        ``interrupted`` (the index itself is left as it is; the next run marks it): when
        ``lock_held`` is False (every run holds the index lock from start to finish; see
        :func:`libtagger.store.lock.run_lock_held`), or when it ran on this host and its
        process is gone.
        """
        rows = list(self.db.query("select * from runs order by id desc limit ?", [limit]))
        for row in rows:
            if row["outcome"] == "running" and (not lock_held or _process_gone(row)):
                row["outcome"] = "interrupted"
        return rows

    # -- tracks ---------------------------------------------------------------------------

    def tracks_count(self) -> int:
        return self.db["tracks"].count

    def track_by_path(self, path: str | bytes | os.PathLike) -> TrackRow | None:
        text, _ = path_key(path)
        rows = list(self.db.query("select * from tracks where path = ?", [text]))
        return TrackRow.from_row(rows[0]) if rows else None

    def track_of_file(self, path: str | bytes | os.PathLike) -> TrackRow | None:
        """The track of the file at ``path``, whichever path to it the index knows.

        The track indexed under ``path`` itself; else the present track whose path reaches the
        same file (same device and inode): a scan indexes a file under the first path that
        reaches it, so ``Music/Jazz/a.flac`` may be indexed as the symbolic link
        ``Music/Fav/a.flac`` to it, or the other way round. Only tracks of the file's size
        or name are compared (one query, then a ``stat`` of each), so that a lookup in a
        large library stays cheap; a file both renamed and changed in size since its last
        scan is not found this way. None when no track is found or the file cannot be read.
        """
        row = self.track_by_path(path)
        if row is not None:
            return row
        try:
            wanted = os.stat(path)
        except OSError:
            return None
        name = "/" + path_key(os.path.basename(os.fsencode(path)))[0]
        for found in self.db.query(
                "select * from tracks where missing = 0 and (size = ? or substr(path, -?) = ?) "
                "order by id", [wanted.st_size, len(name), name]):
            try:
                st = os.stat(real_path(found))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (wanted.st_dev, wanted.st_ino):
                return TrackRow.from_row(found)
        return None

    def track(self, track_id: int) -> TrackRow:
        """The ``tracks`` row of ``track_id`` (sqlite_utils.db.NotFoundError when there is none).

        One query: sqlite-utils' ``Table.get`` reads the table's schema first, which made
        a no-op re-run over 100,000 unchanged files spend ~1 ms per file here.
        """
        cursor = self.db.execute("select * from tracks where id = ?", [track_id])
        row = cursor.fetchone()
        if row is None:
            raise sqlite_utils.db.NotFoundError(track_id)
        return TrackRow.from_row(dict(zip((c[0] for c in cursor.description), row)))

    def file_states(self) -> dict[str, FileState]:
        """``{path: FileState}`` for every track (``path`` as stored, see :func:`path_key`).

        One query, so that a re-run over an unchanged library needs no other.
        """
        return {row[0]: FileState(*row[1:]) for row in self.db.execute(
            "select path, id, size, mtime_ns, status, model_id, confidence, detector_id from tracks")}

    def save_track(self, path: str | bytes | os.PathLike, values: Mapping[str, Any],
                   segments: list[dict[str, Any]] | None = None) -> int:
        """Insert or update the row of ``path`` (and replace its segments) in one transaction.

        ``values``: the columns to set, by :class:`~libtagger.store.records.TrackRow` field
        name (see :meth:`TrackRow.changes <libtagger.store.records.TrackRow.changes>`); the
        others keep what they hold (their defaults in a new row). TypeError on an unknown name.
        """
        check_columns(values)
        text, raw = path_key(path)
        row = {**values, "path": text, "path_bytes": raw, "updated_at": now(), "missing": 0}
        with self.db.atomic():
            existing = self.track_by_path(text)
            if existing is None:
                track_id = int(self.db["tracks"].insert(row).last_pk)
            else:
                track_id = existing.id
                self.db["tracks"].update(track_id, row)
            if segments is not None:
                self.db.execute("delete from segments where track_id = ?", [track_id])
                self.db["segments"].insert_all({**s, "track_id": track_id} for s in segments)
        return track_id

    def update_track(self, track_id: int, values: Mapping[str, Any]) -> None:
        """Set some columns of a track (by TrackRow field name, as for :meth:`save_track`)."""
        check_columns(values)
        with self.db.atomic():
            self.db["tracks"].update(track_id, {**values, "updated_at": now()})

    def move_track(self, track_id: int, new_path: str | bytes | os.PathLike, *, size: int,
                   mtime_ns: int) -> None:
        """Point an existing analysis at the path a file was moved or renamed to."""
        text, raw = path_key(new_path)
        with self.db.atomic():
            self.db["tracks"].update(track_id, {"path": text, "path_bytes": raw, "size": size,
                                                "mtime_ns": mtime_ns, "missing": 0,
                                                "updated_at": now()})

    def mark_missing(self, track_ids: Iterable[int]) -> int:
        ids = list(track_ids)
        with self.db.atomic():
            for chunk in _chunks(ids, 500):
                self.db.execute(
                    f"update tracks set missing = 1, updated_at = ? where id in ({','.join('?' * len(chunk))})",
                    [now(), *chunk])
        return len(ids)

    def missing_candidates(self, fingerprints: Iterable[str]) -> dict[str, list[TrackRow]]:
        """Tracks with one of these fingerprints whose file is gone: ``{fingerprint: rows}``, by id.

        Every such track, not one per fingerprint: a library holds the same audio more than once
        (two copies of a file, a WAV beside its FLAC), and each copy that moved has a track of its own.
        """
        found: dict[str, list[TrackRow]] = {}
        for chunk in _chunks(list(set(fingerprints)), 500):
            for row in self.db.query(
                    f"select * from tracks where fingerprint in ({','.join('?' * len(chunk))}) order by id", chunk):
                if row["missing"] or not os.path.lexists(real_path(row)):
                    found.setdefault(row["fingerprint"], []).append(TrackRow.from_row(row))
        return found

    def segments(self, track_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("select * from segments where track_id = ? order by idx", [track_id]))

    def present_path(self, track_id: int) -> str | None:
        """Where the track's file is now, or None when the track is unknown or its file is missing.

        A scan that recognises a moved file points its track at the new path, so this
        finds a file under the name it has now.
        """
        rows = list(self.db.query("select path, path_bytes, missing from tracks where id = ?", [track_id]))
        return real_path(rows[0]) if rows and not rows[0]["missing"] else None

    def tracks_matching(self, wanted: TrackFilter = TrackFilter(), *,
                        limit: int | None = None) -> list[TrackRow]:
        """The ``tracks`` rows that match ``wanted``, ordered by path (the first ``limit`` ones)."""
        where, params = _track_where(wanted)
        sql = f"select * from tracks where {where} order by path"
        if limit is not None:
            sql, params = f"{sql} limit ?", [*params, int(limit)]
        return [TrackRow.from_row(row) for row in self.db.query(sql, params)]

    def learning_rows(self, *, taggram_width: int = TAGGRAM_WIDTH) -> Iterator[LearningRow]:
        """Every present track with person-set genres and stored features, ordered by path.

        What ``libtagger learn`` learns from: the genres people gave their files, with the
        features and taggrams the scan stored for each segment (unpacked). Lazy: one track's
        segments are read at a time.
        """
        rows = list(self.db.query(
            "select id, path, path_bytes, person_genres, artist, albumartist, album, status from tracks "
            "where missing = 0 and person_genres is not null order by path"))
        for row in rows:
            segs = self.segments(row["id"])
            if not segs or any(s["features"] is None for s in segs):
                continue
            features = np.vstack([np.frombuffer(s["features"], dtype="float32") for s in segs])
            taggrams = None
            if all(s["taggram"] is not None for s in segs):
                taggrams = [unpack_array(s["taggram"], "float16", taggram_width).astype(np.float32)
                            for s in segs]
            genres = json.loads(row["person_genres"])
            if not genres:
                continue
            yield LearningRow(row["id"], real_path(row), genres, row["artist"], row["albumartist"],
                              row["album"], features, taggrams, row["status"])

    def voting_rows(self, model_id: str, *, ids: Iterable[int] | None = None) -> list[TrackRow]:
        """Present tracks with an own verdict of model ``model_id`` that can lend it to their group.

        Rejected and failed tracks lend nothing (no own verdict, or audio that is not what the
        verdict was about); ordered by id. What :mod:`libtagger.scan.library_context` pools.
        ``ids``: only those tracks (read in chunks).
        """
        where = ("missing = 0 and own_probabilities is not null and model_id = ? "
                 "and status not in ('rejected', 'error')")
        if ids is None:
            return [TrackRow.from_row(row) for row in self.db.query(
                f"select * from tracks where {where} order by id", [model_id])]
        rows: list[TrackRow] = []
        for chunk in _chunks(sorted(set(ids)), 500):
            rows += [TrackRow.from_row(row) for row in self.db.query(
                f"select * from tracks where {where} and id in ({', '.join('?' * len(chunk))})",
                [model_id, *chunk])]
        return sorted(rows, key=lambda r: r.id or 0)

    def voting_group_fields(self, model_id: str) -> list[GroupFields]:
        """The voting rows of :meth:`voting_rows`, only the fields that place them in a group:
        plain tuples, cheap enough for 100,000 tracks."""
        return [GroupFields(*row) for row in self.db.execute(
            "select id, path, path_bytes, run_id, artist, albumartist, album, compilation from tracks "
            "where missing = 0 and own_probabilities is not null and model_id = ? "
            "and status not in ('rejected', 'error') order by id", [model_id])]

    def run_saved_tracks(self, run_id: int) -> bool:
        """Whether any track row was saved by run ``run_id`` (a no-op run saves none)."""
        return self.db.execute("select 1 from tracks where run_id = ? limit 1", [run_id]).fetchone() is not None

    def tracks_without_own_verdict(self, model_id: str) -> list[int]:
        """Ids of present tracks judged by ``model_id`` that lack the own-verdict columns (rows an
        older libtagger made): their segment rows still hold what the own verdict is made of."""
        return [row[0] for row in self.db.execute(
            "select id from tracks where missing = 0 and model_id = ? and own_probabilities is null "
            "and status not in ('rejected', 'error') order by id", [model_id])]

    def previous_scan_arguments(self, run_id: int) -> dict[str, Any] | None:
        """The options (``arguments`` JSON) of the latest writing or dry-run scan before ``run_id``; None: no such run."""
        rows = list(self.db.query("select arguments from runs where kind = 'scan' and id < ? order by id desc limit 1",
                                  [run_id]))
        return json.loads(rows[0]["arguments"] or "{}") if rows else None

    def tracks_without_tags_read(self) -> list[TrackRow]:
        """Present tracks whose person genres, artist, album or compilation flag were never read (older rows).

        Only ``id``, ``path``, ``path_bytes``, ``size`` and ``mtime_ns`` are read (the other
        fields hold their defaults).
        """
        return [TrackRow.from_row(row) for row in self.db.query(
            "select id, path, path_bytes, size, mtime_ns from tracks "
            "where missing = 0 and (tags_read_at is null or compilation is null) order by id")]

    def counts(self) -> IndexCounts:
        """Tracks per genre and per status, missing files and runs."""
        def grouped(column: str) -> dict[Any, int]:
            return {row[0]: row[1] for row in self.db.execute(
                f"select {column}, count(*) as n from tracks where missing = 0 "
                f"group by {column} order by n desc, {column}")}

        missing = self.db.execute("select count(*) from tracks where missing = 1").fetchone()[0]
        by_reason = {row[0]: row[1] for row in self.db.execute(
            "select reason, count(*) as n from tracks where missing = 0 and status = 'rejected' "
            "group by reason order by n desc, reason")}
        by_context = {row[0]: (row[1], row[2]) for row in self.db.execute(
            "select context_level, count(*), sum(genre is not own_genre) from tracks "
            "where missing = 0 and context_level is not null group by context_level order by context_level")}
        return IndexCounts(grouped("genre"), grouped("status"), missing, self.db["runs"].count, by_reason,
                           by_context)

    # -- journal --------------------------------------------------------------------------

    def journal_before_write(self, *, track_id: int | None, path: str | bytes | os.PathLike,
                             run_id: int, action: str, before: dict[str, Any], genre: str | None) -> int:
        """Durably record a file's tag state before libtagger changes it; returns the entry id."""
        text, raw = path_key(path)
        with self.db.atomic():
            table = self.db["journal"].insert({
                "track_id": track_id, "run_id": run_id, "path": text, "path_bytes": raw,
                "action": action, "at": now(), "before": json.dumps(before), "genre": genre,
                "completed": 0})
        return int(table.last_pk)

    def journal_recipe(self, entry_id: int, recipe_json: str, literal: bytes) -> None:
        """Durably record how to rebuild the file's old bytes (before the new ones replace them)."""
        with self.db.atomic():
            self.db["journal"].update(entry_id, {"exact": recipe_json, "exact_bytes": literal})

    def journal_not_written(self, entry_id: int, reason: str) -> None:
        """Mark the write failed with the file left as it was (``reason``: why, one line).

        The entry stays not completed; undo passes it over, as there is nothing of it to undo.
        """
        with self.db.atomic():
            self.db["journal"].update(entry_id, {"not_written": reason})

    def journal_completed(self, entry_id: int, *, after: dict[str, Any] | None = None) -> None:
        """Mark the write done, with the state it left (``after``, a snapshot) when known."""
        values: dict[str, Any] = {"completed": 1}
        if after is not None:
            values["after"] = json.dumps(after)
        with self.db.atomic():
            self.db["journal"].update(entry_id, values)

    def run(self, run_id: int) -> dict[str, Any] | None:
        """The ``runs`` row of ``run_id`` (``arguments`` and ``counts`` as stored JSON), or None."""
        rows = list(self.db.query("select * from runs where id = ?", [run_id]))
        return rows[0] if rows else None

    def journal_entries(self, *, run_id: int | None = None, track_id: int | None = None,
                        path: str | bytes | os.PathLike | None = None) -> list[JournalEntry]:
        """Journal entries of one run, one track or one path (the first one given), oldest first.

        With none given, every entry.
        """
        if run_id is not None:
            where, params = "run_id = ?", [run_id]
        elif track_id is not None:
            where, params = "track_id = ?", [track_id]
        elif path is not None:
            where, params = "path = ?", [path_key(path)[0]]
        else:
            where, params = "1", []
        return [JournalEntry.from_row(row) for row in
                self.db.query(f"select * from journal where {where} order by id", params)]


def _process_gone(run: dict[str, Any]) -> bool:
    """Whether the process of a ``runs`` row is known to have ended (only for runs of this host)."""
    pid = run.get("pid")
    if not pid or run.get("host") != socket.gethostname():
        return False  # another machine's process (an index on a shared disk): cannot tell
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # there, under another user
    try:  # a killed process not yet reaped by its parent is a zombie: it runs nothing
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
