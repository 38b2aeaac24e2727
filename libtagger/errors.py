"""Typed errors. The CLI turns each into one clean line naming the file and the reason."""

from __future__ import annotations

import os


class LibtaggerError(Exception):
    """Base class of every error libtagger raises on purpose."""


class FileError(LibtaggerError):
    """A problem with one file: carries the path and a short reason.

    >>> str(ReadError("/music/a.mp3", "file is empty"))
    '/music/a.mp3: file is empty'
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ReadError(FileError):
    """The file could not be read or decoded."""


class TooShortError(ReadError):
    """The audio is shorter than the minimum a genre can be told from."""


class WriteError(FileError):
    """The genre tag could not be written; the file was left as it was."""


class IndexFileError(FileError):
    """The index file cannot be used: not libtagger's, damaged, a folder, absent or unreadable.

    Raised before anything is written to it.

    >>> str(IndexFileError("/home/me/contacts.db", "not a libtagger index"))
    '/home/me/contacts.db: not a libtagger index'
    """


class IndexLockedError(LibtaggerError):
    """Another libtagger run holds the index."""


class ModelError(LibtaggerError):
    """A model is missing, incomplete or does not fit the data."""
