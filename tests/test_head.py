"""The musicnn-head model: the shipped folder, scoring on taggram npz files, training a small one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from libtagger.classify.classifier import load_classifier, read_meta
from libtagger.errors import ModelError
from libtagger.genres import GENRES
from libtagger.classify.head import KIND, N_TAGS
from libtagger.training.head_training import clip_groups, evaluate_taggrams, load_clipset, train_head

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "musicnn-head"
NPZ = "musicnn/training_data_GTZAN_MSDmusicnn_taggram.npz"


@pytest.fixture(scope="module")
def head():
    return load_classifier("musicnn-head", models_dir=ROOT / "models")


@pytest.fixture(scope="module")
def train_clips(gtzan):
    return load_clipset(gtzan / NPZ, gtzan / "features_30_sec.csv", gtzan / "splits" / "train_filtered.txt")


def test_shipped_meta_records_the_recipe_and_validation():
    meta = read_meta(SHIPPED)
    assert meta["kind"] == KIND and meta["name"] == "musicnn-head"
    assert meta["frontend"] == "musicnn/msd_musicnn.weights.h5"
    assert len(meta["scaler"]["mean"]) == len(meta["scaler"]["scale"]) == len(meta["feature_names"]) == 57
    val = meta["metrics"]["validation"]
    assert 0.5 < val["track_accuracy"] <= 1.0 and val["n_tracks"] == 443
    assert meta["recipe"]["architecture"]["epochs"] >= 1


def test_predicts_probability_rows_for_any_length(head, train_clips):
    assert head.needs_taggrams and head.n_tags == N_TAGS == 50 and head.n_features == 57
    full = train_clips.seqs[0]
    taggrams = [full[:1], full[:28], full[5:12], full]  # 3 s, 30 s, 10 s, the whole clip
    feats = np.repeat(train_clips.features[:1], len(taggrams), axis=0)
    probs = head.predict(feats, taggrams=taggrams)
    assert probs.shape == (4, len(GENRES))
    assert np.all(probs >= 0) and np.allclose(probs.sum(axis=1), 1.0)
    # Batching by length must not change a row: mixed batch == one at a time.
    one = np.vstack([head.predict(feats[i:i + 1], taggrams=[t]) for i, t in enumerate(taggrams)])
    np.testing.assert_allclose(probs, one, rtol=1e-5, atol=1e-6)


def test_rejects_missing_or_misshapen_taggrams(head, train_clips):
    feats = train_clips.features[:2]
    with pytest.raises(ModelError, match="taggram"):
        head.predict(feats)
    with pytest.raises(ModelError, match="2 feature rows but 1 taggrams"):
        head.predict(feats, taggrams=[train_clips.seqs[0]])
    with pytest.raises(ModelError, match=r"shape \(0, 50\)"):
        head.predict(feats, taggrams=[train_clips.seqs[0], np.zeros((0, 50))])
    with pytest.raises(ModelError, match="shape"):
        head.predict(feats, taggrams=[train_clips.seqs[0], np.zeros((4, 49))])


def test_shipped_model_fits_its_training_split(head, gtzan):
    # The shipped ensemble was retrained on all 443 train clips, so this is training accuracy:
    # it must be high (the honest figure is the cross-validated one in meta.json).
    result = evaluate_taggrams(head, taggrams_npz=gtzan / NPZ, features_csv=gtzan / "features_30_sec.csv",
                               split=gtzan / "splits" / "train_filtered.txt")
    assert result["n_tracks"] == 443
    assert result["track_accuracy"] >= 0.95
    recorded = read_meta(SHIPPED)["metrics"]["train"]["track_accuracy"]
    assert result["track_accuracy"] == pytest.approx(recorded, abs=1e-9)


def write_npz_slice(src: Path, dst: Path, clips_per_genre: int) -> list[str]:
    """Write the rows of the first ``clips_per_genre`` clips of every genre of ``src`` to ``dst``."""
    with np.load(src) as d:
        X, Y, ids = d["X"], d["Y"], d["IDS"]
    chosen: list[str] = []
    for g in range(len(GENRES)):
        clips = list(dict.fromkeys(ids[Y == g]))
        chosen += clips[:clips_per_genre]
    keep = np.isin(ids, chosen)
    np.savez(dst, X=X[keep], Y=Y[keep], IDS=ids[keep])
    return [c.split("/")[-1].rsplit(".", 1)[0] for c in chosen]


def test_evaluate_taggrams_on_an_npz_slice(head, gtzan, tmp_path):
    npz = tmp_path / "slice.npz"
    clips = write_npz_slice(gtzan / NPZ, npz, clips_per_genre=3)
    csv = gtzan / "features_30_sec.csv"
    result = evaluate_taggrams(head, taggrams_npz=npz, features_csv=csv)
    assert result["n_tracks"] == 30 and result["taggrams"] == "slice.npz"
    cm = np.array(result["confusion"])
    assert cm.shape == (10, 10) and cm.sum() == 30 and (cm.sum(axis=1) == 3).all()
    assert result["track_accuracy"] == pytest.approx(np.trace(cm) / 30)
    assert set(result["per_genre"]) == set(GENRES)
    # A split list restricts the clips; an id the npz lacks is a clear error.
    split = tmp_path / "split.txt"
    split.write_text("\n".join(f"{c.split('.')[0]}/{c}.wav" for c in clips[:4]) + "\n")
    assert evaluate_taggrams(head, taggrams_npz=npz, features_csv=csv, split=split)["n_tracks"] == 4
    with pytest.raises(ModelError, match="no taggram"):
        evaluate_taggrams(head, taggrams_npz=npz, features_csv=csv, split=["rock.00099"])


def test_clip_groups_keep_blocks_of_consecutive_clips_together():
    keys = ["blues.00029", "blues.00021", "blues.00030", "rock.00029", "rock.00031"]
    g = clip_groups(keys)
    assert g[0] == g[1] != g[2]  # 20-29 vs 30-39
    assert g[0] != g[3] and g[3] != g[4]  # genres never share a group


def test_train_head_writes_a_loadable_folder(gtzan, tmp_path):
    metrics = train_head(tmp_path / "tiny-head", gtzan_dir=gtzan, epochs=2, members=2, threads=1)
    assert metrics["train"]["n_tracks"] == 443
    assert "validation" not in metrics  # a non-default recipe must not claim the search's CV figures
    clf = load_classifier("tiny-head", models_dir=tmp_path)
    assert clf.kind == KIND and clf.needs_taggrams
    meta = json.loads((tmp_path / "tiny-head" / "meta.json").read_text())
    assert meta["recipe"]["architecture"]["epochs"] == 2
    assert "2 members" in meta["recipe"]["ensemble"]
    probs = clf.predict(np.zeros((1, 57)) + meta["scaler"]["mean"], taggrams=[np.full((3, 50), 0.1)])
    assert probs.shape == (1, 10) and np.isclose(probs.sum(), 1.0)
