"""Two connections writing one index wait for each other instead of failing.

beets' threaded import notes one album's verdicts while the next album opens the index; a scan
may run beside the beets plugin. A transaction that reads before it writes must not fail with
"database is locked" because the other connection committed in between (SQLite refuses to
upgrade such a deferred transaction, whatever the busy timeout): the index's transactions take
the write lock first.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from libtagger.store.index import Index
from scan_harness import rows


def test_a_transaction_that_reads_first_waits_for_another_writer(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    first = Index(path)
    errors: list[BaseException] = []

    def other_writer() -> None:  # its own connection, in its own thread (as sqlite3 requires)
        second = Index(path, create=False)
        try:
            second.start_run(kind="scan", arguments={"who": "second"})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            second.close()

    with first.db.atomic():
        first.db.execute("select count(*) from runs").fetchall()  # a read first
        writer = threading.Thread(target=other_writer)
        writer.start()
        time.sleep(0.5)  # the other connection commits now, or waits for this transaction
        first.db["runs"].insert({"kind": "scan", "outcome": "running", "arguments": '{"who": "first"}'})
    writer.join(timeout=60)
    first.close()
    assert errors == []
    assert sorted(r["arguments"] for r in rows(path, "select arguments from runs")) == [
        '{"who": "first"}', '{"who": "second"}']


def test_opening_an_index_while_another_connection_writes_never_fails(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    Index(path).close()
    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_writing() -> None:
        index = Index(path)
        run_id = index.start_run(kind="scan", arguments={})
        try:
            while not stop.is_set():
                index.finish_run(run_id, outcome="finished", counts={})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            index.close()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    opened = 0
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            Index(path).close()  # creates missing tables/columns: reads, then writes
            opened += 1
    finally:
        stop.set()
        writer.join(timeout=60)
    assert errors == [] and opened > 0
