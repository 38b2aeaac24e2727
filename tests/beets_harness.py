"""Helpers for the beets plugin's end-to-end tests (tests/test_beets_*.py): a throwaway beets set-up
that runs the real ``beet`` command, albums made from GTZAN clips and imported by it, and the
genres a file and libtagger's index hold.

* :data:`BEET`: the ``beet`` command of this environment (the tests skip when beets is missing);
* :class:`Beets`: a config, library and libtagger index in tmp; ``beet`` runs in it with
  BEETSDIR, XDG_DATA_HOME and LIBTAGGER_INDEX in tmp, so no real library or index is touched;
* :func:`file_genres`: the genres in a file's own tag (mutagen);
* :func:`make_albums` and :func:`import_albums`: folders of MP3s encoded by ffmpeg from GTZAN
  clips, one per album, and a threaded ``beet import -A`` of them with libtagger plugin options;
* :func:`genres_by_rule`: what the scan's own rule writes for the verdict libtagger's index holds
  on each file, at :data:`MIN_CONFIDENCE`.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import mutagen
import pytest

from conftest import require_ffmpeg
from libtagger.scan.policy import genres_to_write

BEET = Path(sys.executable).parent / "beet"
#: The threshold :func:`genres_by_rule` applies; the tests that use it import their libraries with it.
MIN_CONFIDENCE = 0.5
#: What :func:`import_albums` prints of the items and albums after the import (``beet ls -f``,
#: ``beet ls -a -f``); tests/test_beets_album.py reads its items and albums with them.
ITEM_FIELDS = "$title|$genres|$libtagger_genre|$libtagger_status|$libtagger_reason"
ALBUM_FIELDS = "$album|$genres|$libtagger_album_genre|$libtagger_album_reason"


class Beets:
    """A throwaway beets set-up: config, library, libtagger index; runs ``beet`` in it."""

    #: The fields :meth:`items` reads.
    FIELDS = "$title|$genres|$libtagger_genre|$libtagger_confidence|$libtagger_status|$libtagger_reason"

    def __init__(self, home: Path, *, write: bool) -> None:
        self.home = home
        self.library_dir = home / "library"
        self.db = home / "beetsdir" / "library.db"
        self.index = home / "libtagger-index.db"
        self.config = home / "beetsdir" / "config.yaml"
        self.config.parent.mkdir(parents=True)
        self.config.write_text(
            f"directory: {self.library_dir}\nlibrary: {self.db}\nplugins: libtagger\n"
            f"import:\n  copy: yes\n  write: {'yes' if write else 'no'}\n"
            f"libtagger:\n  auto: yes\n  index: {self.index}\n")
        self.env = {**os.environ, "BEETSDIR": str(self.config.parent), "XDG_DATA_HOME": str(home / "xdg"),
                    # the index named in the config wins; this one must stay untouched
                    "LIBTAGGER_INDEX": str(home / "env-index.db"),
                    # the default: speech, noise and tones are rejected (GTZAN clips are music)
                    "LIBTAGGER_MUSIC_CHECK": "1"}

    def beet(self, *args: str) -> str:
        done = subprocess.run([str(BEET), "-c", str(self.config), *args], env=self.env, cwd=self.home,
                              capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"beet {' '.join(args)}:\n{done.stdout}\n{done.stderr[-3000:]}"
        return done.stdout

    def items(self) -> dict[str, dict[str, str]]:
        """{title: {genres, libtagger_genre, libtagger_confidence, libtagger_status}} from ``beet ls``."""
        rows = {}
        for line in self.beet("ls", "-f", self.FIELDS).splitlines():
            title, genres, genre, confidence, status, reason = line.split("|")
            rows[title] = {"genres": genres, "libtagger_genre": genre, "libtagger_confidence": confidence,
                           "libtagger_status": status, "libtagger_reason": reason}
        return rows

    def files(self) -> dict[str, Path]:
        """{title: the library file}, from beets' database."""
        out = self.beet("ls", "-f", "$title|$path")
        return {t: Path(p) for t, p in (line.split("|", 1) for line in out.splitlines())}

    def database_dump(self) -> list[str]:
        with sqlite3.connect(self.db) as con:
            return list(con.iterdump())


def file_genres(path: Path) -> list[str]:
    return list(mutagen.File(path, easy=True).get("genre") or [])


def make_albums(gtzan: Path, incoming: Path, albums: dict) -> None:
    """``albums``, {folder: (artist, album, [(title, GTZAN clip, a genre a person set or None)])}, as
    folders of MP3s under ``incoming`` (``01.mp3``, ``02.mp3``... in the order given)."""
    for folder, (artist, album, clips) in albums.items():
        (incoming / folder).mkdir(parents=True)
        for track, (title, clip, genre) in enumerate(clips, 1):
            tags = ["-metadata", f"artist={artist}", "-metadata", f"album={album}", "-metadata", f"title={title}",
                    "-metadata", f"track={track}"] + (["-metadata", f"genre={genre}"] if genre else [])
            out = incoming / folder / f"{track:02d}.mp3"
            subprocess.run([require_ffmpeg(), "-v", "error", "-y", "-i", str(gtzan / "audio" / clip),
                            "-c:a", "libmp3lame", "-b:a", "128k", *tags, str(out)], check=True)


def import_albums(gtzan: Path, home: Path, albums: dict, **options: object) -> Beets:
    """``albums`` made from GTZAN clips and imported by a real ``beet import`` (beets' default: threaded),
    with these libtagger plugin options (e.g. ``context="artist"``, ``min_confidence=0.5``; None: unset)."""
    if not BEET.exists():
        pytest.skip(f"beets is not installed in this environment ({BEET}): pip install 'libtagger[beets]'")
    make_albums(gtzan, home / "incoming", albums)
    beets = Beets(home, write=True)
    set_options = "".join(f"  {name}: {value}\n" for name, value in options.items() if value is not None)
    beets.config.write_text(beets.config.read_text() + set_options)  # the libtagger section is the config's last
    done = subprocess.run([str(BEET), "-c", str(beets.config), "-v", "import", "-A", "-q", str(home / "incoming")],
                          env=beets.env, cwd=home, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    print("\n".join(line for line in done.stderr.splitlines() if line.startswith("libtagger:")))
    print(f"$ beet ls -f '{ITEM_FIELDS}'\n" + beets.beet("ls", "-f", ITEM_FIELDS))
    print(f"$ beet ls -a -f '{ALBUM_FIELDS}'\n" + beets.beet("ls", "-a", "-f", ALBUM_FIELDS))
    return beets


def genres_by_rule(beets: Beets, *, second_genre: bool = True) -> dict[str, tuple[str, ...]]:
    """{title: the genres the scan's rule writes for the verdict libtagger's index holds on its file}.

    Empty when the verdict is unsure (its confidence, or the pair's, below ``MIN_CONFIDENCE``).
    """
    files = beets.files()
    with sqlite3.connect(beets.index) as con:
        con.row_factory = sqlite3.Row
        rows = {r["path"]: r for r in con.execute("select * from tracks")}
    out = {}
    for title, path in files.items():
        row = rows[str(path)]
        genres, tested = genres_to_write(row["genre"], row["confidence"], row["runner_up"],
                                         row["runner_up_confidence"], second_genre=second_genre,
                                         min_confidence=MIN_CONFIDENCE)
        out[title] = genres if tested >= MIN_CONFIDENCE else ()
    return out
