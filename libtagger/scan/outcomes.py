"""What a scan run records for each file: its row in the index and its line in the report.

Every file the run deals with ends in exactly one :class:`FileReport` with a status
(``tagged``, ``would-tag``, ``kept``, ``unsure``, ``rejected``, ``undone``, ``unchanged``,
``error``...);
the counts per status are the run's summary and are stored with the run. Moves are
counted (``moved``) besides the moved track's own report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from libtagger.errors import FileError
from libtagger.audio.analysis import AnalysisFailure
from libtagger.scan.inventory import index_key
from libtagger.store.index import Index, now
from libtagger.store.records import TrackChanges, TrackRow, no_verdict
from libtagger.tags.storage import LibraryFields, read_library_fields


def library_columns(fields: LibraryFields) -> TrackChanges:
    """The ``tracks`` columns of a file's :class:`LibraryFields` (``person_genres`` as JSON)."""
    genres = None if fields.person_genres is None else json.dumps(fields.person_genres, ensure_ascii=False)
    return TrackRow.changes(person_genres=genres, artist=fields.artist, albumartist=fields.albumartist,
                            album=fields.album, compilation=fields.compilation, tags_read_at=now())


@dataclass
class FileReport:
    """One line of a scan report."""

    path: str
    status: str
    genre: str | None = None
    confidence: float | None = None
    runner_up: str | None = None
    runner_up_confidence: float | None = None
    previous_genre: str | None = None
    error: str | None = None
    segments: int = 0
    #: Why a ``rejected`` track gets no genre (``not music: speech``, ``unlike the ten genres``...).
    reason: str | None = None
    #: The track judged alone, and the group its verdict pooled with (None: judged alone).
    own_genre: str | None = None
    own_confidence: float | None = None
    context_level: str | None = None
    context_size: int | None = None
    #: The runner-up written (or to be written) as a second genre value (``--second-genre``).
    second_genre: str | None = None

    @classmethod
    def of(cls, row: TrackRow, *, path: str | None = None, status: str | None = None,
           segments: int = 0) -> FileReport:
        """The report line of a track's row (``path`` and ``status`` as given, else the row's)."""
        return cls(path=row.path if path is None else path, status=row.status if status is None else status,
                   genre=row.genre, confidence=row.confidence, runner_up=row.runner_up,
                   runner_up_confidence=row.runner_up_confidence, previous_genre=row.previous_genre,
                   error=row.error, segments=segments, reason=row.reason, own_genre=row.own_genre,
                   own_confidence=row.own_confidence, context_level=row.context_level,
                   context_size=row.context_size, second_genre=row.second_genre)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScanSummary:
    """A finished (or interrupted) run: its id, the count of each status and every report line."""

    run_id: int
    counts: dict[str, int]
    reports: list[FileReport] = field(default_factory=list)


class RunRecorder:
    """Saves tracks of run ``run_id`` in ``index`` and reports them (to ``on_report`` as they come)."""

    def __init__(self, index: Index, run_id: int,
                 on_report: Callable[[FileReport], None] | None = None) -> None:
        self.index = index
        self.run_id = run_id
        self.on_report = on_report
        self.counts: dict[str, int] = {}
        self.reports: list[FileReport] = []
        #: This run's ``unchanged`` reports by path (a later report of the same file replaces one).
        self._unchanged: dict[str, FileReport] = {}

    def summary(self) -> ScanSummary:
        return ScanSummary(self.run_id, self.counts, self.reports)

    def save(self, path: str, values: TrackChanges, segments: list[dict[str, Any]] | None,
             report: bool = True, n_segments: int = 0) -> int:
        """Save the track and report it; returns its id.

        ``segments`` None keeps the stored segment rows (``n_segments`` of them, for the report).
        """
        track_id = self.index.save_track(path, values, segments)
        if report:  # what this save set (a column it leaves as it was is not reported)
            self.emit(FileReport.of(TrackRow().with_changes(values), path=index_key(path),
                                    segments=len(segments) if segments else n_segments))
        return track_id

    def save_failure(self, failure: AnalysisFailure) -> None:
        """An error row for a file that could not be analysed (any earlier verdict is dropped)."""
        values = TrackRow.changes(status="error", error=failure.reason, run_id=self.run_id) | no_verdict()
        if failure.size is not None:
            values |= {"size": failure.size, "mtime_ns": failure.mtime_ns}
            try:  # audio that cannot be analysed may still carry tags worth indexing
                values |= library_columns(read_library_fields(failure.path))
            except FileError:
                pass
        self.save(failure.path, values, [])

    def report_stored(self, row: TrackRow, status: str) -> None:
        """Report an indexed track as it is stored, under ``status`` (nothing saved)."""
        self.emit(FileReport.of(row, status=status))

    def report_error(self, path: str, reason: str) -> None:
        """Report an error for a path that gets no row in the index."""
        self.emit(FileReport(path=index_key(path), status="error", error=reason))

    def file_error(self, path: str, reason: str) -> bool:
        """Report a problem met before analysis; an audio file that is there (a broken or
        looping link, an unreadable entry) also gets an error row. True when it got one."""
        from libtagger.scan.discover import is_supported

        if not (is_supported(path) and os.path.lexists(path)):
            self.report_error(path, reason)
            return False
        self.save(path, TrackRow.changes(status="error", error=reason, run_id=self.run_id), None)
        return True

    def emit(self, report: FileReport) -> None:
        """Count and keep one file's report; it replaces an ``unchanged`` report of the same file
        (a track of an album the run re-voted from its stored row)."""
        earlier = self._unchanged.pop(report.path, None)
        if earlier is not None:
            self.reports.remove(earlier)
            self.counts["unchanged"] -= 1
            if not self.counts["unchanged"]:
                del self.counts["unchanged"]
        if report.status == "unchanged":
            self._unchanged[report.path] = report
        self.count(report.status)
        self.reports.append(report)
        if self.on_report is not None:
            self.on_report(report)

    def count(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
