"""numba's on-disk cache stays consistent when processes compile the same functions at once (issue 17, item 2).

Each test starts real processes on one empty ``NUMBA_CACHE_DIR``, lets them compile at once,
then loads the cache they left in a fresh process. The two numba races that
:mod:`libtagger.audio.numba_cache` guards against are made certain, not left to chance, by
pausing numba's cache writes in the child processes (fault injection in numba, not in
libtagger) so that the processes interleave exactly as in the crash:

* two signatures of one ``@njit`` function saved at once: both pick ``NAME.1.nbc``;
* a ``@guvectorize`` kernel from one process and its ufunc wrapper from another: the wrapper's
  entry point is not found and the first call segfaults (librosa's ``piptrack``).

Each race is run unguarded too: that run must corrupt the cache, which proves the
choreography reproduces the crash (and tells us when a numba release has fixed it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The compiled functions the races are played on, one module per race (numba caches only module functions).
KERNELS = {
    "jit": '''
import numba


@numba.njit(cache=True)
def total(x):
    s = 0.0
    for v in x:
        s += v
    return s
''',
    "gufunc": '''
import numba


@numba.guvectorize(["void(float64[:], float64[:])"], "(n)->(n)", cache=True, nopython=True)
def doubled(x, out):
    for i in range(x.shape[0]):
        out[i] = 2.0 * x[i]
''',
}

#: One child: argv = race (jit | gufunc), role (first | second | load), guard (guarded | unguarded).
CHILD = r'''
import os
import sys
import time
from pathlib import Path

import numpy as np

race, role, guard = sys.argv[1:4]
sync = Path(os.environ["SYNC_DIR"])
if guard == "guarded":
    from libtagger.audio import numba_cache

    assert numba_cache.install() == "locked"
import numba
from numba.core import caching


def touch(name):
    (sync / name).touch()


def wait_for(name, timeout=5.0):
    """True once the other process got there; False after the timeout (it is blocked, e.g. on the lock)."""
    end = time.monotonic() + timeout
    while not (sync / name).exists():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def both_ready():
    touch(f"ready-{role}")
    wait_for("ready-second" if role == "first" else "ready-first", timeout=60)


def pause_jit_saves():
    """first saves its index after second read it, and its data after second's: NAME.1.nbc twice."""
    files = caching.IndexDataCacheFile
    save_index, save_data = files._save_index, files._save_data
    interleaved = [True]

    def first_index(self, overloads):
        interleaved[0] = wait_for("second-picked")
        save_index(self, overloads)
        touch("first-index")

    def first_data(self, name, data):
        if interleaved[0]:  # no point waiting again for a process that is blocked
            wait_for("second-data")
        save_data(self, name, data)

    def second_index(self, overloads):
        touch("second-picked")
        wait_for("first-index")
        save_index(self, overloads)

    def second_data(self, name, data):
        save_data(self, name, data)
        touch("second-data")

    if role == "first":
        files._save_index, files._save_data = first_index, first_data
    else:
        files._save_index, files._save_data = second_index, second_data


def pause_gufunc_saves():
    """first saves the kernel and its wrapper, then second (which compiled too) saves its kernel."""
    save_overload = caching.Cache.save_overload

    def paused(self, sig, data):
        wrapper = type(self).__name__ == "GufWrapperCache"
        if role == "first" and not wrapper:
            wait_for("second-compiled")
        if role == "second" and not wrapper:
            touch("second-compiled")
            wait_for("first-wrapper")
        save_overload(self, sig, data)
        if role == "first" and wrapper:
            touch("first-wrapper")

    caching.Cache.save_overload = paused


if role == "first":
    # Another compile history: this process's counter in mangled names (v<uid>) differs from second's,
    # like a scan's main process and its workers.
    numba.njit(lambda a: a + 1)(1)
if role != "load":
    (pause_jit_saves if race == "jit" else pause_gufunc_saves)()
    both_ready()
sys.path.insert(0, os.environ["KERNELS_DIR"])
kernels = __import__(f"kernels_{race}")

if race == "jit":
    values = np.arange(1, 1001)
    dtypes = {"first": ["float32"], "second": ["float64"], "load": ["float32", "float64"]}[role]
    print(" ".join(f"{kernels.total(values.astype(d)):.1f}" for d in dtypes), flush=True)
else:
    print(" ".join(f"{v:.1f}" for v in kernels.doubled(np.arange(4.0))), flush=True)
'''


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "kernels").mkdir(exist_ok=True)
    for race, source in KERNELS.items():
        (tmp_path / "kernels" / f"kernels_{race}.py").write_text(source)
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "sync").mkdir(exist_ok=True)
    (tmp_path / "numba-cache").mkdir(exist_ok=True)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"), "SYNC_DIR": str(tmp_path / "sync"),
           "KERNELS_DIR": str(tmp_path / "kernels"), "PYTHONPATH": str(ROOT)}
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


def _race(tmp_path: Path, race: str, guard: str) -> subprocess.CompletedProcess:
    """Run first and second at once on an empty cache, then a fresh process that loads what they left."""
    env = _env(tmp_path)
    assert not any((tmp_path / "numba-cache").iterdir())
    writers = [subprocess.Popen([sys.executable, str(tmp_path / "child.py"), race, role, guard], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for role in ("first", "second")]
    for writer in writers:
        writer.communicate(timeout=300)
    cached = sorted(p.name for p in (tmp_path / "numba-cache").rglob("*.nb*"))
    assert any(name.startswith(f"kernels_{race}.") for name in cached), cached
    return subprocess.run([sys.executable, str(tmp_path / "child.py"), race, "load", guard], env=env,
                          capture_output=True, text=True, timeout=300)


def test_two_signatures_compiled_at_once_each_load_their_own_code(tmp_path):
    loaded = _race(tmp_path, "jit", "guarded")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split() == ["500500.0", "500500.0"]


def test_unguarded_two_signatures_compiled_at_once_corrupt_the_cache(tmp_path):
    # The control: the same interleaving without the guard maps float64 to the float32 code.
    loaded = _race(tmp_path, "jit", "unguarded")
    assert loaded.returncode != 0 or loaded.stdout.split() != ["500500.0", "500500.0"], loaded.stdout


def test_a_gufunc_compiled_at_once_by_two_processes_loads_and_runs(tmp_path):
    loaded = _race(tmp_path, "gufunc", "guarded")
    assert loaded.returncode == 0, f"exit {loaded.returncode}: {loaded.stderr[-2000:]}"
    assert loaded.stdout.split() == ["0.0", "2.0", "4.0", "6.0"]


def test_unguarded_gufunc_race_crashes_every_later_process_until_a_guarded_one_repairs_it(tmp_path):
    # The control: kernel from one process, wrapper from the other: a null loop pointer, every time.
    loaded = _race(tmp_path, "gufunc", "unguarded")
    assert loaded.returncode != 0, loaded.stdout
    # A libtagger process loads that cache, compiles the wrapper again and replaces the bad entry,
    # so even a process without the guard (a user's own librosa script) runs again.
    for guard in ("guarded", "unguarded"):
        again = subprocess.run([sys.executable, str(tmp_path / "child.py"), "gufunc", "load", guard],
                               env=_env(tmp_path), capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, f"{guard}: exit {again.returncode}: {again.stderr[-2000:]}"
        assert again.stdout.split() == ["0.0", "2.0", "4.0", "6.0"]


#: A scan's processes on a fresh install: import libtagger's features (and with them librosa, whose
#: gufuncs compile on import), compute a segment's features and librosa's chroma (piptrack inside).
FEATURES_CHILD = r'''
import hashlib
import sys

import numpy as np

if sys.argv[1] == "other-history":
    import numba

    numba.njit(lambda a: a + 1)(1)  # shifts this process's v<uid> counter, like a scan's main process
from libtagger.audio import features, numba_cache
import librosa

y = (0.1 * np.random.default_rng(0).standard_normal(4 * features.SAMPLE_RATE)).astype(np.float32)
out = np.concatenate([features.segment_features(y), librosa.feature.chroma_stft(y=y, sr=features.SAMPLE_RATE).ravel()])
print(numba_cache.mode(), hashlib.sha256(np.round(out, 4).tobytes()).hexdigest()[:16])
'''


@pytest.mark.slow  # about 70 s of CPU: each process compiles librosa's kernels from an empty cache
def test_processes_importing_the_features_at_once_leave_a_cache_that_loads(tmp_path):
    env = _env(tmp_path)
    script = tmp_path / "features_child.py"
    script.write_text(FEATURES_CHILD)
    writers = [subprocess.Popen([sys.executable, str(script), history], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for history in ("other-history", "fresh")]
    results = [w.communicate(timeout=600) + (w.returncode,) for w in writers]
    for out, err, code in results:
        assert code == 0, f"exit {code}: {err[-2000:]}"
    assert any((tmp_path / "numba-cache").rglob("guf-pitch._pi_wrapper*.nbc"))  # librosa's piptrack kernel
    loaded = subprocess.run([sys.executable, str(script), "fresh"], env=env, capture_output=True, text=True,
                            timeout=600)
    assert loaded.returncode == 0, f"exit {loaded.returncode}: {loaded.stderr[-2000:]}"
    # the guard is installed by importing the features (no explicit call), and every process agrees
    assert {out.split()[0] for out, _, _ in results} | {loaded.stdout.split()[0]} == {"locked"}
    assert len({out.split()[1] for out, _, _ in results} | {loaded.stdout.split()[1]}) == 1


def test_numba_internals_that_differ_fall_back_to_a_private_cache_folder(tmp_path):
    # A numba without the methods the guard wraps: this process caches alone, correctly.
    script = ("from numba.core import caching\n"
              "del caching.IndexDataCacheFile.save\n"
              "from libtagger.audio import numba_cache\n"
              "import os, sys\n"
              "from numba.core import config\n"
              "print(numba_cache.install(), config.CACHE_DIR != os.environ['NUMBA_CACHE_DIR'], "
              "os.path.isdir(config.CACHE_DIR))\n")
    done = subprocess.run([sys.executable, "-c", script], env=_env(tmp_path), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["private", "folder", "True", "True"]
