"""libtagger: a batch genre tagger for personal music libraries.

The package is a UI-free library; :mod:`libtagger.cli` is the only module that
knows about the terminal.
"""

__version__ = "0.1.0"
