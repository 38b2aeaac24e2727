"""A file that already holds exactly the genre a verdict would write is ``kept``: nothing is
written (bytes and mtime unchanged), whether the genre is libtagger's or a person's spelling of it.
``tagged`` means "libtagger wrote this genre in this run"."""

from __future__ import annotations

from pathlib import Path

import mutagen
import pytest

from conftest import make_audio
from libtagger.tags import storage as tags
from scan_harness import require_seed_model, seed_scan as scan, tracks_by_name



@pytest.fixture(autouse=True)
def _seed():
    require_seed_model()



def test_a_file_holding_the_verdicts_genre_is_kept_and_left_alone(tmp_path: Path) -> None:
    lib = tmp_path / "Music"
    for i, name in enumerate(["ours.flac", "ours.mp3", "person.flac"]):
        make_audio(lib / name, 6.0, seed=20 + i)
    index = tmp_path / "index.db"
    first = scan(lib, index)
    assert {r["status"] for r in first.values()} == {"tagged"}
    # A person's spelling equal to the verdict: the same genre without libtagger's marker.
    person = mutagen.File(lib / "person.flac")
    del person["LIBTAGGER_GENRE"]
    person.save()
    assert not tags.written_by_libtagger(lib / "person.flac")
    held = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in lib.iterdir()}

    for extra in (("--dry-run",), ()):
        again = scan(lib, index, "--rescan", *extra)  # analysed again: the same verdict

        for name, row in again.items():
            assert row["genre"] == first[name]["genre"]
            assert row["status"] == "kept", (extra, row)
        assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in lib.iterdir()} == held
    rows = tracks_by_name(index)
    assert {name: (r["status"], r["written"]) for name, r in rows.items()} == {
        "ours.flac": ("kept", 1), "ours.mp3": ("kept", 1), "person.flac": ("kept", 0)}
