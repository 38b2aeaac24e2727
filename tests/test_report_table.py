"""The table report of a real scan stays readable when a file's tags hold a huge genre."""

from __future__ import annotations

import json

import mutagen

from conftest import make_audio
from scan_harness import require_seed_model, run_cli

from libtagger.report import MAX_CELL_CHARS


def test_a_20000_character_genre_does_not_pad_every_row(tmp_path):
    require_seed_model()
    music = tmp_path / "Music"
    huge = make_audio(music / "huge genre.flac", 6.0, seed=1)
    make_audio(music / "plain.flac", 6.0, seed=2)
    tags = mutagen.File(huge)
    tags["genre"] = "Rock " * 4000  # 20,000 characters, as a broken tagger left it
    tags.save()
    index = tmp_path / "index.db"
    common = ("scan", "--dry-run", "--model", "seed", "--min-confidence", "0", "--jobs", "1", "--index", index)

    table = run_cli(*common, music)
    assert table.returncode == 0, table.stderr[-3000:]
    lines = table.stdout.splitlines()
    longest_path = len(str(music / "huge genre.flac"))
    # path, status, genre, confidence, runner-up, previous genre, error, reason: each cut at MAX_CELL_CHARS
    assert max(map(len, lines)) < longest_path + 8 * (MAX_CELL_CHARS + 2), max(map(len, lines))
    row, = [line for line in lines if "huge genre.flac" in line]
    assert ("Rock " * 20)[:MAX_CELL_CHARS - 3] + "..." in row

    # JSON keeps every character (a second run: --rescan analyses the files again)
    report = run_cli(*common, "--rescan", "--report", "json", music)
    assert report.returncode == 0, report.stderr[-3000:]
    previous = {r["path"]: r["previous_genre"] for r in json.loads(report.stdout)}
    assert len(previous[str(huge)]) >= 19_999
