"""Level-invariant versions of the 57 Kaggle-style features, named so a model folder can ask for one.

Seven of the 57 features move with the playback gain (``rms_*``, ``harmony_*``,
``perceptr_*`` scale with the amplitude or its square; ``mfcc1_mean`` shifts by a
constant per dB). A track mastered 6 dB louder than GTZAN's clips must not change genre,
so :func:`level_invariant_53` drops those seven columns and keeps three gain-free ratios of
them instead. Pure NumPy; the model folder's meta.json names the transform
(``feature_transform``) and :data:`TRANSFORMS` maps that name to the function.

>>> from libtagger.audio.features import FEATURE_NAMES
>>> F = np.ones((2, 57)); F[:, FEATURE_NAMES.index("rms_mean")] = 0.1
>>> level_invariant_53(F, FEATURE_NAMES).shape
(2, 53)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from libtagger.errors import ModelError

#: Feature columns that move with the playback level (the open-set detector drops the same ones).
GAIN_DEPENDENT: tuple[str, ...] = ("rms_mean", "rms_var", "harmony_mean", "harmony_var", "perceptr_mean",
                                   "perceptr_var", "mfcc1_mean")
#: Names of the three ratios :func:`level_invariant_53` appends.
RATIO_NAMES: tuple[str, ...] = ("log(rms_var/rms_mean^2)", "log(harmony_var/perceptr_var)",
                                "log((harmony_var+perceptr_var)/rms_mean^2)")
#: Keeps a silent clip (all zeros) finite: every ratio is then log(1) = 0.
EPS = 1e-12


def level_invariant_names(feature_names: Sequence[str]) -> list[str]:
    """Output column names of :func:`level_invariant_53` for inputs named ``feature_names``."""
    return [n for n in feature_names if n not in GAIN_DEPENDENT] + list(RATIO_NAMES)


def level_invariant_53(features: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
    """The 50 gain-free columns plus three log ratios of the gain-dependent ones.

    Parameters
    ----------
    features : (n, 57) raw features, columns in ``feature_names`` order.
    feature_names : the 57 names (``libtagger.audio.features.FEATURE_NAMES``).

    Returns
    -------
    (n, 53) float64: the 50 columns not in :data:`GAIN_DEPENDENT` (in input order), then
    log(rms_var / rms_mean²) (loudness fluctuation), log(harmony_var / perceptr_var)
    (harmonic vs percussive energy) and log((harmony_var + perceptr_var) / rms_mean²)
    (sample power over frame RMS², a crest measure), each with :data:`EPS` added to
    numerator and denominator.
    """
    F = np.asarray(features, dtype=np.float64)
    names = list(feature_names)
    missing = [n for n in GAIN_DEPENDENT if n not in names]
    if F.ndim != 2 or F.shape[1] != len(names) or missing:
        raise ModelError(f"level-invariant features need (n, {len(names)}) rows with columns {list(GAIN_DEPENDENT)}; "
                         f"got shape {F.shape}" + (f", missing {missing}" if missing else ""))
    keep = [i for i, n in enumerate(names) if n not in GAIN_DEPENDENT]
    return np.concatenate([F[:, keep], level_ratios(F, names)], axis=1)


def level_ratios(features: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
    """The three gain-free log ratios of the gain-dependent columns, named :data:`RATIO_NAMES`.

    Parameters
    ----------
    features : (n, 57) raw features, columns in ``feature_names`` order.
    feature_names : the names of those columns (must include rms_mean/var, harmony_var, perceptr_var).

    Returns
    -------
    (n, 3) float64, :data:`EPS` added to every numerator and denominator.
    """
    F = np.asarray(features, dtype=np.float64)
    col = {n: i for i, n in enumerate(feature_names)}
    rms2 = F[:, col["rms_mean"]] ** 2
    rv, hv, pv = F[:, col["rms_var"]], F[:, col["harmony_var"]], F[:, col["perceptr_var"]]
    return np.column_stack([np.log((rv + EPS) / (rms2 + EPS)),
                            np.log((hv + EPS) / (pv + EPS)),
                            np.log((hv + pv + EPS) / (rms2 + EPS))])


def identity(features: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
    """The raw features unchanged, as float64 (what model folders without ``feature_transform`` use)."""
    return np.asarray(features, dtype=np.float64)


#: meta.json ``feature_transform`` name -> ``fn(features (n, 57), feature_names) -> (n, d)``.
TRANSFORMS: dict[str, Callable[[np.ndarray, Sequence[str]], np.ndarray]] = {
    "raw-57": identity,
    "level-invariant-53": level_invariant_53,
}


def transform_by_name(name: str | None) -> Callable[[np.ndarray, Sequence[str]], np.ndarray]:
    """The transform meta.json names (None: ``raw-57``); ModelError for an unknown name."""
    try:
        return TRANSFORMS[name or "raw-57"]
    except KeyError:
        raise ModelError(f"unknown feature transform {name!r}; known: {', '.join(TRANSFORMS)}") from None
