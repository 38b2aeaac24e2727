"""The ``seed`` classifier: the paper's CNN-RNN over the 57 GTZAN table features.

Inference only. The network (built and trained by :mod:`libtagger.training.seed_training`)
reads the 57 standardised features as a sequence of length 57 with one channel, shape
``(batch, 57, 1)``, and ends in a 10-way softmax; model.keras holds only standard Keras
layers, so loading needs no code from here besides the scaler. TensorFlow is imported
by the caller of the model, never at module import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libtagger.classify.classifier import Classifier, META_FILE, register_kind
from libtagger.classify.scaler import Scaler

KIND = "seed"

# Rows per forward pass: large enough to be one call for a whole library batch,
# small enough to bound memory (8192 x 57 float32 is under 2 MB).
_PREDICT_CHUNK = 8192


def network_input(X: np.ndarray, scaler: Scaler) -> np.ndarray:
    """Standardise raw features ``X`` (n, d) and shape them for the network: (n, d, 1) float32."""
    return scaler.transform(X).astype(np.float32)[:, :, None]


def predict_proba(model: Any, X: np.ndarray, scaler: Scaler) -> np.ndarray:
    """Class probabilities (n, n_classes) of raw features ``X`` (n, d), in chunks of 8192 rows."""
    x = network_input(X, scaler)
    n_out = int(model.outputs[0].shape[-1])
    if len(x) == 0:
        return np.zeros((0, n_out), dtype=np.float64)
    parts = [np.asarray(model(x[i:i + _PREDICT_CHUNK], training=False), dtype=np.float64)
             for i in range(0, len(x), _PREDICT_CHUNK)]
    return np.concatenate(parts)


class SeedClassifier(Classifier):
    """The seed CNN-RNN: predicts from the 57 table features alone (no taggrams)."""

    kind = KIND
    needs_taggrams = False

    def __init__(self, folder: Path, meta: dict[str, Any], model: Any) -> None:
        super().__init__(folder, meta, model)
        self.scaler = Scaler.from_meta(meta.get("scaler"), n_features=self.n_features,
                                       where=Path(folder) / META_FILE)

    def predict(self, features: np.ndarray,
                taggrams: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Genre probabilities (n_segments, 10) in GENRES order from raw features (n_segments, 57).

        ``taggrams`` is accepted for a uniform interface and ignored.
        """
        X = self._check_features(features)
        return predict_proba(self.model, X, self.scaler)


register_kind(KIND, SeedClassifier)
