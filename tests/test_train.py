"""Training writes a real, loadable model folder (short runs on a small slice of GTZAN)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from libtagger.classify.classifier import load_classifier
from libtagger.training.dataset import load_split
from libtagger.errors import ModelError

from gtzan_harness import small_gtzan


@pytest.fixture(scope="module")
def tiny(gtzan: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_gtzan(gtzan, tmp_path_factory.mktemp("gtzan"), {"train": 4, "valid": 2, "test": 2})


def test_short_training_writes_a_loadable_model(tiny: Path, tmp_path: Path) -> None:
    from libtagger.training.train import train_seed

    metrics = train_seed(tmp_path / "tiny", gtzan_dir=tiny, epochs=3, seed=0)
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["meta.json", "model.keras"]
    meta = json.loads((tmp_path / "tiny" / "meta.json").read_text())
    for key in ("name", "kind", "model_id", "labels", "feature_names", "scaler", "recipe", "metrics", "created"):
        assert key in meta, key
    assert meta["name"] == "tiny" and meta["kind"] == "seed" and meta["model_id"].startswith("tiny-")
    assert meta["metrics"] == metrics
    assert metrics["test"]["n_tracks"] == 20 and metrics["train"]["n_tracks"] == 40
    assert meta["recipe"]["n_train"] == 40 and meta["recipe"]["max_epochs"] == 3
    assert 1 <= meta["recipe"]["epochs"] <= 3
    assert set(metrics["selection"]) >= {"valid_accuracy_at_selected", "valid_accuracy_max"}

    clf = load_classifier("tiny", models_dir=tmp_path)
    probs = clf.predict(np.random.default_rng(0).normal(size=(7, 57)) * np.array(meta["scaler"]["scale"])
                        + np.array(meta["scaler"]["mean"]))
    assert probs.shape == (7, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_scaler_is_fit_on_the_rows_trained_on_never_test(tiny: Path, tmp_path: Path) -> None:
    from libtagger.training.dataset import load_feature_table, rows_for
    from libtagger.training.train import train_seed

    train_seed(tmp_path / "m", gtzan_dir=tiny, epochs=1)
    ids, X, _ = load_feature_table(tiny / "features_30_sec.csv")
    rows = rows_for(ids, load_split(tiny / "splits" / "train_filtered.txt")
                    + load_split(tiny / "splits" / "valid_filtered.txt"))
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    np.testing.assert_allclose(meta["scaler"]["mean"], X[rows].mean(axis=0))
    np.testing.assert_allclose(meta["scaler"]["scale"], X[rows].std(axis=0))


def test_same_seed_same_model(tiny: Path, tmp_path: Path) -> None:
    from libtagger.training.train import train_seed

    a = train_seed(tmp_path / "a", gtzan_dir=tiny, epochs=2, seed=3)
    b = train_seed(tmp_path / "b", gtzan_dir=tiny, epochs=2, seed=3)
    assert a == b
    ka, kb = load_classifier("a", tmp_path), load_classifier("b", tmp_path)
    for wa, wb in zip(ka.model.get_weights(), kb.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_choose_epochs_smooths_the_valid_curve() -> None:
    from libtagger.training.seed_training import choose_epochs

    # one lucky epoch (index 1) loses to a sustained plateau
    assert choose_epochs([0.1, 0.9, 0.1, 0.6, 0.6, 0.6, 0.6, 0.1], window=3) == 5
    assert choose_epochs([0.3, 0.3, 0.3], window=21) == 1  # ties: the earliest
    assert choose_epochs([0.5]) == 1


def test_unknown_kind_and_bad_epochs(tiny: Path, tmp_path: Path) -> None:
    from libtagger.errors import LibtaggerError
    from libtagger.training.train import train, train_seed

    with pytest.raises(ModelError, match="unknown model kind 'polka-net'"):
        train("polka-net", tmp_path / "x", gtzan_dir=tiny)
    with pytest.raises(LibtaggerError, match="epochs"):
        train_seed(tmp_path / "x", gtzan_dir=tiny, epochs=0)
    with pytest.raises(LibtaggerError, match="cannot read feature table"):
        train_seed(tmp_path / "x", gtzan_dir=tmp_path / "nowhere", epochs=1)


def test_cli_train(tiny: Path, tmp_path: Path) -> None:
    from libtagger.cli import app

    out = tmp_path / "cli-model"
    result = CliRunner().invoke(app, ["train", "--kind", "seed", "--out", str(out), "--gtzan", str(tiny),
                                      "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert load_classifier(str(out)).kind == "seed"

    bad = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "y"), "--gtzan", str(tmp_path / "none")])
    assert bad.exit_code == 1
    assert "cannot read" in bad.output and "Traceback" not in bad.output
