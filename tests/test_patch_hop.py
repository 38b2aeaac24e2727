"""The inference patch hop (issue #10): a hop of k x 61 frames keeps exactly every k-th patch of the
reference hop, so its effect on accuracy is measured on the hop-61 taggrams (head_cv's test strides)."""

from __future__ import annotations

import numpy as np

from conftest import music_like
from libtagger.audio import musicnn
from libtagger.audio.features import SAMPLE_RATE
from libtagger.training.head_cv import format_hop_table, summarize, thin_rows


def test_hop_of_three_reference_hops_keeps_every_third_patch() -> None:
    y = music_like(30.0, sr=SAMPLE_RATE, channels=1)[:, 0]
    ref = musicnn.mel_patches(y, sr=SAMPLE_RATE, hop=musicnn.PATCH_HOP)
    for k in (2, 3):
        thinned = musicnn.mel_patches(y, sr=SAMPLE_RATE, hop=k * musicnn.PATCH_HOP)
        assert len(ref) == 28 and len(thinned) == len(ref[::k])
        np.testing.assert_array_equal(thinned, ref[::k])


def test_thin_rows_keeps_the_first_row_and_every_kth_after_it() -> None:
    seqs = [np.arange(28 * 50).reshape(28, 50), np.arange(5 * 50).reshape(5, 50)]
    out = thin_rows(seqs, 3)
    assert [len(s) for s in out] == [10, 2]
    np.testing.assert_array_equal(out[0], seqs[0][[0, 3, 6, 9, 12, 15, 18, 21, 24, 27]])
    assert thin_rows(seqs, 1)[1] is not None and len(thin_rows(seqs, 1)[1]) == 5


def test_summary_pairs_a_thinned_candidate_with_the_same_model_at_hop_61() -> None:
    rng = np.random.default_rng(0)
    n = 40
    y = np.arange(n) % 10
    fold = np.arange(n) % 2
    right = np.eye(10)[y] * 0.8 + 0.02
    wrong = np.eye(10)[(y + 1) % 10] * 0.8 + 0.02
    worse = right.copy()
    worse[:10] = wrong[:10]  # 10 of the 40 clips flip at the coarser hop (5 in each fold)
    probs = {"lr_baseline": right, "recipe": right, "lr_baseline@hop183": right, "recipe@hop183": worse}
    cv = {"y": y, "fold": fold, "probs": probs, "probs_T": {c: p + rng.uniform(0, 1e-6, p.shape) for c, p in probs.items()},
          "folds": [{"T": {"lr_baseline": 1.0, "recipe": 1.0}, "epoch": 45} for _ in range(2)]}
    s = summarize(cv)
    assert s["recipe@hop183"]["delta_vs_hop61_mean"] == -0.25
    assert s["recipe@hop183"]["top1_same_as_hop61"] == 0.75
    assert s["lr_baseline@hop183"]["delta_vs_hop61_mean"] == 0.0
    table = format_hop_table(s, cv)
    assert "| recipe | 183 | 0.750" in table and "-0.250" in table
