"""libtagger: a batch genre tagger for personal music libraries.

The package is a UI-free library; :mod:`libtagger.cli` is the only module that
knows about the terminal.
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ start-up chatter (oneDNN notices, CPU feature lines) is not for users.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
