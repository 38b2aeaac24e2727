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
from libtagger.training.head_training import RECIPE, Recipe, clip_groups, evaluate_taggrams, load_clipset, train_head

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
    assert len(meta["feature_names"]) == 57 and meta["feature_transform"] == "level-invariant-53"
    # the network's scaler sees the 53 level-invariant columns; the linear branch also the 150 pooled tags
    assert len(meta["scaler"]["mean"]) == len(meta["scaler"]["scale"]) == 53
    assert np.asarray(meta["linear"]["coef"]).shape == (10, 150 + 53) and meta["linear"]["weight"] == 0.5
    assert 0 < meta["temperature"] < 2
    val = meta["metrics"]["validation"]
    assert 0.5 < val["recipe"]["track_accuracy_mean"] <= 1.0 and val["n_tracks"] == 443
    assert "artist-grouped" in val["scheme"] and "lr_baseline" in val
    assert val["track_accuracy"] == val["recipe"]["track_accuracy_mean"]  # the headline figure `libtagger models` shows
    assert meta["metrics"]["test"] is None and "--split test_filtered.txt" in meta["metrics"]["test_note"]
    assert meta["recipe"]["architecture"]["epochs"] >= 1


def test_shipped_validation_figures_are_recomputable_from_the_out_of_fold_file():
    """meta.json's CV figures come from cv_oof.json (every clip's outer-fold probabilities)."""
    from libtagger.training.evaluate import expected_calibration_error

    meta = read_meta(SHIPPED)
    val = meta["metrics"]["validation"]
    oof = json.loads((SHIPPED / "cv_oof.json").read_text())
    y = np.array([GENRES.index(t["true"]) for t in oof["tracks"]])
    fold = np.array([t["fold"] for t in oof["tracks"]])
    assert len(y) == val["n_tracks"] == 443 and set(fold.tolist()) == set(range(5))
    for name in ("recipe", "lr_baseline"):
        raw = np.array([t[f"{name}_probs"] for t in oof["tracks"]])
        cal = np.array([t[f"{name}_probs_T"] for t in oof["tracks"]])
        accs = [(raw[fold == k].argmax(1) == y[fold == k]).mean() for k in range(5)]
        assert val[name]["track_accuracy_mean"] == pytest.approx(np.mean(accs), abs=1e-9)
        assert val[name]["ece_raw"] == pytest.approx(expected_calibration_error(raw, y), abs=1e-4)
        assert val[name]["ece_after_T"] == pytest.approx(expected_calibration_error(cal, y), abs=1e-4)
    assert (SHIPPED / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_level_invariant_features_ignore_the_playback_gain(train_clips):
    from libtagger.audio.level_invariant import GAIN_DEPENDENT, level_invariant_53, level_invariant_names

    names = train_clips.feature_names
    F = train_clips.features[:20]
    louder = F.copy()
    a = 10 ** (6 / 20)  # +6 dB
    for col, power in (("rms_mean", 1), ("rms_var", 2), ("harmony_mean", 1), ("harmony_var", 2),
                       ("perceptr_mean", 1), ("perceptr_var", 2)):
        louder[:, names.index(col)] *= a ** power
    louder[:, names.index("mfcc1_mean")] += 25.0
    out = level_invariant_53(F, names)
    assert out.shape == (20, 53) and len(level_invariant_names(names)) == 53
    assert not set(GAIN_DEPENDENT) & set(level_invariant_names(names)[:50])
    np.testing.assert_allclose(level_invariant_53(louder, names), out, rtol=1e-9, atol=1e-9)
    assert np.isfinite(level_invariant_53(np.zeros((1, 57)), names)).all()  # digital silence stays finite


def test_shipped_head_is_level_invariant_in_its_feature_path(head, train_clips):
    names = train_clips.feature_names
    F = train_clips.features[:8].copy()
    louder = F.copy()
    for col in ("rms_mean", "harmony_mean", "perceptr_mean"):
        louder[:, names.index(col)] *= 2.0
    for col in ("rms_var", "harmony_var", "perceptr_var"):
        louder[:, names.index(col)] *= 4.0
    louder[:, names.index("mfcc1_mean")] += 30.0
    seqs = train_clips.seqs[:8]
    np.testing.assert_allclose(head.predict(louder, taggrams=seqs), head.predict(F, taggrams=seqs), atol=1e-6)


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
    recorded = read_meta(SHIPPED)["metrics"]["train"]
    assert result["track_accuracy"] == pytest.approx(recorded["track_accuracy"], abs=1e-9)
    assert result["ece"] == pytest.approx(recorded["ece"], abs=1e-9)


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
    assert meta["feature_transform"] == "level-invariant-53" and meta["temperature"] == RECIPE.temperature
    probs = clf.predict(np.median(clf_features(gtzan), axis=0, keepdims=True), taggrams=[np.full((3, 50), 0.1)])
    assert probs.shape == (1, 10) and np.isclose(probs.sum(), 1.0)


def clf_features(gtzan: Path) -> np.ndarray:
    from libtagger.training.dataset import load_feature_table

    return load_feature_table(gtzan / "features_30_sec.csv")[1][:50]


def test_new_head_predicts_network_linear_and_temperature_as_recorded(gtzan, tmp_path, train_clips):
    """predict = softmax(log(0.5 network + 0.5 linear) / T), each part rebuilt from the folder's files."""
    from libtagger.audio.level_invariant import level_invariant_53
    from libtagger.classify.head import apply_temperature, pooled_taggram, predict_members

    train_head(tmp_path / "mini", gtzan_dir=gtzan, epochs=1, members=1, threads=1)
    clf = load_classifier("mini", models_dir=tmp_path)
    feats, seqs = train_clips.features[:6], [s[:k] for s, k in zip(train_clips.seqs[:6], (1, 2, 5, 9, 28, 30))]
    probs = clf.predict(feats, taggrams=seqs)
    assert probs.shape == (6, 10) and np.allclose(probs.sum(axis=1), 1.0)
    Xt = level_invariant_53(feats, train_clips.feature_names)
    net = predict_members([clf.model], seqs, clf.scaler.transform(Xt))
    lin = clf.linear.predict_proba(np.hstack([pooled_taggram(seqs), Xt]))
    expected = apply_temperature(0.5 * net + 0.5 * lin, clf.temperature)
    np.testing.assert_allclose(probs, expected, rtol=1e-6, atol=1e-9)
    assert clf.temperature == RECIPE.temperature != 1.0


def test_an_old_style_head_folder_still_loads_and_predicts(gtzan, tmp_path, train_clips):
    """Folders written before feature_transform/linear/temperature existed: raw 57 features, network only."""
    old_style = Recipe(**{**RECIPE.__dict__, "feature_transform": "raw-57", "linear_C": None, "temperature": 1.0})
    train_head(tmp_path / "old-head", gtzan_dir=gtzan, epochs=1, members=1, recipe=old_style, threads=1)
    folder = tmp_path / "old-head"
    before = load_classifier("old-head", models_dir=tmp_path).predict(train_clips.features[:3],
                                                                       taggrams=train_clips.seqs[:3])
    meta = json.loads((folder / "meta.json").read_text())
    for key in ("feature_transform", "linear", "temperature"):
        meta.pop(key, None)
    (folder / "meta.json").write_text(json.dumps(meta))
    clf = load_classifier("old-head", models_dir=tmp_path)
    assert clf.linear is None and clf.temperature == 1.0 and len(clf.scaler.mean) == 57
    np.testing.assert_allclose(clf.predict(train_clips.features[:3], taggrams=train_clips.seqs[:3]), before,
                               rtol=1e-6, atol=1e-9)


def test_a_broken_linear_branch_is_a_model_error(gtzan, tmp_path):
    train_head(tmp_path / "bad", gtzan_dir=gtzan, epochs=1, members=1, threads=1)
    meta = json.loads((tmp_path / "bad" / "meta.json").read_text())
    meta["linear"]["coef"] = meta["linear"]["coef"][:9]
    (tmp_path / "bad" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="linear branch"):
        load_classifier("bad", models_dir=tmp_path)
