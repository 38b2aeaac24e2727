"""The formats table is the one truth: discovery, decoding and tagging follow it, row by row.

Every row gets a real file made here (ffmpeg, or sox for AIFF-C), which must be found by the
walk, decode to the right length, and either take a genre (read back with mutagen, the audio
sample for sample as before) or refuse with the clear "cannot hold a genre tag" error.
"""

from __future__ import annotations

import ast
import doctest
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, music_like, require_ffmpeg
from typer.testing import CliRunner

from libtagger import formats
from libtagger.audio import decode
from libtagger.audio.decode import duration_is_exact, load, probe
from libtagger.cli import app
from libtagger.errors import WriteError
from libtagger.scan import discover
from libtagger.scan.discover import iter_audio_files
from libtagger.tags import storage as tags
from libtagger.tags.safe_write import is_temporary

SECONDS = 2.0


@dataclass(frozen=True)
class Recipe:
    """How this test makes a file of one row, and what decoding it must give."""

    encode: list[str]  #: ffmpeg codec arguments, or ["sox", <type>] for sox
    lossless: bool
    frame: int = 0  #: decoded length may be off by this many samples (the codec's frame)
    sr: int = 44100
    channels: int = 2
    exact_length: bool = True  #: the container states the length (duration_is_exact)


AAC_FRAME, WMA_FRAME = 1024, 2048

#: One recipe per row of the table: a row without one fails test_every_row_has_a_recipe.
RECIPES: dict[str, Recipe] = {
    ".mp3": Recipe(["-c:a", "libmp3lame", "-b:a", "128k"], False, frame=1152),
    ".flac": Recipe(["-c:a", "flac"], True),
    ".ogg": Recipe(["-c:a", "libvorbis", "-q:a", "3"], False, frame=2048),
    ".oga": Recipe(["-c:a", "flac"], True),  # Ogg FLAC: libsndfile refuses it, ffmpeg decodes it
    ".opus": Recipe(["-c:a", "libopus", "-b:a", "64k"], False, frame=960, sr=48000),
    ".spx": Recipe(["-c:a", "libspeex"], False, frame=320, sr=16000, channels=1),
    ".m4a": Recipe(["-c:a", "aac", "-b:a", "128k"], False, frame=AAC_FRAME),
    ".m4b": Recipe(["-c:a", "aac", "-b:a", "64k"], False, frame=AAC_FRAME),
    ".mp4": Recipe(["-c:a", "alac"], True),
    # ADTS cannot signal the encoder's 1024 priming samples, so they stay: one frame plus them.
    ".aac": Recipe(["-c:a", "aac", "-b:a", "128k"], False, frame=AAC_FRAME + 1024, exact_length=False),
    ".wav": Recipe(["-c:a", "pcm_s16le"], True),
    ".aiff": Recipe(["-c:a", "pcm_s16be"], True),
    ".aif": Recipe(["-c:a", "pcm_s16be"], True),
    ".aifc": Recipe(["sox", "aifc"], True),  # a real AIFC form (ffmpeg would write plain AIFF)
    ".au": Recipe(["-c:a", "pcm_s16be"], True),
    ".wma": Recipe(["-c:a", "wmav2", "-b:a", "128k"], False, frame=WMA_FRAME),
    ".asf": Recipe(["-c:a", "wmav2", "-b:a", "128k"], False, frame=WMA_FRAME),
}

#: Where each storage keeps the genre, as mutagen names it (read back without libtagger).
MUTAGEN_GENRE_KEY = {"id3-mp3": "TCON", "id3-wave": "TCON", "id3-aiff": "TCON",
                     "vorbis": "GENRE", "mp4": "\xa9gen", "asf": "WM/Genre"}

ROWS = pytest.mark.parametrize("row", formats.FORMATS, ids=lambda r: r.extension)


def make_row_file(path: Path, recipe: Recipe, seconds: float = SECONDS) -> np.ndarray:
    """Encode ``seconds`` of music at ``path``; returns the source's mono mix, shape (n,), float32."""
    path.parent.mkdir(parents=True, exist_ok=True)
    src = path.with_name(path.name + ".src.wav")
    sf.write(src, music_like(seconds, sr=recipe.sr, channels=recipe.channels), recipe.sr, subtype="PCM_16")
    try:
        if recipe.encode[0] == "sox":
            if shutil.which("sox") is None:
                pytest.skip("sox is not installed")
            subprocess.run(["sox", str(src), "-t", recipe.encode[1], str(path)], check=True)
        else:
            subprocess.run([require_ffmpeg(), "-v", "error", "-y", "-i", str(src), *recipe.encode, str(path)],
                           check=True)
        pcm, _ = sf.read(src, dtype="float32", always_2d=True)
    finally:
        src.unlink()
    return pcm.mean(axis=1, dtype=np.float32)


def mutagen_genres(path: Path, storage_key: str) -> list[str]:
    f = mutagen.File(path)
    value = f.tags[MUTAGEN_GENRE_KEY[storage_key]]
    return [str(v) for v in getattr(value, "text", value)]  # an ID3 frame keeps its values in .text


# ---------------------------------------------------------------- the table itself


def test_rows_are_well_formed() -> None:
    exts = [r.extension for r in formats.FORMATS]
    assert len(exts) == len(set(exts)), "one row per extension"
    for r in formats.FORMATS:
        assert r.extension.startswith(".") and r.extension == r.extension.lower() and len(r.extension) > 1
        assert r.name and r.decoder in ("soundfile", "ffmpeg")
        assert bool(r.decoder_why) == (r.decoder == "ffmpeg"), f"{r.extension}: why ffmpeg, for ffmpeg only"
        assert r.can_hold_tag == (r.storage is not None)
        assert "|" not in r.name + r.note + r.decoder_why  # they become Markdown table cells
        assert r.content in formats.CONTENT_NAMES, f"{r.extension}: its content is a name content_format gives"


def test_every_storage_key_names_a_storage_class() -> None:
    used = {r.storage for r in formats.FORMATS if r.storage is not None}
    assert used <= tags.STORAGE_KEYS
    assert tags.STORAGE_KEYS == set(formats.STORAGE_NAMES), "every storage class has a description"
    assert used == tags.STORAGE_KEYS, "no storage class is left without a format"
    from libtagger.tags.storage.table import HOLDS

    assert set(HOLDS) == tags.STORAGE_KEYS, "every storage class says which content it can hold"
    assert all(r.content in HOLDS[r.storage] for r in formats.FORMATS if r.storage), "a row's own content fits"


def test_discovery_decoding_and_tagging_expose_exactly_the_tables_sets() -> None:
    rows = formats.FORMATS
    assert discover.SUPPORTED_EXTENSIONS == formats.EXTENSIONS == {r.extension for r in rows}
    assert decode.FFMPEG_EXTENSIONS == formats.FFMPEG_EXTENSIONS == {r.extension for r in rows
                                                                     if r.decoder == "ffmpeg"}
    assert tags.TAGGABLE_EXTENSIONS == formats.TAGGABLE_EXTENSIONS == {r.extension for r in rows
                                                                       if r.can_hold_tag}
    # the ones that disagreed before the table existed
    assert {".m4b", ".spx", ".aifc", ".aac", ".asf", ".au"} <= discover.SUPPORTED_EXTENSIONS
    assert {".au", ".aac"}.isdisjoint(tags.TAGGABLE_EXTENSIONS)


def test_no_other_extension_list_in_the_package() -> None:
    """No module but formats.py spells a table extension as a string of its own."""
    found = []
    for path in sorted((ROOT / "libtagger").rglob("*.py")):
        if path.name == "formats.py" and path.parent.name == "libtagger":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value.lower() in formats.EXTENSIONS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert found == []


def test_format_for_and_doctests() -> None:
    assert formats.format_for("A/B/Song.FLAC").storage == "vorbis"
    assert formats.format_for(b"\xff.m4b").decoder == "ffmpeg"
    assert formats.format_for("flac") is None and formats.format_for("x.txt") is None
    assert doctest.testmod(formats).failed == 0


def test_markdown_table_has_one_line_per_row() -> None:
    lines = formats.markdown_table().splitlines()
    assert lines[0].startswith("| Extension |") and len(lines) == 2 + len(formats.FORMATS)
    for line, r in zip(lines[2:], formats.FORMATS):
        assert line.startswith(f"| `{r.extension}` | {r.name} |")
        assert ("cannot hold a genre tag" in line) != r.can_hold_tag
        assert (r.decoder_why in line) if r.decoder == "ffmpeg" else "| soundfile |" in line


def test_readme_formats_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert formats.markdown_table() in readme


def test_every_row_has_a_recipe() -> None:
    assert set(RECIPES) == formats.EXTENSIONS


# ---------------------------------------------------------------- a real file per row


@ROWS
def test_every_row_is_found_decoded_and_tagged(row: formats.Format, tmp_path: Path) -> None:
    recipe = RECIPES[row.extension]
    song = tmp_path / "music" / "album" / f"song{row.extension}"
    source = make_row_file(song, recipe)
    (song.parent / "cover.txt").write_text("not audio")
    if row.extension == ".aifc":
        assert song.read_bytes()[8:12] == b"AIFC"

    # found, and its content is what the row says (a file whose content is not is refused)
    assert list(iter_audio_files([tmp_path / "music"])) == [song]
    with open(song, "rb") as fh:
        assert formats.content_format(fh.fileno()) == row.content

    # decoded, to the right length
    info = probe(song)
    assert (info.samplerate, info.channels) == (recipe.sr, recipe.channels)
    assert duration_is_exact(info) is recipe.exact_length
    if recipe.exact_length:
        assert abs(info.duration - SECONDS) <= max(recipe.frame, 1) / recipe.sr
    before = load(song)
    assert before.dtype == np.float32
    assert abs(before.size - SECONDS * recipe.sr) <= recipe.frame, f"{before.size} samples"
    if recipe.lossless:
        assert before.size == source.size
        assert np.allclose(before, source, rtol=0, atol=1e-6)  # far below one 16-bit step (3e-5)

    if not row.can_hold_tag:
        raw = song.read_bytes()
        with pytest.raises(WriteError) as err:
            tags.write_genre(song, "Jazz")
        assert err.value.path == str(song)
        assert err.value.reason == f"{row.extension} files cannot hold a genre tag"
        assert tags.read_genres(song) == [] and tags.snapshot(song).format is None
        assert song.read_bytes() == raw
        return

    # tagged, read back by mutagen itself, and the audio is untouched
    tags.write_genre(song, "Jazz")
    assert mutagen_genres(song, row.storage) == ["Jazz"]
    assert tags.read_genres(song) == ["Jazz"] and tags.written_by_libtagger(song)
    assert not [p.name for p in song.parent.iterdir() if is_temporary(p.name)]
    after = load(song)
    assert np.array_equal(after, before), "the tag write changed the decoded audio"
    assert list(iter_audio_files([tmp_path / "music"])) == [song]


# ---------------------------------------------------------------- end to end


def test_a_scan_finds_tags_and_refuses_by_the_table(tmp_path: Path) -> None:
    """``libtagger scan`` over the formats the three old lists disagreed on."""
    music = tmp_path / "music"
    exts = [".m4b", ".spx", ".aifc", ".asf", ".aac", ".au"]
    for ext in exts:
        make_row_file(music / f"song{ext}", RECIPES[ext], seconds=5.0)  # the scan needs >= 3 s
    result = CliRunner().invoke(app, ["scan", str(music), "--min-confidence", "0", "--report", "json",
                                      "--index", str(tmp_path / "index.db")])
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).suffix: r for r in json.loads(result.stdout)}
    assert set(rows) == set(exts)
    for ext, r in rows.items():
        row = formats.format_for(r["path"])
        if row.can_hold_tag:
            assert r["status"] == "tagged", r
            assert mutagen_genres(Path(r["path"]), row.storage) == [r["genre"]]
        else:
            assert (r["status"], r["error"]) == ("error", f"{ext} files cannot hold a genre tag"), r
            assert r["genre"]  # analysed all the same: the verdict is reported
