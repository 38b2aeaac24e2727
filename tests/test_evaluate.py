"""Scoring: metrics arithmetic, the filtered-split evaluation, the random protocol, plots and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from libtagger.classify.classifier import load_classifier
from libtagger.training.evaluate import (evaluate_features, expected_calibration_error, plot_confusion,
                                         random_split_protocol, score_predictions)
from libtagger.genres import GENRES

from gtzan_harness import small_gtzan

KEYS = {"track_accuracy", "n_tracks", "per_genre", "confusion", "labels"}


@pytest.fixture(scope="module")
def tiny_model(gtzan: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from libtagger.training.train import train_seed

    data = small_gtzan(gtzan, tmp_path_factory.mktemp("gtzan"), {"train": 4, "valid": 2, "test": 3})
    folder = tmp_path_factory.mktemp("models") / "tiny"
    train_seed(folder, gtzan_dir=data, epochs=3)
    return folder, data


def test_score_predictions_by_hand() -> None:
    y_true = np.array([0, 0, 1, 1, 1, 9])
    y_pred = np.array([0, 1, 1, 1, 0, 9])
    result = score_predictions(y_true, y_pred)
    assert set(result) == KEYS
    assert result["track_accuracy"] == pytest.approx(4 / 6)
    assert result["n_tracks"] == 6 and result["labels"] == list(GENRES)
    assert result["confusion"][0][:2] == [1, 1] and result["confusion"][1][:2] == [1, 2]
    assert result["per_genre"]["blues"] == {"precision": 0.5, "recall": 0.5, "support": 2}
    assert result["per_genre"]["classical"] == {"precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3),
                                                "support": 3}
    assert result["per_genre"]["rock"] == {"precision": 1.0, "recall": 1.0, "support": 1}
    assert result["per_genre"]["jazz"] == {"precision": 0.0, "recall": 0.0, "support": 0}


def test_evaluate_features_on_a_split(tiny_model: tuple[Path, Path]) -> None:
    folder, data = tiny_model
    clf = load_classifier(str(folder))
    result = evaluate_features(clf, features_csv=data / "features_30_sec.csv",
                               split=data / "splits" / "test_filtered.txt")
    assert KEYS <= set(result)
    assert result["n_tracks"] == 30
    assert np.asarray(result["confusion"]).shape == (10, 10)
    assert np.asarray(result["confusion"]).sum() == result["n_tracks"]
    assert sum(g["support"] for g in result["per_genre"].values()) == 30
    assert result["model_id"] == clf.model_id and result["split"] == "test_filtered.txt"
    # the same clips given as ids score the same
    ids = [line.split("/")[-1] for line in (data / "splits" / "test_filtered.txt").read_text().split()]
    again = evaluate_features(clf, features_csv=data / "features_30_sec.csv", split=ids)
    assert again["confusion"] == result["confusion"]


def test_plot_confusion_writes_a_png(tmp_path: Path) -> None:
    result = score_predictions(np.arange(10), np.roll(np.arange(10), 1))
    out = plot_confusion(result, tmp_path / "plots" / "cm.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_random_split_protocol_scores_a_third_of_the_table(gtzan: Path) -> None:
    result = random_split_protocol(features_csv=gtzan / "features_30_sec.csv", epochs=2, seed=0)
    assert KEYS <= set(result)
    assert result["n_tracks"] == 330 and np.asarray(result["confusion"]).sum() == 330
    assert result["protocol"]["n_test"] == 330
    assert result["protocol"]["n_fit"] + result["protocol"]["n_valid"] == 670


def test_cli_evaluate_json_and_plot(tiny_model: tuple[Path, Path], tmp_path: Path) -> None:
    from libtagger.cli import app

    folder, data = tiny_model
    png = tmp_path / "cm.png"
    result = CliRunner().invoke(app, ["evaluate", "--model", str(folder), "--gtzan", str(data),
                                      "--split", "valid", "--json", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    assert parsed["n_tracks"] == 20 and parsed["split"] == "valid_filtered.txt"
    assert {"track_accuracy", "per_genre", "confusion"} <= set(parsed)
    assert png.exists()

    text = CliRunner().invoke(app, ["evaluate", "--model", str(folder), "--gtzan", str(data)])
    assert text.exit_code == 0, text.output
    assert "track accuracy" in text.stdout and "classical" in text.stdout


def test_cli_evaluate_errors(tiny_model: tuple[Path, Path], tmp_path: Path) -> None:
    from libtagger.cli import app

    folder, data = tiny_model
    missing = CliRunner().invoke(app, ["evaluate", "--model", "no-such-model"])
    assert missing.exit_code == 1
    assert "'no-such-model' not found" in missing.output and "Traceback" not in missing.output
    bad_split = CliRunner().invoke(app, ["evaluate", "--model", str(folder), "--split", str(tmp_path / "x.txt")])
    assert bad_split.exit_code == 1 and "cannot read split list" in bad_split.output
    bad_protocol = CliRunner().invoke(app, ["evaluate", "--model", str(folder), "--protocols", "kfold"])
    assert bad_protocol.exit_code == 2


def test_expected_calibration_error_by_hand() -> None:
    # bin (0.8667, 0.9333]: one right at 0.9; bin (0.5333, 0.6]: one wrong at 0.6 -> 0.5*0.1 + 0.5*0.6
    probs = np.array([[0.9, 0.1], [0.6, 0.4]])
    assert expected_calibration_error(probs, np.array([0, 1])) == pytest.approx(0.35)
    assert expected_calibration_error(probs, np.array([0, 0])) == pytest.approx(0.5 * 0.1 + 0.5 * 0.4)
    # perfectly calibrated: 4 tracks at 0.75, three right
    p = np.tile([0.75, 0.25], (4, 1))
    assert expected_calibration_error(p, np.array([0, 0, 0, 1])) == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error(np.zeros((0, 10)), np.zeros(0, int)) == 0.0


def test_cli_evaluate_json_has_ece_and_tracks_to_recompute_it(tiny_model: tuple[Path, Path]) -> None:
    from libtagger.cli import app

    folder, data = tiny_model
    result = CliRunner().invoke(app, ["evaluate", "--model", str(folder), "--gtzan", str(data),
                                      "--split", "valid", "--json"])
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    tracks = parsed["tracks"]
    assert len(tracks) == parsed["n_tracks"] == 20
    assert all(set(t) == {"id", "true", "predicted", "confidence"} for t in tracks)
    ids = [line.split("/")[-1].removesuffix(".wav") for line in (data / "splits" / "valid_filtered.txt").read_text().split()]
    assert [t["id"] for t in tracks] == ids
    assert {t["true"] for t in tracks} <= set(GENRES) and {t["predicted"] for t in tracks} <= set(GENRES)
    assert all(0.1 <= t["confidence"] <= 1.0 for t in tracks)  # top-1 of 10 genres is at least 1/10
    # accuracy, confusion and ECE recomputed from the per-track rows
    right = np.array([t["true"] == t["predicted"] for t in tracks])
    assert parsed["track_accuracy"] == pytest.approx(right.mean(), abs=1e-12)
    assert parsed["confusion"][GENRES.index(tracks[0]["true"])][GENRES.index(tracks[0]["predicted"])] >= 1
    conf = np.array([t["confidence"] for t in tracks])
    edges = np.linspace(0, 1, 16)
    ece = sum(((conf > lo) & (conf <= hi)).mean() * abs(right[(conf > lo) & (conf <= hi)].mean()
                                                         - conf[(conf > lo) & (conf <= hi)].mean())
              for lo, hi in zip(edges[:-1], edges[1:]) if ((conf > lo) & (conf <= hi)).any())
    assert parsed["ece"] == pytest.approx(ece, abs=1e-12)
    assert 0.0 <= parsed["ece"] <= 1.0

    text = CliRunner().invoke(app, ["evaluate", "--model", str(folder), "--gtzan", str(data), "--split", "valid"])
    assert f"ECE {parsed['ece']:.3f}" in text.stdout


def test_plot_without_matplotlib_is_one_clean_error(monkeypatch, tmp_path):
    # matplotlib is the plot extra: a plain install must say what to install, not raise ImportError
    import sys

    from libtagger.errors import LibtaggerError
    from libtagger.training.evaluate import plot_confusion

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    result = {"confusion": [[1, 0], [0, 1]], "labels": ["a", "b"], "track_accuracy": 1.0}
    with pytest.raises(LibtaggerError, match=r"confusion\.png not drawn: matplotlib is not installed"):
        plot_confusion(result, tmp_path / "confusion.png")
    assert not (tmp_path / "confusion.png").exists()
