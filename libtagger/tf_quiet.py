"""Import TensorFlow without its start-up noise on the user's terminal."""

from __future__ import annotations

import os
import sys

_tensorflow_ready = False


def import_tensorflow_quietly() -> None:
    """Import TensorFlow without its C++ start-up notices on standard error.

    TensorFlow's native log (oneDNN, "Could not find cuda drivers", cuInit) no longer
    obeys TF_CPP_MIN_LOG_LEVEL; printed every night, it would fill cron's mail, where
    ``--quiet`` promises only error lines. The notices are captured at the file-descriptor
    level and shown only when the import fails.
    """
    global _tensorflow_ready
    if _tensorflow_ready:
        return
    # Hides TensorFlow's later C++ log lines; the start-up ones below ignore it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tempfile

    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no standard error at all: nothing to keep clean
        saved = None
    with tempfile.TemporaryFile() as captured:
        real_stderr = sys.stderr
        # The scan imports TensorFlow in a background thread while its main thread may print
        # error lines: Python-level writes keep reaching the real standard error (through a
        # copy of it, left open: another thread may still hold it), only the native notices
        # on file descriptor 2 are captured. A sys.stderr that is not file descriptor 2 (a
        # test runner's buffer, a log) is left alone: the capture never touches it.
        swapped = saved is not None and _is_fd2(real_stderr)
        # sys.stderr is swapped before descriptor 2 is captured (and given back after it is
        # restored), so a line the main thread prints meanwhile never lands in the capture.
        if swapped:
            sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1,
                                   encoding=getattr(real_stderr, "encoding", None) or "utf-8",
                                   errors="backslashreplace")
        if saved is not None:
            os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs here, not at import
            failed = False
        except BaseException:
            failed = True
            raise
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
            if swapped:
                sys.stderr.flush()
                sys.stderr = real_stderr
            if saved is not None and failed:
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
    _tensorflow_ready = True


def _is_fd2(stream: object) -> bool:
    """Whether ``stream`` writes to file descriptor 2."""
    try:
        return stream.fileno() == 2  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):  # io.StringIO and friends have no descriptor
        return False
