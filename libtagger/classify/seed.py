"""The paper's CNN-RNN ("seed" model) over the 57 GTZAN table features, and its classifier.

The 57 standardised features are read as a sequence of length 57 with one
channel: two Conv1D/MaxPool/BatchNorm/Dropout blocks, a ReLU LSTM, four
Dense+Dropout layers and a 10-way softmax. For 57 inputs the network has
246,154 parameters, 192 of them (the BatchNorm moving statistics) not trainable.

TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libtagger.classify.classifier import Classifier, register_kind
from libtagger.errors import ModelError
from libtagger.genres import GENRES

#: Layer sizes and dropout of the paper's network.
CONV_FILTERS: tuple[int, ...] = (32, 64)
LSTM_UNITS = 64
DENSE_UNITS: tuple[int, ...] = (512, 256, 128, 64)
DROPOUT = 0.3

# Rows per forward pass: large enough to be one call for a whole library batch,
# small enough to bound memory (8192 x 57 float32 is under 2 MB).
_PREDICT_CHUNK = 8192


def build_seed_model(n_features: int = 57, n_classes: int = len(GENRES)) -> Any:
    """Build (uncompiled) the paper's CNN-RNN for ``n_features`` standardised inputs.

    Input shape is ``(batch, n_features, 1)``; output ``(batch, n_classes)`` softmax.

    >>> build_seed_model().count_params()  # doctest: +SKIP
    246154
    """
    import keras
    from keras import layers

    stack: list[Any] = [keras.Input(shape=(n_features, 1), name="features")]
    for filters in CONV_FILTERS:
        stack += [
            layers.Conv1D(filters, 3, activation="relu"),
            layers.MaxPooling1D(2),
            layers.BatchNormalization(),
            layers.Dropout(DROPOUT),
        ]
    stack += [layers.LSTM(LSTM_UNITS, activation="relu"), layers.Dropout(DROPOUT)]
    for units in DENSE_UNITS:
        stack += [layers.Dense(units, activation="relu"), layers.Dropout(DROPOUT)]
    stack.append(layers.Dense(n_classes, activation="softmax", name="genre"))
    return keras.Sequential(stack, name="seed_cnn_rnn")


def fit_scaler(X: np.ndarray) -> dict[str, list[float]]:
    """Standard-scaler statistics of training rows ``X`` (n, d): ``{"mean": [d], "scale": [d]}``.

    Same as scikit-learn's StandardScaler (population std); a constant column gets scale 1.
    """
    X = np.asarray(X, dtype=np.float64)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    return {"mean": X.mean(axis=0).tolist(), "scale": scale.tolist()}


def scale_features(X: np.ndarray, scaler: dict[str, Sequence[float]]) -> np.ndarray:
    """Standardise raw features ``X`` (n, d) and shape them for the network: (n, d, 1) float32."""
    mean = np.asarray(scaler["mean"], dtype=np.float64)
    scale = np.asarray(scaler["scale"], dtype=np.float64)
    return ((np.asarray(X, dtype=np.float64) - mean) / scale).astype(np.float32)[:, :, None]


def predict_proba(model: Any, X: np.ndarray, scaler: dict[str, Sequence[float]]) -> np.ndarray:
    """Class probabilities (n, n_classes) of raw features ``X`` (n, d), in chunks of 8192 rows."""
    x = scale_features(X, scaler)
    n_out = int(model.outputs[0].shape[-1])
    if len(x) == 0:
        return np.zeros((0, n_out), dtype=np.float64)
    parts = [np.asarray(model(x[i:i + _PREDICT_CHUNK], training=False), dtype=np.float64)
             for i in range(0, len(x), _PREDICT_CHUNK)]
    return np.concatenate(parts)


class SeedClassifier(Classifier):
    """The seed CNN-RNN: predicts from the 57 table features alone."""

    kind = "seed"
    needs_taggrams = False

    def __init__(self, folder: Path, meta: dict[str, Any], model: Any) -> None:
        super().__init__(folder, meta, model)
        scaler = meta.get("scaler") or {}
        n = len(self.feature_names)
        if len(scaler.get("mean", ())) != n or len(scaler.get("scale", ())) != n:
            raise ModelError(f"{folder / 'meta.json'}: scaler must have {n} means and {n} scales")
        self.scaler = {"mean": list(scaler["mean"]), "scale": list(scaler["scale"])}

    def predict(self, features: np.ndarray,
                taggrams: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Genre probabilities (n_segments, 10) in GENRES order from raw features (n_segments, 57).

        ``taggrams`` is accepted for a uniform interface and ignored.
        """
        X = self._check_features(features)
        return predict_proba(self.model, X, self.scaler)


register_kind("seed", SeedClassifier)
