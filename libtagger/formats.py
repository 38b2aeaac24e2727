"""The one table of audio formats: what libtagger finds, how it decodes each, where the genre goes.

Discovery (:mod:`libtagger.scan.discover`), decoding (:mod:`libtagger.audio.decode`) and tagging
(:mod:`libtagger.tags.storage`) all derive their extension sets from :data:`FORMATS`; no other
list of extensions exists in the package, so the three cannot disagree again (they did: ``.au``
was scanned but not taggable by design, while ``.m4b``, ``.spx``, ``.aifc``, ``.aac`` and ``.asf``
were decoded or taggable but never found).

**Adding a format** is one row here, plus, when the format can hold a genre, one storage class in
:mod:`libtagger.tags.storage` registered under the row's ``storage`` key in
:data:`libtagger.tags.storage.table.BY_KEY` (and its description in
:data:`STORAGE_NAMES`). ``tests/test_formats.py`` then makes a real file of the new row and checks
that it is discovered, decoded and tagged.

Rules the table follows:

* Every row is discovered. A format libtagger cannot decode gets no row (a file that is found but
  can never be analysed would only be noise in every report).
* A row whose format cannot hold a genre (``storage=None``) is still analysed and indexed; the
  scan reports it with the error "<ext> files cannot hold a genre tag", so the verdict is visible.
* ``decoder`` is the route chosen by extension. A ``"soundfile"`` file that libsndfile refuses
  (Ogg FLAC, an MP3 without a length header, ...) still falls back to ffmpeg by content; the
  ``"ffmpeg"`` rows skip libsndfile because it has no reader for them at all.

This module is data only (no imports beyond the standard library) so every layer may import it.

>>> format_for("Song.M4B").name
'MPEG-4 audiobook'
>>> format_for("notes.txt") is None
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

__all__ = ["Format", "FORMATS", "STORAGE_NAMES", "EXTENSIONS", "FFMPEG_EXTENSIONS",
           "TAGGABLE_EXTENSIONS", "format_for", "markdown_table", "content_format", "CONTENT_NAMES",
           "id3v2_length"]

Decoder = Literal["soundfile", "ffmpeg"]


@dataclass(frozen=True)
class Format:
    """One row: a file extension and how each layer handles it."""

    extension: str  #: lower case, with the dot: ``".flac"``
    name: str  #: what a person calls the container/codec
    decoder: Decoder  #: ``"soundfile"`` (libsndfile, in-process, seeks) or ``"ffmpeg"`` (subprocess)
    decoder_why: str  #: why ffmpeg (empty for soundfile rows)
    storage: str | None  #: key of the storage class in libtagger.tags.storage; None: no genre tag
    note: str  #: one line a user may want to know
    content: str  #: what such a file holds, as :func:`content_format` names it: ``"MP3"``

    @property
    def can_hold_tag(self) -> bool:
        """Whether libtagger can write a genre into this format."""
        return self.storage is not None


_NO_MP4 = "libsndfile has no MP4 reader"
_NO_ASF = "libsndfile has no ASF reader or WMA decoder"
_AIFF_NOTE = ("AIFF's own text chunks (NAME, AUTH, ANNO, COMT) have no genre field: "
              "players (ffprobe too) read the ID3 chunk")

#: Every format libtagger handles, one row per extension (grouped by family, not sorted).
FORMATS: tuple[Format, ...] = (
    Format(".mp3", "MP3", "soundfile", "", "id3-mp3",
           "one without a Xing/Info/VBRI header goes to ffmpeg: libsndfile only guesses its length; "
           "a person's APEv2 `Genre` counts like an ID3 one (`--overwrite` replaces it too)", content="MP3"),
    Format(".flac", "FLAC", "soundfile", "", "vorbis", "lossless", content="FLAC"),
    Format(".ogg", "Ogg Vorbis", "soundfile", "", "vorbis", "", content="Ogg"),
    Format(".oga", "Ogg audio (Vorbis, Opus or FLAC)", "soundfile", "", "vorbis",
           "Ogg FLAC is refused by libsndfile and decoded by ffmpeg", content="Ogg"),
    Format(".opus", "Ogg Opus", "soundfile", "", "vorbis", "decoded at 48 kHz, Opus's only rate", content="Ogg"),
    Format(".spx", "Ogg Speex", "ffmpeg", "libsndfile has no Speex decoder", "vorbis",
           "speech codec, 8-32 kHz", content="Ogg"),
    Format(".m4a", "MPEG-4 audio (AAC or ALAC)", "ffmpeg", _NO_MP4, "mp4",
           "an old numeric `gnre` atom is read, removed on write, put back by undo", content="MP4"),
    Format(".m4b", "MPEG-4 audiobook", "ffmpeg", _NO_MP4, "mp4", "the whole book is one track", content="MP4"),
    Format(".mp4", "MPEG-4 (AAC or ALAC)", "ffmpeg", _NO_MP4, "mp4",
           "only the first audio stream is analysed; video is ignored", content="MP4"),
    Format(".aac", "raw AAC (ADTS)", "ffmpeg", "libsndfile has no AAC decoder", None,
           "no tag block mutagen can write; length is estimated from the bitrate", content="AAC"),
    Format(".wav", "WAV", "soundfile", "", "id3-wave",
           "written to both (ffprobe reads only INFO); a genre in INFO alone counts as "
           "a person's; every other chunk keeps its bytes; RF64 (over 4 GiB) is refused", content="WAV"),
    Format(".aiff", "AIFF", "soundfile", "", "id3-aiff", _AIFF_NOTE, content="AIFF"),
    Format(".aif", "AIFF", "soundfile", "", "id3-aiff", _AIFF_NOTE, content="AIFF"),
    Format(".aifc", "AIFF-C", "soundfile", "", "id3-aiff",
           "uncompressed or float samples", content="AIFF"),
    Format(".au", "Sun/NeXT AU", "soundfile", "", None,
           "no tag block (GTZAN's clips are .au): analysed, reported as an error", content="AU"),
    Format(".wma", "Windows Media Audio", "ffmpeg", _NO_ASF, "asf",
           "ffmpeg's WMA decoder is up to one 2048-sample frame (46 ms) off", content="WMA"),
    Format(".asf", "ASF (Windows Media)", "ffmpeg", _NO_ASF, "asf", "as .wma", content="WMA"),
)

#: Storage key -> where that storage class keeps the genre (for people; the code is in tags.storage).
STORAGE_NAMES: dict[str, str] = {
    "id3-mp3": "ID3v2 `TCON`",
    "id3-wave": "ID3v2 `TCON` (ID3 chunk) and RIFF INFO `IGNR`",
    "id3-aiff": "ID3v2 `TCON` (ID3 chunk)",
    "vorbis": "Vorbis comment `GENRE`",
    "mp4": "MP4 `©gen`",
    "asf": "ASF `WM/Genre`",
}

_BY_EXTENSION: dict[str, Format] = {row.extension: row for row in FORMATS}

#: Every extension discovery looks for (lower case, with the dot).
EXTENSIONS: frozenset[str] = frozenset(_BY_EXTENSION)
#: Extensions decoded by ffmpeg without asking libsndfile first.
FFMPEG_EXTENSIONS: frozenset[str] = frozenset(r.extension for r in FORMATS if r.decoder == "ffmpeg")
#: Extensions whose genre libtagger can read and write.
TAGGABLE_EXTENSIONS: frozenset[str] = frozenset(r.extension for r in FORMATS if r.can_hold_tag)


def format_for(path: str | bytes | os.PathLike) -> Format | None:
    """The row for ``path``'s extension (any case), or None when libtagger does not handle it."""
    return _BY_EXTENSION.get(os.path.splitext(os.fsdecode(path))[1].lower())


#: Leading bytes of the containers and streams :func:`content_format` knows: (offset, magic, name).
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"fLaC", "FLAC"), (0, b"OggS", "Ogg"), (0, b"RF64", "WAV"), (4, b"ftyp", "MP4"),
    (0, b".snd", "AU"), (0, bytes.fromhex("3026b2758e66cf11"), "WMA"), (0, b"MAC ", "APE"),
    (0, b"wvpk", "WavPack"), (0, b"MPCK", "Musepack"), (0, b"MP+", "Musepack"), (0, b"ADIF", "AAC"),
)

#: What a reason calls each name :func:`content_format` gives.
CONTENT_NAMES: dict[str, str] = {
    "MP3": "MP3", "AAC": "raw AAC (ADTS)", "FLAC": "FLAC", "Ogg": "Ogg", "WAV": "WAV", "AIFF": "AIFF",
    "MP4": "MPEG-4", "AU": "Sun/NeXT AU", "WMA": "Windows Media (ASF)", "APE": "Monkey's Audio",
    "WavPack": "WavPack", "Musepack": "Musepack",
}


def content_format(fd: int) -> str | None:
    """What the file open as ``fd`` holds, from its first bytes; None when they are no audio we know.

    The extension can lie (a FLAC renamed .mp3, an MP4 saved as .mp3); the magic bytes do not.
    ID3v2 tags in front are skipped (FLAC and AAC files carry them too), and an MPEG frame sync
    is MP3 unless its layer bits are 0, which only ADTS AAC uses. A few small reads.

    Returns
    -------
    name : str or None
        A key of :data:`CONTENT_NAMES`: ``"MP3"``, ``"AAC"``, ``"FLAC"``, ``"Ogg"``, ``"WAV"``,
        ``"AIFF"``, ``"MP4"``, ``"AU"``, ``"WMA"``, ``"APE"``, ``"WavPack"`` or ``"Musepack"``.
    """
    at = 0
    for _ in range(4):  # an ID3v2 tag, sometimes a second one after it
        head = os.pread(fd, 16, at)
        if head[:3] != b"ID3" or len(head) < 10:
            break
        at += id3v2_length(head)
    for offset, magic, name in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "AAC" if head[1] & 0x06 == 0 else "MP3"
    return None


def id3v2_length(header: bytes) -> int:
    """Bytes an ID3v2 tag takes in the file, from its 10-byte header (or its ``3DI`` footer):
    the header, the body (a syncsafe size, 7 bits a byte) and the footer when its flag is set."""
    size = 0
    for byte in header[6:10]:
        size = size << 7 | byte & 0x7F
    return 10 + size + (10 if header[5] & 0x10 else 0)


def markdown_table() -> str:
    """The table as Markdown, for the README's "Formats" section (a test keeps the two equal)."""
    lines = ["| Extension | Format | Decoded by | Genre stored in | Note |",
             "| --- | --- | --- | --- | --- |"]
    for r in FORMATS:
        decoder = f"ffmpeg ({r.decoder_why})" if r.decoder == "ffmpeg" else "soundfile"
        genre = STORAGE_NAMES[r.storage] if r.storage else "cannot hold a genre tag"
        lines.append(f"| `{r.extension}` | {r.name} | {decoder} | {genre} | {r.note} |")
    return "\n".join(lines) + "\n"
