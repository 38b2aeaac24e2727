"""A file whose content is another format than its extension says (an MP4 saved as .mp3, as
downloaders do; a FLAC renamed .mp3) is tagged in its content's own tag, the one any player
that plays the file reads; its audio is untouched and undo gives back its exact bytes.

(One whose content cannot hold a genre tag, an ADTS AAC stream named .mp3, is an error row:
tests/test_bad_input.py.)
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import mutagen
import pytest
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from conftest import make_audio
from scan_harness import require_seed_model, rows, run_cli

SCAN = ("--model", "seed", "--min-confidence", "0", "--jobs", "2", "--quiet", "--context", "none")

#: name -> mutagen's class of its content and the key of the content's own genre tag.
MISLABELLED = {
    "flac-inside.mp3": (FLAC, "genre"),
    "ogg-inside.mp3": (OggVorbis, "genre"),
    "wav-inside.mp3": (WAVE, "TCON"),
    "mp3-inside.flac": (MP3, "TCON"),
    "m4a-inside.mp3": (MP4, "\xa9gen"),
}


def _m4a_mutagen_takes_for_mp3(path: Path) -> None:
    """An AAC .m4a at ``path`` in which mutagen's MP3 class finds two frame-like syncs (about one
    8-s file in five): the case whose ID3 tag once broke the MP4's audio."""
    for seed in range(40, 100):
        make_audio(path.with_suffix(".m4a"), 8.0, seed=seed).rename(path)
        try:
            MP3(path)
            return
        except mutagen.MutagenError:
            continue
    pytest.fail("no .m4a that mutagen takes for an MP3: the test would prove nothing")


def _pcm(path: Path) -> bytes:
    """The decoded audio, as ffmpeg (which goes by content) gives it."""
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-"],
                          check=True, capture_output=True).stdout


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    require_seed_model()
    root = tmp_path_factory.mktemp("mislabelled")
    lib, originals = root / "lib", root / "originals"
    lib.mkdir()
    originals.mkdir()
    for seed, name in enumerate(MISLABELLED, start=30):
        real = name.partition("-inside")[0]
        if real == "m4a":
            _m4a_mutagen_takes_for_mp3(originals / name)
        else:
            make_audio(originals / f"{name}.{real}", 8.0, seed=seed).rename(originals / name)
        shutil.copy(originals / name, lib / name)
    index = root / "index.db"
    result = run_cli("scan", lib, *SCAN, "--index", index)
    return lib, originals, index, result


def test_each_is_tagged_in_its_contents_own_tag(scanned):
    lib, _, index, result = scanned
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    tracks = {Path(r["path"]).name: r for r in rows(index, "select * from tracks")}
    for name, (kind, key) in MISLABELLED.items():
        row = tracks[name]
        assert row["status"] == "tagged", (name, row["error"])
        assert list(kind(lib / name).tags[key]) == [row["genre"]], name


def test_the_audio_is_untouched(scanned):
    """The tag went where the content keeps tags: every file decodes to the same samples."""
    lib, originals, _, _ = scanned
    for name in MISLABELLED:
        assert (lib / name).read_bytes() != (originals / name).read_bytes(), f"{name}: nothing was written"
        assert _pcm(lib / name) == _pcm(originals / name), name


def test_undo_gives_back_the_exact_bytes(scanned):
    lib, originals, index, _ = scanned
    result = run_cli("undo", "--run", "1", "--index", index)
    assert result.returncode == 0, result.stderr
    assert f"{len(MISLABELLED)} restored, 0 failed" in result.stdout
    for name in MISLABELLED:
        assert (lib / name).read_bytes() == (originals / name).read_bytes(), name
