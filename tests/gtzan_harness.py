"""Helpers for the tests that use the shared GTZAN data (../shared/gtzan): smaller or re-encoded
copies of it.

* :func:`small_gtzan`: a GTZAN folder with the real table and only the first clips of each genre
  of each split, for short trainings (tests/test_train.py, tests/test_evaluate.py);
* :func:`gtzan_copy`: the first seconds of a GTZAN clip (from :data:`GTZAN_AUDIO`) encoded in the
  format a file name asks for, for libraries of real music (tests/test_groups.py,
  tests/test_library_context.py); it skips the test when the clip is absent.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import FORMATS, GTZAN, require_ffmpeg

#: The GTZAN clips :func:`gtzan_copy` encodes: ../shared beside the clone, as every other test
#: finds it (it was a fixed /work/shared path, which holds only on this machine).
GTZAN_AUDIO = GTZAN / "audio"


def small_gtzan(gtzan: Path, root: Path, sizes: dict[str, int]) -> Path:
    """A GTZAN folder with the real table and the first clips of each genre of each split."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "features_30_sec.csv").symlink_to(gtzan / "features_30_sec.csv")
    (root / "splits").mkdir(exist_ok=True)
    for name, per_genre in sizes.items():
        lines = (gtzan / "splits" / f"{name}_filtered.txt").read_text().splitlines()
        picked, seen = [], {}
        for line in lines:
            genre = line.split("/")[0]
            if seen.get(genre, 0) < per_genre:
                picked.append(line)
                seen[genre] = seen.get(genre, 0) + 1
        (root / "splits" / f"{name}_filtered.txt").write_text("\n".join(picked) + "\n")
    return root


def gtzan_copy(clip: str, dest: Path, seconds: float = 8.0) -> Path:
    """The first ``seconds`` of a GTZAN clip encoded for ``dest``'s format (skips without GTZAN)."""
    src = GTZAN_AUDIO / clip
    if not src.exists():
        pytest.skip(f"GTZAN clip {src} is absent (the albums are real GTZAN music by Sturm's artists)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([require_ffmpeg(), "-v", "error", "-y", "-i", str(src), "-t", str(seconds),
                    *FORMATS[dest.suffix], str(dest)], check=True)
    return dest
