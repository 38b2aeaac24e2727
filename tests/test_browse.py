"""``libtagger browse``: the real program serves a real index through Datasette, looked at with
headless Chromium; the index stays read-only, and the core never imports Datasette.

The README's screenshot is taken by this file: ``LIBTAGGER_SCREENSHOT=tests/data/browse.png
.venv/bin/python -m pytest -q tests/test_browse.py -k screenshot``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from browse_harness import browsing, libtagger_command
from conftest import make_audio
from scan_harness import require_seed_model

from libtagger.integrations.browse import FIRST_COLUMNS, INSTALL_HINT, datasette_metadata, start_path
from libtagger.store.index import Index
from libtagger.store.query import find_tracks, genre_disagrees

MODEL = "musicnn-head-7b6ea3e1"

#: (path, values): one track of each kind the canned queries look for.
TRACKS = [
    ("/music/Miles Davis/So What.flac", {"status": "tagged", "genre": "Jazz", "confidence": 0.93,
                                         "runner_up": "Blues", "previous_genre": "Jazz", "written": 1}),
    ("/music/Unknown/Track 01.mp3", {"status": "tagged", "genre": "Rock", "confidence": 0.81,
                                     "runner_up": "Metal", "previous_genre": "Pop", "written": 1}),
    ("/music/Slayer/Raining Blood.ogg", {"status": "kept", "genre": "Metal", "confidence": 0.88,
                                         "runner_up": "Rock", "previous_genre": "Rock; Alternative"}),
    ("/music/Mixed/Crossover.m4a", {"status": "unsure", "genre": "Pop", "confidence": 0.34,
                                    "runner_up": "Disco", "previous_genre": "pop"}),
    ("/music/Talk/Interview.mp3", {"status": "rejected", "reason": "not music: speech"}),
    ("/music/Broken/empty.flac", {"status": "error", "error": "file is empty"}),
]
UNSURE, ERROR = TRACKS[3][0], TRACKS[5][0]


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium; CI installs it)")
    return exe


def browser(tmp_path: Path, url: str, *args: str) -> str:
    """Run headless Chromium on ``url`` with its own profile (other Chromiums may be running)."""
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    done = subprocess.run([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def dump_dom(tmp_path: Path, url: str) -> str:
    return browser(tmp_path, url, "--dump-dom")


def column_cells(dom: str, column: str) -> list[str]:
    """The texts of one column's cells in a Datasette table page."""
    cells = re.findall(rf'<td class="col-{column}(?: [^"]*)?"[^>]*>(.*?)</td>', dom, flags=re.S)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in cells]


def get_json(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=300) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def index_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("browse") / "index.db"
    db = Index(path)
    scan = db.start_run(kind="scan", arguments={"paths": ["/music"]}, model_id=MODEL)
    for number, (file, values) in enumerate(TRACKS):
        common = {"format": Path(file).suffix[1:], "size": 4_000_000 + number, "duration": 212.5,
                  "samplerate": 44100, "channels": 2, "run_id": scan,
                  "model_id": MODEL if values.get("genre") else None}
        track = db.save_track(file, common | values)
        if values.get("written"):
            entry = db.journal_before_write(track_id=track, path=file, run_id=scan, action="write",
                                            before={"genres": [values["previous_genre"]]},
                                            genre=values["genre"])
            db.journal_completed(entry)
    db.finish_run(scan, outcome="finished", counts={"tagged": 2, "kept": 1, "unsure": 1,
                                                    "rejected": 1, "error": 1})
    db.close()
    return path


@pytest.fixture(scope="module")
def server(index_path):
    with browsing(index_path) as base:
        yield base


def test_the_tracks_page_loads_with_labelled_columns_and_the_four_facets(server, tmp_path):
    dom = dump_dom(tmp_path, f"{server}/index/tracks")
    assert "6 rows" in dom
    assert sorted(column_cells(dom, "path")) == sorted(path for path, _ in TRACKS)
    # Column descriptions: in the list above the table and on each column header.
    assert "libtagger&#39;s verdict" in dom or "libtagger's verdict" in dom
    assert re.search(r'<th data-column-description="the genre the file had before this verdict"[^>]*'
                     r'data-column="previous_genre"', dom)
    for facet in ("status", "genre", "model_id", "format"):
        assert f'id="facet-{facet}"' in dom, facet


def test_the_page_browse_opens_shows_the_verdict_columns_first(server, tmp_path, index_path):
    printed = index_path.with_name("browse.log").read_text().splitlines()[0]
    url = f"{server}{start_path(index_path)}"
    assert printed == f"Serving {index_path} read-only at {url} (Ctrl-C to stop)"
    dom = dump_dom(tmp_path, url)
    headers = re.findall(r'<th [^>]*data-column="([^"]+)"', dom)
    assert headers == ["id", *FIRST_COLUMNS]
    assert column_cells(dom, "status").count("unsure") == 1


def test_following_the_unsure_facet_shows_only_the_unsure_track(server, tmp_path):
    page = dump_dom(tmp_path, f"{server}/index/tracks")
    # The link the status facet offers for "unsure", followed as a person would click it.
    link = re.search(r'<a href="([^"]*status=unsure[^"]*)"', page).group(1).replace("&amp;", "&")
    dom = dump_dom(tmp_path, urllib.parse.urljoin(f"{server}/index/tracks", link))
    assert '1 row where status = "unsure"' in " ".join(dom.split())
    assert column_cells(dom, "path") == [UNSURE]


def test_the_canned_queries_return_their_rows_in_the_browser(server, tmp_path, index_path):
    dom = dump_dom(tmp_path, f"{server}/index/unsure_tracks")
    assert column_cells(dom, "path") == [UNSURE]

    # "Disagrees" is the rule of `libtagger query --disagrees`, row for row.
    expected = [r.path for r in find_tracks(Index(index_path), disagrees=True)]
    assert expected == ["/music/Slayer/Raining Blood.ogg", "/music/Unknown/Track 01.mp3"]
    dom = dump_dom(tmp_path, f"{server}/index/genre_disagrees")
    assert column_cells(dom, "path") == expected

    dom = dump_dom(tmp_path, f"{server}/index/errors_by_reason")
    assert sorted(zip(column_cells(dom, "status"), column_cells(dom, "reason"))) == [
        ("error", "file is empty"), ("rejected", "not music: speech")]

    dom = dump_dom(tmp_path, f"{server}/index/run_changes?run=1")
    assert column_cells(dom, "path") == ["/music/Miles Davis/So What.flac", "/music/Unknown/Track 01.mp3"]
    assert column_cells(dom, "genre_before") == ["Jazz", "Pop"]
    assert column_cells(dom, "genre_written") == ["Jazz", "Rock"]


def test_nothing_can_be_written_through_the_server(server, index_path):
    before = sqlite3.connect(index_path).execute("select count(*), max(updated_at) from tracks").fetchone()
    status, body = get_json(f"{server}/index.json?" + urllib.parse.urlencode(
        {"sql": "update tracks set genre = 'Disco'"}))
    assert status == 400 and "must be a SELECT" in body["error"]
    status, body = get_json(f"{server}/index.json?" + urllib.parse.urlencode(
        {"sql": "insert into meta (key, value) values ('x', 'y')"}))
    assert status == 400
    post = urllib.request.Request(f"{server}/index/run_changes", data=b"run=1", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=300)
    assert refused.value.code >= 400
    conn = sqlite3.connect(index_path)
    assert conn.execute("select count(*), max(updated_at) from tracks").fetchone() == before
    assert conn.execute("select count(*) from tracks where genre = 'Disco'").fetchone() == (0,)
    assert conn.execute("select count(*) from meta where key = 'x'").fetchone() == (0,)


def test_a_row_written_while_serving_is_seen_at_once(server, index_path):
    # A scan writes through the WAL while the page is open: mode=ro reads the WAL (immutable would not).
    db = Index(index_path)
    db.save_track("/music/New/Fresh.wav", {"status": "would-tag", "genre": "Blues", "confidence": 0.7,
                                            "format": "wav", "model_id": MODEL})
    status, rows = get_json(f"{server}/index/tracks.json?_shape=array&format=wav")
    db.close()
    assert status == 200 and [r["path"] for r in rows] == ["/music/New/Fresh.wav"]


def test_a_real_scan_while_browsing_is_not_blocked_and_shows_at_once(tmp_path):
    # The real programs: `libtagger scan --dry-run` writes the index while `libtagger browse`
    # serves it; the scan is not held up and the browser sees its rows without a restart.
    require_seed_model()
    music = tmp_path / "Music"
    music.mkdir()
    (music / "broken.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x10not really an mp3")
    index = tmp_path / "index.db"
    scan = [*libtagger_command(), "scan", "--dry-run", "--model", "seed", "--min-confidence", "0",
            "--jobs", "1", "--index", str(index), str(music)]
    first = subprocess.run(scan, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    with browsing(index) as base:
        dom = dump_dom(tmp_path, f"{base}/index/tracks?status=error")
        assert column_cells(dom, "path") == [str(music / "broken.mp3")]
        make_audio(music / "good.flac", 6.0, seed=1)
        second = subprocess.run(scan, capture_output=True, text=True)
        assert second.returncode == 0, second.stderr
        dom = dump_dom(tmp_path, f"{base}{start_path(index)}")
        assert sorted(zip(column_cells(dom, "path"), column_cells(dom, "status"))) == [
            (str(music / "broken.mp3"), "error"), (str(music / "good.flac"), "would-tag")]
        dom = dump_dom(tmp_path, f"{base}/index/runs_summary")
        assert column_cells(dom, "run") == ["2", "1"]
        assert column_cells(dom, "dry_run") == ["1", "1"]


def test_screenshot_of_the_page(server, tmp_path, index_path):
    """A real screenshot; with LIBTAGGER_SCREENSHOT=FILE it is kept there (the README's image)."""
    shot = tmp_path / "browse.png"
    browser(tmp_path, f"{server}{start_path(index_path)}", f"--screenshot={shot}", "--window-size=1280,1100")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    if target := os.environ.get("LIBTAGGER_SCREENSHOT"):
        from PIL import Image  # matplotlib's dependency, in the test extra

        # 64 colours: a third of the bytes, and a page of text loses nothing visible.
        Image.open(shot).convert("RGB").quantize(64).save(target, optimize=True)


def test_the_metadata_works_with_the_datasette_program(tmp_path, index_path):
    # The documented way without `libtagger browse`: --metadata-out, then datasette itself.
    metadata = tmp_path / "libtagger-datasette.json"
    done = subprocess.run([*libtagger_command(), "browse", "--index", str(index_path),
                           "--metadata-out", str(metadata)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(metadata.read_text()) == datasette_metadata(index_path)
    datasette = Path(sys.executable).parent / "datasette"
    got = subprocess.run([str(datasette), str(index_path), "-m", str(metadata),
                          "--get", "/index/unsure_tracks.json?_shape=array"],
                         capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    assert [r["path"] for r in json.loads(got.stdout)] == [UNSURE]
    # The "disagrees" query needs libtagger's SQL function: the `datasette` entry point adds it.
    got = subprocess.run([str(datasette), str(index_path), "-m", str(metadata),
                          "--get", "/index/genre_disagrees.json?_shape=array"],
                         capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    expected = [r.path for r in find_tracks(Index(index_path), disagrees=True)]
    assert expected and [r["path"] for r in json.loads(got.stdout)] == expected


def test_the_metadata_fits_an_index_without_the_later_columns(tmp_path):
    # An index of libtagger 0.1 had no reason nor detector_id column: every canned query must run.
    path = tmp_path / "old.db"
    Index(path).close()
    conn = sqlite3.connect(path)
    for (name,) in conn.execute("select name from sqlite_master where type = 'index' and "
                                "(sql like '%reason%' or sql like '%detector_id%')").fetchall():
        conn.execute(f"drop index [{name}]")  # the columns' own indexes go first
    conn.execute("alter table tracks drop column reason")
    conn.execute("alter table tracks drop column detector_id")
    conn.execute("insert into tracks (path, status, error) values ('/m/x.mp3', 'error', 'file is empty')")
    conn.commit()
    conn.create_function("libtagger_genre_disagrees", 2, genre_disagrees)
    metadata = datasette_metadata(path)["databases"]["old"]
    for name, query in metadata["queries"].items():
        conn.execute(query["sql"], {"run": ""}).fetchall()  # raises on a column that is not there
    assert conn.execute(metadata["queries"]["errors_by_reason"]["sql"]).fetchall() == [
        ("error", "file is empty", 1, "/m/x.mp3")]
    assert "reason" not in metadata["tables"]["tracks"]["columns"]
    assert metadata["tables"]["tracks"]["facets"] == ["status", "genre", "model_id", "format"]


def test_genre_disagrees_follows_the_query_rule():
    assert genre_disagrees("Rock; Alternative", "Rock") == 0
    assert genre_disagrees("hip hop", "Hip-Hop") == 0
    assert genre_disagrees("Synthwave", "Pop") == 1
    assert genre_disagrees(None, "Pop") is None


def test_no_index_is_a_clear_error_and_creates_nothing(tmp_path):
    missing = tmp_path / "none" / "index.db"
    done = subprocess.run([*libtagger_command(), "browse", "--index", str(missing), "--no-open"],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "no index yet" in done.stderr
    assert not missing.parent.exists()


def test_without_datasette_browse_says_how_to_install_it(index_path):
    # A fresh interpreter where `import datasette` fails, as it does without the extra.
    script = ("import sys; sys.modules['datasette'] = None\n"
              "from libtagger.cli import app\n"
              f"app(['browse', '--index', {str(index_path)!r}, '--no-open'])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert f"Datasette is not installed: {INSTALL_HINT}" in done.stderr


def test_the_core_never_imports_datasette():
    script = ("import sys, libtagger.cli, libtagger.integrations.browse, libtagger.store.query, "
              "libtagger.scan.pipeline\n"
              "from typer.testing import CliRunner\n"
              "result = CliRunner().invoke(libtagger.cli.app, ['browse', '--help'])\n"
              "assert result.exit_code == 0, result.output\n"
              "assert \"pip install 'libtagger[browse]'\" in result.output, result.output\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('datasette', 'uvicorn')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_docstring_examples_run():
    import doctest

    import libtagger.integrations.browse

    # genre_disagrees's example moved with it to libtagger.store.query (tests/test_doctests.py)
    result = doctest.testmod(libtagger.integrations.browse)
    assert result.attempted >= 1 and result.failed == 0
