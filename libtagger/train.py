"""Training the seed CNN-RNN on the fault-filtered GTZAN splits and writing its model folder.

Recipe (the paper's, plus an honest use of the validation split):

* rows of ``features_30_sec.csv`` for the clips of ``train_filtered.txt`` (443) are
  the training set, ``valid_filtered.txt`` (197) the validation set; the test
  split is only scored once, after training, for the record in meta.json;
* standard scaler fit on the training rows only;
* Adam (Keras defaults, lr 1e-3), sparse categorical cross-entropy, batch 128,
  up to 600 epochs;
* early stopping on validation loss with patience 100 epochs; the weights of the
  epoch with the lowest validation loss are kept (checkpoint selection on valid);
* seeds fixed (Python, NumPy, TF) and TF op determinism on, 1-2 CPU threads.

Other kinds register a trainer with :func:`register_trainer` so ``libtagger train
--kind K`` and the random-split protocol can use them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from libtagger.dataset import feature_names_from_csv, load_feature_table, load_split, rows_for, split_path
from libtagger.errors import LibtaggerError, ModelError

DEFAULT_EPOCHS = 600
DEFAULT_BATCH = 128
DEFAULT_PATIENCE = 100

_TRAINERS: dict[str, Callable[..., dict[str, Any]]] = {}


def register_trainer(kind: str, fn: Callable[..., dict[str, Any]]) -> None:
    """Make ``train(kind, out_dir, **options)`` call ``fn(out_dir, **options)``."""
    _TRAINERS[kind] = fn


def train(kind: str, out_dir: Path, **options: Any) -> dict[str, Any]:
    """Train a model of ``kind`` into ``out_dir`` and return its metrics; ModelError for an unknown kind."""
    if kind not in _TRAINERS:
        from libtagger.classifier import kind_class

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


def fit_seed(X_train: np.ndarray, y_train: np.ndarray, X_valid: np.ndarray, y_valid: np.ndarray, *,
             epochs: int = DEFAULT_EPOCHS, batch_size: int = DEFAULT_BATCH, patience: int = DEFAULT_PATIENCE,
             seed: int = 0, threads: int = 2, verbose: int = 0) -> tuple[Any, dict[str, list[float]], dict[str, Any]]:
    """Fit the seed network on raw features; keep the weights of the best validation-loss epoch.

    Parameters
    ----------
    X_train, X_valid : (n, 57) raw features; y_train, y_valid : (n,) label indices.

    Returns
    -------
    model : the fitted Keras model.
    scaler : {"mean", "scale"} fit on X_train only.
    fit_info : {"best_epoch" (1-based), "epochs_run", "best_valid_loss"}.
    """
    from libtagger.seed import build_seed_model, fit_scaler, scale_features

    import keras

    configure_tensorflow(seed=seed, threads=threads)
    scaler = fit_scaler(X_train)
    xt, xv = scale_features(X_train, scaler), scale_features(X_valid, scaler)
    model = build_seed_model(n_features=X_train.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    history = model.fit(xt, np.asarray(y_train), validation_data=(xv, np.asarray(y_valid)),
                        epochs=epochs, batch_size=batch_size, shuffle=True, callbacks=[stop], verbose=verbose)
    val_loss = history.history["val_loss"]
    best = int(np.argmin(val_loss))
    info = {"best_epoch": best + 1, "epochs_run": len(val_loss), "best_valid_loss": float(val_loss[best])}
    return model, scaler, info


def train_seed(out_dir: Path, *, gtzan_dir: Path, epochs: int = DEFAULT_EPOCHS, seed: int = 0,
               batch_size: int = DEFAULT_BATCH, patience: int = DEFAULT_PATIENCE,
               features_csv: Path | None = None, threads: int = 2, verbose: int = 0) -> dict[str, Any]:
    """Train the seed model on the fault-filtered train split (valid for checkpoint selection).

    Writes ``out_dir/model.keras`` and ``out_dir/meta.json``; the folder name is the model name.
    After training the saved folder is reloaded and scored on train, valid and test
    with :func:`libtagger.evaluate.evaluate_features`, so meta.json's metrics are
    exactly what ``libtagger evaluate`` reports for the shipped files.

    Returns the metrics dict (``{split: {"track_accuracy", "n_tracks"}}``); the chosen
    epoch is in meta.json's ``recipe["best_epoch"]``.
    """
    from libtagger.classifier import load_classifier, write_meta, write_model_folder
    from libtagger.evaluate import evaluate_features

    gtzan_dir = Path(gtzan_dir)
    csv_path = Path(features_csv) if features_csv is not None else gtzan_dir / "features_30_sec.csv"
    ids, X, y = load_feature_table(csv_path)
    splits = {name: split_path(name, gtzan_dir) for name in ("train", "valid", "test")}
    tr = rows_for(ids, load_split(splits["train"]))
    va = rows_for(ids, load_split(splits["valid"]))
    if epochs < 1:
        raise LibtaggerError(f"epochs must be at least 1, got {epochs}")

    model, scaler, info = fit_seed(X[tr], y[tr], X[va], y[va], epochs=epochs, batch_size=batch_size,
                                   patience=patience, seed=seed, threads=threads, verbose=verbose)
    recipe = {
        "data": csv_path.name,
        "train_split": splits["train"].name, "valid_split": splits["valid"].name,
        "n_train": int(len(tr)), "n_valid": int(len(va)),
        "scaler": "standard, fit on train rows only",
        "optimizer": "adam (lr 0.001)", "loss": "sparse_categorical_crossentropy",
        "batch_size": batch_size, "max_epochs": epochs,
        "selection": f"early stopping on valid loss, patience {patience}, best-epoch weights restored",
        "seed": seed, **info,
    }
    # Ship the weights without the optimizer state (a third of the size, not needed for inference).
    from libtagger.seed import build_seed_model

    shipped = build_seed_model(n_features=X.shape[1])
    shipped.set_weights(model.get_weights())
    meta = write_model_folder(Path(out_dir), model=shipped, meta={
        "kind": "seed", "feature_names": list(feature_names_from_csv(csv_path)),
        "scaler": scaler, "recipe": recipe, "metrics": {},
    })

    clf = load_classifier(Path(out_dir).name, models_dir=Path(out_dir).parent)
    metrics: dict[str, Any] = {"protocol": "fault-filtered splits, one 30-s clip = one track"}
    for name, path in splits.items():
        result = evaluate_features(clf, features_csv=csv_path, split=path)
        metrics[name] = {"track_accuracy": result["track_accuracy"], "n_tracks": result["n_tracks"]}
    meta["metrics"] = metrics
    write_meta(Path(out_dir), meta)
    return metrics


register_trainer("seed", train_seed)
