"""Training the seed CNN-RNN on the fault-filtered GTZAN splits and writing its model folder.

Recipe (the paper's network and optimiser, plus an honest use of the validation split):

* data: rows of ``features_30_sec.csv`` for the clips of ``train_filtered.txt`` (443)
  and ``valid_filtered.txt`` (197); the test split (290) is scored once, after
  training, for the record in meta.json, and never used for any choice;
* Adam (Keras defaults, lr 1e-3), sparse categorical cross-entropy, batch 128;
* stage 1: train on the train rows for 600 epochs, scoring valid after each; the
  epoch count E is where the valid accuracy, smoothed over 21 epochs, peaks;
* stage 2: a fresh network, same seed, trained on train + valid rows for E epochs
  (the scaler is fit on exactly the rows it is trained on, never on test);
* seeds fixed (Python, NumPy, TF) and TF op determinism on, 1-2 CPU threads.

Why not keep the stage-1 weights of the best valid epoch? With 443 rows every
extra labelled clip helps, and the valid curve is flat enough near its peak that
the exact epoch matters less than the 44 % more data (and more artists).

Other kinds register a trainer with :func:`register_trainer` so ``libtagger train
--kind K`` and the random-split protocol can use them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from libtagger.training.dataset import feature_names_from_csv, load_feature_table, load_split, rows_for, split_path
from libtagger.errors import LibtaggerError, ModelError

DEFAULT_EPOCHS = 600
DEFAULT_BATCH = 128
#: Epochs averaged when reading the valid-accuracy curve (see choose_epochs).
SMOOTHING = 21

_TRAINERS: dict[str, Callable[..., dict[str, Any]]] = {}


def register_trainer(kind: str, fn: Callable[..., dict[str, Any]]) -> None:
    """Make ``train(kind, out_dir, **options)`` call ``fn(out_dir, **options)``."""
    _TRAINERS[kind] = fn


def train(kind: str, out_dir: Path, **options: Any) -> dict[str, Any]:
    """Train a model of ``kind`` into ``out_dir`` and return its metrics; ModelError for an unknown kind."""
    if kind not in _TRAINERS:
        from libtagger.classify.classifier import kind_class

        kind_class(kind)  # importing the kind's module registers its trainer, if it has one
    if kind not in _TRAINERS:
        raise ModelError(f"no trainer for model kind {kind!r}; known: {', '.join(sorted(_TRAINERS))}")
    return _TRAINERS[kind](Path(out_dir), **options)


def configure_tensorflow(*, seed: int = 0, threads: int = 2) -> None:
    """Fix seeds, turn on op determinism and cap TF at ``threads`` CPU threads.

    Thread counts can only be set before TF starts its runtime; later calls keep
    the first setting (TF raises RuntimeError, which is ignored here).
    """
    import keras
    import tensorflow as tf

    for setter in (tf.config.threading.set_intra_op_parallelism_threads,
                   tf.config.threading.set_inter_op_parallelism_threads):
        try:
            setter(threads)
        except RuntimeError:
            pass
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fit_seed(X_train: np.ndarray, y_train: np.ndarray, *, epochs: int = DEFAULT_EPOCHS,
             X_valid: np.ndarray | None = None, y_valid: np.ndarray | None = None,
             batch_size: int = DEFAULT_BATCH, seed: int = 0, threads: int = 2,
             verbose: int = 0) -> tuple[Any, dict[str, list[float]], dict[str, list[float]]]:
    """Fit the seed network on raw features for exactly ``epochs`` epochs.

    Parameters
    ----------
    X_train : (n, 57) raw features; y_train : (n,) label indices.
    X_valid, y_valid : optional held-out rows, scored after every epoch (never trained on).

    Returns
    -------
    model : the fitted Keras model (weights of the last epoch).
    scaler : {"mean", "scale"} fit on X_train only.
    history : Keras' per-epoch lists (``loss``, ``accuracy``, and ``val_*`` with valid rows).
    """
    from libtagger.classify.seed import build_seed_model, fit_scaler, scale_features

    import keras

    configure_tensorflow(seed=seed, threads=threads)
    scaler = fit_scaler(X_train)
    valid = None
    if X_valid is not None and y_valid is not None:
        valid = (scale_features(X_valid, scaler), np.asarray(y_valid))
    model = build_seed_model(n_features=X_train.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(scale_features(X_train, scaler), np.asarray(y_train), validation_data=valid,
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
                   threads: int = 2, verbose: int = 0) -> tuple[Any, dict[str, list[float]], dict[str, Any]]:
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


def train_seed(out_dir: Path, *, gtzan_dir: Path, epochs: int = DEFAULT_EPOCHS, seed: int = 0,
               batch_size: int = DEFAULT_BATCH, features_csv: Path | None = None, threads: int = 2,
               verbose: int = 0, **_ignored: Any) -> dict[str, Any]:
    """Train the seed model with :func:`select_and_fit` on the fault-filtered train and valid splits.

    Writes ``out_dir/model.keras`` and ``out_dir/meta.json``; the folder name is the model name.
    After training the saved folder is reloaded and scored on train, valid and test
    with :func:`libtagger.training.evaluate.evaluate_features`, so meta.json's metrics are
    exactly what ``libtagger evaluate`` reports for the shipped files. The shipped
    model has seen valid; the held-out valid figures are the stage-1 ones in
    ``metrics["selection"]``. Options of other kinds' trainers are ignored.

    Returns meta.json's ``metrics``.
    """
    from libtagger.classify.classifier import load_classifier, write_meta, write_model_folder
    from libtagger.training.evaluate import evaluate_features
    from libtagger.classify.seed import build_seed_model

    if epochs < 1:
        raise LibtaggerError(f"epochs must be at least 1, got {epochs}")
    gtzan_dir = Path(gtzan_dir)
    csv_path = Path(features_csv) if features_csv is not None else gtzan_dir / "features_30_sec.csv"
    ids, X, y = load_feature_table(csv_path)
    splits = {name: split_path(name, gtzan_dir) for name in ("train", "valid", "test")}
    tr = rows_for(ids, load_split(splits["train"]))
    va = rows_for(ids, load_split(splits["valid"]))

    model, scaler, selection = select_and_fit(X[tr], y[tr], X[va], y[va], epochs=epochs,
                                              batch_size=batch_size, seed=seed, threads=threads,
                                              verbose=verbose)
    recipe = {
        "network": "paper CNN-RNN (libtagger.classify.seed.build_seed_model), 246,154 parameters",
        "data": csv_path.name, "train_split": splits["train"].name, "valid_split": splits["valid"].name,
        "n_train": int(len(tr)), "n_valid": int(len(va)),
        "optimizer": "adam (lr 0.001)", "loss": "sparse_categorical_crossentropy", "batch_size": batch_size,
        "max_epochs": epochs,
        "selection": f"stage 1: train split only, {epochs} epochs, E = argmax of valid accuracy "
                     f"smoothed over {SMOOTHING} epochs; stage 2: fresh network on train + valid for E epochs",
        "epochs": selection["selected_epochs"],
        "scaler": "standard, fit on the train + valid rows the final network is trained on",
        "seed": seed,
    }
    # Ship the weights without the optimizer state (not needed for inference, twice the size).
    shipped = build_seed_model(n_features=X.shape[1])
    shipped.set_weights(model.get_weights())
    meta = write_model_folder(Path(out_dir), model=shipped, meta={
        "kind": "seed", "feature_names": list(feature_names_from_csv(csv_path)),
        "scaler": scaler, "recipe": recipe, "metrics": {},
    })

    clf = load_classifier(Path(out_dir).name, models_dir=Path(out_dir).parent)
    metrics: dict[str, Any] = {
        "protocol": "fault-filtered splits, one 30-s clip = one track; train and valid were trained on",
        "selection": {k: v for k, v in selection.items() if k != "selected_epochs"},
    }
    for name, path in splits.items():
        result = evaluate_features(clf, features_csv=csv_path, split=path)
        metrics[name] = {"track_accuracy": result["track_accuracy"], "n_tracks": result["n_tracks"]}
    meta["metrics"] = metrics
    write_meta(Path(out_dir), meta)
    return metrics


register_trainer("seed", train_seed)
