"""Where libtagger finds its models and keeps its index.

Models are looked up by name along a search path; the first folder that has it wins:

1. the user's models folder, ``$XDG_DATA_HOME/libtagger/models`` (``~/.local/share/libtagger/models``),
   where models the user trains or teaches go (:func:`user_models_dir`);
2. each folder of ``$LIBTAGGER_MODELS`` (separated by ``os.pathsep``), in order;
3. the models shipped inside the package: the data package ``libtagger.shipped_models``, which
   pyproject.toml maps to the repository's top-level ``models/`` folder. It is found with
   importlib.resources, so a wheel, a pipx install and an editable install all see it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_path

_REPO_ROOT = Path(__file__).resolve().parent.parent

#: The ``source`` of a models folder, as ``libtagger models`` shows it.
USER, ENV, SHIPPED = "user", "LIBTAGGER_MODELS", "shipped"
SHIPPED_PACKAGE = "libtagger.shipped_models"


@dataclass(frozen=True)
class ModelsFolder:
    """One folder of the models search path and where it comes from (USER, ENV or SHIPPED)."""

    path: Path
    source: str


def user_models_dir() -> Path:
    """The user's models folder (may not exist yet): ``$XDG_DATA_HOME/libtagger/models``."""
    return user_data_path("libtagger") / "models"


def env_models_dirs() -> list[Path]:
    """The folders listed in ``$LIBTAGGER_MODELS``, in order (empty entries skipped)."""
    value = os.environ.get("LIBTAGGER_MODELS", "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p]


def shipped_models_dir() -> Path | None:
    """The folder of the models shipped in the package, or None when the install lacks them."""
    import importlib.resources

    try:
        root = importlib.resources.files(SHIPPED_PACKAGE)
    except ModuleNotFoundError:
        return None
    # Keras and h5py need real files; every pip/pipx/editable install unpacks the package to disk.
    return Path(str(root)) if isinstance(root, Path) else None


def models_dir() -> Path:
    """The shipped models folder (the repository's ``models/`` in an editable install).

    Kept for the tools that write or measure the shipped models (``convert-musicnn``,
    benchmarks, tests); lookups by name go through :func:`models_search_path`.
    """
    shipped = shipped_models_dir()
    if shipped is None:
        raise FileNotFoundError(f"this libtagger install has no {SHIPPED_PACKAGE} package; reinstall it")
    return shipped


def models_search_path() -> list[ModelsFolder]:
    """Every folder models are looked up in, first match wins; folders that do not exist included."""
    folders = [ModelsFolder(user_models_dir(), USER)]
    folders += [ModelsFolder(p, ENV) for p in env_models_dirs()]
    shipped = shipped_models_dir()
    if shipped is not None:
        folders.append(ModelsFolder(shipped, SHIPPED))
    return folders


def describe_search_path() -> str:
    """One line naming the folders searched, for error messages."""
    parts = []
    for folder in models_search_path():
        state = "" if folder.path.is_dir() else " (absent)"
        parts.append(f"{folder.source} {folder.path}{state}")
    if shipped_models_dir() is None:
        parts.append(f"shipped: none (no {SHIPPED_PACKAGE} package: reinstall libtagger)")
    return "; ".join(parts)


def default_index_path() -> Path:
    """``$LIBTAGGER_INDEX``, else ``$XDG_DATA_HOME/libtagger/index.db`` (``~/.local/share`` on Linux)."""
    env = os.environ.get("LIBTAGGER_INDEX")
    return Path(env) if env else user_data_path("libtagger") / "index.db"


def shared_gtzan_dir() -> Path:
    """The GTZAN reference data beside the clone (``../shared/gtzan``); may not exist."""
    env = os.environ.get("LIBTAGGER_GTZAN")
    return Path(env) if env else _REPO_ROOT.parent / "shared" / "gtzan"
