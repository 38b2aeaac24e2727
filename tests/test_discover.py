"""iter_audio_files on real folder trees: order, hidden names, links, loops, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from libtagger.scan.discover import SUPPORTED_EXTENSIONS, is_supported, iter_audio_files


def touch(root: Path, *names: str) -> None:
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")  # discovery never opens files: any content will do


def found(roots, **kw) -> list[str]:
    """Paths yielded, relative to the first root's parent, as strings."""
    base = Path(roots[0]).parent
    return [str(p.relative_to(base)) for p in iter_audio_files(roots, **kw)]


class Errors(list):
    def __call__(self, path: Path, reason: str) -> None:
        self.append((path.name, reason))


def test_extensions():
    assert SUPPORTED_EXTENSIONS == {".mp3", ".flac", ".ogg", ".oga", ".opus", ".spx", ".m4a", ".m4b", ".mp4",
                                    ".aac", ".wav", ".aiff", ".aif", ".aifc", ".au", ".wma", ".asf"}
    assert all(e == e.lower() for e in SUPPORTED_EXTENSIONS)
    assert is_supported("LOUD.MP3") and is_supported(b"a.Flac") and not is_supported("notes.txt")
    assert not is_supported("mp3")  # a bare name is not an extension


def test_sorted_recursive_order_and_only_audio(tmp_path):
    root = tmp_path / "music"
    touch(root, "b.mp3", "a.FLAC", "cover.jpg", "notes.txt", "B/z.ogg", "B/a.opus", "a/x.wav",
          "a/sub/y.m4a", "c.wma", "d.aif", "e.au", "f.oga", "g.mp4", "h.aiff")
    expected = ["music/B/a.opus", "music/B/z.ogg", "music/a/sub/y.m4a", "music/a/x.wav", "music/a.FLAC",
                "music/b.mp3", "music/c.wma", "music/d.aif", "music/e.au", "music/f.oga", "music/g.mp4",
                "music/h.aiff"]
    assert found([root]) == expected
    assert found([root]) == expected  # and again: stable
    assert all(isinstance(p, Path) for p in iter_audio_files([root]))


def test_order_does_not_depend_on_creation_order(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    names = ["c.mp3", "a.mp3", "sub/b.mp3", "b.mp3"]
    touch(one, *names)
    touch(two, *reversed(names))
    rel = lambda root: [str(p.relative_to(root)) for p in iter_audio_files([root])]  # noqa: E731
    assert rel(one) == rel(two) == ["a.mp3", "b.mp3", "c.mp3", "sub/b.mp3"]


def test_hidden_names_skipped_unless_asked(tmp_path):
    root = tmp_path / "music"
    touch(root, "a.mp3", ".b.mp3", "._a.mp3", ".cache/c.mp3", "d/.e.flac", "d/f.flac")
    assert found([root]) == ["music/a.mp3", "music/d/f.flac"]
    assert found([root], include_hidden=True) == ["music/._a.mp3", "music/.b.mp3", "music/.cache/c.mp3",
                                                  "music/a.mp3", "music/d/.e.flac", "music/d/f.flac"]


def test_a_hidden_root_given_explicitly_is_walked(tmp_path):
    touch(tmp_path, ".music/a.mp3")
    assert found([tmp_path / ".music"]) == [".music/a.mp3"]


def test_a_root_may_be_a_single_file(tmp_path):
    touch(tmp_path, "one.mp3", "liner.txt")
    errors = Errors()
    assert list(iter_audio_files([tmp_path / "one.mp3", tmp_path / "liner.txt"], on_error=errors)) == [
        tmp_path / "one.mp3"]
    assert errors == [("liner.txt", "not a supported audio file extension")]


def test_missing_root_is_reported_not_raised(tmp_path):
    touch(tmp_path, "a/x.mp3")
    errors = Errors()
    assert found([tmp_path / "a", tmp_path / "nope"], on_error=errors) == ["a/x.mp3"]
    assert errors == [("nope", "no such file or folder")]


def test_each_real_file_once_across_overlapping_roots(tmp_path):
    touch(tmp_path, "m/a.mp3", "m/sub/b.mp3")
    roots = [tmp_path / "m", tmp_path / "m" / "sub", tmp_path / "m", tmp_path / "m" / "a.mp3"]
    assert found(roots) == ["m/a.mp3", "m/sub/b.mp3"]
    # the nested root first: its files come first, and are not repeated by the outer root
    assert [p.name for p in iter_audio_files([tmp_path / "m" / "sub", tmp_path / "m"])] == ["b.mp3", "a.mp3"]


def test_hard_links_are_the_same_file(tmp_path):
    touch(tmp_path, "m/a.mp3")
    os.link(tmp_path / "m/a.mp3", tmp_path / "m/b.mp3")
    assert found([tmp_path / "m"]) == ["m/a.mp3"]


def test_symlinks_inside_the_roots_are_followed_once(tmp_path):
    m = tmp_path / "m"
    touch(m, "real/a.mp3", "other/b.mp3")
    (m / "alias.mp3").symlink_to(m / "real" / "a.mp3")           # same file: once
    (m / "zz_link_dir").symlink_to(m / "real", target_is_directory=True)  # same folder: once
    (m / "0_first").symlink_to("real")                           # relative link, sorts first
    got = found([m])
    assert got == ["m/0_first/a.mp3", "m/other/b.mp3"]
    # a link from one root into another root is inside the scanned roots too
    n = tmp_path / "n"
    n.mkdir()
    (n / "c.mp3").symlink_to(m / "other" / "b.mp3")
    assert found([n, m]) == ["n/c.mp3", "m/0_first/a.mp3"]


def test_symlinks_out_of_the_roots_are_followed_each_real_file_once(tmp_path):
    # ~/Music/Jazz -> an external drive: the common layout (issue 17, item 12).
    touch(tmp_path, "drive/jazz/a.flac", "drive/jazz/deep/b.mp3", "drive/single.mp3", "m/x.mp3")
    m = tmp_path / "m"
    (m / "Jazz").symlink_to(tmp_path / "drive" / "jazz", target_is_directory=True)
    (m / "Jazz again").symlink_to(tmp_path / "drive" / "jazz", target_is_directory=True)
    (m / "one.mp3").symlink_to(tmp_path / "drive" / "single.mp3")
    (m / "same as a.flac").symlink_to(tmp_path / "drive" / "jazz" / "a.flac")
    errors = Errors()
    assert found([m], on_error=errors) == ["m/Jazz/a.flac", "m/Jazz/deep/b.mp3", "m/one.mp3", "m/x.mp3"]
    assert errors == []


def test_devices_fifos_and_sockets_with_audio_names_are_refused(tmp_path):
    import socket

    m = tmp_path / "m"
    touch(m, "ok.mp3")
    os.mkfifo(m / "pipe.mp3")
    os.mkfifo(m / "not audio")                        # no audio name: not ours to mention
    (m / "zero.flac").symlink_to("/dev/zero")         # a link out of the roots to a device
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(m / "sock.ogg"))
        errors = Errors()
        assert found([m], on_error=errors) == ["m/ok.mp3"]
    reason = "not a regular file (a device, FIFO or socket)"
    assert sorted(errors) == [("pipe.mp3", reason), ("sock.ogg", reason), ("zero.flac", reason)]


def test_a_root_that_is_a_symlink_is_followed(tmp_path):
    touch(tmp_path, "real/a.mp3", "real/sub/b.mp3")
    (tmp_path / "real" / "sub" / "up").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert found([tmp_path / "link"]) == ["link/a.mp3", "link/sub/b.mp3"]


def test_symlink_loops_end(tmp_path):
    m = tmp_path / "m"
    touch(m, "a/x.mp3", "b/y.mp3")
    (m / "a" / "to_b").symlink_to(m / "b", target_is_directory=True)
    (m / "b" / "to_a").symlink_to(m / "a", target_is_directory=True)
    (m / "a" / "self").symlink_to(m, target_is_directory=True)
    (m / "loop1.mp3").symlink_to(m / "loop2.mp3")
    (m / "loop2.mp3").symlink_to(m / "loop1.mp3")
    (m / "broken.mp3").symlink_to(m / "nothing.mp3")
    errors = Errors()
    assert found([m], on_error=errors) == ["m/a/to_b/y.mp3", "m/a/x.mp3"]
    assert sorted(errors) == [("broken.mp3", "broken symbolic link"), ("loop1.mp3", "symbolic link loop"),
                              ("loop2.mp3", "symbolic link loop")]


def test_names_that_are_not_utf8(tmp_path):
    raw_root = os.path.join(os.fsencode(tmp_path), b"m\xe9")
    os.makedirs(os.path.join(raw_root, b"\xff\xfe dir"))
    for name in (b"caf\xe9.mp3", b"\xff\xfe dir/b\x80.flac", b"ok.mp3"):
        with open(os.path.join(raw_root, name), "wb") as f:
            f.write(b"x")
    for root in (raw_root, os.fsdecode(raw_root), Path(os.fsdecode(raw_root))):
        got = list(iter_audio_files([root]))
        assert [os.fsencode(p.name) for p in got] == [b"caf\xe9.mp3", b"ok.mp3", b"b\x80.flac"]
        assert all(p.exists() for p in got)  # the surrogate-escaped names round-trip to the real files


def test_entries_vanishing_mid_scan_are_skipped(tmp_path):
    m = tmp_path / "m"
    touch(m, "a/1.mp3", "b/2.mp3", "b/3.mp3", "c/4.mp3")
    errors = Errors()
    it = iter_audio_files([m], on_error=errors)
    assert next(it) == m / "a" / "1.mp3"
    shutil.rmtree(m / "c")           # a folder listed but not yet entered
    rest = list(it)
    assert rest == [m / "b" / "2.mp3", m / "b" / "3.mp3"]
    assert errors == [("c", "vanished during the scan")]

    errors.clear()
    it = iter_audio_files([m], on_error=errors)
    assert next(it) == m / "a" / "1.mp3"
    assert next(it) == m / "b" / "2.mp3"
    (m / "b" / "3.mp3").unlink()     # a file listed but not yet looked at
    assert list(it) == []
    assert errors == [("3.mp3", "vanished during the scan")]


def test_unreadable_folder_is_reported_and_skipped():
    """root reads every folder, so this runs the walk as user ``nobody`` in a child process."""
    setpriv = shutil.which("setpriv")
    base = Path(tempfile.mkdtemp(prefix="libtagger-discover-"))  # pytest's tmp dirs are root-only
    try:
        base.chmod(0o755)
        touch(base, "m/a.mp3", "m/locked/b.mp3", "m/z.mp3")
        for p in (base / "m", base / "m" / "locked"):
            p.chmod(0o755)
        (base / "m" / "locked").chmod(0)
        code = ("import json, sys\nfrom libtagger.scan.discover import iter_audio_files\nerrs = []\n"
                "got = [p.name for p in iter_audio_files([sys.argv[1]], on_error=lambda p, r: errs.append([p.name, r]))]\n"
                "print(json.dumps([got, errs]))")
        if os.geteuid() == 0:
            if setpriv is None:
                pytest.skip("running as root without setpriv: cannot drop privileges to test permissions")
            cmd = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        else:
            cmd = []
        r = subprocess.run([*cmd, sys.executable, "-c", code, str(base / "m")],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == [["a.mp3", "z.mp3"], [["locked", "permission denied"]]]
    finally:
        (base / "m" / "locked").chmod(0o755)
        shutil.rmtree(base)


def test_deep_trees_do_not_hit_the_recursion_limit(tmp_path):
    deep = tmp_path.joinpath(*["d"] * (sys.getrecursionlimit() // 4))
    touch(deep, "x.mp3")
    assert [p.name for p in iter_audio_files([tmp_path])] == ["x.mp3"]
