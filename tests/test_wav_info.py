"""A WAV's genre in the RIFF INFO chunk (``IGNR``), the one ffprobe and Windows read.

Real WAVs made here: by soundfile (no INFO), by ffmpeg (INFO before ``data``, a ``bext``
chunk, an odd-length INFO string), and by hand (``cue `` and ``LIST``/``adtl`` chunks, an
odd-sized chunk with its pad byte, INFO after ``data``). The chunks are parsed here with a
parser of the test's own (not libtagger's), so "every other chunk keeps its bytes" is checked
independently; ffprobe is the real program players use to read the genre.
"""

from __future__ import annotations

import json
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from conftest import music_like, require_ffmpeg
from libtagger.cli import app
from libtagger.errors import ReadError, WriteError
from libtagger.scan.policy import decide
from libtagger.tags import riff_info
from libtagger.tags import storage as tags
from scan_harness import require_seed_model
from tags_harness import CHILD  # the child that kills itself at call N of a write

GENRE = "Hip-Hop"
SECONDS = 5.0  # a scan needs at least 3 s


# ---------------------------------------------------------------- the test's own RIFF parser

def chunks(path: Path) -> list[tuple[bytes, bytes]]:
    """``(chunk id, body)`` of every top-level chunk; asserts the RIFF size field is exact."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8, "RIFF size field"
    out, pos = [], 12
    while pos < len(data):
        cid, size = struct.unpack("<4sI", data[pos:pos + 8])
        assert pos + 8 + size <= len(data), (cid, pos, size)
        out.append((cid, data[pos + 8:pos + 8 + size]))
        if size & 1:
            assert data[pos + 8 + size] == 0, "pad byte"
        pos += 8 + size + (size & 1)
    assert pos == len(data)
    return out


def is_info(chunk: tuple[bytes, bytes]) -> bool:
    return chunk[0] == b"LIST" and chunk[1][:4] == b"INFO"


def info_subchunks(path: Path) -> list[tuple[bytes, bytes]]:
    """``(field id, raw value bytes)`` of the INFO chunk, in order; [] without one."""
    found = [body for c in chunks(path) if is_info(c) for body in [c[1]]]
    assert len(found) <= 1
    if not found:
        return []
    body, out, pos = found[0], [], 4
    while pos + 8 <= len(body):
        fid, size = struct.unpack("<4sI", body[pos:pos + 8])
        out.append((fid, body[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def untouched_chunks(path: Path) -> list[tuple[bytes, bytes]]:
    """Every chunk a genre write must leave alone: all but LIST/INFO and the ID3 chunk."""
    return [c for c in chunks(path) if not is_info(c) and c[0].lower() != b"id3 "]


def ffprobe_genre(path: Path) -> str:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags=genre",
                          "-of", "default=nw=1:nk=1", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


# ---------------------------------------------------------------- real WAVs of every shape

def riff_chunk(cid: bytes, body: bytes) -> bytes:
    return struct.pack("<4sI", cid, len(body)) + body + b"\x00" * (len(body) & 1)


def info_field(fid: bytes, text: str) -> bytes:
    return riff_chunk(fid, text.encode("utf-8") + b"\x00")


def append_chunks(path: Path, *raw: bytes) -> None:
    data = path.read_bytes() + b"".join(raw)
    path.write_bytes(data[:4] + struct.pack("<I", len(data) - 8) + data[8:])


def make_wav(path: Path, kind: str, seed: int = 0) -> Path:
    """One real WAV of the shape ``kind`` (see the module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    music = music_like(SECONDS, seed=seed)
    if kind == "soundfile":  # fmt + data only
        sf.write(path, music, 44100, subtype="PCM_16")
    elif kind in ("ffmpeg", "person"):
        src = path.with_name(path.name + ".src.wav")
        sf.write(src, music, 44100, subtype="PCM_16")
        meta = ["-metadata", "title=Abcd", "-metadata", "comment=hi", "-write_bext", "1"]
        if kind == "person":
            meta += ["-metadata", "genre=Bebop"]  # a person's genre, in INFO only (no ID3 chunk)
        subprocess.run([require_ffmpeg(), "-v", "error", "-y", "-i", str(src), "-c:a", "pcm_s16le",
                        *meta, str(path)], check=True)
        src.unlink()
    elif kind == "handmade":  # odd mono 8-bit data (pad byte), then cue, adtl, an odd chunk, INFO
        sf.write(path, music_like(SECONDS + 0.1, seed=seed)[:220501, :1], 44100, subtype="PCM_U8")
        cue = struct.pack("<I", 1) + struct.pack("<II4sIII", 1, 0, b"data", 0, 0, 22050)
        adtl = b"adtl" + riff_chunk(b"labl", struct.pack("<I", 1) + b"verse\x00")
        info = b"INFO" + info_field(b"INAM", "Abcd") + info_field(b"IART", "Ünïcode Artist")
        append_chunks(path, riff_chunk(b"cue ", cue), riff_chunk(b"LIST", adtl),
                      riff_chunk(b"junk", b"odd"), riff_chunk(b"LIST", info))
    else:
        raise ValueError(kind)
    return path


KINDS = ["soundfile", "ffmpeg", "handmade"]


def test_sources_have_the_shapes_they_claim(tmp_path: Path) -> None:
    ids = {k: [c[0] for c in chunks(make_wav(tmp_path / f"{k}.wav", k))] for k in KINDS + ["person"]}
    assert ids["soundfile"] == [b"fmt ", b"data"]
    assert ids["ffmpeg"] == [b"fmt ", b"bext", b"LIST", b"data"]
    assert ids["handmade"] == [b"fmt ", b"data", b"cue ", b"LIST", b"junk", b"LIST"]
    sizes = {cid: len(body) for cid, body in chunks(tmp_path / "handmade.wav")}
    assert sizes[b"data"] % 2 == 1 and sizes[b"junk"] == 3  # odd chunks, with their pad bytes
    assert (b"INAM", b"Abcd\x00") in info_subchunks(tmp_path / "ffmpeg.wav")  # odd length: padded
    assert riff_info.read_info(tmp_path / "person.wav")["IGNR"] == "Bebop"
    assert riff_info.read_info(tmp_path / "handmade.wav") == {"INAM": "Abcd", "IART": "Ünïcode Artist"}


# ---------------------------------------------------------------- a write, byte by byte

@pytest.mark.parametrize("kind", KINDS)
def test_write_sets_info_and_id3_and_leaves_every_other_chunk(tmp_path: Path, kind: str) -> None:
    song = make_wav(tmp_path / "song.wav", kind)
    before_chunks, before_info = untouched_chunks(song), info_subchunks(song)
    before_audio, _ = sf.read(song, dtype="int16" if kind != "handmade" else "float32")
    assert ffprobe_genre(song) == ""

    tags.write_genre(song, GENRE)

    assert ffprobe_genre(song) == GENRE  # what players read
    assert tags.read_genres(song) == [GENRE] and tags.written_by_libtagger(song)
    import mutagen
    assert [str(v) for v in mutagen.File(song).tags["TCON"].text] == [GENRE]  # the ID3 chunk too
    # every chunk but INFO and ID3: same ids, same order, same bytes (fmt, data, bext, cue, ...)
    assert untouched_chunks(song) == before_chunks
    # INFO: every other field's bytes, in their order, and IGNR (NUL-terminated) at the end
    after_info = info_subchunks(song)
    assert after_info == before_info + [(b"IGNR", b"Hip-Hop\x00")]
    after_audio, _ = sf.read(song, dtype="int16" if kind != "handmade" else "float32")
    assert np.array_equal(after_audio, before_audio)
    # a second write of the same genre leaves the file alone
    data = song.read_bytes()
    tags.write_genre(song, GENRE)
    assert song.read_bytes() == data


@pytest.mark.parametrize("kind", KINDS + ["person"])
def test_restore_gives_back_the_exact_bytes(tmp_path: Path, kind: str) -> None:
    song = make_wav(tmp_path / "song.wav", kind)
    original = song.read_bytes()
    journaled = json.loads(json.dumps(tags.snapshot(song).to_json()))  # as the journal stores it
    assert (journaled["riff_info"] is None) == (kind == "soundfile")  # "there was no LIST/INFO chunk"
    snap = tags.Snapshot.from_json(journaled)
    tags.write_genre(song, "Jazz")
    assert riff_info.read_info(song)["IGNR"] == "Jazz"
    tags.restore(song, snap)
    assert song.read_bytes() == original


def test_a_journal_from_before_riff_info_leaves_the_info_chunk_alone(tmp_path: Path) -> None:
    """Journals of a libtagger that did not know INFO lack ``riff_info``: undo leaves INFO as it is."""
    song = make_wav(tmp_path / "song.wav", "person")
    journaled = tags.snapshot(song).to_json()
    del journaled["riff_info"]
    snap = tags.Snapshot.from_json(journaled)
    assert snap.to_json() == journaled  # still no riff_info: absent, not None
    tags.write_genre(song, "Jazz")
    tags.restore(song, snap)
    assert tags.snapshot(song).genres == [] and riff_info.read_info(song)["IGNR"] == "Jazz"


def test_an_existing_ignr_is_replaced_in_place(tmp_path: Path) -> None:
    song = make_wav(tmp_path / "song.wav", "person")
    fields = [f for f, _ in info_subchunks(song)]
    tags.write_genre(song, GENRE)
    after = info_subchunks(song)
    assert [f for f, _ in after] == fields  # same fields, same order: IGNR kept its place
    assert dict(after)[b"IGNR"] == b"Hip-Hop\x00" and dict(after)[b"INAM"] == b"Abcd\x00"
    assert ffprobe_genre(song) == GENRE


# ---------------------------------------------------------------- a person's genre in INFO

def test_a_genre_in_info_only_is_a_persons_genre(tmp_path: Path) -> None:
    song = make_wav(tmp_path / "song.wav", "person")
    assert tags.read_genres(song) == ["Bebop"] and not tags.written_by_libtagger(song)
    assert tags.snapshot(song).genres == []  # the ID3 chunk holds none: undo will not invent one
    assert decide(genre_label="jazz", confidence=0.9, current=["Bebop"], ours=False).status == "kept"


def test_info_changed_by_a_person_after_libtagger_wrote_is_theirs(tmp_path: Path) -> None:
    song = make_wav(tmp_path / "song.wav", "soundfile")
    tags.write_genre(song, "Jazz")
    # a person (another tool) edits only the INFO genre afterwards
    body = riff_info.with_field(riff_info.read_info_chunk(song), "IGNR", "Bebop")
    riff_info.write_info_chunk(song, body)
    assert ffprobe_genre(song) == "Bebop"
    assert tags.read_genres(song) == ["Bebop"] and not tags.written_by_libtagger(song)
    assert not tags.read_tag_state(song).ours  # what a scan decides with


# ---------------------------------------------------------------- refusals

def test_rf64_is_refused_clearly_and_left_alone(tmp_path: Path) -> None:
    song = make_wav(tmp_path / "song.wav", "soundfile")
    data = bytearray(song.read_bytes())
    data[:4] = b"RF64"
    song.write_bytes(bytes(data))
    with pytest.raises(ReadError, match="RF64"):
        tags.read_genres(song)
    with pytest.raises(WriteError, match="RF64"):
        tags.write_genre(song, GENRE)
    assert song.read_bytes() == bytes(data)


@pytest.mark.parametrize("damage", ["truncated data", "two INFO chunks", "stray bytes"])
def test_malformed_files_are_refused_and_left_alone(tmp_path: Path, damage: str) -> None:
    song = make_wav(tmp_path / "song.wav", "handmade")
    if damage == "truncated data":  # the data chunk says more than the file holds
        data = song.read_bytes()
        song.write_bytes(data[:4] + struct.pack("<I", 2 * len(data)) + data[8:len(data) // 2])
        reason = "runs past the end"
    elif damage == "two INFO chunks":
        append_chunks(song, riff_chunk(b"LIST", b"INFO" + info_field(b"IGNR", "Rock")))
        reason = "2 LIST/INFO chunks"
    else:
        append_chunks(song, b"\x01\x02\x03")
        reason = "stray bytes"
    data = song.read_bytes()
    with pytest.raises(WriteError, match=reason) as err:
        tags.write_genre(song, GENRE)
    assert "b'" not in err.value.reason  # the user reads 'data', not Python's b'data'
    assert song.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["song.wav"]


def test_a_missing_last_pad_byte_is_tolerated_and_added(tmp_path: Path) -> None:
    song = tmp_path / "song.wav"
    sf.write(song, music_like(SECONDS + 0.1)[:220501, :1], 44100, subtype="PCM_U8")  # odd data chunk
    data = song.read_bytes()
    assert struct.unpack("<I", data[40:44])[0] % 2 == 1 and data[-1] == 0  # soundfile wrote the pad: drop it
    song.write_bytes(data[:4] + struct.pack("<I", len(data) - 9) + data[8:-1])
    before, _ = sf.read(song, dtype="float32")
    tags.write_genre(song, GENRE)
    ids = [c[0] for c in chunks(song)]  # parses, pad byte now present, RIFF size exact
    assert ids[:2] == [b"fmt ", b"data"] and b"LIST" in ids
    assert ffprobe_genre(song) == GENRE
    assert np.array_equal(sf.read(song, dtype="float32")[0], before)


def test_bytes_after_the_riff_data_stay_after_it(tmp_path: Path) -> None:
    """Bytes some tools leave after the RIFF data are kept there, outside the RIFF.

    (Not an ID3v1 trailer: mutagen reads one as part of the ID3 tag, so the read-back check
    refuses that write, with or without INFO.)
    """
    song = make_wav(tmp_path / "song.wav", "soundfile")
    trailer = b"bytes after the RIFF data"
    song.write_bytes(song.read_bytes() + trailer)
    tags.write_genre(song, GENRE)
    data = song.read_bytes()
    assert data.endswith(trailer)
    riff_end = 8 + struct.unpack("<I", data[4:8])[0]
    assert riff_end == len(data) - len(trailer)
    assert riff_info.read_info(song)["IGNR"] == GENRE and ffprobe_genre(song) == GENRE


# ---------------------------------------------------------------- crash safety




def run_child(path: Path, kill_at: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, str(path), GENRE, str(kill_at)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["ffmpeg", "handmade"])  # INFO rewritten before data / after it
def test_sigkill_at_any_point_leaves_old_or_new_file(tmp_path: Path, kind: str) -> None:
    """The kill approach of tests/test_tag_crash.py: a profiling hook in a child, no hook in libtagger."""
    src = make_wav(tmp_path / "src" / "song.wav", kind)
    original = src.read_bytes()
    dry = tmp_path / "dry"
    dry.mkdir()
    shutil.copy(src, dry / "song.wav")
    done = run_child(dry / "song.wav", -1)
    assert done.returncode == 0, done.stderr
    total, replace_at = map(int, done.stdout.split())
    written = (dry / "song.wav").read_bytes()
    assert written != original and riff_info.read_info(dry / "song.wav")["IGNR"] == GENRE
    rng = np.random.default_rng(7)
    trials = 20
    points = {int(rng.integers(i * total // trials, (i + 1) * total // trials) + 1) for i in range(trials)}
    # around the rename, densely: the call count wobbles by a few between runs (random temp name)
    points |= set(range(replace_at - 12, min(total, replace_at + 12)))
    seen = {"original": 0, "written": 0}
    for n in sorted(points):
        folder = tmp_path / f"kill{n}"
        folder.mkdir()
        shutil.copy(src, folder / "song.wav")
        done = run_child(folder / "song.wav", n)
        assert done.returncode == -signal.SIGKILL, (n, done.returncode, done.stderr[-500:])
        data = (folder / "song.wav").read_bytes()
        assert data in (original, written), f"kill at call {n}: neither the original nor the written file"
        seen["original" if data == original else "written"] += 1
        leftovers = {p.name for p in folder.iterdir()} - {"song.wav"}
        assert {p.name for p in tags.remove_stale_temporaries(folder)} == leftovers
        shutil.rmtree(folder)
    assert seen["original"] > 0 and seen["written"] > 0, seen


# ---------------------------------------------------------------- end to end: scan, ffprobe, undo

def test_scan_writes_info_genre_ffprobe_reads_it_and_undo_restores_bytes(tmp_path: Path) -> None:
    require_seed_model()
    lib = tmp_path / "Music"
    for i, kind in enumerate(KINDS + ["person"]):
        make_wav(lib / f"{kind}.wav", kind, seed=i)
    originals = {p.name: p.read_bytes() for p in lib.iterdir()}
    index = tmp_path / "index.db"
    runner = CliRunner()
    result = runner.invoke(app, ["scan", str(lib), "--model", "seed", "--min-confidence", "0",
                                 "--report", "json", "--index", str(index)])
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    for kind in KINDS:
        song = lib / f"{kind}.wav"
        assert rows[song.name]["status"] == "tagged", rows[song.name]
        assert ffprobe_genre(song) == rows[song.name]["genre"]
    # the person's INFO genre is kept under the default policy, the file untouched
    assert rows["person.wav"]["status"] == "kept" and rows["person.wav"]["previous_genre"] == "Bebop"
    assert (lib / "person.wav").read_bytes() == originals["person.wav"]

    runs = json.loads(runner.invoke(app, ["runs", "--format", "json", "--index", str(index)]).stdout)
    result = runner.invoke(app, ["undo", "--run", str(runs[0]["id"]), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_bytes() for p in lib.iterdir()} == originals
    assert ffprobe_genre(lib / "soundfile.wav") == ""


# ---------------------------------------------------------------- INFO's artist and album for the index

def test_info_artist_and_album_fill_what_id3_lacks(tmp_path: Path) -> None:
    import mutagen
    from mutagen.id3 import TPE1

    song = make_wav(tmp_path / "song.wav", "person")
    riff_info.write_info_chunk(song, riff_info.with_field(
        riff_info.with_field(riff_info.read_info_chunk(song), "IART", "Info Artist"), "IPRD", "Info Album"))
    fields = tags.read_library_fields(song)
    assert (fields.person_genres, fields.artist, fields.album) == (["Bebop"], "Info Artist", "Info Album")
    f = mutagen.File(song)
    f.add_tags()
    f.tags.add(TPE1(encoding=3, text=["ID3 Artist"]))
    f.save()
    fields = tags.read_library_fields(song)
    assert (fields.artist, fields.album) == ("ID3 Artist", "Info Album")  # ID3 first, INFO fills
    state = tags.read_tag_state(make_wav(tmp_path / "ours.wav", "soundfile"))
    assert state.fields.person_genres is None and state.genres == []
    tags.write_genre(tmp_path / "ours.wav", GENRE)
    state = tags.read_tag_state(tmp_path / "ours.wav")
    assert state.ours and state.genres == [GENRE] and state.fields.person_genres is None


# ---------------------------------------------------------------- INFO bodies of odd shapes

@pytest.mark.parametrize("body, expected", [
    # a last field without its pad byte: the pad is added before the new field
    (b"INFO" + b"INAM\x03\x00\x00\x00Abc",
     b"INFO" + b"INAM\x03\x00\x00\x00Abc\x00" + b"IGNR\x08\x00\x00\x00Hip-Hop\x00"),
    # bytes too short to be a field stay last, after the new field
    (b"INFO" + b"INAM\x04\x00\x00\x00Abc\x00" + b"\x01\x02\x03",
     b"INFO" + b"INAM\x04\x00\x00\x00Abc\x00" + b"IGNR\x08\x00\x00\x00Hip-Hop\x00" + b"\x01\x02\x03"),
    # two IGNR fields: the first is replaced where it is, the repeat dropped
    (b"INFO" + b"IGNR\x05\x00\x00\x00Rock\x00\x00" + b"INAM\x04\x00\x00\x00Abc\x00" + b"IGNR\x04\x00\x00\x00Pop\x00",
     b"INFO" + b"IGNR\x08\x00\x00\x00Hip-Hop\x00" + b"INAM\x04\x00\x00\x00Abc\x00"),
    # an IGNR without a NUL (some writers): replaced by a terminated one
    (b"INFO" + b"IGNR\x04\x00\x00\x00Rock", b"INFO" + b"IGNR\x08\x00\x00\x00Hip-Hop\x00"),
])
def test_with_field_on_odd_info_bodies(body: bytes, expected: bytes) -> None:
    out = riff_info.with_field(body, "IGNR", GENRE)
    assert out == expected
    assert riff_info.with_field(out, "IGNR", GENRE) == out  # writing it again changes nothing
    assert riff_info.info_fields(out)["IGNR"] == GENRE


def test_a_damaged_info_body_is_refused() -> None:
    with pytest.raises(riff_info.RiffError, match="runs past"):
        riff_info.with_field(b"INFO" + b"INAM\xff\x00\x00\x00Abc\x00", "IGNR", GENRE)


def test_a_riff_size_that_left_out_the_last_pad_byte_is_fixed(tmp_path: Path) -> None:
    song = tmp_path / "song.wav"
    sf.write(song, music_like(SECONDS + 0.1)[:220501, :1], 44100, subtype="PCM_U8")  # odd data chunk
    data = song.read_bytes()
    song.write_bytes(data[:4] + struct.pack("<I", len(data) - 9) + data[8:])  # pad present, not counted
    tags.write_genre(song, GENRE)
    assert [c[0] for c in chunks(song)] == [b"fmt ", b"data", b"id3 ", b"LIST"]  # RIFF size exact
    assert ffprobe_genre(song) == GENRE
