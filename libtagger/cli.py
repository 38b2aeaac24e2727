"""The command line: parses options, calls the library, turns its errors into clean messages.

Nothing here imports TensorFlow at module level, so ``libtagger query`` starts fast.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional

import typer

from libtagger.scan.policy import DEFAULT_MIN_CONFIDENCE
from libtagger.audio.segments import DEFAULT_MAX_SEGMENTS

if TYPE_CHECKING:
    from libtagger.store.index import Index
    from libtagger.scan.pipeline import FileReport, ScanOptions, ScanSummary

# add_completion: --install-completion / --show-completion for bash, zsh, fish and PowerShell.
app = typer.Typer(help="Batch genre tagger for personal music libraries.", no_args_is_help=True,
                  add_completion=True)

#: The examples under ``libtagger scan --help``, in typer's rich markup (blank lines: paragraphs).
SCAN_EXAMPLES = """\
[bold]Examples[/bold]

First run: see what it would write, and write nothing:
  libtagger scan --dry-run ~/Music

Write the genres, only those the model is surer of (default 0.6):
  libtagger scan --min-confidence 0.7 ~/Music

Nightly cron job: errors only, and the report as JSON for a script:
  libtagger scan --quiet --report json ~/Music > ~/scan-report.json
"""



def _version_line() -> str:
    """``libtagger 0.2.0 (default model musicnn-head-bda1a700)``: read from metadata, no TensorFlow."""
    from importlib.metadata import PackageNotFoundError, version

    from libtagger.classify.catalog import default_model_id

    try:
        number = version("libtagger")
    except PackageNotFoundError:  # run from a source tree that was never installed
        number = "(not installed)"
    return f"libtagger {number} (default model {default_model_id()})"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(_version_line())
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and the default model's id, then exit.")] = None,
) -> None:
    """Batch genre tagger for personal music libraries."""


# --- scan / query / stats / show / undo / runs / browse: libtagger/scan/, libtagger/store/, libtagger/integrations/browse.py ---

#: Exit statuses (documented in README.md).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

IndexOption = Annotated[Optional[Path], typer.Option(
    "--index", help="The index file (default: $LIBTAGGER_INDEX or ~/.local/share/libtagger/index.db).")]
FormatOption = Annotated[str, typer.Option("--format", "-f", help="table, json or csv")]


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    try:
        typer.echo(f"libtagger: error: {message}", err=True)
    except OSError:  # the terminal is gone (closed, ssh dropped): the exit status still tells
        from libtagger.scan.progress import discard_output

        discard_output()
    raise typer.Exit(code)


def _end_like_ctrl_c() -> None:
    """Let SIGTERM and SIGHUP end a scan or undo as Ctrl-C does (KeyboardInterrupt).

    cron and service managers stop jobs with SIGTERM; a closed terminal, a dropped ssh
    session or a killed tmux sends SIGHUP. Either way the run is marked interrupted, its
    workers are ended, the index stays consistent and the exit status is 130. A SIGHUP
    ignored from the start (``nohup``) stays ignored.
    """
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.default_int_handler)


def _index_path(index: Optional[Path]) -> Path:
    from libtagger.paths import default_index_path

    return index if index is not None else default_index_path()


def _open_index(index: Optional[Path]) -> "Index":
    """The existing index of a command that reads it; absent, foreign, damaged or a folder: one line, exit 1.

    Opened read-only when it cannot be written (a read-only file system, a write-protected
    file); otherwise as usual, so an older index gains its columns.
    """
    from libtagger.errors import IndexFileError
    from libtagger.store.index import Index, index_writable

    path = _index_path(index)
    try:
        return Index(path, create=False, read_only=not index_writable(path))
    except IndexFileError as exc:
        _fail(str(exc))
    except (OSError, sqlite3.Error) as exc:
        _fail(_index_problem(exc, path))


@contextmanager
def _reading_index(index: Optional[Path]) -> Iterator["Index"]:
    """The index of a command that reads it, closed after the block.

    A page damaged in the middle of the file shows only when a query reads it: such an SQLite
    or I/O error inside the block ends the command with one line and exit 1 too.
    """
    db = _open_index(index)
    try:
        yield db
    except (OSError, sqlite3.Error) as exc:
        _fail(_index_problem(exc, _index_path(index)))
    finally:
        db.close()


def _index_problem(exc: BaseException, index: Path) -> str:
    """One line for an error of the index or its lock file (not of an audio file)."""
    from libtagger.store.index import index_error_reason

    if isinstance(exc, OSError):
        return f"{exc.filename or index}: {exc.strerror or exc}"
    if isinstance(exc, sqlite3.Error):
        return f"{index}: {index_error_reason(exc)}"
    return f"{index}: {exc}"


def _check_format(fmt: str) -> str:
    from libtagger.report import FORMATS

    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--format")
    return fmt


class _Log:
    """--log FILE: appends one timestamped line per event."""

    def __init__(self, path: Optional[Path]) -> None:
        self.handle = None
        if path:
            # The README's crontab line logs into ~/.local/share/libtagger/, which does not
            # exist before the first run creates the index there.
            path = path.expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(path, "a", encoding="utf-8", errors="backslashreplace")

    def __call__(self, line: str) -> None:
        if self.handle:
            from libtagger.store.index import now

            self.handle.write(f"{now()} {line}\n")
            self.handle.flush()

    def close(self) -> None:
        if self.handle:
            self.handle.close()


@app.command(epilog=SCAN_EXAMPLES)
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Folders or files to scan.", show_default=False)],
    index: IndexOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Analyse and report; write no file.")] = False,
    model: Annotated[Optional[str], typer.Option(help="Model name, see `libtagger models` (default: musicnn-head; seed is the paper's model).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace genres a person set.")] = False,
    music_check: Annotated[bool, typer.Option(envvar="LIBTAGGER_MUSIC_CHECK", help="Reject speech, noise, tones and music unlike the ten genres: status rejected, no genre (env LIBTAGGER_MUSIC_CHECK=0 turns it off).")] = True,
    min_confidence: Annotated[float, typer.Option(min=0.0, max=1.0, help="Write nothing below this voted confidence.")] = DEFAULT_MIN_CONFIDENCE,
    context: Annotated[str, typer.Option(help="Pool each verdict with the other tracks of its album (else its artist), its artist, or none (each track alone).")] = "album",
    folder_as_album: Annotated[bool, typer.Option(help="A track without an album tag takes its folder as its album (for --context album).")] = False,
    second_genre: Annotated[bool, typer.Option("--second-genre", help="Also write the runner-up as a second genre value when it is close (runner-up >= 0.5 x the first, the pair >= --min-confidence).")] = False,
    max_segments: Annotated[int, typer.Option(min=1, help="30-s segments analysed per track, spread over it.")] = DEFAULT_MAX_SEGMENTS,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=0, help="Worker processes (0: all cores, fewer when memory is short).")] = 0,
    backend: Annotated[str, typer.Option(help="loky (this machine) or dask (a cluster, with --scheduler).")] = "loky",
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")] = None,
    rescan: Annotated[bool, typer.Option(help="Analyse every file again, changed or not.")] = False,
    include_hidden: Annotated[bool, typer.Option(help="Also scan hidden files and folders.")] = False,
    preserve_mtime: Annotated[bool, typer.Option(help="Keep each file's modification time when tagging.")] = False,
    wait: Annotated[bool, typer.Option(help="Wait for a running scan of the same index instead of exiting 3.")] = False,
    report: Annotated[Optional[str], typer.Option(help="table, json or csv on standard output (default: table; with --quiet only when given).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and the report asked for with --report (for cron).")] = False,
    log: Annotated[Optional[Path], typer.Option(help="Append a line per file and per run to this file.")] = None,
) -> None:
    """Analyse, tag and index every audio file under PATHS.

    Exit status: 0 when the run finished (single files that failed are reported
    with status "error"), 1 on a fatal error, 2 on a usage error, 3 when another
    run holds the index, 130 when interrupted.
    """
    import sys

    from libtagger.scan.pipeline import ScanOptions

    _check_backend(backend, scheduler)
    _check_context(context)
    # --quiet silences progress and the closing count, never a report asked for by name.
    show_report = report is not None or not quiet
    report = _check_format(report) if report is not None else "table"
    options = ScanOptions(
        roots=[p.expanduser() for p in paths], index_path=_index_path(index), model=model,
        dry_run=dry_run, overwrite=overwrite, min_confidence=min_confidence,
        max_segments=max_segments, jobs=jobs, backend=backend, scheduler=scheduler, rescan=rescan,
        include_hidden=include_hidden, preserve_mtime=preserve_mtime, wait=wait, music_check=music_check,
        context=context, folder_as_album=folder_as_album, second_genre=second_genre,
        progress=not quiet and sys.stderr.isatty())
    write_log = _open_log(log)
    _end_like_ctrl_c()
    summary = _run_scan(options, write_log)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.counts.items())) or "no audio files"
    write_log(f"run {summary.run_id} finished: {counts}")
    write_log.close()
    if show_report:
        _print_scan_report(summary, counts, report=report, quiet=quiet, dry_run=dry_run)


def _check_context(context: str) -> None:
    from libtagger.scan.library_context import CONTEXT_LEVELS

    if context not in CONTEXT_LEVELS:
        raise typer.BadParameter(f"{context!r}: expected one of {', '.join(CONTEXT_LEVELS)}",
                                 param_hint="'--context'")


def _check_backend(backend: str, scheduler: Optional[str]) -> None:
    """Usage error (exit 2) for a backend that is not loky or dask, or dask without a scheduler."""
    if backend not in ("loky", "dask"):
        raise typer.BadParameter(f"{backend!r} is not loky or dask", param_hint="--backend")
    if backend == "dask" and not scheduler:
        raise typer.BadParameter("the dask backend needs --scheduler ADDRESS", param_hint="--scheduler")


def _open_log(log: Optional[Path]) -> _Log:
    """The --log file opened for appending; one line and exit 1 when it cannot be."""
    try:
        return _Log(log)
    except OSError as exc:
        _fail(f"{log}: cannot open the log file ({exc.strerror or exc})")


def _run_scan(options: "ScanOptions", write_log: _Log) -> "ScanSummary":
    """Run the scan, each file's error on stderr and each change in the log; a run that cannot
    finish ends the command: one line, logged, and exit 3 (index held), 130 (interrupted) or 1."""
    from libtagger.errors import IndexLockedError, LibtaggerError
    from libtagger.scan.pipeline import scan as run_scan

    def on_report(item: "FileReport") -> None:
        if item.status == "error":
            if options.progress:  # whole, above the bar (printed directly, it would split the bar's line)
                from libtagger.scan.progress import write_line

                write_line(f"libtagger: {item.path}: {item.error}")
            else:
                typer.echo(f"libtagger: {item.path}: {item.error}", err=True)
        if item.status != "unchanged":
            note = item.error or item.reason
            write_log(f"{item.status} {item.genre or '-'} {item.path}" + (f": {note}" if note else ""))

    try:
        return run_scan(options, on_report=on_report)
    except IndexLockedError as exc:
        write_log(f"not started: {exc}")
        _fail(str(exc), EXIT_LOCKED)
    except KeyboardInterrupt:
        write_log("interrupted; the next run goes on where this one stopped")
        _fail("interrupted; the next run goes on where this one stopped", EXIT_INTERRUPTED)
    except (LibtaggerError, FileNotFoundError) as exc:
        write_log(f"failed: {exc}")
        _fail(str(exc))
    except (OSError, sqlite3.Error) as exc:  # the index or its lock: unwritable, full disk, ...
        write_log(f"failed: {_index_problem(exc, options.index_path)}")
        _fail(_index_problem(exc, options.index_path))


def _print_scan_report(summary: "ScanSummary", counts: str, *, report: str, quiet: bool, dry_run: bool) -> None:
    """The scan's report on stdout: the changed files as a table, or every file as JSON/CSV; then
    the run's counts (a table's closing line; beside JSON/CSV on stderr, and only for a person)."""
    import sys

    from libtagger.report import context_note, render

    rows = sorted((r.as_dict() for r in summary.reports), key=lambda r: r["path"])
    if report == "table":
        shown = [r | {"context": context_note(r, short=True)} for r in rows if r["status"] != "unchanged"]
        # The second_genre column only when a row has one (--second-genre chose the runner-up too).
        second = ("second_genre",) if any(r["second_genre"] for r in shown) else ()
        if shown:
            typer.echo(render(shown, fmt="table", columns=(
                "path", "status", "genre", *second, "confidence", "context", "runner_up", "previous_genre",
                "error", "reason")), nl=False)
    else:
        typer.echo(render(rows, fmt=report), nl=False)
    # The table's closing line is part of that report; beside JSON/CSV it is chatter on stderr.
    if report == "table" or (not quiet and not sys.stdout.isatty()):
        typer.echo(f"run {summary.run_id}: {counts}" + (" (dry run: no file written)" if dry_run else ""),
                   err=report != "table")


@app.command()
def query(
    genre: Annotated[Optional[str], typer.Option(help="Voted genre, e.g. jazz or 'hip hop'.")] = None,
    status: Annotated[Optional[str], typer.Option(help="tagged, would-tag, kept, unsure, rejected, error or undone.")] = None,
    reason: Annotated[Optional[str], typer.Option(help="Rejected tracks by reason: speech, noise, tone, silence, beat (no steady beat) or unlike.")] = None,
    min_confidence: Annotated[Optional[float], typer.Option(help="Lowest voted confidence.")] = None,
    max_confidence: Annotated[Optional[float], typer.Option(help="Highest voted confidence.")] = None,
    path: Annotated[Optional[str], typer.Option(help="Shell pattern on the path, e.g. '*/Live/*'.")] = None,
    disagrees: Annotated[bool, typer.Option(help="Only tracks whose previous genre differs from the verdict.")] = False,
    missing: Annotated[bool, typer.Option(help="Only tracks whose file is gone.")] = False,
    album: Annotated[Optional[str], typer.Option(help="Album tag, whole, case ignored, e.g. 'illmatic'.")] = None,
    artist: Annotated[Optional[str], typer.Option(help="Artist or album artist tag, whole, case ignored.")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1)] = None,
    fmt: FormatOption = "table",
    index: IndexOption = None,
) -> None:
    """List indexed tracks that match every filter given."""
    from libtagger.errors import LibtaggerError
    from libtagger.store.query import QUERY_COLUMNS, find_tracks
    from libtagger.report import render

    _check_format(fmt)
    with _reading_index(index) as db:
        try:
            rows = find_tracks(db, genre=genre, status=status, min_confidence=min_confidence,
                               max_confidence=max_confidence, path_glob=path, disagrees=disagrees,
                               missing=True if missing else None, reason=reason, album=album,
                               artist=artist, limit=limit)
        except LibtaggerError as exc:
            _fail(str(exc), EXIT_USAGE)
    typer.echo(render(rows, fmt=fmt, columns=QUERY_COLUMNS if fmt != "json" else None), nl=False)


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    index: IndexOption = None,
) -> None:
    """Counts of indexed tracks per genre and per status."""
    import json

    from libtagger.store.query import stats as index_stats
    from libtagger.report import render

    with _reading_index(index) as db:
        result = index_stats(db)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(f"{result['tracks']} tracks ({result['missing']} missing), {result['runs']} runs\n")
    typer.echo(render([{"genre": g, "tracks": n} for g, n in result["by_genre"].items()], fmt="table"))
    typer.echo(render([{"status": s, "tracks": n} for s, n in result["by_status"].items()], fmt="table"), nl=False)
    if result["rejected_by_reason"]:
        typer.echo("")
        typer.echo(render([{"rejected as": r, "tracks": n} for r, n in result["rejected_by_reason"].items()],
                          fmt="table"), nl=False)
    if result["context"]:
        typer.echo("")
        typer.echo(render([{"pooled with its": level, "tracks": c["tracks"], "genre changed by it": c["changed"]}
                           for level, c in result["context"].items()], fmt="table"), nl=False)


@app.command()
def show(
    file: Annotated[Path, typer.Argument(help="An indexed audio file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    index: IndexOption = None,
) -> None:
    """One track of the index with its segment predictions."""
    import json

    from libtagger.errors import LibtaggerError
    from libtagger.store.query import show_track
    from libtagger.report import context_note, render

    with _reading_index(index) as db:
        try:
            track = show_track(db, file)
        except LibtaggerError as exc:
            _fail(str(exc))
    if track.get("person_genres"):  # stored as JSON text: shown as the list it is
        track["person_genres"] = json.loads(track["person_genres"])
    if as_json:
        typer.echo(json.dumps(track, indent=2, default=str))
        return
    note = context_note(track)
    if note:
        typer.echo(f"{'verdict':>21}: {note}")
    for key, value in track.items():
        if key != "segments":
            shown = "; ".join(value) if isinstance(value, list) else "" if value is None else value
            typer.echo(f"{key:>21}: {shown}")
    typer.echo("")
    typer.echo(render([{"start": s["start"], "end": s["end"], "genre": s["genre"], "confidence": s["confidence"],
                        "pulse": None if s["pulse"] is None else round(s["pulse"], 3)}
                       for s in track["segments"]], fmt="table"), nl=False)


@app.command()
def undo(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files to give their original genre back.")] = None,
    run: Annotated[Optional[int], typer.Option("--run", help="Undo every write of this run (see `libtagger runs`).")] = None,
    preserve_mtime: Annotated[bool, typer.Option(help="Keep each file's modification time.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Restore even files whose genre was changed since libtagger wrote it (they are skipped otherwise).")] = False,
    index: IndexOption = None,
) -> None:
    """Restore the genre tags libtagger replaced (an undo can itself be undone with --run).

    A file whose genre someone changed since libtagger wrote it is skipped (one line on
    standard error) unless --force; the exit status stays 0, as for files that fail.
    """
    from libtagger.errors import IndexLockedError, LibtaggerError
    from libtagger.scan.undo import undo as run_undo
    from libtagger.store.run_context import locked_index

    if (run is None) == (not paths):
        raise typer.BadParameter("give either --run ID or one or more paths")
    _end_like_ctrl_c()  # like scan: end cleanly
    try:
        # create=False: no index yet is an error (and no lock file is made for it)
        with locked_index(_index_path(index), create=False) as db:
            undo_run, results = run_undo(db, run_id=run, paths=[str(p) for p in paths or []],
                                         preserve_mtime=preserve_mtime, force=force)
    except IndexLockedError as exc:
        _fail(str(exc), EXIT_LOCKED)
    except KeyboardInterrupt:
        # Each file is restored and journaled on its own: the files done so far stay done,
        # and running the same undo again restores the rest (restoring twice changes nothing).
        _fail("interrupted; run the same undo again to finish it", EXIT_INTERRUPTED)
    except LibtaggerError as exc:
        _fail(str(exc))
    except (OSError, sqlite3.Error) as exc:
        _fail(_index_problem(exc, _index_path(index)))
    for result in results:
        if result.error or result.skipped:
            typer.echo(f"libtagger: {result.path}: {result.error or result.skipped}", err=True)
        else:
            note = f" ({result.note})" if result.note else ""
            typer.echo(f"restored {result.path}: {'; '.join(result.restored or []) or '(no genre)'}{note}")
    skipped = sum(r.skipped is not None for r in results)
    typer.echo(f"undo run {undo_run}: {sum(r.restored is not None for r in results)} restored, "
               + (f"{skipped} skipped, " if skipped else "")
               + f"{sum(r.error is not None for r in results)} failed")


@app.command()
def runs(
    limit: Annotated[int, typer.Option(min=1)] = 20,
    fmt: FormatOption = "table",
    index: IndexOption = None,
) -> None:
    """The latest scan and undo runs, newest first (ids for `undo --run`).

    A run whose process is gone (killed with kill -9, a power cut) shows as interrupted even
    before the next scan records it so: no run holds the index's lock, or its process on this
    machine no longer exists.
    """
    from libtagger.report import render
    from libtagger.store.lock import run_lock_held

    _check_format(fmt)
    with _reading_index(index) as db:
        rows = db.runs(limit, lock_held=run_lock_held(_index_path(index)))
    typer.echo(render(rows, fmt=fmt, columns=("id", "kind", "started_at", "finished_at", "outcome",
                                               "dry_run", "model_id", "counts")), nl=False)


@app.command()  # the docstring's "\\[": typer reads help as rich markup, where [browse] is a tag
def browse(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8001,
    host: Annotated[str, typer.Option(help="Address to serve on (0.0.0.0: every interface).")] = "127.0.0.1",
    open_browser: Annotated[Optional[bool], typer.Option(
        "--open/--no-open", help="Open the page in the browser (default: when there is a desktop).",
        show_default=False)] = None,
    metadata_out: Annotated[Optional[Path], typer.Option(
        help="Write the Datasette metadata to FILE and exit (for `datasette INDEX -m FILE`).")] = None,
    index: IndexOption = None,
) -> None:
    """Browse the index in Datasette, read-only: facets, labelled columns, canned queries.

    Needs the browse extra: pip install 'libtagger\\[browse]'
    """
    import json

    from libtagger.errors import LibtaggerError
    from libtagger.integrations.browse import datasette_metadata, serve
    from libtagger.store.index import Index

    path = _index_path(index)
    try:
        # Refuses an absent, foreign or damaged file; read-only, as browse never writes the index.
        Index(path, read_only=True).close()
        if metadata_out is not None:
            metadata_out.write_text(json.dumps(datasette_metadata(path), indent=2) + "\n")
            typer.echo(f"wrote {metadata_out}; serve with: datasette {path} -m {metadata_out}")
            return
        serve(path, host=host, port=port, open_browser=open_browser)
    except LibtaggerError as exc:
        _fail(str(exc))
    except (OSError, sqlite3.Error) as exc:  # an unreadable index, or --metadata-out unwritable
        _fail(_index_problem(exc, path))
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None


@app.command()
def models(
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json")] = "table",
    remove: Annotated[Optional[str], typer.Option("--remove", metavar="NAME",
                      help="Delete model NAME from the user's models folder (a learned one; never a shipped one).")] = None,
) -> None:
    """Every available model: where it comes from, kind, model_id, labels and its measured figures.

    Models are looked up in the user's models folder (~/.local/share/libtagger/models), then the
    folders of $LIBTAGGER_MODELS, then the models shipped with libtagger; the first of a name wins.
    """
    import json

    from libtagger.classify.catalog import describe_models, remove_model
    from libtagger.errors import ModelError
    from libtagger.paths import describe_search_path

    if remove is not None:
        try:
            removed = remove_model(remove)
        except ModelError as exc:
            _fail(str(exc), EXIT_USAGE)
        typer.echo(f"removed {removed.name} ({removed.folder})")
        return
    if fmt not in ("table", "json"):
        raise typer.BadParameter(f"{fmt!r} is not one of table, json", param_hint="--format")
    rows = describe_models()
    for row in rows:
        if row["error"]:
            typer.echo(f"libtagger: {row['error']}", err=True)
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(_models_table(rows), nl=False)
    typer.echo(f"searched: {describe_search_path()}")


def _models_table(rows: list[dict]) -> str:
    """The summary table, then per model what each figure was measured on."""
    from libtagger.report import render

    def short(figure: dict) -> str:
        if figure["track_accuracy"] is None:
            return f"{figure['name']} not measured"
        n = f" ({figure['n_tracks']})" if figure["n_tracks"] is not None else ""
        return f"{figure['name']} {figure['track_accuracy']:.3f}{n}"

    table = [{"model": row["name"] + (" *" if row["default"] else ""), "source": row["source"],
              "kind": row["kind"] or "-", "model_id": row["model_id"] or "-",
              "track accuracy (tracks)": "unreadable meta.json" if row["error"]
              else ", ".join(short(f) for f in row["figures"]) or "none recorded"} for row in rows]
    if not table:
        return "no models found\n"
    lines = [render(table, fmt="table").rstrip("\n"), "* the default model (scan --model NAME picks another)"]
    labels = {tuple(row["labels"]) for row in rows if row["labels"]}
    if len(labels) == 1:
        lines.append(f"labels: {', '.join(next(iter(labels)))}")
    for row in rows:
        lines.append("")
        lines.append(f"{row['name']} ({row['source']}: {row['folder']})" + (f": {row['protocol']}" if row["protocol"] else ""))
        for shadowed in row["shadows"]:
            lines.append(f"  shadows {shadowed}")
        if row["error"]:
            lines.append(f"  error: {row['error']}")
        if len(labels) > 1 and row["labels"]:
            lines.append(f"  labels: {', '.join(row['labels'])}")
        if row.get("learned"):
            lines.append(f"  learned from {row['n_tracks']} tracks of your library (libtagger learn); "
                         f"writes {', '.join(row['genres'])}")
        for figure in row["figures"]:
            if figure["track_accuracy"] is None:  # the meta says why it was not measured
                lines.append(f"  {figure['name']}: {figure['note']}")
                continue
            text = f"  {short(figure)}"
            if figure["n_tracks"] is not None:
                text = f"  {figure['name']} {figure['track_accuracy']:.3f} on {figure['n_tracks']} tracks"
            for detail in (figure["measured_on"], figure["note"]):
                if detail:
                    text += f"; {detail}"
            lines.append(text)
    return "\n".join(lines) + "\n"


@app.command()
def learn(
    name: Annotated[str, typer.Argument(help="Name of the model to write; scan --model NAME then uses it.")],
    mapping: Annotated[Optional[Path], typer.Option(help="Genre mapping file: one 'FROM = TO' a line merges or renames ('Death Metal = Metal'); 'FROM = -' leaves a genre out.")] = None,
    min_tracks: Annotated[int, typer.Option(min=2, help="Genres with fewer tracks are left out (and listed).")] = 20,
    multi_valued: Annotated[str, typer.Option(help="A track with several genres: 'first' learns its first one, 'skip' leaves it out.")] = "first",
    folds: Annotated[int, typer.Option(min=2, help="Folds of the grouped validation (at most 3 above 4,000 tracks).")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    replace: Annotated[bool, typer.Option(help="Overwrite a learned model of the same name.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the written meta.json.")] = False,
    index: IndexOption = None,
) -> None:
    """Learn your library's own genres from the genres people set, to tag the rest in their words.

    Trains on the indexed tracks whose genre a person set (never one libtagger wrote), from their stored features and taggrams (nothing is decoded again). Validation is grouped by album artist, else artist, else folder; the figures are printed beside the shipped model's and the model folder goes to the user's models folder. Nothing is written when there is too little data.
    """
    import json

    from libtagger.errors import LibtaggerError, ModelError
    from libtagger.paths import user_models_dir
    from libtagger.tf_quiet import import_tensorflow_quietly
    from libtagger.training.labels import MappingFileError, read_mapping
    from libtagger.training.learn import LearnOptions, LearnRefused, check_name, learn as run_learn
    from libtagger.training.learn import summary_lines, tracks_from_index

    if multi_valued not in ("first", "skip"):
        raise typer.BadParameter(f"{multi_valued!r} is not one of first, skip", param_hint="--multi-valued")
    out_root = user_models_dir()
    try:
        check_name(name, out_root, replace=replace)
        if mapping is not None:
            read_mapping(mapping)  # a bad line is reported before any work
    except (MappingFileError, ModelError) as exc:
        _fail(str(exc), EXIT_USAGE)
    with _reading_index(index) as db:
        tracks = tracks_from_index(db)
    options = LearnOptions(min_tracks=min_tracks, mapping=mapping, multi=multi_valued, folds=folds, seed=seed)
    import_tensorflow_quietly()
    try:
        meta = run_learn(name, tracks, out_root=out_root, options=options, replace=replace,
                         log=lambda line: typer.echo(line, err=True))
    except (MappingFileError, ModelError) as exc:
        _fail(str(exc), EXIT_USAGE)
    except LearnRefused as exc:
        _fail(str(exc))
    except LibtaggerError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(meta, indent=2))
        return
    typer.echo("\n".join(summary_lines(meta)))
    typer.echo(f"wrote {out_root / name} (model card: {out_root / name / 'card.md'}); "
               f"use it with: libtagger scan --model {name} PATH")


@app.command("convert-musicnn")
def convert_musicnn(
    wheel: Annotated[Path, typer.Argument(help="musicnn-0.1.0-py3-none-any.whl (pip download --no-deps musicnn==0.1.0).")],
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: models/musicnn).")] = None,
) -> None:
    """Convert the pretrained MSD_musicnn checkpoint in the musicnn wheel to Keras weights."""
    from libtagger.training.convert_musicnn import convert
    from libtagger.paths import models_dir
    from libtagger.tf_quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    try:
        weights = convert(wheel, out if out is not None else models_dir() / "musicnn")
    except (ValueError, OSError) as exc:
        _fail(f"{wheel}: {exc}")
    typer.echo(f"wrote {weights}")


# --- train / evaluate: the training code (libtagger/training/train.py, libtagger/training/evaluate.py) ---

_SPLIT_HELP = "test, valid, train (the fault-filtered lists in --gtzan) or a split list file."


@app.command()
def train(
    kind: Annotated[str, typer.Option(help="Model kind: seed, musicnn-head or music-detector.")] = "seed",
    out: Annotated[Path, typer.Option(help="Model folder to write; its name is the model name.")] = Path("models/seed"),
    gtzan: Annotated[Optional[Path], typer.Option(help="GTZAN reference data (default: ../shared/gtzan).")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Maximum epochs (default: the kind's recipe).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print one line per epoch.")] = False,
) -> None:
    """Train a model on the GTZAN reference data and write its folder (model.keras + meta.json)."""
    import json

    from libtagger.errors import LibtaggerError
    from libtagger.paths import shared_gtzan_dir
    from libtagger.tf_quiet import import_tensorflow_quietly
    from libtagger.training.train import train as run_train

    import_tensorflow_quietly()
    options: dict = {"gtzan_dir": gtzan or shared_gtzan_dir(), "seed": seed, "verbose": 2 if verbose else 0}
    if epochs is not None:
        options["epochs"] = epochs
    try:
        metrics = run_train(kind, out, **options)
    except LibtaggerError as exc:
        _fail(str(exc))
    typer.echo(f"wrote {out}")
    typer.echo(json.dumps(metrics, indent=2))


@app.command()
def evaluate(
    model: Annotated[Optional[str], typer.Option(help="Model name in models/ or a model folder (default: the shipped default).")] = None,
    split: Annotated[str, typer.Option(help=_SPLIT_HELP)] = "test",
    features_csv: Annotated[Optional[Path], typer.Option(help="Feature table (default: features_30_sec.csv in --gtzan).")] = None,
    taggrams: Annotated[Optional[Path], typer.Option(help="Taggram npz (X, Y, IDS) of the split's clips; needed by models that read taggrams (musicnn-head).")] = None,
    protocols: Annotated[str, typer.Option(help="Comma list: filtered (the split) and/or random (train a fresh model on a random 67 %, score the 33 %).")] = "filtered",
    plot: Annotated[Optional[Path], typer.Option(help="Write the confusion matrix as a PNG (random protocol: NAME-random.png).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, with ece (15 bins, top-1 confidence) and tracks: each clip's id, true and predicted genre and confidence.")] = False,
    gtzan: Annotated[Optional[Path], typer.Option(help="GTZAN reference data (default: ../shared/gtzan).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random protocol's split and training.")] = 0,
    groups: Annotated[Optional[Path], typer.Option(help="Artist of each clip in Sturm's GTZANindex.txt format (clip ::: artist ::: title): also score each clip with the other clips of its artist as context (JSON: context).")] = None,
) -> None:
    """Score a model: track accuracy, calibration (ECE), per-genre precision/recall and the confusion matrix."""
    import json

    from libtagger.classify.classifier import load_classifier
    from libtagger.training.dataset import split_path
    from libtagger.errors import LibtaggerError
    from libtagger.training.evaluate import evaluate_features, format_result, plot_confusion, random_split_protocol
    from libtagger.paths import shared_gtzan_dir
    from libtagger.tf_quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    wanted = [p.strip() for p in protocols.split(",") if p.strip()]
    unknown = sorted(set(wanted) - {"filtered", "random"})
    if unknown or not wanted:
        raise typer.BadParameter(f"{protocols!r}: use filtered, random or both", param_hint="--protocols")
    if groups is not None and "filtered" not in wanted:
        raise typer.BadParameter("--groups scores the split of the filtered protocol; add filtered", param_hint="--groups")
    gtzan_dir = gtzan or shared_gtzan_dir()
    csv_path = features_csv or gtzan_dir / "features_30_sec.csv"
    results: dict = {}
    try:
        clf = load_classifier(model) if model else load_classifier()
        if "filtered" in wanted:
            results["filtered"] = evaluate_features(clf, features_csv=csv_path, split=split_path(split, gtzan_dir),
                                                    taggrams=taggrams, groups=groups)
        if "random" in wanted:
            results["random"] = random_split_protocol(features_csv=csv_path, kind=clf.kind, seed=seed)
            results["random"]["model_id"] = f"fresh {clf.kind} model (seed {seed})"
        if plot is not None:
            for name, result in results.items():
                target = plot if name == "filtered" or len(results) == 1 else plot.with_name(f"{plot.stem}-random{plot.suffix}")
                plot_confusion(result, target)
    except LibtaggerError as exc:
        _fail(str(exc))
    if as_json:
        # The split's own result is the top-level object; the random protocol rides along.
        out = dict(results.get("filtered", results.get("random")))
        if len(results) == 2:
            out["random_split"] = results["random"]
        typer.echo(json.dumps(out, indent=2))
        return
    for name, result in results.items():
        typer.echo(format_result(result, title=f"{result['model_id']} [{name}: {result['split']}]"))


if __name__ == "__main__":  # pragma: no cover
    app()
