"""``libtagger browse`` refuses writes with a clean 403: real HTTP requests to a real server.

Datasette 0.65 has no write API, so a POST to a write endpoint of Datasette 1.0 (``-/insert``,
``-/upsert``, ``-/update``, ``-/delete``, ``-/drop``) or to a table reached a view that failed
an assertion: a 500 and a traceback in the server's log. Nothing was written then either; now the
answer says so.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from browse_harness import browsing

from libtagger.store.index import Index

#: (method, path under the database): the write endpoints of Datasette 1.0 and 0.65's own POSTs.
WRITES = [
    ("POST", "tracks/-/insert"),
    ("POST", "tracks/-/upsert"),
    ("POST", "tracks/1/-/update"),
    ("POST", "tracks/1/-/delete"),
    ("POST", "tracks/-/drop"),
    ("POST", "-/create"),
    ("POST", "tracks"),
    ("POST", "run_changes"),   # a canned query: read-only, so not even a POST to it
    ("PUT", "tracks/1"),
    ("DELETE", "tracks/1"),
]


@pytest.fixture(scope="module")
def library_index(tmp_path_factory) -> Path:
    # Not index.db: Datasette names the database after the file, here "library".
    path = tmp_path_factory.mktemp("browse-readonly") / "library.db"
    db = Index(path)
    db.save_track("/music/a.flac", {"status": "tagged", "genre": "Jazz", "confidence": 0.9, "format": "flac"})
    db.close()
    return path


def request(url: str, method: str, body: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def snapshot(index: Path) -> list[tuple]:
    conn = sqlite3.connect(index)
    try:
        return conn.execute("select * from tracks order by id").fetchall()
    finally:
        conn.close()


def test_every_write_request_gets_a_403_and_no_traceback(library_index):
    before = snapshot(library_index)
    with browsing(library_index) as base:
        status, body = request(f"{base}/library/tracks.json?_shape=array", "GET")
        assert status == 200 and [r["path"] for r in json.loads(body)] == ["/music/a.flac"]
        answers = {}
        for method, path in WRITES:
            status, body = request(f"{base}/library/{path}", method,
                                   {"row": {"path": "/music/new.flac", "genre": "Disco"}, "rows": []})
            answers[(method, path)] = status
            if status == 403:
                answer = json.loads(body)
                assert answer["ok"] is False and "read-only" in answer["error"], answer
                assert f"{method} /library/{path}" in answer["error"], answer
        # still serving, reads unaffected
        status, _ = request(f"{base}/library/tracks.json", "HEAD")
        assert status == 200
    log = library_index.with_name("browse.log").read_text()
    assert answers == {write: 403 for write in WRITES}, answers
    assert "Traceback" not in log and "AssertionError" not in log, log[-3000:]
    assert snapshot(library_index) == before
