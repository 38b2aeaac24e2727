"""The standard scaler every model applies to its 57 raw features (plain NumPy, no sklearn).

Its state is what meta.json stores under ``scaler``: ``{"mean": [d], "scale": [d]}``,
the layout of scikit-learn's StandardScaler (population standard deviation; a constant
column gets scale 1 so it never divides by zero).

>>> s = Scaler.fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
>>> s.to_meta()
{'mean': [2.0, 5.0], 'scale': [1.0, 1.0]}
>>> s.transform(np.array([[3.0, 6.0]])).tolist()
[[1.0, 1.0]]
>>> Scaler.from_meta(s.to_meta(), n_features=2) == s
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from libtagger.errors import ModelError


@dataclass(eq=False)
class Scaler:
    """Per-column mean and scale: ``transform(X) = (X - mean) / scale``.

    Attributes
    ----------
    mean, scale : (d,) float64.
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> Scaler:
        """Statistics of training rows ``X`` (n, d)."""
        X = np.asarray(X, dtype=np.float64)
        sd = X.std(axis=0)
        return cls(X.mean(axis=0), np.where(sd > 0, sd, 1.0))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardised copy of raw rows ``X`` (n, d), float64 (n, d)."""
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.scale

    def to_meta(self) -> dict[str, list[float]]:
        """The JSON form stored in meta.json: ``{"mean": [d floats], "scale": [d floats]}``."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_meta(cls, stored: Mapping[str, Sequence[float]] | None, *, n_features: int,
                  where: Any = "meta.json") -> Scaler:
        """Read :meth:`to_meta`'s layout; ModelError (naming ``where``) unless it has ``n_features`` of each."""
        stored = stored or {}
        mean, scale = stored.get("mean", ()), stored.get("scale", ())
        if len(mean) != n_features or len(scale) != n_features:
            raise ModelError(f"{where}: scaler must have {n_features} means and {n_features} scales")
        scale_arr = np.asarray(scale, dtype=np.float64)
        if not (scale_arr > 0).all():
            raise ModelError(f"{where}: scaler scales must all be positive")
        return cls(np.asarray(mean, dtype=np.float64), scale_arr)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Scaler) and np.array_equal(self.mean, other.mean)
                and np.array_equal(self.scale, other.scale))
