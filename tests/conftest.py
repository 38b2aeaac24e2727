"""Shared fixtures: the GTZAN reference data and real audio files in every format."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from libtagger.audio import numba_cache

# Before any test module imports librosa (tests/test_features.py does at its top): librosa
# compiles numba kernels into the shared on-disk cache as it is imported, and the guard must
# already hold then, as it does in every libtagger process (issue 17 item 2).
numba_cache.install()

ROOT = Path(__file__).resolve().parent.parent
GTZAN = ROOT.parent / "shared" / "gtzan"

#: extension -> ffmpeg arguments that encode it (the codec each container really uses).
FORMATS: dict[str, list[str]] = {
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "128k"],
    ".flac": ["-c:a", "flac"],
    ".ogg": ["-c:a", "libvorbis", "-q:a", "3"],
    ".opus": ["-c:a", "libopus", "-b:a", "64k"],
    ".m4a": ["-c:a", "aac", "-b:a", "128k"],
    ".alac.m4a": ["-c:a", "alac"],
    ".wav": ["-c:a", "pcm_s16le"],
    ".aiff": ["-c:a", "pcm_s16be"],
    ".wma": ["-c:a", "wmav2", "-b:a", "128k"],
}


@pytest.fixture(scope="session", autouse=True)
def _test_environment(tmp_path_factory):
    """Models in the developer's ~/.local/share/libtagger/models or $LIBTAGGER_MODELS would shadow
    the shipped ones (first match wins): tests see only the shipped models unless they add their own.
    The music check is off unless a test asks for it (see below)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data-home")))
        patch.delenv("LIBTAGGER_MODELS", raising=False)
        # The suite's audio is made of sine chords and clicks (music_like): the music detector
        # rightly calls that a tone and tags nothing. Tests of the pipeline's mechanics run
        # with the check off; tests of the check itself pass --music-check
        # (tests/test_scan_rejects.py, tests/test_openset.py).
        patch.setenv("LIBTAGGER_MUSIC_CHECK", "0")
        yield


@pytest.fixture(scope="session")
def gtzan() -> Path:
    """Path to ../shared/gtzan; the test is skipped when it is not there."""
    if not (GTZAN / "features_30_sec.csv").exists():
        pytest.skip(f"GTZAN reference data not found at {GTZAN} (it lives beside the clone in ../shared)")
    return GTZAN


def require_ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        pytest.skip("ffmpeg is not installed (.ci/run installs it with apt-get)")
    return exe


def music_like(seconds: float, sr: int = 44100, channels: int = 2, seed: int = 0) -> np.ndarray:
    """A few seconds of chords over a beat: real enough for every feature to be non-trivial.

    Returns an array of shape (n_samples, channels), float32 in [-1, 1].
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    for f in (220.0, 277.2, 329.6):
        y += 0.2 * np.sin(2 * np.pi * f * t)
    beat = (np.sin(2 * np.pi * 2 * t) > 0.95).astype(float) * rng.normal(0, 0.3, t.size)
    y = (y + beat).astype(np.float32)
    y /= max(1.0, float(np.abs(y).max()))
    return np.stack([y * (1 - 0.1 * c) for c in range(channels)], axis=1)


def make_audio(path: Path, seconds: float = 5.0, *, sr: int = 44100, channels: int = 2,
               seed: int = 0, extra_ffmpeg: list[str] | None = None) -> Path:
    """Write a real audio file at ``path``; the codec is chosen from the file name (see FORMATS).

    A ``.wav`` is written with soundfile, every other format is encoded by ffmpeg from it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = music_like(seconds, sr=sr, channels=channels, seed=seed)
    name = path.name.lower()
    suffix = ".alac.m4a" if name.endswith(".alac.m4a") else path.suffix.lower()
    if suffix == ".wav" and not extra_ffmpeg:
        sf.write(path, data, sr, subtype="PCM_16")
        return path
    src = path.with_name(path.name + ".src.wav")
    sf.write(src, data, sr, subtype="PCM_16")
    codec = FORMATS[suffix]
    out = path
    try:
        subprocess.run([require_ffmpeg(), "-v", "error", "-y", "-i", str(src), *codec,
                        *(extra_ffmpeg or []), str(out)], check=True)
    finally:
        src.unlink(missing_ok=True)
    return path


@pytest.fixture
def audio_factory(tmp_path: Path):
    """``audio_factory("song.mp3", seconds=5)`` writes a real file under tmp_path and returns its path."""

    def factory(name: str, seconds: float = 5.0, **kwargs) -> Path:
        return make_audio(tmp_path / name, seconds, **kwargs)

    return factory


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """``small_tmpfs(size_bytes)`` mounts a tmpfs of that size under tmp_path (root only; else skip).

    A real small file system is the honest way to fill a disk. Unmounted afterwards.
    """
    mounted: list[Path] = []

    def mount(size_bytes: int, label: str = "mnt") -> Path:
        where = tmp_path / label
        where.mkdir()
        try:
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(where)],
                           check=True, capture_output=True)
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {getattr(exc, 'stderr', exc)!r}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


#: The tables of libtagger's first index (0.1), as it made them, all in one transaction with
#: ``meta``'s schema_version and no application id: what an index from before the mark holds.
INDEX_0_1_SQL = """
CREATE TABLE IF NOT EXISTS "runs" ("id" INTEGER PRIMARY KEY, "kind" TEXT, "started_at" TEXT,
   "finished_at" TEXT, "outcome" TEXT, "pid" INTEGER, "arguments" TEXT, "model_id" TEXT,
   "dry_run" INTEGER, "counts" TEXT);
CREATE TABLE IF NOT EXISTS "tracks" ("id" INTEGER PRIMARY KEY, "path" TEXT NOT NULL, "path_bytes" BLOB,
   "size" INTEGER, "mtime_ns" INTEGER, "fingerprint" TEXT, "format" TEXT, "duration" REAL,
   "samplerate" INTEGER, "channels" INTEGER, "status" TEXT, "error" TEXT, "genre" TEXT,
   "confidence" REAL, "runner_up" TEXT, "runner_up_confidence" REAL, "previous_genre" TEXT,
   "written" INTEGER DEFAULT 0, "written_genre" TEXT, "model_id" TEXT, "missing" INTEGER DEFAULT 0,
   "analysed_at" TEXT, "updated_at" TEXT, "run_id" INTEGER REFERENCES "runs"("id"));
CREATE TABLE IF NOT EXISTS "segments" ("track_id" INTEGER REFERENCES "tracks"("id"), "idx" INTEGER,
   "start" REAL, "end" REAL, "genre" TEXT, "confidence" REAL, "probabilities" TEXT, "features" BLOB,
   "taggram" BLOB, PRIMARY KEY ("track_id", "idx"));
CREATE TABLE IF NOT EXISTS "journal" ("id" INTEGER PRIMARY KEY, "track_id" INTEGER REFERENCES "tracks"("id"),
   "run_id" INTEGER REFERENCES "runs"("id"), "path" TEXT, "path_bytes" BLOB, "action" TEXT, "at" TEXT,
   "before" TEXT, "genre" TEXT, "completed" INTEGER);
CREATE TABLE IF NOT EXISTS "meta" ("key" TEXT PRIMARY KEY, "value" TEXT);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');
"""


def complete_old_index(con) -> None:
    """Give a hand-made old index (one table of an older release) the rest of what libtagger made.

    An index without libtagger's application id is taken for an older libtagger's only when it
    has all its tables and ``meta``'s schema_version (else it is another program's database).
    """
    con.executescript(INDEX_0_1_SQL)
