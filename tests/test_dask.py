"""``libtagger scan --backend dask``: the extraction runs on a real Dask cluster and gives
exactly what a local loky run gives.

The cluster is a real one on 127.0.0.1: a ``dask scheduler`` subprocess and a ``dask
worker --nworkers 2 --nthreads 1`` subprocess (two worker processes under a nanny), as
the README tells users to start them. The workers carry the probe of
``tests/scan_harness.py`` (a ``sitecustomize.py``): it logs every decode with the pid that
did it, which shows the decoding happened in the workers, and it segfaults a worker that
decodes a file whose name contains ``crashme``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import make_audio
from scan_harness import json_report, probe_env, require_seed_model, rows, run_cli

pytest.importorskip("distributed")

#: name -> seconds: five codecs, one and two 30-s segments.
LIBRARY = {"a.mp3": 8.0, "b.flac": 65.0, "c.ogg": 12.0, "d.m4a": 35.0, "e.wav": 10.0}
CRASH_TEXT = "crashme"


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """Real files in five formats, plus one that is not audio at all."""
    root = tmp_path_factory.mktemp("library")
    for seed, (name, seconds) in enumerate(LIBRARY.items()):
        make_audio(root / name, seconds, seed=seed)
    (root / "not audio.flac").write_bytes(b"this is text, not FLAC\n" * 100)
    return root


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two single-threaded worker processes on 127.0.0.1.

    Yields ``(address, probe_log, worker_pids)``.
    """
    from distributed import Client

    require_seed_model()
    folder = tmp_path_factory.mktemp("cluster")
    log = folder / "probe.log"
    env = probe_env(folder / "probe", log=log, crash=CRASH_TEXT)
    # Give up on a task after it killed two workers (the default, four, only makes the test slower).
    env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    scheduler_file = folder / "scheduler.json"
    common = ["--no-dashboard", "--host", "127.0.0.1"]
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--port", "0",
                               "--scheduler-file", str(scheduler_file), *common],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              cwd=folder)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, "the dask scheduler did not start within 60 s"
            assert procs[0].poll() is None, "the dask scheduler exited"
            time.sleep(0.2)
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", "--scheduler-file",
                                       str(scheduler_file), "--nworkers", "2", "--nthreads", "1",
                                       "--memory-limit", "0", *common],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      cwd=folder))
        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            address = client.scheduler.address
            pids = set(client.run(os.getpid).values())
        yield address, log, pids
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def scan(*args: str | os.PathLike, index: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_cli("scan", *args, "--model", "seed", "--dry-run", "--report", "json",
                   "--index", index, env=env)


def segments_by_name(index: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in rows(index, "select t.path, s.* from segments s join tracks t on t.id = s.track_id "
                           "order by t.path, s.idx"):
        out.setdefault(os.path.basename(row["path"]), []).append(row)
    return out


@pytest.fixture(scope="module")
def local_run(library, tmp_path_factory) -> tuple[dict, Path]:
    index = tmp_path_factory.mktemp("local") / "index.db"
    return json_report(scan(library, "--jobs", "2", index=index)), index


def test_a_dask_scan_gives_what_a_local_scan_gives(library, cluster, local_run, tmp_path):
    address, log, worker_pids = cluster
    local, local_index = local_run
    index = tmp_path / "index.db"
    remote = json_report(scan(library, "--backend", "dask", "--scheduler", address, index=index))

    assert set(remote) == set(local) == set(LIBRARY) | {"not audio.flac"}
    for name in LIBRARY:
        mine, theirs = remote[name], local[name]
        assert mine["status"] in ("would-tag", "unsure"), mine
        assert (mine["status"], mine["genre"], mine["runner_up"]) == \
            (theirs["status"], theirs["genre"], theirs["runner_up"]), name
        assert mine["confidence"] == pytest.approx(theirs["confidence"], abs=1e-6), name
        assert mine["runner_up_confidence"] == pytest.approx(theirs["runner_up_confidence"], abs=1e-6)
        assert mine["segments"] == theirs["segments"] == (2 if LIBRARY[name] > 60 else 1), name
    bad = remote["not audio.flac"]
    assert bad["status"] == "error" and bad["error"] == local["not audio.flac"]["error"]

    # the index holds the same per-segment windows, probabilities and features
    mine, theirs = segments_by_name(index), segments_by_name(local_index)
    assert set(mine) == set(theirs) == set(LIBRARY)
    for name in LIBRARY:
        assert len(mine[name]) == len(theirs[name])
        for a, b in zip(mine[name], theirs[name]):
            assert (a["start"], a["end"], a["genre"]) == (b["start"], b["end"], b["genre"])
            np.testing.assert_allclose(json.loads(a["probabilities"]), json.loads(b["probabilities"]),
                                       rtol=0, atol=1e-6)
            np.testing.assert_allclose(np.frombuffer(a["features"], np.float32),
                                       np.frombuffer(b["features"], np.float32), rtol=1e-6)
    tracks = {os.path.basename(r["path"]): r for r in rows(index, "select * from tracks")}
    assert tracks["not audio.flac"]["status"] == "error"
    assert all(tracks[n]["model_id"].startswith("seed-") for n in LIBRARY)

    # the decoding was done by the Dask workers, not by the scanning process
    decoders = {pid for _call, who, pid, _path in _events_with_pid(log) if who == "analyse"}
    assert decoders and decoders <= worker_pids


def _events_with_pid(log: Path) -> list[tuple[str, str, int, bytes]]:
    """``(call, caller, pid, path)`` per line of the probe log (see ``scan_harness.PROBE_SOURCE``)."""
    out = []
    for line in log.read_bytes().splitlines():
        call, who, pid, _peak, path = line.split(b"\t", 4)
        out.append((call.decode(), who.decode(), int(pid), path))
    return out


def test_a_file_that_kills_its_dask_worker_is_an_error_row_not_a_crashed_run(library, cluster, tmp_path):
    address, _log, _pids = cluster
    folder = tmp_path / "music"
    folder.mkdir()
    for name in ("a.mp3", "c.ogg", "e.wav"):
        shutil.copy2(library / name, folder / name)
    make_audio(folder / f"{CRASH_TEXT}.flac", 6.0, seed=9)
    index = tmp_path / "index.db"

    result = scan(folder, "--backend", "dask", "--scheduler", address, index=index)

    report = json_report(result)
    assert set(report) == {"a.mp3", "c.ogg", "e.wav", f"{CRASH_TEXT}.flac"}
    crashed = report[f"{CRASH_TEXT}.flac"]
    assert crashed["status"] == "error" and "crashed" in crashed["error"], crashed
    assert all(report[n]["status"] in ("would-tag", "unsure") for n in ("a.mp3", "c.ogg", "e.wav"))
    track = {os.path.basename(r["path"]): r for r in rows(index, "select * from tracks")}[f"{CRASH_TEXT}.flac"]
    assert track["status"] == "error" and "crashed" in track["error"]
    assert f"{CRASH_TEXT}.flac" in result.stderr  # the one-line error message names the file


def test_an_unreachable_scheduler_is_a_clean_fatal_error(library, tmp_path):
    require_seed_model()
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")
    result = scan(library, "--backend", "dask", "--scheduler", "tcp://127.0.0.1:9", index=tmp_path / "i.db",
                  env=env)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr


def test_dask_backend_needs_a_scheduler(library, tmp_path):
    result = run_cli("scan", library, "--backend", "dask", "--index", tmp_path / "i.db")
    assert result.returncode == 2
    assert "--scheduler" in result.stderr


def worker_pid(_: int) -> int:
    return os.getpid()


def test_a_one_thread_cluster_still_runs_the_work_on_the_cluster():
    # joblib would run an effective n_jobs of 1 in the calling process
    from distributed import LocalCluster

    from libtagger.parallel import map_unordered

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as one:
        pids = {pid for _, pid in map_unordered(worker_pid, range(6), backend="dask",
                                                scheduler=one.scheduler_address)}
    assert len(pids) == 1 and os.getpid() not in pids
