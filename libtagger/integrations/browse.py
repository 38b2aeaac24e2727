"""``libtagger browse``: the index in Datasette, read-only, with facets, labels and canned queries.

Datasette is an optional extra (``pip install 'libtagger[browse]'``): it is imported only
inside :func:`serve`, so nothing else in libtagger loads it.

Read-only, and fresh while a scan writes: the file is opened ``mode=ro`` (Datasette's
read-only mode for a "mutable" database), not ``immutable=1``. The index runs in WAL mode, and
SQLite ignores the write-ahead log of a file opened immutable: it would show the index as of
the last checkpoint (a scan's newest rows missing) and could read pages a checkpoint is
rewriting. A ``mode=ro`` reader takes only WAL read marks, which never block a scan's writes.
Nothing is written: no write canned queries, no plugin that writes, and SQLite refuses writes
on a ``mode=ro`` connection (Datasette's SQL page accepts only ``select`` anyway). Every request
other than GET, HEAD or OPTIONS gets a 403 before Datasette routes it (the
:mod:`libtagger.integrations.datasette_readonly` plugin).

The canned queries below are read-only SQL served to Datasette; the index's own reads and
writes stay in :mod:`libtagger.store.index`, and the "disagrees" rule the SQL function applies
in :mod:`libtagger.store.query` (shared with ``libtagger query --disagrees``). Serving lives here,
beside the Datasette plugins, because the core never imports ``integrations/``: only the
``browse`` command of :mod:`libtagger.cli` imports this module, inside the command.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from libtagger.errors import LibtaggerError
from libtagger.store.query import DISAGREES_FUNCTION

#: How ``pip`` installs the extra; quoted in the error when Datasette is missing.
INSTALL_HINT = "pip install 'libtagger[browse]'"

#: What the columns one reads first hold, shown by Datasette above the table and in each
#: header's menu (README.md, "The index", describes them all; listing every one here would
#: push the facets and the rows below the fold).
TRACK_COLUMNS: dict[str, str] = {
    "path": "the file",
    "status": "tagged, would-tag (dry run), kept, unsure, rejected, error or undone",
    "genre": "libtagger's verdict, voted over the file's segments",
    "confidence": "the verdict's voted confidence, 0 to 1",
    "runner_up": "the second most likely genre",
    "previous_genre": "the genre the file had before this verdict",
    "written": "1: the file holds the genre libtagger wrote",
    "model_id": "the model that gave the verdict",
    "format": "audio format",
    "error": "why the file could not be read or tagged",
    "reason": "why a rejected track has no genre",
    "missing": "1: the file is gone (kept in the index)",
    "run_id": "the run that last changed this row",
}

#: The column descriptions as two columns of one line each (a data: URL, so no file to ship).
COMPACT_CSS = ("data:text/css,dl.column-descriptions{columns:2;font-size:0.85em}"
               "dl.column-descriptions dt{display:inline;font-weight:bold}"
               "dl.column-descriptions dt::after{content:':%20'}"
               "dl.column-descriptions dd{display:inline;margin:0}"
               "dl.column-descriptions dd::after{content:'';display:block}")

RUN_COLUMNS: dict[str, str] = {
    "kind": "scan or undo",
    "outcome": "running, finished, interrupted or failed",
    "arguments": "The run's options (JSON)",
    "model_id": "The model the run classified with",
    "dry_run": "1 for scan --dry-run: no file was written",
    "counts": "Files per status at the end of the run (JSON)",
    "pid": "The process that ran it",
    "host": "The machine that ran it",
}

JOURNAL_COLUMNS: dict[str, str] = {
    "action": "write (a scan set a genre) or undo (an undo put a state back)",
    "before": "The file's genre tags before the change (JSON snapshot), what undo restores",
    "genre": "The genre written (empty for an undo)",
    "completed": "0: the run stopped or the write failed after journaling",
}


def _columns(index_path: Path) -> dict[str, set[str]]:
    """The columns of each table of the index, read without writing (an older index may lack some)."""
    conn = sqlite3.connect(f"{index_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = [row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")]
        return {t: {row[1] for row in conn.execute(f"pragma table_info([{t}])")} for t in tables}
    finally:
        conn.close()


def canned_queries(columns: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    """Read-only queries shown on the index's Datasette page (``columns``: see :func:`_columns`)."""
    reason = "coalesce(reason, error)" if "reason" in columns.get("tracks", set()) else "error"
    return {
        "unsure_tracks": {
            "title": "Unsure tracks",
            "description": "Present files whose verdict was below the confidence threshold, least sure first.",
            "sql": "select path, genre, confidence, runner_up, runner_up_confidence, previous_genre,\n"
                   "       model_id, analysed_at\n"
                   "from tracks where status = 'unsure' and missing = 0\n"
                   "order by confidence, path",
        },
        "genre_disagrees": {
            "title": "Genre disagrees with libtagger",
            "description": "Files whose genre before the verdict names a different genre than "
                           "libtagger's (as `libtagger query --disagrees`).",
            "sql": "select path, status, previous_genre, genre as verdict, confidence, runner_up,\n"
                   "       written, model_id\n"
                   "from tracks\n"
                   "where previous_genre is not null and genre is not null\n"
                   f"  and {DISAGREES_FUNCTION}(previous_genre, genre)\n"
                   "order by path",
        },
        "errors_by_reason": {
            "title": "Errors and rejections by reason",
            "description": "Present files that got no genre, counted per status and reason.",
            "sql": f"select status, {reason} as reason, count(*) as tracks, min(path) as example\n"
                   "from tracks where status in ('error', 'rejected') and missing = 0\n"
                   "group by status, 2 order by tracks desc, status, reason",
        },
        "run_changes": {
            "title": "Changes made by a run",
            "description": "Every tag write or undo of one run, from the journal, with the genre "
                           "the file had before. Leave run empty for the latest run that changed files.",
            "sql": "select j.at, j.action, j.path,\n"
                   "       (select group_concat(value, '; ') from json_each(j.\"before\", '$.genres'))\n"
                   "         as genre_before,\n"
                   "       j.genre as genre_written, j.completed, t.status as status_now,\n"
                   "       t.genre as verdict_now\n"
                   "from journal j left join tracks t on t.id = j.track_id\n"
                   "where j.run_id = coalesce(nullif(:run, ''), (select max(run_id) from journal))\n"
                   "order by j.id",
        },
        "runs_summary": {
            "title": "Runs and what they changed",
            "description": "Every run, newest first, with its counts and the files it changed.",
            "sql": "select r.id as run, r.kind, r.started_at, r.finished_at, r.outcome, r.dry_run,\n"
                   "       r.model_id, r.counts,\n"
                   "       (select count(*) from journal j where j.run_id = r.id and j.completed = 1)\n"
                   "         as files_changed\n"
                   "from runs r order by r.id desc",
        },
    }


#: The ``tracks`` columns the page opens with (every column is one click away, in the
#: table's column menu): those that say what libtagger decided, then where the file is.
FIRST_COLUMNS = ("path", "status", "genre", "confidence", "runner_up", "previous_genre", "written",
                 "model_id", "format", "reason", "error")


def start_path(index_path: str | os.PathLike) -> str:
    """The page ``libtagger browse`` opens: the tracks table showing :data:`FIRST_COLUMNS`.

    >>> start_path("/nowhere/index.db").startswith("/index/tracks")
    True
    """
    path = Path(index_path)
    try:
        present = _columns(path).get("tracks", set())
    except sqlite3.Error:  # not there yet (doctest) or unreadable: Datasette will say so
        present = set()
    shown = [c for c in FIRST_COLUMNS if c in present]
    return f"/{path.stem}/tracks" + ("?" + "&".join(f"_col={c}" for c in shown) if shown else "")


def datasette_metadata(index_path: str | os.PathLike) -> dict[str, Any]:
    """Datasette metadata for an index file: facets, column descriptions and canned queries.

    Parameters
    ----------
    index_path : path-like
        An existing index; read (never written) to fit the metadata to its columns.

    Returns
    -------
    dict
        JSON-serialisable; ``libtagger browse --metadata-out FILE`` writes it for
        ``datasette -m FILE``. Keyed by the database name Datasette gives the file (its stem).
    """
    path = Path(index_path)
    columns = _columns(path)
    tracks = columns.get("tracks", set())

    def described(table: str, descriptions: dict[str, str]) -> dict[str, str]:
        return {c: text for c, text in descriptions.items() if c in columns.get(table, set())}

    return {
        "title": "libtagger index",
        "extra_css_urls": [COMPACT_CSS],
        "description": f"{path.resolve()}, read-only. Facets: status, genre, model, format.",
        "databases": {path.stem: {
            "tables": {
                "tracks": {
                    "description": "One row per file libtagger has seen: its verdict and status.",
                    "facets": [c for c in ("status", "genre", "model_id", "format") if c in tracks],
                    "sort": "path",
                    "label_column": "path",
                    "columns": described("tracks", TRACK_COLUMNS),
                },
                "runs": {"description": "One row per scan or undo.", "facets": ["kind", "outcome"],
                         "sort_desc": "id", "label_column": "started_at",
                         "columns": described("runs", RUN_COLUMNS)},
                "journal": {"description": "A file's genre tags before each libtagger write (for undo).",
                            "facets": ["action", "completed"], "sort_desc": "id",
                            "columns": described("journal", JOURNAL_COLUMNS)},
                "segments": {"description": "One row per analysed 30-s window of a track."},
                "meta": {"hidden": True},
            },
            "queries": canned_queries(columns),
        }},
    }


def serve(index_path: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8001,
          open_browser: bool | None = None) -> None:
    """Serve the index read-only in Datasette until interrupted (Ctrl-C).

    ``open_browser`` None: open the page when there is a desktop to show it (see
    :func:`has_desktop`); True or False: do as told.

    Raises
    ------
    LibtaggerError
        When Datasette is not installed, or the index does not exist.
    """
    path = Path(index_path)
    if not path.is_file():
        raise LibtaggerError(f"{path}: no index yet (run `libtagger scan` first, or pass --index)")
    try:
        import uvicorn
        from datasette.app import Datasette
        from datasette.plugins import pm
    except ImportError:
        raise LibtaggerError(f"Datasette is not installed: {INSTALL_HINT}") from None

    from libtagger.integrations import datasette_plugin, datasette_readonly

    # Installed packages get it through the `datasette` entry point; a source tree may not.
    if not pm.is_registered(datasette_plugin):
        pm.register(datasette_plugin, name="libtagger")
    # Only this server answers writes with a 403 (a POST would otherwise reach a view that fails
    # with a 500): not an entry point, so other Datasette servers keep their write plugins.
    if not pm.is_registered(datasette_readonly):
        pm.register(datasette_readonly, name="libtagger-read-only")
    # files= (not immutables=): Datasette then opens it mode=ro and reads the WAL (see above).
    datasette = Datasette(files=[str(path)], metadata=datasette_metadata(path),
                          settings={"suggest_facets": False})
    url = f"http://{host}:{port}{start_path(path)}"
    print(f"Serving {path} read-only at {url} (Ctrl-C to stop)", flush=True)
    if has_desktop() if open_browser is None else open_browser:
        threading.Thread(target=_open_when_up, args=(host, port, url), daemon=True).start()
    uvicorn.run(datasette.app(), host=host, port=port, log_level="warning", lifespan="on")


def has_desktop() -> bool:
    """Whether a graphical browser can be shown (without one, Python's ``webbrowser`` would start
    a text browser such as lynx in the terminal of an ssh session)."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY")
                                                       or os.environ.get("WAYLAND_DISPLAY"))


def _open_when_up(host: str, port: int, url: str, timeout: float = 30.0) -> None:
    """Open ``url`` in the desktop browser once the server accepts connections."""
    import socket
    import webbrowser

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            time.sleep(0.2)
            continue
        webbrowser.open(url)
        return
