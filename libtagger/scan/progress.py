"""The scan's progress bar on a terminal, and the lines printed while it shows.

The bar counts a file when a worker finishes analysing it, reported from joblib's
callback thread (:func:`libtagger.parallel.map_unordered`'s ``on_done``), not when
the main process takes its result: the main process classifies a batch of tracks at a
time, and while it does no result is taken, so counting results would move the bar in
bursts of a batch and make its rate and ETA jump.

A line printed while the bar shows must go through :func:`write_line` (``tqdm.write``):
it clears the bar, prints the whole line and draws the bar again below it. Printed
directly, the line would start in the middle of the bar's line.

The bar and those lines write to their own copy of the standard error descriptor: while
TensorFlow loads (on the first batch), :func:`libtagger.tf_quiet.import_tensorflow_quietly`
points descriptor 2 at a capture file, and the bar, still moving meanwhile, would vanish
into it.

Once the terminal is gone (closed, ssh dropped: writes fail), nothing is printed any
more and the run ends as it would have (:func:`discard_output`).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, TextIO

#: Where the bar that shows now writes (None: no bar shows).
_bar_stream: TextIO | None = None


def discard_output() -> None:
    """Point standard output and error at /dev/null: the terminal they wrote to is gone.

    Anything still buffered is then flushed there at exit, instead of failing again and
    turning the exit status into 120.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def write_line(line: str) -> None:
    """Print ``line`` whole on standard error, above the progress bar when one shows."""
    from tqdm import tqdm

    try:
        tqdm.write(line, file=_bar_stream or sys.stderr)
    except OSError:  # EIO after a hang-up, EPIPE: nowhere to print
        discard_output()


class FilesBar:
    """The ``analysing`` bar over ``total`` files; a no-op when ``shown`` is False.

    :meth:`analysed` may be called from joblib's callback thread, :meth:`received` from the
    main process's thread; the bar shows the larger of the two counts (a file whose worker
    crashed is never reported analysed, only received).
    """

    def __init__(self, total: int, *, shown: bool) -> None:
        from tqdm import tqdm

        global _bar_stream
        self._stream: TextIO | None = None
        if shown:
            sys.stderr.flush()
            self._stream = _bar_stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1,
                                                   encoding=sys.stderr.encoding, errors="replace")
        self._bar: Any = tqdm(total=total, unit="file", desc="analysing", disable=not shown,
                              file=self._stream or sys.stderr, dynamic_ncols=True)
        self._lock = threading.Lock()
        self._analysed = 0
        self._received = 0

    def analysed(self, n: int) -> None:
        """``n`` more files finished in the workers (joblib's callback thread)."""
        with self._lock:
            self._analysed += n
            self._show()

    def received(self) -> None:
        """One more result taken by the main process (analysed, failed or crashed)."""
        with self._lock:
            self._received += 1
            self._show()

    def _show(self) -> None:
        count = min(max(self._analysed, self._received), self._bar.total)
        if count > self._bar.n:
            try:
                self._bar.update(count - self._bar.n)
            except OSError:  # a bar is never worth ending a run for
                pass

    def close(self) -> None:
        global _bar_stream
        with self._lock:
            try:
                self._bar.close()
            except OSError:
                pass
            if self._stream is not None:
                _bar_stream = None
                try:
                    self._stream.close()
                except OSError:
                    pass
                self._stream = None

    def __enter__(self) -> FilesBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
