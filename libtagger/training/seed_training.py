"""The paper's CNN-RNN ("seed" model): building the network and the two-stage fitting recipe.

The 57 standardised features are read as a sequence of length 57 with one
channel: two Conv1D/MaxPool/BatchNorm/Dropout blocks, a ReLU LSTM, four
Dense+Dropout layers and a 10-way softmax. For 57 inputs the network has
246,154 parameters, 192 of them (the BatchNorm moving statistics) not trainable.

Recipe (:func:`select_and_fit`): Adam (Keras defaults, lr 1e-3), sparse categorical
cross-entropy, batch 128; stage 1 trains on the fit rows for up to 600 epochs, scoring
the valid rows after each, and picks E where the valid accuracy smoothed over 21 epochs
peaks; stage 2 trains a fresh network (same seed, scaler refit) on fit + valid rows for E
epochs. Writing a model folder from it is :func:`libtagger.training.train.train_seed`.

This module imports no other training module but the TF set-up, so both the trainer and
the random-split protocol of :mod:`libtagger.training.evaluate` can use it.
TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from libtagger.classify.scaler import Scaler
from libtagger.classify.seed import network_input
from libtagger.genres import GENRES
from libtagger.training.tf_setup import configure_tensorflow

#: Layer sizes and dropout of the paper's network.
CONV_FILTERS: tuple[int, ...] = (32, 64)
LSTM_UNITS = 64
DENSE_UNITS: tuple[int, ...] = (512, 256, 128, 64)
DROPOUT = 0.3

DEFAULT_EPOCHS = 600
DEFAULT_BATCH = 128
#: Epochs averaged when reading the valid-accuracy curve (see choose_epochs).
SMOOTHING = 21


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


def fit_seed(X_train: np.ndarray, y_train: np.ndarray, *, epochs: int = DEFAULT_EPOCHS,
             X_valid: np.ndarray | None = None, y_valid: np.ndarray | None = None,
             batch_size: int = DEFAULT_BATCH, seed: int = 0, threads: int = 2,
             verbose: int = 0) -> tuple[Any, Scaler, dict[str, list[float]]]:
    """Fit the seed network on raw features for exactly ``epochs`` epochs.

    Parameters
    ----------
    X_train : (n, 57) raw features; y_train : (n,) label indices.
    X_valid, y_valid : optional held-out rows, scored after every epoch (never trained on).

    Returns
    -------
    model : the fitted Keras model (weights of the last epoch).
    scaler : fit on X_train only.
    history : Keras' per-epoch lists (``loss``, ``accuracy``, and ``val_*`` with valid rows).
    """
    import keras

    configure_tensorflow(seed=seed, threads=threads)
    scaler = Scaler.fit(X_train)
    valid = None
    if X_valid is not None and y_valid is not None:
        valid = (network_input(X_valid, scaler), np.asarray(y_valid))
    model = build_seed_model(n_features=X_train.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(network_input(X_train, scaler), np.asarray(y_train), validation_data=valid,
                        epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose)
    return model, scaler, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def choose_epochs(valid_accuracy: list[float], *, window: int = SMOOTHING) -> int:
    """The 1-based epoch whose centred moving average of valid accuracy is highest (earliest on ties).

    Smoothing over ``window`` epochs keeps one lucky epoch on a small valid set from deciding.

    >>> choose_epochs([0.1, 0.5, 0.2, 0.6, 0.6, 0.6, 0.1], window=3)
    5
    """
    acc = np.asarray(valid_accuracy, dtype=np.float64)
    half = window // 2
    smooth = np.array([acc[max(0, i - half):i + half + 1].mean() for i in range(len(acc))])
    return int(np.argmax(smooth)) + 1


def select_and_fit(X_fit: np.ndarray, y_fit: np.ndarray, X_valid: np.ndarray, y_valid: np.ndarray, *,
                   epochs: int = DEFAULT_EPOCHS, batch_size: int = DEFAULT_BATCH, seed: int = 0,
                   threads: int = 2, verbose: int = 0) -> tuple[Any, Scaler, dict[str, Any]]:
    """The seed recipe: pick the epoch count on valid, then retrain on fit + valid rows.

    Stage 1 trains on ``X_fit`` for ``epochs`` epochs, scoring ``X_valid`` after each;
    :func:`choose_epochs` picks E from that curve. Stage 2 trains a fresh network
    (same seed, scaler refit on fit + valid rows) on all of them for E epochs.

    Returns the stage-2 model, its scaler and a dict describing the selection
    (``selected_epochs``, ``valid_accuracy_at_selected`` (raw and smoothed), ``valid_accuracy_max``).
    """
    _, _, history = fit_seed(X_fit, y_fit, X_valid=X_valid, y_valid=y_valid, epochs=epochs,
                             batch_size=batch_size, seed=seed, threads=threads, verbose=verbose)
    acc = history["val_accuracy"]
    chosen = choose_epochs(acc)
    half = SMOOTHING // 2
    info = {
        "selected_epochs": chosen,
        "valid_accuracy_at_selected": acc[chosen - 1],
        "valid_accuracy_smoothed_at_selected": float(np.mean(acc[max(0, chosen - 1 - half):chosen + half])),
        "valid_accuracy_max": max(acc),
        "valid_accuracy_last": acc[-1],
        "stage1_epochs": len(acc),
    }
    X_all = np.concatenate([X_fit, X_valid])
    y_all = np.concatenate([y_fit, y_valid])
    model, scaler, _ = fit_seed(X_all, y_all, epochs=chosen, batch_size=batch_size, seed=seed,
                                threads=threads, verbose=verbose)
    return model, scaler, info
