"""audio_fingerprint: blind to tags, names and places; different audio, different print."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import make_audio, require_ffmpeg
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, COMM, ID3, TCON, TIT2, TPE1
from mutagen.mp4 import MP4, MP4Cover
from mutagen.oggvorbis import OggVorbis

from libtagger.errors import ReadError
from libtagger.audio.fingerprint import audio_fingerprint

# A fake but plausibly sized cover: mutagen stores image bytes without decoding them.
COVER = b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).bytes(30_000)


def retag(path: Path) -> None:
    """Change and add tags and embed cover art, the way a tag editor (or libtagger) would."""
    ext = path.suffix
    if ext == ".mp3":
        try:
            tags = ID3(path)
        except Exception:
            tags = ID3()
        tags.add(TIT2(encoding=3, text="New title"))
        tags.add(TPE1(encoding=3, text="Somebody"))
        tags.add(TCON(encoding=3, text="Jazz"))
        tags.add(COMM(encoding=3, lang="eng", desc="", text="a long comment " * 200))
        tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=COVER))
        tags.save(path, v2_version=3)
    elif ext == ".flac":
        f = FLAC(path)
        f["title"], f["genre"] = "New title", "Jazz"
        pic = Picture()
        pic.type, pic.mime, pic.data = 3, "image/png", COVER
        f.add_picture(pic)
        f.save()
    elif ext == ".m4a":
        f = MP4(path)
        f["\xa9nam"], f["\xa9gen"] = ["New title"], ["Jazz"]
        f["covr"] = [MP4Cover(COVER, imageformat=MP4Cover.FORMAT_PNG)]
        f.save()
    elif ext == ".ogg":
        f = OggVorbis(path)
        f["title"], f["genre"] = "New title", "Jazz"
        f.save()
    else:
        raise AssertionError(ext)


@pytest.mark.parametrize("ext", [".mp3", ".flac", ".m4a", ".ogg"])
def test_same_print_after_any_tag_change(tmp_path, ext):
    require_ffmpeg()
    p = make_audio(tmp_path / f"song{ext}", 30.0)  # long enough for the middle window too
    before_bytes, before = p.read_bytes(), audio_fingerprint(p)
    retag(p)
    assert p.read_bytes() != before_bytes and p.stat().st_size > len(before_bytes)
    assert audio_fingerprint(p) == before
    retag(p)  # and again, over existing tags
    assert audio_fingerprint(p) == before


@pytest.mark.parametrize("ext", [".mp3", ".flac", ".m4a"])
def test_renamed_or_moved_copy_has_the_same_print(tmp_path, ext):
    p = make_audio(tmp_path / f"a{ext}", 8.0)
    moved = tmp_path / "elsewhere" / f"renamed it's {ext}"
    moved.parent.mkdir()
    shutil.copy(p, moved)
    assert audio_fingerprint(moved) == audio_fingerprint(p)


def test_different_audio_gives_a_different_print(tmp_path):
    a = make_audio(tmp_path / "a.flac", 8.0, seed=0)
    b = make_audio(tmp_path / "b.flac", 8.0, seed=1)  # same chords, other noise in the beat
    mono = make_audio(tmp_path / "m.flac", 8.0, channels=1)
    low = make_audio(tmp_path / "l.flac", 8.0, sr=22050)
    prints = {audio_fingerprint(p) for p in (a, b, mono, low)}
    assert len(prints) == 4
    assert all(len(fp) == 64 and int(fp, 16) >= 0 for fp in prints)


def test_same_intro_different_track_gives_a_different_print(tmp_path):
    """Two versions sharing their first 25 s and their length differ in the middle window."""
    sr = 8000
    rng = np.random.default_rng(7)
    intro = rng.uniform(-0.5, 0.5, 25 * sr).astype(np.float32)
    a = np.concatenate([intro, rng.uniform(-0.5, 0.5, 35 * sr).astype(np.float32)])
    b = np.concatenate([intro, rng.uniform(-0.5, 0.5, 35 * sr).astype(np.float32)])
    sf.write(tmp_path / "a.wav", a, sr)
    sf.write(tmp_path / "b.wav", b, sr)
    assert audio_fingerprint(tmp_path / "a.wav") != audio_fingerprint(tmp_path / "b.wav")
    # an extended version (same start, longer) differs through the duration
    sf.write(tmp_path / "c.wav", np.concatenate([a, a]), sr)
    assert audio_fingerprint(tmp_path / "c.wav") != audio_fingerprint(tmp_path / "a.wav")


def test_lossless_containers_with_the_same_samples_share_a_print(tmp_path):
    """The container is not hashed: WAV, FLAC, AIFF and ALAC of the same PCM are the same audio."""
    wav = make_audio(tmp_path / "x.wav", 25.0)
    others = [make_audio(tmp_path / name, 25.0) for name in ("x.flac", "x.aiff", "x.alac.m4a")]
    assert {audio_fingerprint(p) for p in others} == {audio_fingerprint(wav)}


def test_seconds_changes_the_window(tmp_path):
    p = make_audio(tmp_path / "a.flac", 8.0)
    assert audio_fingerprint(p, seconds=5) != audio_fingerprint(p, seconds=6)
    with pytest.raises(ValueError):
        audio_fingerprint(p, seconds=0)


def test_unreadable_files_raise_read_error(tmp_path):
    p = tmp_path / "empty.mp3"
    p.touch()
    with pytest.raises(ReadError, match="file is empty"):
        audio_fingerprint(p)


def test_mp3_without_xing_header_keeps_its_print_after_retagging(tmp_path):
    """Its length is estimated from the bitrate and moves when the ID3 tag grows (28.7 s -> 29.9 s
    for this file), so the print must not depend on it."""
    p = make_audio(tmp_path / "old vbr.mp3", 30.0, extra_ffmpeg=["-q:a", "0", "-write_xing", "0"])
    before = audio_fingerprint(p)
    retag(p)
    assert audio_fingerprint(p) == before
