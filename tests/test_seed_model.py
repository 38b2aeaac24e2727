"""The paper's CNN-RNN, the model-folder interface and the shipped seed model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from libtagger.classify.classifier import (DEFAULT_MODEL, available_models, load_classifier, model_id_for, read_meta,
                                  register_kind)
from libtagger.errors import ModelError
from libtagger.genres import GENRES
from libtagger.paths import models_dir

SHIPPED = models_dir() / "seed"


def test_paper_network_has_246154_parameters_192_frozen() -> None:
    from libtagger.training.seed_training import build_seed_model

    model = build_seed_model(n_features=57)
    assert model.count_params() == 246_154
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == 192
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == (["Conv1D", "MaxPooling1D", "BatchNormalization", "Dropout"] * 2
                     + ["LSTM", "Dropout"] + ["Dense", "Dropout"] * 4 + ["Dense"])
    assert model.input_shape == (None, 57, 1) and model.output_shape == (None, 10)


def test_scaler_matches_standard_scaler() -> None:
    from sklearn.preprocessing import StandardScaler

    from libtagger.classify.scaler import Scaler
    from libtagger.classify.seed import network_input

    rng = np.random.default_rng(1)
    X = rng.normal(5, 3, size=(40, 57))
    X[:, 3] = 2.0  # a constant column must not divide by zero
    ours = network_input(X, Scaler.fit(X))[:, :, 0]
    assert ours.shape == (40, 57)
    np.testing.assert_allclose(ours, StandardScaler().fit_transform(X), atol=1e-5)
    reference = StandardScaler().fit(X)
    stored = Scaler.fit(X).to_meta()
    np.testing.assert_allclose(stored["mean"], reference.mean_)
    np.testing.assert_allclose(stored["scale"], reference.scale_)


def test_scaler_round_trips_through_meta_and_refuses_bad_layouts() -> None:
    from libtagger.classify.scaler import Scaler

    X = np.random.default_rng(2).normal(size=(30, 4))
    scaler = Scaler.fit(X)
    again = Scaler.from_meta(json.loads(json.dumps(scaler.to_meta())), n_features=4)
    np.testing.assert_array_equal(again.transform(X), scaler.transform(X))
    with pytest.raises(ModelError, match="4 means and 4 scales"):
        Scaler.from_meta({"mean": [0.0] * 4, "scale": [1.0] * 3}, n_features=4)
    with pytest.raises(ModelError, match="positive"):
        Scaler.from_meta({"mean": [0.0] * 4, "scale": [1.0, 0.0, 1.0, 1.0]}, n_features=4)


@pytest.fixture(scope="module")
def shipped():
    if not (SHIPPED / "meta.json").exists():
        pytest.fail(f"the shipped seed model is missing: {SHIPPED} (train it with `libtagger train`)")
    return load_classifier("seed")


def test_shipped_seed_model_is_the_default_and_listed() -> None:
    assert DEFAULT_MODEL in ("seed", "musicnn-head")
    assert "seed" in available_models()


def test_shipped_seed_meta_describes_its_weights(shipped) -> None:
    meta = json.loads((SHIPPED / "meta.json").read_text())
    assert meta["kind"] == "seed" and meta["name"] == "seed"
    assert meta["model_id"] == model_id_for("seed", SHIPPED / "model.keras") == shipped.model_id
    assert tuple(meta["labels"]) == GENRES
    assert len(meta["feature_names"]) == 57 == len(meta["scaler"]["mean"]) == len(meta["scaler"]["scale"])
    assert meta["recipe"]["batch_size"] == 128
    assert shipped.needs_taggrams is False and shipped.labels == GENRES
    assert shipped.n_features == 57 and shipped.n_tags == 0


def test_shipped_seed_scores_what_its_meta_states(shipped, gtzan: Path) -> None:
    """The shipped file is the trained model: re-scoring it reproduces meta.json exactly."""
    from libtagger.training.dataset import split_path
    from libtagger.training.evaluate import evaluate_features

    meta = read_meta(SHIPPED)
    for split in ("train", "valid", "test"):
        result = evaluate_features(shipped, features_csv=gtzan / "features_30_sec.csv",
                                   split=split_path(split, gtzan))
        assert result["n_tracks"] == meta["metrics"][split]["n_tracks"]
        assert abs(result["track_accuracy"] - meta["metrics"][split]["track_accuracy"]) <= 1e-9
    # a trained 10-way model on held-out artists is far above chance (0.1)
    assert meta["metrics"]["test"]["track_accuracy"] > 0.3


def test_shipped_seed_predicts_probability_rows(shipped, gtzan: Path) -> None:
    from libtagger.training.dataset import load_feature_table

    _, X, y = load_feature_table(gtzan / "features_30_sec.csv")
    probs = shipped.predict(X[:25])
    assert probs.shape == (25, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()
    # deterministic: the same rows alone or within a larger batch give the same answer
    np.testing.assert_allclose(shipped.predict(X[:3]), probs[:3], atol=1e-6)
    assert shipped.predict(np.zeros((0, 57))).shape == (0, 10)


def test_predict_rejects_wrong_shapes(shipped) -> None:
    with pytest.raises(ModelError, match=r"\(n_segments, 57\)"):
        shipped.predict(np.zeros((2, 56)))
    with pytest.raises(ModelError, match="NaN"):
        shipped.predict(np.full((1, 57), np.nan))


def test_missing_model_names_the_folder_and_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="'nope' not found") as err:
        load_classifier("nope")
    assert "seed" in str(err.value)
    with pytest.raises(ModelError, match="available: none"):
        load_classifier("seed", models_dir=tmp_path)
    assert available_models(tmp_path / "absent") == []


@pytest.fixture()
def copied(tmp_path: Path) -> Path:
    if not (SHIPPED / "meta.json").exists():
        pytest.fail(f"the shipped seed model is missing: {SHIPPED}")
    folder = tmp_path / "seed"
    shutil.copytree(SHIPPED, folder)
    return folder


def test_changed_weights_are_refused(copied: Path) -> None:
    with open(copied / "model.keras", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="do not match meta.json"):
        load_classifier("seed", models_dir=copied.parent)


def test_broken_meta_is_refused(copied: Path) -> None:
    meta = json.loads((copied / "meta.json").read_text())
    (copied / "meta.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_classifier("seed", models_dir=copied.parent)
    (copied / "meta.json").write_text(json.dumps(dict(meta, kind="polka-net")))
    with pytest.raises(ModelError, match="unknown model kind 'polka-net'"):
        load_classifier("seed", models_dir=copied.parent)
    (copied / "meta.json").write_text(json.dumps(dict(meta, labels=list(reversed(GENRES)))))
    with pytest.raises(ModelError, match="labels"):
        load_classifier("seed", models_dir=copied.parent)
    del meta["scaler"]
    (copied / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="scaler"):
        load_classifier("seed", models_dir=copied.parent)


def test_missing_weights_and_folder_path(copied: Path) -> None:
    clf = load_classifier(str(copied))  # a folder path works as a name too
    assert clf.folder == copied
    (copied / "model.keras").unlink()
    with pytest.raises(ModelError, match="weights file is missing"):
        load_classifier("seed", models_dir=copied.parent)


def test_register_kind_needs_a_classifier_subclass() -> None:
    with pytest.raises(TypeError):
        register_kind("odd", dict)  # type: ignore[arg-type]
