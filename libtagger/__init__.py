"""libtagger: a batch genre tagger for personal music libraries.

The package is a UI-free library; :mod:`libtagger.cli` is the only module that
knows about the terminal. README.md ("Development") has a map of the modules.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("libtagger")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
