"""The libtagger plugin for beets: genres from the audio, set through beets.

Installed as ``beetsplug.libtagger`` (``pip install 'libtagger[beets]'``, then
``plugins: libtagger`` in beets' config). The source lives in
``libtagger/integrations/beetsplug/`` and is mapped to the ``beetsplug`` namespace by
pyproject.toml; ``beetsplug`` is shared with beets' own plugins, so no ``__init__.py``.

libtagger classifies (:func:`libtagger.verdict_api.classify_paths`: a dry-run scan that
reuses the verdict in libtagger's index when the file is unchanged); beets sets its own
``genres`` field, writes the file with its own tag code when ``import.write`` is on, and
stores the item, so beets' database and the file agree. libtagger's own writer is never used.

Every judged item gets flexible attributes: ``libtagger_genre`` (the genre libtagger
stands behind, empty when unsure or rejected), ``libtagger_confidence``,
``libtagger_model``, ``libtagger_status`` (``tagged``, ``kept``, ``unsure``, ``rejected``,
``error``) and ``libtagger_reason``; and each index column added since those
(a field of :class:`libtagger.store.records.TrackRow` not in :data:`COLUMNS_SEEN_BEFORE`) as
``libtagger_<column>``, with no edit here (except ``second_genre``: ``libtagger_second_genre`` is
the second value the plugin set, see below). ``libtagger_written_genres`` is what the plugin last
set in the item's ``genres`` (one genre or the pair), kept while the genres are still that, so an
unsure, rejected or failed run leaves them libtagger's own: its next confident verdict replaces
them. It is empty when the genres are a person's: a person changed them, or they were not
libtagger's when it judged the item. A genre a person set (one that is not the
``libtagger_written_genres``) is kept unless ``--force``; an item judged before that field existed
counts its genres as libtagger's when it was ``tagged`` and they are its ``libtagger_genre`` (with
its ``libtagger_second_genre``).

The second genre (config ``second_genre``, ``beet libtagger --second-genre``; off by default, as
``libtagger scan --second-genre``): when the verdict's runner-up is close by the scan's own rule
(:func:`libtagger.scan.policy.genres_to_write`), the item's ``genres`` are the two, and
``libtagger_second_genre`` records the second beside ``libtagger_genre``, so a later run knows the
pair for libtagger's own and replaces it when the verdict changes.

The album genre (config ``context``: ``album``, the default, or ``artist``; ``none`` judges
every item alone): the items of one beets album are pooled as that album, whatever their
files' tags say (``classify_paths(..., album=...)``), and when at least two thirds of its
judged items (not rejected, not failed) name one genre at or above ``min_confidence``
(:func:`album_genre`), that genre is set on every judged item of the album whose genre no
person set, and on the beets Album (stored without inheritance, so no person's genre on an
item is overwritten), unless the Album holds a genre a person or another plugin set.
The album genre is one genre: the Album never gets a pair, and an item under it gets its own
runner-up beside it only when its own verdict names the album genre first.
Otherwise each item keeps its own verdict and the Album is left alone. The Album records
``libtagger_album_genre`` (the album genre libtagger set on it, while the Album's genre is still
that: dropped once a person changed it) and ``libtagger_album_reason`` (what was decided last,
and why).

Only this plugin imports beets; libtagger's core never does (tests/test_beets_plugin.py).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from beets import config as beets_config
from beets import ui
from beets.dbcore import types
from beets.exceptions import UserError
from beets.library import Album, Item
from beets.plugins import BeetsPlugin

from libtagger.scan.library_context import CONTEXT_LEVELS, DEFAULT_CONTEXT
from libtagger.scan.policy import DEFAULT_MIN_CONFIDENCE, genres_to_write
from libtagger.store.records import TrackRow, column_types

#: The index columns that existed when the plugin's attributes began to follow the record
#: (history, never edited): five of them the plugin shows its own way (``genre``, ``confidence``,
#: ``model_id``, ``status``, ``reason``: see :data:`FIELDS`), the others are the scan's own
#: bookkeeping or stay in libtagger's index. Every later column becomes ``libtagger_<column>``.
COLUMNS_SEEN_BEFORE = frozenset({
    "id", "path", "path_bytes", "size", "mtime_ns", "fingerprint", "format", "duration", "samplerate",
    "channels", "status", "error", "genre", "confidence", "runner_up", "runner_up_confidence",
    "previous_genre", "written", "written_genre", "model_id", "missing", "analysed_at", "updated_at",
    "run_id", "content_check", "reason", "detector_id", "person_genres", "artist", "albumartist",
    "album", "tags_read_at"})

#: Index columns added since :data:`COLUMNS_SEEN_BEFORE` that the plugin sets its own way instead of
#: copying the verdict's: ``second_genre`` is the second value the plugin set on the item (an album
#: genre, a person's genre kept or the option off decide it, not the verdict alone).
COLUMNS_SET_BY_THE_PLUGIN = frozenset({"second_genre"})

#: beets' type of a column's values (a bytes column is not shown in beets).
_BEETS_TYPES: dict[type, types.Type] = {str: types.STRING, int: types.INTEGER, float: types.Float(3)}

#: The index columns set on items as ``libtagger_<column>``, and their beets types.
COLUMN_FIELDS: dict[str, types.Type] = {
    column: _BEETS_TYPES[kind] for column, kind in column_types().items()
    if column not in COLUMNS_SEEN_BEFORE and kind in _BEETS_TYPES}

#: The flexible attribute holding the genres the plugin set on the item (see :func:`_written`).
WRITTEN = "libtagger_written_genres"
assert WRITTEN.removeprefix("libtagger_") not in COLUMN_FIELDS, "an index column took the plugin's own field name"

#: Flexible attributes this plugin sets on items, and their types (so range queries compare numbers).
FIELDS: dict[str, types.Type] = {
    "libtagger_genre": types.STRING,
    "libtagger_confidence": types.Float(3),
    "libtagger_model": types.STRING,
    "libtagger_status": types.STRING,
    "libtagger_reason": types.STRING,
    # What the plugin last set in the item's genres (beets' own type of ``genres``, a list), while they are
    # still that; empty when they are a person's. Distinct from libtagger_genre (emptied when unsure).
    WRITTEN: types.MULTI_VALUE_DSV,
    **{f"libtagger_{column}": kind for column, kind in COLUMN_FIELDS.items()},
}


#: Flexible attributes this plugin sets on albums.
ALBUM_FIELDS: dict[str, types.Type] = {
    "libtagger_album_genre": types.STRING,   # the album genre libtagger set on the Album, while it still is
    "libtagger_album_reason": types.STRING,  # the last decision and why, e.g. "Blues (5 of 6 tracks)"
}

#: The share of an album's judged items that must name one genre for it to be the album's genre,
#: as (numerator, denominator): two thirds lets one odd track in three (an interlude, a cover)
#: not block the album genre, and still refuses an album split half and half.
ALBUM_AGREEMENT = (2, 3)


@dataclass
class Judged:
    """What the plugin did (or would do) to one item; ``changed``: its genres were set."""

    item: Item
    source: str
    status: str
    changed: bool


@dataclass(frozen=True)
class AlbumVerdict:
    """The album genre rule's answer: ``genre`` None when the evidence does not support one; ``reason`` why."""

    genre: str | None
    reason: str


@dataclass
class JudgedAlbum:
    """What the plugin did (or would do) to one beets Album.

    ``status``: ``tagged`` (its genre is the album genre), ``kept`` (it keeps a genre a person or
    another plugin set) or ``none`` (no album genre: the Album is left alone); ``changed``: its
    genres were set.
    """

    album: Album
    verdict: AlbumVerdict
    status: str
    changed: bool


class LibtaggerPlugin(BeetsPlugin):
    item_types: ClassVar[dict[str, types.Type]] = FIELDS
    album_types: ClassVar[dict[str, types.Type]] = ALBUM_FIELDS

    def __init__(self) -> None:
        super().__init__()
        self.config.add({
            "auto": True,           # classify on import
            "index": "",            # libtagger's index; empty: $LIBTAGGER_INDEX or the XDG default
            "model": "",            # empty: libtagger's default model
            "min_confidence": DEFAULT_MIN_CONFIDENCE,
            "music_check": None,    # None: $LIBTAGGER_MUSIC_CHECK, else on
            "force": False,         # replace a genre a person set
            "jobs": 0,              # worker processes; 0: every core
            "context": DEFAULT_CONTEXT,  # album | artist | none: pool an item's verdict with its album's
            "second_genre": False,  # also set the runner-up when it is close (as scan --second-genre)
        })
        #: Items judged by the import stage, per task, waiting for beets to put their files in place.
        self._pending: dict[Any, list[Judged]] = {}
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]
            self.register_listener("import_task_files", self.import_task_files)

    # -- settings -------------------------------------------------------------------------

    def _index_path(self) -> str:
        configured = self.config["index"].get()
        if configured:
            return os.path.expanduser(str(configured))
        from libtagger.paths import default_index_path

        return os.fspath(default_index_path())

    def _context(self) -> str:
        level = self.config["context"].as_str()
        if level not in CONTEXT_LEVELS:
            raise UserError(f"libtagger: context must be one of {', '.join(CONTEXT_LEVELS)}, not {level!r}")
        return level

    def _music_check(self) -> bool:
        configured = self.config["music_check"].get()
        if configured is not None:
            return bool(configured)
        return os.environ.get("LIBTAGGER_MUSIC_CHECK", "1").strip().lower() not in ("0", "false", "no", "off")

    # -- judging --------------------------------------------------------------------------

    def judge(self, items: list[Item], *, force: bool, min_confidence: float, album: Album | None = None,
              second_genre: bool = False) -> tuple[list[Judged], JudgedAlbum | None]:
        """Classify ``items`` and set their fields in memory (nothing stored, nothing written).

        ``album``: the beets Album the items belong to (None: singletons, judged with the
        index's context as a scan judges them). Every item of the album is classified and
        pooled as that album (an item the query left out is evidence, and is not changed);
        the album genre (:func:`album_genre`) is set on ``items``, and on the Album when
        ``items`` are all of its items. ``second_genre``: an item whose verdict has a close
        runner-up gets both (:func:`_apply`). Returns the items judged, and the Album's (None
        without an album, with ``context: none``, or when only a part of the album was asked).
        Raises libtagger's errors (index locked, model missing) to the caller.
        """
        context = self._context()
        whole = album is not None and {i.id for i in album.items()} <= {i.id for i in items}
        evidence = list(items)
        if album is not None and not whole:
            asked = {i.id for i in items}
            evidence += [i for i in album.items() if i.id not in asked]
        verdicts = self._classify(evidence, min_confidence=min_confidence, context=context,
                                  album=_album_key(album) if album is not None and context == "album" else None)
        decided = (album_genre([verdicts[_source(i)] for i in evidence], min_confidence)
                   if album is not None and context != "none" else None)
        judged = [Judged(item, _source(item),
                         *_apply(item, verdicts[_source(item)], force=force, min_confidence=min_confidence,
                                 album_verdict=decided, second_genre=second_genre))
                  for item in items]
        judged_album = (_apply_album(album, decided, force=force)
                        if album is not None and decided is not None and whole else None)
        return judged, judged_album

    def _classify(self, items: Sequence[Item], *, min_confidence: float, context: str,
                  album: str | None) -> dict[str, TrackRow]:
        """libtagger's verdict on each item's file, keyed by :func:`_source`."""
        from libtagger.verdict_api import classify_paths

        return classify_paths([_source(item) for item in items], index_path=self._index_path(),
                              model=self.config["model"].get() or None, min_confidence=min_confidence,
                              music_check=self._music_check(), jobs=self.config["jobs"].get(int),
                              context=context, album=album)

    def _note_written(self, judged: Judged) -> None:
        """Let libtagger's index follow the file beets wrote, copied or moved (same audio).

        Tried once. The import judges its next album in another thread meanwhile, writing the same
        index; the index's transactions take the write lock first (``BEGIN IMMEDIATE``), so these
        wait, up to its 30-s busy timeout, for the other's short ones (a file's rows, the opening
        of the index) instead of failing with "database is locked" (tests/test_index_concurrency.py).
        What still fails (a damaged index, a full disk) would fail again; the genre is set either
        way, only the verdict's reuse is lost. A False answer (no such track, file gone) is final
        and not reported.
        """
        from libtagger.verdict_api import note_rewritten

        try:
            # The genres beets wrote from libtagger's verdict (one, or the pair): libtagger's own,
            # not a person's (beets writes no libtagger marker), so they never count as a
            # person's evidence.
            written = _ours(judged.item) if judged.changed else []
            note_rewritten(self._index_path(), judged.source, os.fsdecode(judged.item.path),
                           genre=written[0] if written else None,
                           second_genre=written[1] if len(written) > 1 else None)
        except Exception as exc:  # noqa: BLE001
            self._log.debug("libtagger index not updated for {}: {}", judged.source, exc)
            self._log.warning("libtagger's index does not follow {} (its verdict is judged again next time)",
                              os.fsdecode(judged.item.path))

    # -- import ---------------------------------------------------------------------------

    def imported(self, session: Any, task: Any) -> None:
        """Import stage: judge the task's items (an album task: as one album) and store their fields.

        The files are written in :meth:`import_task_files`, once beets has copied or moved
        them into the library: writing now would change the source files of a copying import.
        """
        items = list(task.imported_items())
        if not items:
            return
        album = getattr(task, "album", None) if task.is_album else None
        try:
            judged, judged_album = self.judge(items, force=self.config["force"].get(bool),
                                              min_confidence=self.config["min_confidence"].as_number(),
                                              album=album, second_genre=self.config["second_genre"].get(bool))
        except UserError:
            raise  # a wrong setting: the user must hear it
        except Exception as exc:  # noqa: BLE001 - a genre is not worth losing the user's import
            self._log.warning("no genres for this import: {}", exc)
            self._log.debug("libtagger failed", exc_info=True)
            return
        for j in judged:
            self._log.info("{}", _line(j))
            # Stored now: beets reloads the task's items from its database after each stage.
            j.item.store()
        if judged_album is not None:
            self._log.info("{}", _album_line(judged_album))
            # No inheritance: it would copy the album genre over a person's genre on an item.
            judged_album.album.store(inherit=False)
        self._pending[task] = judged

    def import_task_files(self, session: Any, task: Any) -> None:
        judged = self._pending.pop(task, [])
        write = beets_config["import"]["write"].get(bool)
        for j in judged:
            if j.changed and write:
                j.item.try_write()
                j.item.store()
            self._note_written(j)

    # -- command --------------------------------------------------------------------------

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("libtagger", help="set genres from the audio with libtagger")
        cmd.parser.add_option("-p", "--pretend", action="store_true", default=False,
                              help="show what would change; store and write nothing")
        cmd.parser.add_option("-f", "--force", action="store_true", default=None,
                              help="also replace a genre a person set")
        cmd.parser.add_option("--min-confidence", type="float", default=None,
                              help=f"set no genre below this confidence (default {DEFAULT_MIN_CONFIDENCE})")
        cmd.parser.add_option("--second-genre", action="store_true", default=None,
                              help="also set the runner-up as a second genre when it is close "
                                   "(runner-up >= 0.5 x the first, the pair >= the minimum confidence)")
        cmd.func = self._command
        return [cmd]

    def _command(self, lib: Any, opts: Any, args: list[str]) -> None:
        from libtagger.errors import LibtaggerError

        force = self.config["force"].get(bool) if opts.force is None else opts.force
        second_genre = self.config["second_genre"].get(bool) if opts.second_genre is None else opts.second_genre
        min_confidence = (self.config["min_confidence"].as_number() if opts.min_confidence is None
                          else opts.min_confidence)
        if not 0.0 <= min_confidence <= 1.0:
            raise UserError(f"--min-confidence must be between 0 and 1, not {min_confidence}")
        write = ui.should_write()
        for album, items in _by_album(lib, list(lib.items(args))):
            try:
                judged, judged_album = self.judge(items, force=force, min_confidence=min_confidence, album=album,
                                                  second_genre=second_genre)
            except LibtaggerError as exc:
                raise UserError(f"libtagger: {exc}") from exc
            for j in judged:
                ui.print_(_line(j, pretend=opts.pretend))
                if opts.pretend:
                    continue
                if j.changed and write:
                    j.item.try_write()
                j.item.store()
                if j.changed and write:
                    self._note_written(j)
            if judged_album is not None:
                ui.print_(_album_line(judged_album, pretend=opts.pretend))
                if not opts.pretend:
                    judged_album.album.store(inherit=False)


def _source(item: Item) -> str:
    """The item's file as libtagger's verdicts are keyed."""
    return os.fsdecode(item.path)


def _album_key(album: Album) -> str:
    """The name the items of ``album`` are pooled under (``show`` prints it as "artist / album")."""
    artist, title = album.get("albumartist") or "", album.get("album") or ""
    return f"{artist}\x1f{title}" if artist or title else f"beets album {album.id}"


def _by_album(lib: Any, items: list[Item]) -> list[tuple[Album | None, list[Item]]]:
    """``items`` grouped by their beets album, in order of first appearance; singletons last, together."""
    groups: dict[int, list[Item]] = {}
    singles: list[Item] = []
    for item in items:
        if item.album_id is None:
            singles.append(item)
        else:
            groups.setdefault(item.album_id, []).append(item)
    grouped: list[tuple[Album | None, list[Item]]] = []
    for album_id, members in groups.items():
        album = lib.get_album(album_id)
        if album is None:  # a dangling album id: judged as singletons
            singles.extend(members)
        else:
            grouped.append((album, members))
    return grouped + ([(None, singles)] if singles else [])


def album_genre(verdicts: Sequence[TrackRow], min_confidence: float) -> AlbumVerdict:
    """The album genre the verdicts on an album's tracks support, if any.

    The rule: the judged tracks are those with a verdict (not rejected, not failed); the
    album's genre is the genre that at least :data:`ALBUM_AGREEMENT` of them name at or
    above ``min_confidence`` (an unsure track counts against it). The verdicts are the
    tracks' pooled ones, so an album usually agrees; this refuses an album whose tracks,
    even pooled, stay apart (a compilation, a mixed album).

    Examples
    --------
    >>> from libtagger.store.records import TrackRow
    >>> rows = [TrackRow(path="a", status="would-tag", genre="Blues", confidence=0.8)] * 2
    >>> album_genre(rows + [TrackRow(path="c", status="unsure", genre="Jazz", confidence=0.4)], 0.6)
    AlbumVerdict(genre='Blues', reason='Blues (2 of 3 tracks)')
    >>> album_genre(rows + [TrackRow(path="c", status="would-tag", genre="Jazz", confidence=0.9)] * 2, 0.6)
    AlbumVerdict(genre=None, reason='tracks disagree (Blues 2, Jazz 2, of 4 tracks)')
    """
    judged = [v for v in verdicts if _judged(v)]
    of_all = f"of {len(judged)} track{'' if len(judged) == 1 else 's'}"
    if not judged:
        return AlbumVerdict(None, "no track judged (rejected or failed)")
    sure = Counter(v.genre for v in judged if (v.confidence or 0.0) >= min_confidence)
    if not sure:
        return AlbumVerdict(None, f"no track sure of a genre (0 {of_all})")
    genre, count = sure.most_common(1)[0]
    if count * ALBUM_AGREEMENT[1] >= ALBUM_AGREEMENT[0] * len(judged):
        return AlbumVerdict(genre, f"{genre} ({count} {of_all})")
    named = ", ".join(f"{genre} {count}" for genre, count in sure.most_common())
    return AlbumVerdict(None, f"tracks disagree ({named}, {of_all})")


def _judged(verdict: TrackRow) -> bool:
    """Whether ``verdict`` names a genre the item could take (not rejected, not failed)."""
    return verdict.status != "rejected" and verdict.genre is not None and verdict.confidence is not None


def _apply_album(album: Album, decided: AlbumVerdict, *, force: bool) -> JudgedAlbum:
    """Set ``album``'s genre to the album genre when it has none a person set (or ``force``); in memory.

    ``libtagger_album_genre`` is libtagger's own genre on the Album while the Album's genres are
    still that one genre (a run with no album genre leaves it, and the Album, alone); once a person
    or another plugin changed them it is dropped, and the Album's genre is theirs (kept unless
    ``force``), even when it is the album genre libtagger would set.
    """
    album["libtagger_album_reason"] = decided.reason
    current = list(album.get("genres") or [])
    ours_before = album.get("libtagger_album_genre") or None
    if ours_before is not None and current != [ours_before]:
        del album["libtagger_album_genre"]  # changed since libtagger set it: no longer libtagger's
        ours_before = None
    if decided.genre is None:
        return JudgedAlbum(album, decided, "none", False)
    if current and current != [ours_before] and not force:
        return JudgedAlbum(album, decided, "kept", False)
    album["libtagger_album_genre"] = decided.genre
    if current == [decided.genre]:
        return JudgedAlbum(album, decided, "tagged", False)
    album.genres = [decided.genre]
    return JudgedAlbum(album, decided, "tagged", True)


def _set_or_drop(item: Item, name: str, value: Any) -> None:
    """Set a flexible attribute, or remove it when the value is None (no stale value stays)."""
    if value is not None:
        item[name] = value
    elif name in item:
        del item[name]


def _ours(item: Item) -> list[str]:
    """The genre values libtagger stands behind on ``item`` (empty: none, or unsure), as last judged."""
    first = item.get("libtagger_genre") or None
    second = item.get("libtagger_second_genre") or None
    return [g for g in (first, second) if g is not None] if first is not None else []


def _written(item: Item) -> list[str]:
    """The genres libtagger set in ``item``'s ``genres``, as long as they are still there (empty: none).

    Unlike :func:`_ours` this outlives an unsure, rejected or failed verdict: the genres libtagger
    set earlier stay libtagger's own, replaced by its next confident verdict, never kept as a
    person's. An item judged before the field existed has no :data:`WRITTEN`: its genres are
    libtagger's when it was ``tagged`` (then they were its libtagger_genre and second genre).
    """
    if WRITTEN in item:
        return list(item.get(WRITTEN) or [])
    return _ours(item) if item.get("libtagger_status") == "tagged" else []


def _apply(item: Item, verdict: TrackRow, *, force: bool, min_confidence: float,
           album_verdict: AlbumVerdict | None = None, second_genre: bool = False) -> tuple[str, bool]:
    """Set ``item``'s libtagger fields (and its genres when the verdict allows); (status, changed).

    ``verdict``: the file's row, from :func:`libtagger.verdict_api.classify_paths`;
    ``album_verdict``: its album's, when the item was judged with its album (its genre, when
    there is one, is the item's unless the item was rejected or failed). ``second_genre``: the
    verdict's runner-up goes beside its genre when :func:`~libtagger.scan.policy.genres_to_write`
    says it is close, and the pair's confidence is then the one tested against ``min_confidence``
    (as the scan tests it); under an album genre, only when the item's own verdict names the album
    genre first. Only the item in memory changes.
    """
    ours_before = _written(item)
    wanted: tuple[str, ...] = ()
    reason = ""
    if verdict.status == "rejected":
        status, reason = "rejected", verdict.reason or ""
    elif verdict.genre is None or verdict.confidence is None:
        status, reason = "error", verdict.error or "no verdict"
    elif album_verdict is not None and album_verdict.genre is not None:
        status = "tagged"
        # The album rule names one genre; the item's runner-up goes beside it only when the pair is
        # about that genre (its verdict's first), else the second value would belong to another verdict.
        wanted, _ = genres_to_write(album_verdict.genre, verdict.confidence, verdict.runner_up,
                                    verdict.runner_up_confidence, min_confidence=min_confidence,
                                    second_genre=second_genre and verdict.genre == album_verdict.genre)
        if verdict.genre != album_verdict.genre or verdict.confidence < min_confidence:
            # the album's genre, not the one the item's own verdict would have set: say so
            reason = f"album genre {album_verdict.reason}; its verdict {verdict.genre} {verdict.confidence:.3f}"
    else:
        wanted, tested = genres_to_write(verdict.genre, verdict.confidence, verdict.runner_up,
                                         verdict.runner_up_confidence, second_genre=second_genre,
                                         min_confidence=min_confidence)
        if tested < min_confidence:
            status, reason, wanted = "unsure", f"below {min_confidence:g} (best guess {verdict.genre})", ()
        else:
            status = "tagged"
    item["libtagger_genre"] = wanted[0] if wanted else ""
    item["libtagger_status"] = status
    item["libtagger_reason"] = reason
    item["libtagger_model"] = verdict.model_id or ""
    _set_or_drop(item, "libtagger_confidence",
                 None if verdict.confidence is None else round(float(verdict.confidence), 3))
    for column in COLUMN_FIELDS.keys() - COLUMNS_SET_BY_THE_PLUGIN:
        _set_or_drop(item, f"libtagger_{column}", getattr(verdict, column))
    # Recorded even when a person's genre is kept, as libtagger_genre is: what libtagger stands behind.
    _set_or_drop(item, "libtagger_second_genre", wanted[1] if len(wanted) > 1 else None)
    current = list(item.get("genres") or [])
    if status != "tagged":
        # The genres stay; they stay libtagger's own while they are what it set (an unsure verdict
        # does not make them a person's), and are a person's once they are not.
        item[WRITTEN] = ours_before if current == ours_before else []
        return status, False
    # libtagger's own genres from an earlier run, one value or the pair, are replaced, not kept
    person_set = bool(current) and current != ours_before
    if person_set and not force:
        item["libtagger_status"] = "kept"
        item["libtagger_reason"] = "a genre a person set: " + "; ".join(current)
        item[WRITTEN] = []
        return "kept", False
    item[WRITTEN] = list(wanted)
    if current == list(wanted):
        return "tagged", False
    item.genres = list(wanted)
    return "tagged", True


def _line(judged: Judged, pretend: bool = False) -> str:
    """One report line: status, confidence, what the item's genre is (or why none), the item."""
    item = judged.item
    status = "would-tag" if pretend and judged.changed else judged.status
    confidence = item.get("libtagger_confidence")
    if judged.status == "tagged":
        detail = "; ".join(_ours(item))
    elif judged.status == "kept":
        detail = f"{'; '.join(item.get('genres') or [])} (libtagger: {'; '.join(_ours(item))})"
    else:
        detail = item["libtagger_reason"]
    shown = f"{confidence:.3f}" if confidence is not None else "-"
    return f"{status:<9} {shown:<5} {detail}: {item}"


def _album_line(judged: JudgedAlbum, pretend: bool = False) -> str:
    """One report line for an album, as :func:`_line` for an item: status, the album genre (or why none), the album."""
    album, verdict = judged.album, judged.verdict
    if judged.status == "tagged":
        status, detail = ("would-tag" if pretend and judged.changed else "tagged"), f"album genre {verdict.reason}"
    elif judged.status == "kept":
        status, detail = "kept", f"album genre {'; '.join(album.get('genres') or [])} (libtagger: {verdict.reason})"
    else:
        status, detail = "unsure", f"no album genre: {verdict.reason}"
    return f"{status:<9} {'-':<5} {detail}: {album}"
