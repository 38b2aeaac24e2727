"""Helpers for the tests of genre writes (tests/test_tags.py, tests/test_tag_crash.py,
tests/test_wav_info.py, tests/test_groups.py and tests/test_library_context.py): tags set and read
back with mutagen and audio decoded by soundfile or ffmpeg, independently of libtagger, and the
child process in which a write is killed.

* :data:`FORMATS`: test file name (``song.mp3``...) -> libtagger's tag format for it (not
  conftest's FORMATS, which maps an extension to the ffmpeg arguments that encode it);
* :func:`add_other_tags` and :func:`other_tags`: a title, an artist and a PNG cover (:data:`TITLE`,
  :data:`ARTIST`, :data:`PNG`) added in a file's native tag format, and everything in its tags but
  the genre and libtagger's marker, to check that a genre write changed nothing else;
* :func:`decode`: a file's decoded samples, to check that a write left the audio alone;
* :func:`tag`: artist, album artist, album and the compilation flag, set as taggers do in the
  format's own keys;
* :data:`CHILD`: the ``python -c`` program that writes a genre and kills itself with SIGKILL at
  call N of the write (``sys.setprofile``), or measures the write's calls (N = -1), or writes on
  "go" (N = -2).
"""

from __future__ import annotations

import base64
import struct
import subprocess
from pathlib import Path

import mutagen
import numpy as np
import soundfile as sf
from mutagen.asf import ASF, ASFBoolAttribute, ASFByteArrayAttribute
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, TALB, TCMP, TIT2, TPE1, TPE2
from mutagen.mp4 import MP4, MP4Cover

#: test file name -> libtagger tag format
FORMATS = {
    "song.mp3": "id3", "song.wav": "id3", "song.aiff": "id3",
    "song.flac": "vorbis", "song.ogg": "vorbis", "song.opus": "vorbis",
    "song.m4a": "mp4", "song.alac.m4a": "mp4", "song.wma": "asf",
}
# A real (tiny) PNG: 1x1 pixel.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
TITLE, ARTIST = "Ünïcode Title", "Some Artist"


def add_other_tags(path: Path) -> None:
    """Give ``path`` a title, an artist and a PNG cover in its native tag format."""
    kind = FORMATS[path.name]
    if kind == "id3":
        f = mutagen.File(path)
        if f.tags is None:
            f.add_tags()
        f.tags.add(TIT2(encoding=3, text=[TITLE]))
        f.tags.add(TPE1(encoding=3, text=[ARTIST]))
        f.tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=PNG))
        f.save()
    elif kind == "vorbis":
        f = mutagen.File(path)
        f.tags["TITLE"], f.tags["ARTIST"] = [TITLE], [ARTIST]
        pic = Picture()
        pic.type, pic.mime, pic.desc, pic.data = 3, "image/png", "cover", PNG
        if isinstance(f, FLAC):
            f.add_picture(pic)
        else:
            f.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(pic.write()).decode("ascii")]
        f.save()
    elif kind == "mp4":
        f = MP4(path)
        f.tags["\xa9nam"], f.tags["\xa9ART"] = [TITLE], [ARTIST]
        f.tags["covr"] = [MP4Cover(PNG, imageformat=MP4Cover.FORMAT_PNG)]
        f.save()
    else:
        f = ASF(path)
        f.tags["Title"], f.tags["Author"] = [TITLE], [ARTIST]
        f.tags["WM/Picture"] = [ASFByteArrayAttribute(asf_picture(PNG))]
        f.save()


def asf_picture(data: bytes) -> bytes:
    """The WM/Picture byte layout: type, size, UTF-16 mime and description, data."""
    text = lambda s: s.encode("utf-16-le") + b"\x00\x00"  # noqa: E731
    return struct.pack("<bI", 3, len(data)) + text("image/png") + text("cover") + data


def other_tags(path: Path) -> dict:
    """Everything in the tags except the genre and libtagger's marker, read with mutagen."""
    kind = FORMATS.get(path.name) or FORMATS.get("song" + "".join(path.suffixes[-2:]))
    f = mutagen.File(path)
    if kind == "id3":
        return {k: repr(v) for k, v in (f.tags or {}).items()
                if k not in ("TCON", "TXXX:LIBTAGGER_GENRE")}
    if kind == "vorbis":
        out = {"comments": [(k.lower(), v) for k, v in f.tags
                            if k.lower() not in ("genre", "libtagger_genre")]}
        if isinstance(f, FLAC):
            out["pictures"] = [(p.type, p.mime, p.data) for p in f.pictures]
        return out
    if kind == "mp4":
        return {k: repr(v) for k, v in f.tags.items() if k not in ("\xa9gen", "----:org.libtagger:genre")}
    return {k: repr(v) for k, v in f.tags.items() if k not in ("WM/Genre", "LIBTAGGER/Genre")}


def decode(path: Path) -> np.ndarray:
    """Decoded samples: soundfile for formats libsndfile reads exactly, ffmpeg for the rest."""
    if path.suffix in (".wav", ".flac", ".aiff", ".ogg"):
        data, _ = sf.read(path, dtype="float32", always_2d=True)
        return data
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0",
                          "-f", "f32le", "-acodec", "pcm_f32le", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(out, dtype=np.float32)


ID3_FORMATS = (".mp3", ".wav", ".aiff")
#: The MP4 keys of the fields (the others are spelled by format below).
MP4_KEYS = {"artist": "\xa9ART", "albumartist": "aART", "album": "\xa9alb"}
VORBIS_KEYS = {"artist": "ARTIST", "albumartist": "ALBUMARTIST", "album": "ALBUM"}
ASF_KEYS = {"artist": "Author", "albumartist": "WM/AlbumArtist", "album": "WM/AlbumTitle"}
ID3_FRAMES = {"artist": TPE1, "albumartist": TPE2, "album": TALB}


def tag(path: Path, *, compilation: str | None = None, **texts: str) -> Path:
    """Set artist/albumartist/album and the compilation flag as taggers do, in the format's own keys."""
    ext = ".alac.m4a" if path.name.endswith(".alac.m4a") else path.suffix.lower()
    f = MP4(path) if ext.endswith(".m4a") else ASF(path) if ext == ".wma" else mutagen.File(path)
    if f.tags is None:
        f.add_tags()
    if ext in ID3_FORMATS:
        for name, value in texts.items():
            f.tags.add(ID3_FRAMES[name](encoding=3, text=[value]))
        if compilation is not None:
            f.tags.add(TCMP(encoding=3, text=[compilation]))
    elif ext.endswith(".m4a"):
        f.tags.update({MP4_KEYS[n]: [v] for n, v in texts.items()})
        if compilation is not None:
            f.tags["cpil"] = compilation == "1"
    elif ext == ".wma":
        f.tags.update({ASF_KEYS[n]: [v] for n, v in texts.items()})
        if compilation is not None:
            f.tags["WM/IsCompilation"] = [ASFBoolAttribute(compilation == "1")]
    else:
        f.tags.update({VORBIS_KEYS[n]: [v] for n, v in texts.items()})
        if compilation is not None:
            f.tags["COMPILATION"] = [compilation]
    f.save()
    return path


#: Run as ``python -c CHILD PATH GENRE N``: writes GENRE on PATH and kills itself at call N of the
#: write; N = -1 prints the write's number of calls and the call of its os.replace; N = -2 prints
#: "ready" and writes, without the hook, once a line arrives on stdin.
CHILD = r"""
import os, signal, sys
from libtagger.tags import storage as tags
path, genre, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
count = 0
replace_at = -1
def hook(frame, event, arg):
    global count, replace_at
    count += 1
    if event == "c_call" and arg is os.replace:
        replace_at = count
    if count == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
if kill_at == -2:  # timed mode: say we are ready, wait for "go", write without a hook
    print("ready", flush=True)
    sys.stdin.readline()
    tags.write_genre(path, genre)
    sys.exit(0)
sys.setprofile(hook)
tags.write_genre(path, genre)
sys.setprofile(None)
print(count, replace_at)
"""
