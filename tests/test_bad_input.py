"""Bad input through ``libtagger scan``: every broken, odd or hostile file gets a one-line
error on stderr naming the file and the reason, an error row in the index, and the run goes
on (the good files are tagged, exit status 0).

Decision on silence: a file that is digital silence (below -80 dBFS in every analysed
segment) is an *error* ("silence: ..."), not a genre: nothing can be told from it, and a
gap track tagged "Jazz" would be noise in a library.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf

from conftest import make_audio, music_like
from scan_harness import (decoded_paths, probe_env, probe_events, require_seed_model, rows, run_cli,
                          stderr_lines)

SCAN = ("--model", "seed", "--min-confidence", "0", "--jobs", "2")

#: name -> words one of which the error reason must contain.
BAD = {
    "empty.mp3": ("empty",),
    "text.flac": ("not an audio file",),
    "header.mp3": ("truncated", "corrupt"),
    "header.flac": ("truncated", "corrupt"),
    "header.wav": ("truncated", "corrupt"),
    "half.mp3": ("truncated", "corrupt"),
    "half.flac": ("truncated", "corrupt"),
    "half.wav": ("truncated", "corrupt"),
    "zero.wav": ("zero-length", "no samples"),
    "silence.flac": ("silence",),
    "nan.wav": ("invalid audio: 100% of the samples from 0 s are NaN or infinite",),
    "inf.wav": ("invalid audio",),
    "dangling.flac": ("broken symbolic link",),
    "self.flac": ("symbolic link loop",),
    "crashme.flac": ("worker process crashed",),
    "vanish.flac": ("vanished", "no such file"),
    "change.flac": ("changed while it was being read",),
    "replaced.flac": ("changed after it was analysed",),
    # content another format than the extension says, one that cannot hold a genre tag: the
    # reason names what it really is (mislabelled files that can hold one are tagged by their
    # content: tests/test_mislabelled.py)
    "adts-inside.mp3": ("content is raw AAC (ADTS) audio, not MP3 as the extension .mp3 says, "
                        "and raw AAC (ADTS) cannot hold a genre tag",),
}
MISLABELLED = [name for name in BAD if "-inside." in name]
GOOD = ["good.flac", "good.mp3", "glitch.wav", "mono.wav", "six.flac", "six.wav", "sr8k.wav", "sr192k.flac",
        "u8.wav", "p24.wav", "f32.wav", "it's a \"quoted\" name.mp3", "caf\\xe9.flac"]
NON_UTF8 = b"caf\xe9.flac"


@pytest.fixture(scope="module")
def bad_library(tmp_path_factory) -> Path:
    """Good files in odd shapes next to broken ones, in one folder."""
    lib = tmp_path_factory.mktemp("bad") / "My Music"  # a space in the folder too
    lib.mkdir()
    make_audio(lib / "good.flac", 6.0, seed=1)
    make_audio(lib / "good.mp3", 6.0, seed=2)
    (lib / "empty.mp3").write_bytes(b"")
    (lib / "text.flac").write_text("these are liner notes, not music\n" * 20)
    for ext in (".mp3", ".flac", ".wav"):
        data = make_audio(lib / f"whole{ext}", 8.0, seed=3).read_bytes()
        (lib / f"whole{ext}").unlink()
        (lib / f"half{ext}").write_bytes(data[:len(data) // 2])
        (lib / f"header{ext}").write_bytes(data[:200])
    sf.write(lib / "zero.wav", np.zeros((0, 2), np.float32), 44100)
    sf.write(lib / "silence.flac", np.zeros((6 * 44100, 2), np.float32), 44100, subtype="PCM_16")
    # float WAVs of NaN and of +-inf: not silence (the QA sweep saw them called that)
    sf.write(lib / "nan.wav", np.full((6 * 22050, 1), np.nan, np.float32), 22050, subtype="FLOAT")
    sf.write(lib / "inf.wav", np.where(np.arange(6 * 22050)[:, None] % 2, np.inf, -np.inf).astype(np.float32),
             22050, subtype="FLOAT")
    glitch = music_like(6.0, sr=22050, channels=1, seed=17)
    glitch[[100, 5000, 40000, 90000, 120000]] = np.nan  # a few bad samples are zeroed and analysed
    sf.write(lib / "glitch.wav", glitch, 22050, subtype="FLOAT")
    make_audio(lib / "mono.wav", 6.0, channels=1, seed=4)
    make_audio(lib / "six.flac", 6.0, channels=6, seed=5)
    make_audio(lib / "six.wav", 6.0, channels=6, seed=6)
    make_audio(lib / "sr8k.wav", 6.0, sr=8000, seed=7)
    make_audio(lib / "sr192k.flac", 6.0, sr=192000, seed=8)
    music = music_like(6.0, seed=9)
    sf.write(lib / "u8.wav", music, 44100, subtype="PCM_U8")
    sf.write(lib / "p24.wav", music, 44100, subtype="PCM_24")
    sf.write(lib / "f32.wav", music, 44100, subtype="FLOAT")
    make_audio(lib / "it's a \"quoted\" name.mp3", 6.0, seed=10)
    make_audio(lib / "cafe.flac", 6.0, seed=11)
    os.rename(os.fsencode(lib / "cafe.flac"), os.fsencode(lib) + b"/" + NON_UTF8)
    os.symlink(".", lib / "loop")  # a folder loop: walked once
    os.symlink("self.flac", lib / "self.flac")
    os.symlink("nowhere.flac", lib / "dangling.flac")
    for name, seed in (("crashme.flac", 12), ("vanish.flac", 13), ("change.flac", 14), ("replaced.flac", 15)):
        make_audio(lib / name, 6.0, seed=seed)
    make_audio(lib.parent / "re-rip.flac", 7.0, seed=16)  # replaces replaced.flac mid-run
    originals = lib.parent / "originals"  # pristine copies of the mislabelled files
    for seed, name in enumerate(MISLABELLED, start=30):
        src = make_audio(originals / f"{name}.src.wav", 8.0, seed=seed)
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-c:a", "aac", "-f", "adts",
                        str(originals / name)], check=True)
        shutil.copy(originals / name, lib / name)
    return lib


@pytest.fixture(scope="module")
def bad_scan(bad_library, tmp_path_factory):
    """One quiet scan of the bad library, with a decoder that segfaults on 'crashme', a file
    deleted and a file modified while they are being analysed."""
    require_seed_model()
    work = tmp_path_factory.mktemp("bad-run")
    env = probe_env(work / "probe", log=work / "decoded.log", crash="crashme", vanish="vanish.flac",
                    change="change.flac", replace="replaced.flac", replace_with=bad_library.parent / "re-rip.flac")
    index = work / "index.db"
    result = run_cli("scan", bad_library, *SCAN, "--quiet", "--index", index, env=env)
    return bad_library, index, result, work / "decoded.log"


def _index_rows(index: Path) -> dict[str, dict]:
    return {os.path.basename(r["path"]): r for r in rows(index, "select * from tracks")}


def test_the_run_finishes_and_tags_every_good_file(bad_scan):
    lib, index, result, _ = bad_scan
    assert result.returncode == 0, result.stderr
    tracks = _index_rows(index)
    for name in GOOD:
        row = tracks[name]
        assert row["status"] == "tagged", (name, row["error"])
        path = os.fsdecode(os.fsencode(lib) + b"/" + NON_UTF8) if name == "caf\\xe9.flac" else str(lib / name)
        assert mutagen.File(path)["genre" if path.endswith(".flac") else "TCON"][0] == row["genre"], name
    assert tracks["caf\\xe9.flac"]["path_bytes"] == os.fsencode(lib) + b"/" + NON_UTF8
    assert tracks["six.flac"]["channels"] == 6 and tracks["sr192k.flac"]["samplerate"] == 192000
    assert tracks["sr8k.wav"]["samplerate"] == 8000 and tracks["mono.wav"]["channels"] == 1


def test_every_bad_file_has_one_error_line_and_an_error_row(bad_scan):
    lib, index, result, _ = bad_scan
    tracks = _index_rows(index)
    lines = stderr_lines(result)
    assert result.stdout == ""  # --quiet
    assert all(line.startswith("libtagger: ") for line in lines), lines  # nothing but error lines
    for name, words in BAD.items():
        row = tracks.get(name)
        assert row is not None and row["status"] == "error", (name, row)
        assert any(w in row["error"] for w in words), (name, row["error"])
        # a mislabelled file is refused when its tag is opened, after the analysis: its verdict
        # stays in the row (as an .au file's does), nothing is written
        assert row["genre"] is None or name in MISLABELLED, name
        ours = [line for line in lines if line.startswith(f"libtagger: {lib / name}: ")]
        assert ours == [f"libtagger: {lib / name}: {row['error']}"], (name, lines)
    assert len(lines) == len(BAD), lines
    assert not (lib / "vanish.flac").exists()
    # replaced between its analysis and the write: not tagged with the old audio's genre
    assert (lib / "replaced.flac").read_bytes() == (lib.parent / "re-rip.flac").read_bytes()
    assert mutagen.File(lib / "crashme.flac").get("genre") is None  # errors write nothing


def test_mislabelled_files_are_left_byte_for_byte(bad_scan):
    """An ADTS AAC stream named .mp3 has no tag block: nothing is written to it (an ID3 tag in
    front would be read by mutagen's MP3 class, not by what plays the file)."""
    lib = bad_scan[0]
    for name in MISLABELLED:
        assert (lib / name).read_bytes() == (lib.parent / "originals" / name).read_bytes(), name


def test_the_crash_was_in_a_worker_and_only_that_file_failed(bad_scan):
    _, _, _, log = bad_scan
    events = probe_events(log)
    crashed = {e[3] for e in events if e[0] == "load" and b"crashme" in e[3]}
    assert crashed, "the probe never saw the crashing file: the test proves nothing"
    finished = {os.path.basename(e[3]) for e in events if e[0] == "done"}
    assert b"crashme.flac" not in finished
    assert {os.fsencode(n) for n in GOOD if "\\x" not in n} <= finished


def test_the_next_run_retries_errors_and_marks_the_vanished_file_missing(bad_scan):
    lib, index, _, _ = bad_scan
    work = index.parent
    log = work / "again.log"
    result = run_cli("scan", lib, *SCAN, "--quiet", "--index", index, env=probe_env(work / "probe", log=log))
    assert result.returncode == 0, result.stderr
    tracks = _index_rows(index)
    assert tracks["change.flac"]["status"] == "tagged"  # a file that changed mid-read is analysed again
    assert tracks["replaced.flac"]["status"] == "tagged" and tracks["replaced.flac"]["duration"] == pytest.approx(7.0, abs=0.1)
    assert tracks["vanish.flac"]["missing"] == 1
    assert tracks["crashme.flac"]["status"] == "tagged"  # the decoder does not crash this time
    again = decoded_paths(log, "analyse")
    assert not again & set(GOOD), "finished files were decoded again"
    assert {"change.flac", "crashme.flac", "replaced.flac", "empty.mp3", "text.flac"} <= again


def test_unreadable_file_and_folder_without_root_powers(tmp_path):
    """Root reads any file; the scan runs as root *without* CAP_DAC_OVERRIDE/READ_SEARCH, so the
    kernel refuses a mode-000 file and folder exactly as it would for a normal user."""
    require_seed_model()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot drop root's file-permission bypass")
    probe = subprocess.run([setpriv, "--bounding-set=-dac_override,-dac_read_search", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot drop capabilities here: {probe.stderr.strip()}")
    lib = tmp_path / "lib"
    make_audio(lib / "readable.flac", 6.0, seed=1)
    make_audio(lib / "locked.mp3", 6.0, seed=2).chmod(0)
    make_audio(lib / "closed" / "inside.flac", 6.0, seed=3)
    (lib / "closed").chmod(0)
    index = tmp_path / "index.db"
    try:
        result = subprocess.run([setpriv, "--bounding-set=-dac_override,-dac_read_search",
                                 *run_cli_args("scan", lib, *SCAN, "--index", index)],
                                capture_output=True, text=True, timeout=600)
    finally:
        (lib / "closed").chmod(0o755)
    assert result.returncode == 0, result.stderr
    tracks = _index_rows(index)
    assert tracks["readable.flac"]["status"] == "tagged"
    assert tracks["locked.mp3"]["status"] == "error" and "permission denied" in tracks["locked.mp3"]["error"].lower()
    lines = stderr_lines(result)
    assert f"libtagger: {lib / 'locked.mp3'}: {tracks['locked.mp3']['error']}" in lines
    assert any(line.startswith(f"libtagger: {lib / 'closed'}: ") and "ermission" in line for line in lines), lines


def run_cli_args(*args) -> list[str]:
    from scan_harness import cli_command

    return cli_command(*args)


def test_full_disk_while_tagging_leaves_the_file_intact(tmp_path, small_tmpfs):
    require_seed_model()
    song = make_audio(tmp_path / "big.wav", 15.0, seed=4)  # ~2.6 MB: no room for the tagged copy
    disk = small_tmpfs(song.stat().st_size + 512 * 1024)
    shutil.copy(song, disk / "big.wav")
    make_audio(tmp_path / "lib" / "fine.flac", 6.0, seed=5)
    index = tmp_path / "index.db"
    result = run_cli("scan", disk, tmp_path / "lib", *SCAN, "--index", index)
    assert result.returncode == 0, result.stderr
    row = _index_rows(index)["big.wav"]
    assert row["status"] == "error" and "space" in row["error"].lower(), row["error"]
    assert (disk / "big.wav").read_bytes() == song.read_bytes()
    assert sorted(p.name for p in disk.iterdir()) == ["big.wav"]  # no temporary left behind
    assert f"libtagger: {disk / 'big.wav'}: {row['error']}" in stderr_lines(result)
    assert _index_rows(index)["fine.flac"]["status"] == "tagged"


def _write_long_flac(path: Path, hours: float, sr: int = 8000) -> None:
    """A long mono FLAC written block by block (the test process never holds it whole)."""
    block = music_like(60.0, sr=sr, channels=1, seed=0)
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, format="FLAC", subtype="PCM_16") as f:
        for minute in range(int(hours * 60)):
            f.write(block * (0.5 + 0.5 * ((minute % 7) / 7)))


def test_two_hour_file_is_analysed_with_bounded_worker_memory(tmp_path):
    require_seed_model()
    song = tmp_path / "lib" / "two hours.flac"
    song.parent.mkdir()
    _write_long_flac(song, hours=2.0)
    log = tmp_path / "decoded.log"
    index = tmp_path / "index.db"
    # the default model: its workers also compute the musicnn mel patches
    result = run_cli("scan", song.parent, "--min-confidence", "0", "--jobs", "1", "--report", "json",
                     "--index", index, env=probe_env(tmp_path / "probe", log=log))
    assert result.returncode == 0, result.stderr
    row = _index_rows(index)["two hours.flac"]
    assert row["status"] == "tagged", row["error"]
    assert 7190 < row["duration"] < 7210
    segments = rows(index, "select start, end from segments where track_id = ?", (row["id"],))
    assert len(segments) == 3 and segments[-1]["end"] > 7000  # spread from start to end
    peaks = [peak for call, _, peak, path in probe_events(log) if call == "done" and path.endswith(b"two hours.flac")]
    assert peaks, "the probe saw no finished analysis"
    peak_mb = max(peaks) / 1024
    print(f"peak RSS of the worker analysing a 2-hour 8 kHz FLAC: {peak_mb:.0f} MB")
    assert peak_mb < 1536, f"worker peak RSS {peak_mb:.0f} MB"


def test_a_file_just_under_3_s_is_not_called_3_s_long(tmp_path):
    """2.999 s is too short, and the reason must not round it to the 3 s it lacks."""
    require_seed_model()
    sr = 22050
    (tmp_path / "lib").mkdir()
    sf.write(tmp_path / "lib" / "short.wav", music_like(2.999, sr=sr, channels=1, seed=6)[: int(sr * 2.999)],
             sr, subtype="PCM_16")
    result = run_cli("scan", tmp_path / "lib", *SCAN, "--index", tmp_path / "index.db")
    assert result.returncode == 0, result.stderr
    error = _index_rows(tmp_path / "index.db")["short.wav"]["error"]
    assert error == "too short: 2.99 s of audio (at least 3 s needed)", error
    assert f"libtagger: {tmp_path / 'lib' / 'short.wav'}: {error}" in stderr_lines(result)
