"""Where libtagger finds its models and keeps its index."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    """The folder of shipped models: ``$LIBTAGGER_MODELS``, else ``models/`` beside the package."""
    env = os.environ.get("LIBTAGGER_MODELS")
    return Path(env) if env else _REPO_ROOT / "models"


def default_index_path() -> Path:
    """``$LIBTAGGER_INDEX``, else ``$XDG_DATA_HOME/libtagger/index.db`` (``~/.local/share`` on Linux)."""
    env = os.environ.get("LIBTAGGER_INDEX")
    return Path(env) if env else user_data_path("libtagger") / "index.db"


def shared_gtzan_dir() -> Path:
    """The GTZAN reference data beside the clone (``../shared/gtzan``); may not exist."""
    env = os.environ.get("LIBTAGGER_GTZAN")
    return Path(env) if env else _REPO_ROOT.parent / "shared" / "gtzan"
