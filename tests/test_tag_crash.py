"""A genre write that is killed, runs out of disk or meets a read-only file never damages it.

How the kills are placed: the writer runs in a child process on a real file; a
profiling hook (``sys.setprofile``, installed after all imports) counts every
Python and C call the write makes and sends SIGKILL to the child at call number
N. A dry run measures the total number of calls and the call at which
``os.replace`` happens; trials then kill at spread-out random points over the
whole write plus every call around the rename. No hook exists in libtagger
itself. A second test kills after random short delays instead.

After every kill the file must be byte-identical either to the original or to
the result of an uninterrupted write (which is itself checked: genre reads back,
other tags and decoded audio unchanged), and the only other thing allowed in the
folder is the hidden temporary, which ``remove_stale_temporaries`` removes.

Full disk uses a real, small tmpfs (we run as root in CI) and, where mounting is
not allowed, an injected ENOSPC. Root bypasses permission bits, so read-only
files/folders are tested both as root (libtagger refuses files without write
bits) and as the unprivileged ``nobody`` user in a child that drops privileges
after its imports (the interpreter lives under /root, which nobody cannot read).
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import make_audio
from libtagger.tags import safe_write
from libtagger.tags import storage as tags
from libtagger.errors import WriteError
from tags_harness import CHILD, add_other_tags, decode, other_tags

GENRE = "Hip-Hop"
REAL_STATVFS = os.statvfs  # some tests monkeypatch os.statvfs; filling a disk needs the truth

def run_child(path: Path, kill_at: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, str(path), GENRE, str(kill_at)],
                          capture_output=True, text=True, timeout=120)


def is_temp(name: str) -> bool:
    return safe_write.is_temporary(name)


@pytest.fixture(scope="module")
def crash_sources(tmp_path_factory) -> dict[str, tuple[bytes, bytes, int, int]]:
    """Per format: original bytes, bytes after a clean write, total calls, call of os.replace."""
    folder = tmp_path_factory.mktemp("crash_src")
    out = {}
    for name in ("song.mp3", "song.flac", "song.m4a"):
        p = make_audio(folder / name, 2.0)
        add_other_tags(p)
        original = p.read_bytes()
        before_tags, before_audio = other_tags(p), decode(p)
        done = run_child(p, -1)
        assert done.returncode == 0, done.stderr
        total, replace_at = map(int, done.stdout.split())
        assert 0 < replace_at < total
        # the clean result is correct: genre, other tags, audio
        assert tags.read_genres(p) == [GENRE]
        assert other_tags(p) == before_tags
        assert np.array_equal(decode(p), before_audio)
        out[name] = (original, p.read_bytes(), total, replace_at)
    return out


def check_after_kill(folder: Path, name: str, original: bytes, written: bytes) -> str:
    """Assert the file is whole; clean up leftovers; say which version survived."""
    data = (folder / name).read_bytes()
    assert data in (original, written), f"{name}: {len(data)} bytes, neither original nor fully written"
    others = sorted(p.name for p in folder.iterdir() if p.name != name)
    assert all(is_temp(n) for n in others), others
    removed = tags.remove_stale_temporaries(folder)
    assert sorted(p.name for p in removed) == others
    assert [p.name for p in folder.iterdir()] == [name]
    return "original" if data == original else "written"


@pytest.mark.parametrize("name", ["song.mp3", "song.flac", "song.m4a"])
def test_sigkill_at_any_point_leaves_old_or_new_file(crash_sources, tmp_path: Path, name: str) -> None:
    original, written, _, _ = crash_sources[name]
    # Measure the calls at the same folder depth as the trials (path handling adds calls).
    dry = tmp_path / "dry"
    dry.mkdir()
    (dry / name).write_bytes(original)
    done = run_child(dry / name, -1)
    total, replace_at = map(int, done.stdout.split())
    assert (dry / name).read_bytes() == written
    rng = np.random.default_rng(1234)
    trials = 30
    points = {int(rng.integers(i * total // trials, (i + 1) * total // trials) + 1) for i in range(trials)}
    # Around the rename, densely: the call count wobbles by a few between runs (random temp name).
    points |= set(range(replace_at - 12, min(total, replace_at + 12)))
    outcomes = {"original": 0, "written": 0}
    for n in sorted(points):
        folder = tmp_path / f"kill{n}"
        folder.mkdir()
        (folder / name).write_bytes(original)
        done = run_child(folder / name, n)
        assert done.returncode == -signal.SIGKILL, (n, done.returncode, done.stderr[-500:])
        outcomes[check_after_kill(folder, name, original, written)] += 1
        shutil.rmtree(folder)
    # the kills covered both sides of the rename
    assert outcomes["original"] > 0 and outcomes["written"] > 0, outcomes
    assert sum(outcomes.values()) >= trials


@pytest.mark.parametrize("name", ["song.mp3", "song.flac", "song.m4a"])
def test_sigkill_after_random_delays(crash_sources, tmp_path: Path, name: str) -> None:
    original, written, _, _ = crash_sources[name]
    rng = np.random.default_rng(99)
    # how long one write takes here, to spread the kills over it
    folder = tmp_path / "timing"
    folder.mkdir()
    (folder / name).write_bytes(original)
    t0 = time.perf_counter()
    tags.write_genre(folder / name, GENRE)
    span = max(time.perf_counter() - t0, 0.005)
    for trial in range(15):
        folder = tmp_path / f"t{trial}"
        folder.mkdir()
        (folder / name).write_bytes(original)
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(folder / name), GENRE, "-2"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("go\n")
        child.stdin.flush()
        time.sleep(float(rng.uniform(0, 1.5 * span)))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        child.stdin.close()
        child.stdout.close()
        check_after_kill(folder, name, original, written)


# ---------------------------------------------------------------- full disk

def fill_to(folder: Path, free_bytes: int) -> int:
    """Write filler files until about ``free_bytes`` remain; return what really remains."""
    vfs = REAL_STATVFS(folder)
    have = vfs.f_bavail * vfs.f_frsize
    if have > free_bytes:
        with open(folder / "filler", "wb") as fh:
            try:
                fh.write(b"\0" * (have - free_bytes))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    vfs = REAL_STATVFS(folder)
    return vfs.f_bavail * vfs.f_frsize


@pytest.mark.parametrize("name", ["song.mp3", "song.flac", "song.m4a"])
def test_full_disk_is_refused_and_file_untouched(crash_sources, small_tmpfs, name: str) -> None:
    original = crash_sources[name][0]
    mnt = small_tmpfs(4 * len(original) + 256 * 1024)
    (mnt / name).write_bytes(original)
    fill_to(mnt, len(original) // 2)
    with pytest.raises(WriteError, match="disk full"):
        tags.write_genre(mnt / name, GENRE)
    assert (mnt / name).read_bytes() == original
    assert sorted(p.name for p in mnt.iterdir()) == sorted([name, "filler"])


class _PlentyOfSpace:
    f_flag, f_bavail, f_frsize = 0, 1 << 40, 4096


@pytest.mark.parametrize("name", ["song.mp3", "song.flac", "song.m4a"])
def test_disk_filling_up_during_the_write(crash_sources, small_tmpfs, monkeypatch, name: str) -> None:
    """Real ENOSPC from the kernel, at several fill levels, past libtagger's up-front check."""
    original, written, _, _ = crash_sources[name]
    monkeypatch.setattr(safe_write.os, "statvfs", lambda _p: _PlentyOfSpace())
    page = 4096
    seen = {"disk full": 0, "ok": 0}
    for i, spare_pages in enumerate([-8, -2, 0, 1, 2, 4]):
        mnt = small_tmpfs(2 * len(original) + 64 * page, label=f"m{i}")
        (mnt / name).write_bytes(original)
        fill_to(mnt, len(original) + spare_pages * page)
        try:
            tags.write_genre(mnt / name, GENRE)
        except WriteError as err:
            assert "disk full" in err.reason, err.reason
            assert (mnt / name).read_bytes() == original
            seen["disk full"] += 1
        else:
            assert (mnt / name).read_bytes() == written
            seen["ok"] += 1
        assert sorted(p.name for p in mnt.iterdir()) == sorted([name, "filler"])
    assert seen["disk full"] >= 2 and seen["ok"] >= 1, seen


@pytest.mark.parametrize("where", ["copy", "fsync"])
def test_injected_enospc(crash_sources, tmp_path: Path, monkeypatch, where: str) -> None:
    """Works without root: ENOSPC from the copy, or late from fsync (NFS and quotas report it there)."""
    original = crash_sources["song.flac"][0]
    p = tmp_path / "song.flac"
    p.write_bytes(original)

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safe_write.shutil if where == "copy" else safe_write.os,
                        "copyfile" if where == "copy" else "fsync", full)
    with pytest.raises(WriteError, match="disk full"):
        tags.write_genre(p, GENRE)
    assert p.read_bytes() == original
    assert [q.name for q in tmp_path.iterdir()] == ["song.flac"]


# ---------------------------------------------------------------- read-only, vanished, changed

def test_read_only_file_is_refused_even_for_root(crash_sources, tmp_path: Path) -> None:
    original = crash_sources["song.mp3"][0]
    p = tmp_path / "song.mp3"
    p.write_bytes(original)
    p.chmod(0o444)
    with pytest.raises(WriteError, match="file is read-only"):
        tags.write_genre(p, GENRE)
    assert p.read_bytes() == original and oct(p.stat().st_mode & 0o777) == "0o444"
    assert [q.name for q in tmp_path.iterdir()] == ["song.mp3"]


def test_read_only_folder_is_refused(crash_sources, tmp_path: Path) -> None:
    original = crash_sources["song.m4a"][0]
    folder = tmp_path / "album"
    folder.mkdir()
    p = folder / "song.m4a"
    p.write_bytes(original)
    folder.chmod(0o555)
    try:
        with pytest.raises(WriteError, match="folder is read-only"):
            tags.write_genre(p, GENRE)
        assert p.read_bytes() == original
        assert [q.name for q in folder.iterdir()] == ["song.m4a"]
    finally:
        folder.chmod(0o755)


def test_read_only_file_system(crash_sources, small_tmpfs) -> None:
    original = crash_sources["song.flac"][0]
    mnt = small_tmpfs(4 * len(original))
    (mnt / "song.flac").write_bytes(original)
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    with pytest.raises(WriteError, match="read-only"):
        tags.write_genre(mnt / "song.flac", GENRE)
    assert (mnt / "song.flac").read_bytes() == original


AS_NOBODY = r"""
import json, os, sys
from libtagger.tags import storage as tags
from libtagger.errors import WriteError
os.setgroups([]); os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[3]))
try:
    tags.write_genre(sys.argv[1], "Hip-Hop")
    print(json.dumps({"ok": True}))
except WriteError as err:
    print(json.dumps({"ok": False, "reason": err.reason}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to the nobody user")
@pytest.mark.parametrize("case", ["file not writable", "folder not writable", "writable"])
def test_permissions_as_an_unprivileged_user(crash_sources, case: str) -> None:
    nobody = pwd.getpwnam("nobody")
    original, written, _, _ = crash_sources["song.flac"]
    folder = Path(tempfile.mkdtemp(prefix="libtagger-perm-", dir="/tmp"))
    try:
        p = folder / "song.flac"
        p.write_bytes(original)
        if case == "file not writable":
            # root's file, 0644, in a folder nobody may write: a plain rename would succeed!
            folder.chmod(0o777)
        elif case == "folder not writable":
            folder.chmod(0o755)
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
        else:
            folder.chmod(0o755)
            os.chown(folder, nobody.pw_uid, nobody.pw_gid)
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
        out = subprocess.run([sys.executable, "-c", AS_NOBODY, str(p), str(nobody.pw_gid), str(nobody.pw_uid)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        if case == "writable":
            assert result == {"ok": True}
            assert p.read_bytes() == written
            assert (p.stat().st_uid, p.stat().st_gid) == (nobody.pw_uid, nobody.pw_gid)
        else:
            assert not result["ok"]
            assert result["reason"] == {"file not writable": "file is read-only",
                                        "folder not writable": "folder is read-only (no permission to create a file in it)"}[case]
            assert p.read_bytes() == original
        assert [q.name for q in folder.iterdir()] == ["song.flac"]
    finally:
        shutil.rmtree(folder)


def test_file_gone_before_the_write(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="file not found"):
        tags.write_genre(tmp_path / "song.mp3", GENRE)
    assert list(tmp_path.iterdir()) == []


def test_file_vanishing_during_the_write_is_not_resurrected(crash_sources, tmp_path: Path, monkeypatch) -> None:
    p = tmp_path / "song.mp3"
    p.write_bytes(crash_sources["song.mp3"][0])
    real_copystat = shutil.copystat

    def vanish_then_copystat(src, dst, **kw):
        real_copystat(src, dst, **kw)
        os.unlink(p)  # e.g. the user deletes the song while it is being tagged

    monkeypatch.setattr(safe_write.shutil, "copystat", vanish_then_copystat)
    with pytest.raises(WriteError, match="file vanished"):
        tags.write_genre(p, GENRE)
    assert list(tmp_path.iterdir()) == []


def test_file_changed_by_someone_else_during_the_write_wins(crash_sources, tmp_path: Path, monkeypatch) -> None:
    p = tmp_path / "song.m4a"
    p.write_bytes(crash_sources["song.m4a"][0])
    real_copystat = shutil.copystat

    def other_writer(src, dst, **kw):
        real_copystat(src, dst, **kw)
        with open(p, "ab") as fh:
            fh.write(b"other program's change")

    monkeypatch.setattr(safe_write.shutil, "copystat", other_writer)
    with pytest.raises(WriteError, match="file changed while it was being tagged"):
        tags.write_genre(p, GENRE)
    assert p.read_bytes().endswith(b"other program's change")
    assert [q.name for q in tmp_path.iterdir()] == ["song.m4a"]


def test_ctrl_c_mid_write_cleans_up(crash_sources, tmp_path: Path, monkeypatch) -> None:
    original = crash_sources["song.mp3"][0]
    p = tmp_path / "song.mp3"
    p.write_bytes(original)

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(safe_write.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tags.write_genre(p, GENRE)
    assert p.read_bytes() == original
    assert [q.name for q in tmp_path.iterdir()] == ["song.mp3"]


def test_a_tag_library_bug_is_caught_by_the_read_back(crash_sources, tmp_path: Path, monkeypatch) -> None:
    """If saving the genre also changed another tag, the check on the copy stops the swap."""
    from mutagen.flac import FLAC

    original = crash_sources["song.flac"][0]
    p = tmp_path / "song.flac"
    p.write_bytes(original)
    real_save = FLAC.save

    def buggy_save(self, *args, **kwargs):
        self.tags["TITLE"] = ["mangled"]
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(FLAC, "save", buggy_save)
    with pytest.raises(WriteError, match="verification failed: other tags changed"):
        tags.write_genre(p, GENRE)
    assert p.read_bytes() == original
    assert [q.name for q in tmp_path.iterdir()] == ["song.flac"]
