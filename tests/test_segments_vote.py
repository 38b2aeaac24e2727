"""Segment planning and soft voting."""

import numpy as np
import pytest

from libtagger.audio.segments import DEFAULT_MAX_SEGMENTS, plan_segments
from libtagger.classify.vote import vote


def test_short_track_is_one_segment_over_all_of_it():
    assert plan_segments(12.5) == [(0.0, 12.5)]


def test_long_track_segments_spread_to_both_ends():
    windows = plan_segments(240.0, max_segments=3)
    assert windows == [(0.0, 30.0), (105.0, 135.0), (210.0, 240.0)]
    assert all(end - start == 30.0 for start, end in windows)


def test_segment_count_bounded_by_track_length_and_option():
    assert len(plan_segments(61.0, max_segments=5)) == 2
    assert len(plan_segments(7200.0)) == DEFAULT_MAX_SEGMENTS
    assert len(plan_segments(45.0, max_segments=4)) == 1  # one 30-s window fits, centred
    assert plan_segments(45.0) == [(7.5, 37.5)]


@pytest.mark.parametrize("duration", [0.0, 2.9, float("nan")])
def test_too_short_or_nonsense_duration_is_refused(duration):
    with pytest.raises(ValueError, match="duration"):
        plan_segments(duration)


def test_max_segments_must_be_positive():
    with pytest.raises(ValueError, match="max_segments.*0"):
        plan_segments(100.0, max_segments=0)


def test_soft_vote_respects_certainty():
    labels = ("jazz", "rock", "pop")
    probs = np.array([[0.95, 0.05, 0.0], [0.3, 0.4, 0.3], [0.3, 0.4, 0.3]])
    v = vote(probs, labels=labels)
    assert v.genre == "jazz"
    assert v.runner_up == "rock"
    assert v.confidence == pytest.approx((0.95 + 0.3 + 0.3) / 3)
    assert sum(v.probabilities) == pytest.approx(1.0)


def test_weights_change_the_vote():
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert vote(probs, weights=np.array([1.0, 5.0]), labels=("a", "b")).genre == "b"


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="shape"):
        vote(np.zeros((0, 10)))
    with pytest.raises(ValueError, match="weights"):
        vote(np.ones((2, 10)) / 10, weights=np.array([0.0, 0.0]))
