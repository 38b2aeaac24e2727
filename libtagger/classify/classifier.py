"""Loading genre classifiers from model folders, one subclass per model ``kind``.

A model folder ``<name>/`` (found along the models search path of :mod:`libtagger.paths`:
the user's models folder, ``$LIBTAGGER_MODELS``, the shipped models) holds ``model.keras`` and ``meta.json``::

    {"name": "seed", "kind": "seed", "model_id": "seed-1a2b3c4d",
     "labels": [...GENRES], "feature_names": [...57 names], "scaler": {"mean": [...], "scale": [...]},
     "recipe": {...}, "metrics": {...}, "created": "2026-11-26T01:30:00Z"}

``model_id`` is the folder name plus the first 8 hex digits of the sha256 of
``model.keras``; loading checks it, so a meta.json never describes other weights.

Kinds register themselves with :func:`register_kind`; the built-in kinds live in
modules that are imported on first use (``seed`` -> :mod:`libtagger.classify.seed`,
``musicnn-head`` -> :mod:`libtagger.classify.head`). This module does not import
TensorFlow at top level: :func:`available_models` is cheap, :func:`load_classifier`
pays for the import.

>>> clf = load_classifier("seed")                      # doctest: +SKIP
>>> clf.predict(features).shape                        # doctest: +SKIP
(n_segments, 10)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from libtagger.errors import ModelError
from libtagger.genres import GENRES
from libtagger.paths import describe_search_path, models_search_path

#: The model the pipeline uses when none is named.
DEFAULT_MODEL = "musicnn-head"

MODEL_FILE = "model.keras"
META_FILE = "meta.json"
REQUIRED_META = ("name", "kind", "model_id", "labels", "feature_names")

_KINDS: dict[str, type[Classifier]] = {}
#: kind -> module that registers it when imported (so kinds load lazily, without cycles).
_KIND_MODULES: dict[str, str] = {"seed": "libtagger.classify.seed", "musicnn-head": "libtagger.classify.head"}


class Classifier:
    """A loaded model. Subclasses implement :meth:`predict` for one ``kind``.

    Attributes: ``name``, ``model_id``, ``kind``, ``labels`` (GENRES order, or a learned model's own),
    ``feature_names`` (the 57 inputs, in order), ``meta`` (the parsed meta.json),
    ``folder`` and ``model`` (the Keras model).

    What a kind needs as input is declared on the class, so a caller can plan its work
    (decode patches or not, unpack stored rows) from meta.json's ``kind`` through
    :func:`kind_class`, before paying for the weights: ``needs_taggrams`` (predict wants
    each segment's MSD_musicnn taggram) and ``n_tags`` (columns of a taggram row, 0 when
    none is used); :attr:`n_features` is the width of the feature rows.
    """

    kind: str = ""
    needs_taggrams: bool = False
    n_tags: int = 0

    def __init__(self, folder: Path, meta: dict[str, Any], model: Any) -> None:
        self.folder = Path(folder)
        self.meta = meta
        self.model = model
        self.name: str = meta["name"]
        self.model_id: str = meta["model_id"]
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.feature_names: tuple[str, ...] = tuple(meta["feature_names"])
        #: What is written into tags for each label column (``meta["spellings"]`` of a learned model).
        self.spellings: tuple[str, ...] = label_spellings(meta)

    @property
    def n_features(self) -> int:
        """Columns of the feature rows :meth:`predict` takes (``len(feature_names)``)."""
        return len(self.feature_names)

    @classmethod
    def custom_objects(cls) -> dict[str, Any]:
        """Custom Keras objects needed to deserialize this kind's model.keras (none by default)."""
        return {}

    @classmethod
    def from_folder(cls, folder: Path, meta: dict[str, Any]) -> Classifier:
        """Load ``folder/model.keras`` and wrap it; ModelError when Keras cannot read it."""
        import keras

        path = folder / MODEL_FILE
        try:
            model = keras.saving.load_model(path, custom_objects=cls.custom_objects() or None, compile=False)
        except Exception as exc:  # Keras raises many types for a bad archive
            raise ModelError(f"{path}: cannot load the Keras model ({type(exc).__name__}: {exc})") from None
        return cls(folder, meta, model)

    def predict(self, features: np.ndarray,
                taggrams: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Genre probabilities for a batch of segments.

        Parameters
        ----------
        features : (n_segments, 57) raw (unscaled) features in ``feature_names`` order.
        taggrams : per segment an (n_patches_i, n_tags) array, or None; needed when ``needs_taggrams``.

        Returns
        -------
        (n_segments, 10) float64 probabilities, columns in ``labels`` (= GENRES) order.
        """
        raise NotImplementedError

    def _check_features(self, features: np.ndarray) -> np.ndarray:
        X = np.asarray(features, dtype=np.float64)
        n = self.n_features
        if X.ndim != 2 or X.shape[1] != n:
            raise ModelError(f"model {self.name!r} expects features of shape (n_segments, {n}), got {X.shape}")
        if not np.isfinite(X).all():
            raise ModelError(f"model {self.name!r}: features contain NaN or infinity")
        return X

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model_id} from {self.folder}>"


def register_kind(kind: str, cls: type[Classifier]) -> None:
    """Make :func:`load_classifier` build ``cls`` for model folders whose meta.json says ``kind``."""
    if not (isinstance(cls, type) and issubclass(cls, Classifier)):
        raise TypeError(f"register_kind({kind!r}, ...) needs a Classifier subclass, got {cls!r}")
    _KINDS[kind] = cls


def kind_class(kind: str) -> type[Classifier]:
    """The Classifier subclass registered for ``kind`` (importing its built-in module if needed)."""
    if kind not in _KINDS and kind in _KIND_MODULES:
        try:
            importlib.import_module(_KIND_MODULES[kind])
        except ImportError as exc:
            raise ModelError(f"model kind {kind!r} needs module {_KIND_MODULES[kind]} ({exc})") from None
    try:
        return _KINDS[kind]
    except KeyError:
        known = sorted(set(_KINDS) | set(_KIND_MODULES))
        raise ModelError(f"unknown model kind {kind!r}; known kinds: {', '.join(known)}") from None


@dataclass(frozen=True)
class ModelLocation:
    """Where a model was found: its folder and the search-path source (``user``, ``LIBTAGGER_MODELS``,
    ``shipped``; see :mod:`libtagger.paths`), and the folders of the same name it shadows."""

    name: str
    folder: Path
    source: str
    shadows: tuple[Path, ...] = ()


def list_models() -> list[ModelLocation]:
    """Every model on the search path, each name once (the first folder that has it), sorted by name.

    A model is a folder holding a meta.json. No TF import, no meta.json parsing.
    """
    found: dict[str, ModelLocation] = {}
    for root in models_search_path():
        if not root.path.is_dir():
            continue
        for folder in sorted(root.path.iterdir()):
            if not (folder / META_FILE).is_file():
                continue
            first = found.get(folder.name)
            if first is None:
                found[folder.name] = ModelLocation(folder.name, folder, root.source)
            else:
                found[folder.name] = replace(first, shadows=first.shadows + (folder,))
    return [found[name] for name in sorted(found)]


#: The ``kind`` of a music detector's meta.json (:mod:`libtagger.classify.openset`): it tells music
#: from speech and noise, and gives no genre.
DETECTOR_KIND = "music-detector"


def locate_model(name: str, *, genre: bool | None = True) -> ModelLocation:
    """The folder of model ``name``: the first on the search path, or ``name`` itself when it is
    a folder path (contains a path separator). ModelError lists the folders searched and the models seen.

    ``genre``: True (for a genre model) or False (for a music detector) lists only the models of
    that use when ``name`` is not found, and refuses a model found by name that is of the other;
    None: any model.
    """
    if os.sep in name or (os.altsep and os.altsep in name):
        folder = Path(name).expanduser()
        if folder.is_dir():
            return ModelLocation(folder.name, folder, "path")
        raise ModelError(f"model folder {folder} does not exist")
    models = list_models()
    usable = [m for m in models if genre is None or _is_detector(m.folder) != genre]
    have = ", ".join(m.name for m in usable) or "none"
    for location in models:
        if location.name != name:
            continue
        if location not in usable:
            what = "a music detector, not a genre model" if genre else "not a music detector"
            raise ModelError(f"model {name!r} is {what} ({'genre models' if genre else 'detectors'}: {have})")
        return location
    # A genre model is wanted far more often: its listing leaves the music detector out (it
    # cannot tag, and naming it there invited `--model music-detector`).
    raise ModelError(f"model {name!r} not found (available: {have}; searched {describe_search_path()})")


def _is_detector(folder: Path) -> bool:
    """Whether ``folder/meta.json`` says it is a music detector (an unreadable one: not)."""
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("kind") == DETECTOR_KIND


def available_models(models_dir: Path | None = None) -> list[str]:
    """Names of the model folders (those with a meta.json), sorted. No TF import.

    ``models_dir`` given: only that folder; else every folder of the search path.
    """
    if models_dir is None:
        return [m.name for m in list_models()]
    root = Path(models_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / META_FILE).is_file())


def read_meta(folder: Path, *, check_features: bool = True) -> dict[str, Any]:
    """Parse and check ``folder/meta.json`` (no TF); ModelError names the file and what is wrong.

    ``check_features=False`` skips comparing ``feature_names`` with the feature extractor's, which
    imports librosa: listings (``libtagger models``, ``--version``) stay fast; loading always checks.
    """
    path = Path(folder) / META_FILE
    try:
        meta = json.loads(path.read_text())
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model metadata ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{path}: expected a JSON object")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ModelError(f"{path}: missing {', '.join(missing)}")
    # a music detector (libtagger.classify.openset) labels its own classes, not the genres;
    # a learned model (libtagger learn) has the library's labels, each with its written spelling
    if tuple(meta["labels"]) != GENRES and meta["kind"] != DETECTOR_KIND:
        check_learned_labels(meta, path)
    expected = _expected_feature_names() if check_features else None
    if expected is not None and tuple(meta["feature_names"]) != expected:
        raise ModelError(f"{path}: feature_names differ from libtagger.audio.features.FEATURE_NAMES")
    return meta


def check_learned_labels(meta: dict[str, Any], path: Path) -> None:
    """ModelError unless ``meta`` has 2+ distinct string labels and a ``spellings`` entry for each.

    Only models whose labels are not the ten GTZAN genres need ``spellings`` (label -> the text
    written into tags): the shipped models keep :data:`libtagger.genres.DISPLAY_NAMES`.
    """
    labels, spellings = meta["labels"], meta.get("spellings")
    if (not isinstance(labels, list) or len(labels) < 2 or len(set(labels)) != len(labels)
            or not all(isinstance(x, str) and x for x in labels)):
        raise ModelError(f"{path}: labels must be two or more distinct names, got {labels!r}")
    if not isinstance(spellings, dict) or not all(isinstance(spellings.get(x), str) and spellings[x]
                                                  for x in labels):
        raise ModelError(f"{path}: labels {labels} are not libtagger's genres {list(GENRES)} and "
                         f"meta.json has no 'spellings' (label -> written genre) for each of them")


def label_spellings(meta: dict[str, Any]) -> tuple[str, ...]:
    """The genre written into tags for each label column of a model, in ``labels`` order.

    >>> label_spellings({"labels": ["hiphop", "rock"]})
    ('Hip-Hop', 'Rock')
    >>> label_spellings({"labels": ["hip hop"], "spellings": {"hip hop": "Hip Hop"}})
    ('Hip Hop',)
    """
    from libtagger.genres import display_name

    spellings = meta.get("spellings") or {}
    return tuple(spellings[x] if x in spellings else display_name(x) for x in meta["labels"])


def load_classifier(name: str = DEFAULT_MODEL, models_dir: Path | None = None) -> Classifier:
    """Load model ``name``: ``<models_dir>/<name>`` when ``models_dir`` is given, else the first
    folder of that name on the models search path (:func:`locate_model`; a folder path works too).

    Raises ModelError with the reason when the folder, its files or its kind are
    missing or broken, or when model.keras does not match ``model_id``.
    """
    if models_dir is not None:
        root = Path(models_dir)
        folder = root / name
        if not folder.is_dir():
            have = available_models(root)
            listing = ", ".join(have) if have else "none"
            raise ModelError(f"model {name!r} not found in {root} (available: {listing})")
    else:
        folder = locate_model(name).folder
    meta = read_meta(folder)
    weights = folder / MODEL_FILE
    if not weights.is_file():
        raise ModelError(f"{weights}: model weights file is missing")
    actual = model_id_for(meta["name"], weights)
    if actual != meta["model_id"]:
        raise ModelError(f"{weights}: weights do not match meta.json (model_id {meta['model_id']}, file hashes to {actual})")
    return kind_class(meta["kind"]).from_folder(folder, meta)


def model_id_for(name: str, weights: Path) -> str:
    """``<name>-<first 8 hex digits of sha256(weights file)>``."""
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    return f"{name}-{digest[:8]}"


def write_model_folder(out_dir: Path, *, model: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Save ``model`` as ``out_dir/model.keras`` and ``meta`` (plus name, model_id, created) as meta.json.

    ``meta`` must hold at least ``kind`` and ``feature_names``; ``labels`` defaults to GENRES.
    Returns the meta dict as written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / MODEL_FILE
    model.save(weights)
    full = {"name": out_dir.name, "kind": meta["kind"], "model_id": model_id_for(out_dir.name, weights),
            "labels": list(GENRES)}
    full.update({k: v for k, v in meta.items() if k not in ("name", "model_id")})
    full.setdefault("created", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    write_meta(out_dir, full)
    return full


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    """Write ``folder/meta.json`` atomically (pretty-printed, keys in insertion order)."""
    path = Path(folder) / META_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, path)


def _expected_feature_names() -> tuple[str, ...] | None:
    try:
        from libtagger.audio.features import FEATURE_NAMES
    except ImportError:  # features.py is optional for loading; the table header is the reference then
        return None
    return tuple(FEATURE_NAMES)
