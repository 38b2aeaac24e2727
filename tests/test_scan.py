"""``libtagger scan`` end to end on real files: decode, features, model, vote, tag, index."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import mutagen
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import FORMATS, make_audio
from libtagger.cli import app
from libtagger.genres import DISPLAY_NAMES
from libtagger.store.index import Index

runner = CliRunner()
GENRE_NAMES = set(DISPLAY_NAMES.values())


def scan(*args: str):
    result = runner.invoke(app, ["scan", *args])
    return result


def report_of(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def ffprobe_genre(path: Path) -> str | None:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags:stream_tags",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    tag_sets = [data.get("format", {}).get("tags", {})] + [s.get("tags", {}) for s in data.get("streams", [])]
    for tags in tag_sets:
        for key, value in tags.items():
            if key.lower() == "genre":
                return value
    return None


def decoded(path: Path) -> np.ndarray:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "s16le", "-"],
                         capture_output=True, check=True)
    return np.frombuffer(out.stdout, dtype=np.int16)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """One real file of every supported format (8 s of music-like audio each)."""
    root = tmp_path_factory.mktemp("library")
    for i, ext in enumerate(FORMATS):
        make_audio(root / f"track {i}{ext}", 8.0, seed=i)
    return root


def test_dry_run_of_the_gtzan_clips_reports_all_110(gtzan, tmp_path):
    audio = gtzan / "audio"
    result = scan(str(audio), "--dry-run", "--report", "json", "--index", str(tmp_path / "i.db"))
    rows = report_of(result)
    assert len(rows) == 110
    assert {Path(r["path"]).name for r in rows} == {p.name for p in audio.iterdir()}
    for row in rows:
        assert set(row) >= {"path", "status", "genre", "confidence", "previous_genre", "error"}
        assert row["genre"] in GENRE_NAMES
        assert 0.0 < row["confidence"] <= 1.0
    wav = [r for r in rows if r["path"].endswith(".wav")]
    assert {r["status"] for r in wav} <= {"would-tag", "unsure"}
    au = [r for r in rows if r["path"].endswith(".au")]
    assert all(r["status"] == "error" and "tag" in r["error"] for r in au)  # AU has no tag block
    # Real GTZAN music (41 training-split clips, 56 unseen valid-split excerpts, ...): if the
    # pipeline's features or taggrams drifted from the training ones, this would collapse.
    correct = sum(r["genre"] == DISPLAY_NAMES[Path(r["path"]).name.split(".")[0]] for r in rows)
    assert correct / len(rows) >= 0.7


def test_scan_writes_a_genre_every_format_reads_back(library, tmp_path):
    work = tmp_path / "lib"
    shutil.copytree(library, work)
    before = {p.name: decoded(p) for p in work.iterdir()}
    index = tmp_path / "index.db"
    rows = report_of(scan(str(work), "--min-confidence", "0", "--report", "json", "--index", str(index)))
    assert len(rows) == len(FORMATS)
    for row in rows:
        path = Path(row["path"])
        assert row["status"] == "tagged", row
        assert row["genre"] in GENRE_NAMES
        assert ffprobe_genre(path) == row["genre"], path.name
        tags = mutagen.File(path)
        assert tags is not None
        assert np.array_equal(decoded(path), before[path.name]), f"audio changed in {path.name}"
    # and the index answers from the same scan
    genre = rows[0]["genre"]
    q = runner.invoke(app, ["query", "--genre", genre, "--format", "json", "--index", str(index)])
    assert rows[0]["path"] in [r["path"] for r in json.loads(q.stdout)]


def test_dry_run_writes_no_file(library, tmp_path):
    work = tmp_path / "lib"
    shutil.copytree(library, work)
    before = {p.name: p.read_bytes() for p in work.iterdir()}
    rows = report_of(scan(str(work), "--dry-run", "--model", "seed", "--min-confidence", "0",
                          "--report", "json", "--index", str(tmp_path / "i.db")))
    assert {r["status"] for r in rows} == {"would-tag"}
    assert {p.name: p.read_bytes() for p in work.iterdir()} == before


def test_write_policy_keeps_a_persons_genre_unless_overwrite(audio_factory, tmp_path):
    song = audio_factory("mine.flac", 6.0)
    f = mutagen.File(song)
    f["genre"] = "Bebop"
    f.save()
    index = str(tmp_path / "i.db")
    rows = report_of(scan(str(song), "--model", "seed", "--min-confidence", "0", "--report", "json", "--index", index))
    assert rows[0]["status"] == "kept" and rows[0]["previous_genre"] == "Bebop"
    assert mutagen.File(song)["genre"] == ["Bebop"]
    # a nightly re-run has nothing to do for it: not re-decided, not logged again
    rows = report_of(scan(str(song), "--model", "seed", "--min-confidence", "0", "--report", "json", "--index", index))
    assert rows[0]["status"] == "unchanged"
    rows = report_of(scan(str(song), "--model", "seed", "--min-confidence", "0", "--overwrite",
                          "--report", "json", "--index", index))
    assert rows[0]["status"] == "tagged"
    assert mutagen.File(song)["genre"] == [rows[0]["genre"]]


def test_nothing_written_below_min_confidence(gtzan, tmp_path):
    # A real clip, so that the voted confidence is not saturated at 1.0.
    song = tmp_path / "clip.wav"
    shutil.copy(gtzan / "audio" / "reggae.00000.wav", song)  # the seed model is unsure of it (about 0.37)
    song.chmod(0o644)  # shared/ is read-only, and libtagger never writes a read-only file
    index = str(tmp_path / "i.db")
    common = ["--model", "seed", "--report", "json", "--index", index]
    confidence = report_of(scan(str(song), "--dry-run", "--min-confidence", "0", *common))[0]["confidence"]
    assert confidence < 0.999
    rows = report_of(scan(str(song), "--min-confidence", f"{confidence + 1e-4:.6f}", *common))
    assert rows[0]["status"] == "unsure"
    assert ffprobe_genre(song) is None
    rows = report_of(scan(str(song), "--min-confidence", f"{confidence + 1e-4:.6f}", *common))
    assert rows[0]["status"] == "unchanged"  # same threshold: the stored verdict cannot change
    rows = report_of(scan(str(song), "--min-confidence", f"{confidence - 1e-4:.6f}", *common))
    assert rows[0]["status"] == "tagged"
    assert ffprobe_genre(song) == rows[0]["genre"]


def test_second_run_touches_nothing_and_a_dry_run_verdict_is_written_later(library, tmp_path):
    work = tmp_path / "lib"
    shutil.copytree(library, work)
    index = str(tmp_path / "i.db")
    common = ["--model", "seed", "--min-confidence", "0", "--report", "json", "--index", index]
    first = report_of(scan(str(work), "--dry-run", *common))
    assert {r["status"] for r in first} == {"would-tag"}
    second = report_of(scan(str(work), *common))  # writes the stored verdicts without decoding again
    assert {r["status"] for r in second} == {"tagged"}
    assert {r["genre"] for r in second} == {r["genre"] for r in first}
    third = report_of(scan(str(work), *common))
    assert {r["status"] for r in third} == {"unchanged"}  # our own writes are not changes


def test_bad_file_is_an_error_row_and_the_run_goes_on(audio_factory, tmp_path):
    good = audio_factory("good.wav", 5.0)
    bad = good.parent / "bad.mp3"
    bad.write_text("this is not audio")
    audio_factory("short.flac", 1.0)
    result = scan(str(good.parent), "--model", "seed", "--report", "json", "--index", str(tmp_path / "i.db"))
    rows = {Path(r["path"]).name: r for r in report_of(result)}
    assert rows["bad.mp3"]["status"] == "error" and rows["bad.mp3"]["error"]
    assert rows["short.flac"]["status"] == "error" and "short" in rows["short.flac"]["error"]
    assert rows["good.wav"]["status"] in {"tagged", "unsure"}
    assert f"{bad}:" in result.stderr  # one line naming the file and the reason
    db = Index(tmp_path / "i.db")
    assert db.track_by_path(bad).status == "error"


def test_usage_errors_exit_2(tmp_path):
    assert scan(str(tmp_path), "--report", "xml").exit_code == 2
    assert scan(str(tmp_path), "--backend", "spark").exit_code == 2
    assert scan(str(tmp_path), "--min-confidence", "3").exit_code == 2
