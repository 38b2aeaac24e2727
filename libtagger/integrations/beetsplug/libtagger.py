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
``libtagger_<column>``, with no edit here. A genre a person set (one that is not the
``libtagger_genre`` recorded earlier) is kept unless ``--force``.

Only this plugin imports beets; libtagger's core never does (tests/test_beets_plugin.py).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from beets import config as beets_config
from beets import ui
from beets.dbcore import types
from beets.exceptions import UserError
from beets.library import Item
from beets.plugins import BeetsPlugin

from libtagger.scan.policy import DEFAULT_MIN_CONFIDENCE
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

#: beets' type of a column's values (a bytes column is not shown in beets).
_BEETS_TYPES: dict[type, types.Type] = {str: types.STRING, int: types.INTEGER, float: types.Float(3)}

#: The index columns set on items as ``libtagger_<column>``, and their beets types.
COLUMN_FIELDS: dict[str, types.Type] = {
    column: _BEETS_TYPES[kind] for column, kind in column_types().items()
    if column not in COLUMNS_SEEN_BEFORE and kind in _BEETS_TYPES}

#: Flexible attributes this plugin sets on items, and their types (so range queries compare numbers).
FIELDS: dict[str, types.Type] = {
    "libtagger_genre": types.STRING,
    "libtagger_confidence": types.Float(3),
    "libtagger_model": types.STRING,
    "libtagger_status": types.STRING,
    "libtagger_reason": types.STRING,
    **{f"libtagger_{column}": kind for column, kind in COLUMN_FIELDS.items()},
}


@dataclass
class Judged:
    """What the plugin did (or would do) to one item; ``changed``: its genres were set."""

    item: Item
    source: str
    status: str
    changed: bool


class LibtaggerPlugin(BeetsPlugin):
    item_types: ClassVar[dict[str, types.Type]] = FIELDS

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

    def _music_check(self) -> bool:
        configured = self.config["music_check"].get()
        if configured is not None:
            return bool(configured)
        return os.environ.get("LIBTAGGER_MUSIC_CHECK", "1").strip().lower() not in ("0", "false", "no", "off")

    # -- judging --------------------------------------------------------------------------

    def judge(self, items: list[Item], *, force: bool, min_confidence: float) -> list[Judged]:
        """Classify ``items`` and set their fields in memory (nothing stored, nothing written).

        Raises libtagger's errors (index locked, model missing) to the caller.
        """
        from libtagger.verdict_api import classify_paths

        sources = [os.fsdecode(item.path) for item in items]
        verdicts = classify_paths(sources, index_path=self._index_path(),
                                  model=self.config["model"].get() or None, min_confidence=min_confidence,
                                  music_check=self._music_check(), jobs=self.config["jobs"].get(int))
        return [Judged(item, source, *_apply(item, verdicts[source], force=force, min_confidence=min_confidence))
                for item, source in zip(items, sources)]

    def _note_written(self, judged: Judged) -> None:
        """Let libtagger's index follow the file beets wrote, copied or moved (same audio)."""
        from libtagger.verdict_api import note_rewritten

        # The import judges its next album in another thread meanwhile: an error (a busy index)
        # is worth another try before the verdict's reuse is given up (the genre is set either
        # way). A False answer is final (no such track, file gone): no retry for it.
        for attempt in range(3):
            try:
                note_rewritten(self._index_path(), judged.source, os.fsdecode(judged.item.path))
                return
            except Exception as exc:  # noqa: BLE001
                self._log.debug("libtagger index not updated for {}: {}", judged.source, exc)
            time.sleep(0.5 * (attempt + 1))
        self._log.warning("libtagger's index does not follow {} (its verdict is judged again next time)",
                          os.fsdecode(judged.item.path))

    # -- import ---------------------------------------------------------------------------

    def imported(self, session: Any, task: Any) -> None:
        """Import stage: judge the task's items and store their fields in beets' database.

        The files are written in :meth:`import_task_files`, once beets has copied or moved
        them into the library: writing now would change the source files of a copying import.
        """
        items = list(task.imported_items())
        if not items:
            return
        try:
            judged = self.judge(items, force=self.config["force"].get(bool),
                                min_confidence=self.config["min_confidence"].as_number())
        except Exception as exc:  # noqa: BLE001 - a genre is not worth losing the user's import
            self._log.warning("no genres for this import: {}", exc)
            self._log.debug("libtagger failed", exc_info=True)
            return
        for j in judged:
            self._log.info("{}", _line(j))
            # Stored now: beets reloads the task's items from its database after each stage.
            j.item.store()
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
        cmd.func = self._command
        return [cmd]

    def _command(self, lib: Any, opts: Any, args: list[str]) -> None:
        from libtagger.errors import LibtaggerError

        force = self.config["force"].get(bool) if opts.force is None else opts.force
        min_confidence = (self.config["min_confidence"].as_number() if opts.min_confidence is None
                          else opts.min_confidence)
        if not 0.0 <= min_confidence <= 1.0:
            raise UserError(f"--min-confidence must be between 0 and 1, not {min_confidence}")
        items = list(lib.items(args))
        if not items:
            return
        try:
            judged = self.judge(items, force=force, min_confidence=min_confidence)
        except LibtaggerError as exc:
            raise UserError(f"libtagger: {exc}") from exc
        write = ui.should_write()
        for j in judged:
            ui.print_(_line(j, pretend=opts.pretend))
            if opts.pretend:
                continue
            if j.changed and write:
                j.item.try_write()
            j.item.store()
            if j.changed and write:
                self._note_written(j)


def _set_or_drop(item: Item, name: str, value: Any) -> None:
    """Set a flexible attribute, or remove it when the value is None (no stale value stays)."""
    if value is not None:
        item[name] = value
    elif name in item:
        del item[name]


def _apply(item: Item, verdict: TrackRow, *, force: bool, min_confidence: float) -> tuple[str, bool]:
    """Set ``item``'s libtagger fields (and its genres when the verdict allows); (status, changed).

    ``verdict``: the file's row, from :func:`libtagger.verdict_api.classify_paths`. Only the
    item in memory changes.
    """
    ours_before = item.get("libtagger_genre") or None
    genre, reason = "", ""
    if verdict.status == "rejected":
        status, reason = "rejected", verdict.reason or ""
    elif verdict.genre is None or verdict.confidence is None:
        status, reason = "error", verdict.error or "no verdict"
    elif verdict.confidence < min_confidence:
        status, reason = "unsure", f"below {min_confidence:g} (best guess {verdict.genre})"
    else:
        genre = verdict.genre
        status = "tagged"
    item["libtagger_genre"] = genre
    item["libtagger_status"] = status
    item["libtagger_reason"] = reason
    item["libtagger_model"] = verdict.model_id or ""
    _set_or_drop(item, "libtagger_confidence",
                 None if verdict.confidence is None else round(float(verdict.confidence), 3))
    for column in COLUMN_FIELDS:
        _set_or_drop(item, f"libtagger_{column}", getattr(verdict, column))
    if status != "tagged":
        return status, False
    current = list(item.get("genres") or [])
    person_set = bool(current) and current != [ours_before]
    if person_set and not force:
        item["libtagger_status"] = "kept"
        item["libtagger_reason"] = "a genre a person set: " + "; ".join(current)
        return "kept", False
    if current == [genre]:
        return "tagged", False
    item.genres = [genre]
    return "tagged", True


def _line(judged: Judged, pretend: bool = False) -> str:
    """One report line: status, confidence, what the item's genre is (or why none), the item."""
    item = judged.item
    status = "would-tag" if pretend and judged.changed else judged.status
    confidence = item.get("libtagger_confidence")
    if judged.status == "tagged":
        detail = item["libtagger_genre"]
    elif judged.status == "kept":
        detail = f"{'; '.join(item.get('genres') or [])} (libtagger: {item['libtagger_genre']})"
    else:
        detail = item["libtagger_reason"]
    shown = f"{confidence:.3f}" if confidence is not None else "-"
    return f"{status:<9} {shown:<5} {detail}: {item}"
