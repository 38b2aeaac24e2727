"""Readers for the GTZAN reference data: the Kaggle feature table, split lists and taggrams.

No TensorFlow here. Clip ids are normalised everywhere to ``<genre>.<number>``
(``blues/blues.00029.wav`` and ``blues.00029.au`` both become ``blues.00029``),
so the table, the split lists and the taggram npz can be joined on them.

>>> clip_id("blues/blues.00029.wav")
'blues.00029'
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from libtagger.errors import LibtaggerError
from libtagger.formats import EXTENSIONS
from libtagger.genres import GENRES

#: Names of the three fault-filtered split lists inside ``<gtzan>/splits/``.
SPLIT_NAMES: tuple[str, ...] = ("train", "valid", "test")


class DatasetError(LibtaggerError):
    """A reference data file is missing or not in the expected format."""


def clip_id(text: str) -> str:
    """Normalise a clip reference to ``<genre>.<number>``.

    Any folder part and an audio suffix are dropped.

    >>> clip_id("jazz.00054.au")
    'jazz.00054'
    """
    name = text.strip().replace("\\", "/").rsplit("/", 1)[-1]
    stem, suffix = os.path.splitext(name)
    return stem if suffix.lower() in EXTENSIONS else name  # any audio extension libtagger reads


def load_artists(gtzan_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Clip id (``blues.00000``) -> artist, from Sturm's ``metadata/GTZANindex.txt``.

    Lines read ``blues.00000.wav ::: John Lee Hooker ::: One Bourbon, ...``; an unidentified
    artist is the empty string (callers treat such a clip as its own group). An absent
    file gives an empty dict.
    """
    index = Path(gtzan_dir) / "metadata" / "GTZANindex.txt"
    if not index.is_file():
        return {}
    artists: dict[str, str] = {}
    for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
        if ":::" in line:
            clip, artist, *_ = [part.strip() for part in line.split(":::")]
            artists[clip_id(clip)] = artist
    return artists


def feature_names_from_csv(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The feature columns of a Kaggle-style table: every column between ``length`` and ``label``."""
    header = _read_rows(path)[0]
    return _feature_columns(header, path)


def load_feature_table(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Read ``features_30_sec.csv`` (or a table with the same columns).

    Parameters
    ----------
    path : path to the CSV (``filename, length, <57 features>, label``; CRLF is fine).

    Returns
    -------
    ids : list of n clip ids (``blues.00000``), in table order.
    X : (n, 57) float64 raw (unscaled) features, columns in the table's order,
        which is :data:`libtagger.audio.features.FEATURE_NAMES`.
    y : (n,) int64 label indices into :data:`libtagger.genres.GENRES`.
    """
    rows = _read_rows(path)
    header, body = rows[0], rows[1:]
    names = _feature_columns(header, path)
    first = [h.strip() for h in header].index("length") + 1
    ids, X, y = [], np.empty((len(body), len(names)), dtype=np.float64), np.empty(len(body), np.int64)
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise DatasetError(f"{path}: row {i + 2} has {len(row)} columns, the header has {len(header)}")
        label = row[-1].strip()
        if label not in GENRES:
            raise DatasetError(f"{path}: row {i + 2} has unknown label {label!r}")
        try:
            X[i] = [float(v) for v in row[first:first + len(names)]]
        except ValueError as exc:
            raise DatasetError(f"{path}: row {i + 2} has a non-numeric feature ({exc})") from None
        ids.append(clip_id(row[0]))
        y[i] = GENRES.index(label)
    return ids, X, y


def load_split(path: str | os.PathLike[str]) -> list[str]:
    """Read a split list (one clip a line, e.g. ``blues/blues.00029.wav``) as normalised clip ids."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read split list ({exc.strerror or exc})") from None
    ids = [clip_id(line) for line in lines if line.strip()]
    if not ids:
        raise DatasetError(f"{path}: split list is empty")
    return ids


def split_path(split: str | os.PathLike[str], gtzan_dir: str | os.PathLike[str]) -> Path:
    """Resolve ``train`` / ``valid`` / ``test`` to ``<gtzan>/splits/<name>_filtered.txt``; other values are paths.

    A bare file name that does not exist here is looked for in ``<gtzan>/splits/``
    too, so ``--split test_filtered.txt`` works from any folder.
    """
    if str(split) in SPLIT_NAMES:
        return Path(gtzan_dir) / "splits" / f"{split}_filtered.txt"
    path = Path(split)
    beside = Path(gtzan_dir) / "splits" / path
    if not path.exists() and path.parent == Path(".") and beside.exists():
        return beside
    return path


def rows_for(ids: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    """Row indices of ``wanted`` clip ids in ``ids``, in the order of ``wanted``.

    Raises DatasetError naming the first few ids that are not in the table.

    >>> rows_for(["a.1", "b.2", "c.3"], ["c.3", "a.1"]).tolist()
    [2, 0]
    """
    where = {cid: i for i, cid in enumerate(ids)}
    missing = [w for w in wanted if w not in where]
    if missing:
        raise DatasetError(f"{len(missing)} clip(s) of the split are not in the table, e.g. {missing[:3]}")
    return np.array([where[w] for w in wanted], dtype=np.int64)


def load_taggrams(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Read a taggram npz (arrays ``X`` (rows, 50), ``Y`` (rows,), ``IDS`` (rows,)).

    Rows of one clip are consecutive and in time order; they are grouped per clip.

    Returns
    -------
    taggrams : clip id -> (n_patches, 50) float32 array, in the npz's order.
    labels : clip id -> label index into GENRES.
    """
    try:
        with np.load(path) as data:
            X, Y, IDS = data["X"], data["Y"], data["IDS"]
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"{path}: not a taggram npz with arrays X, Y, IDS ({exc})") from None
    if not (len(X) == len(Y) == len(IDS)) or X.ndim != 2:
        raise DatasetError(f"{path}: X {X.shape}, Y {Y.shape} and IDS {IDS.shape} do not line up")
    ids = [clip_id(str(i)) for i in IDS]
    taggrams: dict[str, np.ndarray] = {}
    labels: dict[str, int] = {}
    start = 0
    for end in range(1, len(ids) + 1):
        if end == len(ids) or ids[end] != ids[start]:
            cid = ids[start]
            if cid in taggrams:
                raise DatasetError(f"{path}: rows of clip {cid} are not consecutive")
            taggrams[cid] = np.asarray(X[start:end], dtype=np.float32)
            labels[cid] = int(Y[start])
            start = end
    return taggrams, labels


def _read_rows(path: str | os.PathLike[str]) -> list[list[str]]:
    try:
        with open(path, newline="") as fh:
            rows = [row for row in csv.reader(fh) if row]
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read feature table ({exc.strerror or exc})") from None
    if len(rows) < 2:
        raise DatasetError(f"{path}: feature table has no data rows")
    return rows


def _feature_columns(header: list[str], path: str | os.PathLike[str]) -> tuple[str, ...]:
    header = [h.strip() for h in header]
    if "length" not in header or header[-1] != "label":
        raise DatasetError(f"{path}: expected columns 'filename, length, <features>, label', got {header[:3]}...")
    return tuple(header[header.index("length") + 1:-1])
