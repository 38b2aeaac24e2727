"""``libtagger train``: the trainer of each model kind, and the seed model's trainer.

:data:`TRAINERS` maps a model kind to the function that trains it into a model folder;
the ``musicnn-head`` trainer lives in :mod:`libtagger.training.head_training` and is
imported only when asked for. Classifiers (libtagger.classify) know nothing of training.

The seed recipe (network and fitting: :mod:`libtagger.training.seed_training`) on the
fault-filtered GTZAN splits:

* data: rows of ``features_30_sec.csv`` for the clips of ``train_filtered.txt`` (443)
  and ``valid_filtered.txt`` (197); the test split (290) is scored once, after
  training, for the record in meta.json, and never used for any choice;
* stage 1 picks the epoch count E on valid; stage 2 retrains a fresh network, same
  seed, on train + valid rows for E epochs (the scaler is fit on exactly the rows it is
  trained on, never on test);
* seeds fixed (Python, NumPy, TF) and TF op determinism on, 1-2 CPU threads.

Why not keep the stage-1 weights of the best valid epoch? With 443 rows every
extra labelled clip helps, and the valid curve is flat enough near its peak that
the exact epoch matters less than the 44 % more data (and more artists).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from libtagger.classify.classifier import load_classifier, write_meta, write_model_folder
from libtagger.errors import LibtaggerError, ModelError
from libtagger.training.dataset import feature_names_from_csv, load_feature_table, load_split, rows_for, split_path
from libtagger.training.evaluate import evaluate_features
from libtagger.training.music_detector import train_music_detector
from libtagger.training.seed_training import DEFAULT_BATCH, DEFAULT_EPOCHS, SMOOTHING, build_seed_model, select_and_fit

Trainer = Callable[..., dict[str, Any]]


def train(kind: str, out_dir: Path, **options: Any) -> dict[str, Any]:
    """Train a model of ``kind`` into ``out_dir`` and return its metrics; ModelError for an unknown kind."""
    try:
        trainer = TRAINERS[kind]
    except KeyError:
        raise ModelError(f"unknown model kind {kind!r} for training; known: {', '.join(sorted(TRAINERS))}") from None
    return trainer(Path(out_dir), **options)


def register_trainer(kind: str, fn: Trainer) -> None:
    """Make ``train(kind, out_dir, **options)`` call ``fn(out_dir, **options)``."""
    TRAINERS[kind] = fn


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
        "network": "paper CNN-RNN (libtagger.training.seed_training.build_seed_model), 246,154 parameters",
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
        "scaler": scaler.to_meta(), "recipe": recipe, "metrics": {},
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


def _train_head(out_dir: Path, **options: Any) -> dict[str, Any]:
    """:func:`libtagger.training.head_training.train_head`, imported on first use."""
    from libtagger.training.head_training import train_head

    return train_head(out_dir, **options)


#: Model kind -> trainer ``fn(out_dir, **options) -> metrics``; a trainer ignores options it does not use.
TRAINERS: dict[str, Trainer] = {"seed": train_seed, "musicnn-head": _train_head,
                                "music-detector": train_music_detector}
