"""The group-context rule (libtagger.classify.context): leave-one-out pooling, groups of one, baseline."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from libtagger.classify import context

ROOT = Path(__file__).resolve().parent.parent


def _log(rows: list[list[float]]) -> np.ndarray:
    return np.log(np.array(rows, dtype=np.float64))


def test_each_track_is_left_out_of_its_own_group() -> None:
    own = _log([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]])
    groups = np.array([5, 5, 5, 9])
    out = context.combine(own, groups, weight=0.4, min_others=1, size_prior=0.0, temperature=0.8)
    # by hand for track 0: its others are tracks 1 and 2 only (not itself, not track 3 of another group)
    logits = (0.4 * own[0] + 0.6 * (own[1] + own[2]) / 2) / 0.8
    expected = np.exp(logits - logits.max())
    np.testing.assert_allclose(out[0], expected / expected.sum(), rtol=1e-12)
    # changing track 0's own verdict changes its siblings' context but not the mean it pools with
    moved = own.copy()
    moved[0] = np.log([0.05, 0.05, 0.9])
    again = context.combine(moved, groups, weight=0.4, min_others=1, size_prior=0.0, temperature=0.8)
    assert not np.allclose(again[1], out[1])
    logits = (0.4 * moved[0] + 0.6 * (own[1] + own[2]) / 2) / 0.8
    np.testing.assert_allclose(again[0], np.exp(logits) / np.exp(logits).sum(), rtol=1e-12)


def test_a_group_of_one_keeps_its_own_verdict_exactly() -> None:
    probs = np.array([[0.55, 0.45], [0.2, 0.8], [0.9, 0.1]])
    out = context.combine(np.log(probs), context.group_ids(["a", None, "a"]), temperature=0.5)
    np.testing.assert_allclose(out[1], probs[1], rtol=1e-12)  # alone: neither pooled nor re-tempered
    assert not np.allclose(out[0], probs[0])


def test_min_others_leaves_small_groups_alone() -> None:
    own = _log([[0.6, 0.4], [0.1, 0.9], [0.3, 0.7], [0.35, 0.65], [0.2, 0.8]])
    groups = np.array([0, 0, 1, 1, 1])
    out = context.combine(own, groups, weight=0.5, min_others=2, size_prior=0.0, temperature=1.0)
    np.testing.assert_allclose(out[:2], np.exp(own[:2]), rtol=1e-12)  # 1 other each: below min_others
    assert not np.allclose(out[2:], np.exp(own[2:]))


def test_shapes_and_bad_arguments() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=7)
    out = context.combine(np.log(probs), np.array([0, 0, 1, 1, 1, 2, 3]))
    assert out.shape == (7, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    zero = probs.copy()
    zero[0] = np.eye(10)[3]  # zeros in a row stay finite (floored like apply_temperature)
    with np.errstate(divide="ignore"):
        log_zero = np.log(zero)  # -inf where a probability is 0
    assert np.isfinite(context.combine(log_zero, np.zeros(7, int))).all()
    with pytest.raises(ValueError, match="groups"):
        context.combine(np.log(probs), np.zeros(6, int))
    with pytest.raises(ValueError, match="weight"):
        context.combine(np.log(probs), np.zeros(7, int), weight=1.5)
    with pytest.raises(ValueError, match="temperature"):
        context.combine(np.log(probs), np.zeros(7, int), temperature=0.0)


def test_context_flips_a_wrong_verdict_that_the_track_alone_gets_wrong() -> None:
    # Genre 1 is the truth for the whole album; track 0 alone leans to 0 (0.55), its two siblings are sure of 1.
    own = _log([[0.55, 0.45, 1e-9], [0.1, 0.85, 0.05], [0.2, 0.75, 0.05]])
    alone = own.argmax(axis=1)
    out = context.combine(own, np.array([7, 7, 7]))  # the shipped constants
    assert alone[0] == 0 and out[0].argmax() == 1
    assert (out.argmax(axis=1) == 1).all()


def test_size_prior_shrinks_the_group_for_small_groups() -> None:
    own = _log([[0.7, 0.3], [0.2, 0.8]])
    full = context.combine(own, np.array([0, 0]), weight=0.5, min_others=1, size_prior=0.0, temperature=1.0)
    shrunk = context.combine(own, np.array([0, 0]), weight=0.5, min_others=1, size_prior=3.0, temperature=1.0)
    # one sibling with prior 3 gets (1 - 0.5) * 1/4 of the weight instead of 0.5
    assert shrunk[0, 0] > full[0, 0]
    logits = 0.875 * own[0] + 0.125 * own[1]
    np.testing.assert_allclose(shrunk[0], np.exp(logits) / np.exp(logits).sum(), rtol=1e-12)


def test_a_persons_genre_on_a_sibling_counts_as_that_genre() -> None:
    own = _log([[0.6, 0.4], [0.7, 0.3]])
    groups = np.array([0, 0])
    model_only = context.combine(own, groups, weight=0.5, temperature=1.0)
    with_person = context.combine(own, groups, weight=0.5, temperature=1.0, person_labels=np.array([-1, 1]),
                                  person_confidence=0.9)
    assert model_only[0].argmax() == 0 and with_person[0].argmax() == 1
    logits = 0.5 * own[0] + 0.5 * np.log([0.1, 0.9])
    np.testing.assert_allclose(with_person[0], np.exp(logits) / np.exp(logits).sum(), rtol=1e-12)
    np.testing.assert_allclose(context.person_log_probs(np.array([2]), 4, 0.7), np.log([[0.1, 0.1, 0.7, 0.1]]))


def test_group_ids_put_missing_keys_alone() -> None:
    ids = context.group_ids(["x", None, "x", "", "y", None])
    assert ids[0] == ids[2]
    assert len({ids[1], ids[3], ids[5], ids[4], ids[0]}) == 5


def test_majority_vote_baseline_and_its_ties() -> None:
    probs = np.array([[0.6, 0.4, 0.0], [0.3, 0.7, 0.0], [0.2, 0.8, 0.0], [0.9, 0.1, 0.0], [0.1, 0.2, 0.7]])
    groups = np.array([0, 0, 0, 1, 1])
    votes = context.majority_vote(probs, groups)
    assert votes[0] == 1  # outvoted 2 to 1 by its siblings
    assert votes[1] == 1 and votes[2] == 1
    assert votes[3] == 0 and votes[4] == 2  # 1 to 1: each keeps its own label
    assert context.majority_vote(probs, groups, min_others=3).tolist() == [0, 1, 1, 0, 2]


def test_the_shipped_constants_are_what_the_benchmark_chooses(gtzan: Path) -> None:
    # The constants' comment cites benchmarks/context_cv.py: rerun its choice on all out-of-fold clips.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import context_cv
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    _, y, _, log_p, groups = context_cv.load_oof(ROOT / "models" / "musicnn-head" / "cv_oof.json", "recipe", gtzan)
    rule = context_cv.choose_rule(log_p, y, groups)
    assert (rule.weight, rule.min_others, rule.size_prior) == (context.WEIGHT, context.MIN_OTHERS, context.SIZE_PRIOR)
    assert rule.temperature == pytest.approx(context.TEMPERATURE, abs=1e-4)


def test_the_docstring_examples_hold() -> None:
    import doctest

    result = doctest.testmod(context, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0
