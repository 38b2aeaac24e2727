"""Which storage class serves which file: the ``storage`` key of the formats table, and opening.

A row of :data:`libtagger.formats.FORMATS` names its storage class by key (``id3-mp3``,
``vorbis``, ...); :data:`BY_KEY` maps each key to its one instance. A new tag format is one
class (or one :class:`~libtagger.tags.storage.keyed.KeyedStorage` instance) registered here.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import mutagen
from mutagen.aiff import AIFF

from libtagger.errors import ReadError, WriteError
from libtagger.formats import CONTENT_NAMES, FORMATS, content_format, format_for
from libtagger.tags import riff_info
from libtagger.tags.safe_write import find_oserror
from libtagger.tags.storage.base import Storage
from libtagger.tags.storage.id3 import ID3Storage, MP3Storage
from libtagger.tags.storage.keyed import ASF_STORAGE, VORBIS
from libtagger.tags.storage.mp4 import MP4Storage
from libtagger.tags.storage.wave import WaveStorage

#: The storage classes by the key a row of :data:`libtagger.formats.FORMATS` names them with.
BY_KEY: dict[str, Storage] = {
    "id3-mp3": MP3Storage(), "id3-wave": WaveStorage(), "id3-aiff": ID3Storage(AIFF),
    "vorbis": VORBIS, "mp4": MP4Storage(), "asf": ASF_STORAGE,
}

#: What each storage can write its tag into, by content (:func:`libtagger.formats.content_format`).
#: :func:`storage_for` gives a mislabelled file its content's storage, and :func:`open_tags`
#: refuses a storage that cannot hold the content before mutagen opens it: mutagen's MP3 class
#: finds a stray frame sync inside an MP4 named .mp3 and prepends an ID3 tag, which moves the
#: audio away from the offsets in the MP4's index (no sound is left). The Vorbis storage opens
#: by content, so FLAC and Ogg of any codec may share its extensions.
HOLDS: dict[str, frozenset[str]] = {
    "id3-mp3": frozenset({"MP3"}), "id3-wave": frozenset({"WAV"}), "id3-aiff": frozenset({"AIFF"}),
    "vorbis": frozenset({"FLAC", "Ogg"}), "mp4": frozenset({"MP4"}), "asf": frozenset({"WMA"}),
}

#: Each storage instance's key (by identity: one instance per key).
_KEY_OF: dict[int, str] = {id(storage): key for key, storage in BY_KEY.items()}
#: The storage that holds each content: where a mislabelled file's tag goes.
_BY_CONTENT: dict[str, Storage] = {content: BY_KEY[key] for key, held in HOLDS.items() for content in held}

#: Keys a format row may name in its ``storage`` column.
STORAGE_KEYS: frozenset[str] = frozenset(BY_KEY)

# Extension -> storage, from the formats table (a row naming an unknown key fails the import).
_STORAGES: dict[str, Storage] = {r.extension: BY_KEY[r.storage] for r in FORMATS if r.storage}

#: File extensions (lower case, with the dot) whose genre can be read and written.
TAGGABLE_EXTENSIONS: frozenset[str] = frozenset(_STORAGES)


def _ext(path: Path) -> str:
    return Path(path).suffix.lower()


def storage_for(path: Path) -> Storage | None:
    """The storage class of ``path``; None for a file that cannot hold a genre tag.

    Its extension's, unless its content is known to be a format that storage cannot hold (an
    MP4 saved as .mp3, as downloaders do): then the storage of its content, the tag any player
    that plays the file reads (players find the format by content; a tag of the extension's
    kind would be read by no one, and an ID3 tag in front of an MP4 breaks its audio). The
    write, the snapshot and undo all come here, so they agree on the tag type.
    """
    by_extension = _STORAGES.get(_ext(path))
    found = _sniff(path)
    if found is None or (by_extension is not None and found in HOLDS[_KEY_OF[id(by_extension)]]):
        return by_extension
    return _BY_CONTENT.get(found)


def can_hold_genre(path: str | os.PathLike[str]) -> bool:
    """Whether a genre can be written to ``path`` (:func:`storage_for` finds a storage)."""
    return storage_for(Path(path)) is not None


def _sniff(path: Path) -> str | None:
    """:func:`libtagger.formats.content_format` of ``path``; None when it cannot be read (the
    open of the tags then says why in its words)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        return content_format(fd)
    except OSError:
        return None  # a folder, an I/O error: the same
    finally:
        os.close(fd)


def _content(path: Path) -> tuple[str | None, str | None]:
    """What ``path`` holds (:func:`libtagger.formats.content_format`) and, when that is another
    format than its extension names, the reason saying so (else None)::

        content is FLAC audio, not MP3 as the extension .mp3 says
    """
    found = _sniff(path)
    row = format_for(path)  # None for the .tmp copy a write edits (its original was checked)
    if found is None or row is None or found == row.content:
        return found, None
    return found, f"content is {CONTENT_NAMES[found]} audio, not {row.name} as the extension {_ext(path)} says"


def open_tags(storage: Storage, path: Path, error: type[ReadError] | type[WriteError] = ReadError) -> Any:
    """``storage.open(path)``, every failure raised as ``error`` with a one-line reason.

    A storage that cannot hold the file's content (:data:`HOLDS`) is refused before mutagen
    opens it: mutagen may take the file for its own format and write a tag that breaks it. When
    the content is another format than the extension says, the reason of a failure names it.
    """
    found, mislabelled = _content(path)
    key = _KEY_OF.get(id(storage))
    if found is not None and key is not None and found not in HOLDS[key]:
        raise error(path, mislabelled or f"content is {CONTENT_NAMES[found]} audio, which cannot hold a {key} tag")
    try:
        return storage.open(path)
    except (mutagen.MutagenError, OSError, ValueError, struct.error, EOFError) as exc:
        if isinstance(exc, riff_info.RiffError):
            raise error(path, mislabelled or str(exc)) from exc
        os_err = find_oserror(exc)  # mutagen wraps OSError in its own errors
        if isinstance(os_err, FileNotFoundError):
            raise error(path, "file not found") from exc
        if isinstance(os_err, PermissionError):
            raise error(path, "permission denied reading the file") from exc
        if isinstance(os_err, IsADirectoryError):
            raise error(path, "is a folder, not a file") from exc
        if os_err is not None:
            raise error(path, f"cannot read the file: {os_err.strerror or os_err}") from exc
        if mislabelled:
            raise error(path, mislabelled) from exc
        # mutagen's text may quote the path, which the error line already starts with
        said = str(exc).replace(repr(str(path)), "the file")
        raise error(path, f"cannot read the tags (corrupt or not a {_ext(path)} file): {said}") from exc


def open_path(p: Path) -> tuple[Storage, Any] | None:
    """The file's storage and its opened tags; None for a format that cannot hold a genre.

    Raises
    ------
    ReadError
        The file is missing or its tags cannot be parsed.
    """
    storage = storage_for(p)
    if storage is None:
        if not p.exists():
            raise ReadError(p, "file not found")
        return None
    return storage, open_tags(storage, p)


def cannot_hold(p: Path) -> WriteError:
    """The error of a write to a file whose format has no genre tag (:func:`storage_for` None)."""
    found, mislabelled = _content(p)
    if mislabelled:  # an ADTS AAC stream saved as .mp3
        return WriteError(p, f"{mislabelled}, and {CONTENT_NAMES[found]} cannot hold a genre tag")
    kind = p.suffix.lower().lstrip(".") or "extension-less"
    return WriteError(p, f".{kind} files cannot hold a genre tag" if p.suffix else
                      "files without an extension cannot hold a genre tag")
