"""Symbolic links out of the scanned folders: a real ``libtagger scan`` of a library whose
``Jazz`` folder links to another drive analyses and tags what the links reach, each real file
once, and still refuses a FIFO and a device with an error row each (issue 17, item 12); ``show``
and ``undo`` find a file by either path that reaches it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import mutagen

from conftest import make_audio
from scan_harness import json_report, require_seed_model, rows, run_cli

SCAN = ("--model", "seed", "--min-confidence", "0", "--jobs", "1", "--report", "json")


def genre_of(path: Path) -> list[str]:
    tags = mutagen.File(path).tags
    return list(tags.get("genre") or tags.get("GENRE") or []) if tags is not None else []


def test_a_folder_linked_from_another_drive_is_scanned_and_tagged_once(tmp_path):
    require_seed_model()
    drive = tmp_path / "drive" / "jazz"        # outside the scanned folder, like an external disk
    make_audio(drive / "So What.flac", 6.0, seed=1)
    make_audio(drive / "deep" / "Blue.flac", 6.0, seed=2)
    music = tmp_path / "Music"
    make_audio(music / "Own.flac", 6.0, seed=3)
    (music / "Jazz").symlink_to(drive, target_is_directory=True)
    (music / "Jazz (again)").symlink_to(drive, target_is_directory=True)     # same folder: once
    (music / "Favourite.flac").symlink_to(drive / "So What.flac")            # same file: once
    os.mkfifo(music / "pipe.flac")                                           # would block a reader
    (music / "zero.flac").symlink_to("/dev/zero")                            # would never end
    index = tmp_path / "index.db"

    report = json_report(run_cli("scan", music, *SCAN, "--index", index))

    by_path = {r["path"]: r["status"] for r in rows(index, "select path, status from tracks")}
    # "Favourite.flac" sorts before "Jazz": the first path that reaches a real file names it.
    assert by_path == {
        str(music / "Favourite.flac"): "tagged",
        str(music / "Jazz" / "deep" / "Blue.flac"): "tagged",
        str(music / "Own.flac"): "tagged",
        str(music / "pipe.flac"): "error",
        str(music / "zero.flac"): "error",
    }
    assert "not a regular file" in report["pipe.flac"]["error"]
    assert "not a regular file" in report["zero.flac"]["error"]
    # written through the links to the files on the drive; the links stay links
    assert genre_of(drive / "So What.flac") and genre_of(drive / "deep" / "Blue.flac")
    assert (music / "Jazz").is_symlink() and (music / "Favourite.flac").is_symlink()
    assert sorted(p.name for p in drive.iterdir()) == ["So What.flac", "deep"]  # no temporaries left


def test_show_and_undo_find_a_file_indexed_under_a_link_to_it(tmp_path):
    """``a/link.flac -> ../b/real.flac``: the scan indexes and tags it as the link (the first path
    that reaches it); ``show`` and ``undo`` of ``b/real.flac`` find that track all the same."""
    require_seed_model()
    lib = tmp_path / "lk"
    real = make_audio(lib / "b" / "real.flac", 6.0, seed=4)
    original = real.read_bytes()
    (lib / "a").mkdir()
    link = lib / "a" / "link.flac"
    link.symlink_to(Path("..") / "b" / "real.flac")
    index = tmp_path / "index.db"
    report = json_report(run_cli("scan", lib, *SCAN, "--index", index))
    assert {name: r["status"] for name, r in report.items()} == {"link.flac": "tagged"}
    assert genre_of(real)

    shown = run_cli("show", real, "--json", "--index", index)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["path"] == str(link)  # under the name the index knows

    undone = run_cli("undo", real, "--index", index)
    assert undone.returncode == 0, undone.stderr
    assert undone.stdout.splitlines()[0] == f"restored {real}: (no genre)"
    assert real.read_bytes() == original and link.is_symlink()
    assert rows(index, "select path, status from tracks") == [{"path": str(link), "status": "undone"}]
