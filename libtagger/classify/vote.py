"""Combine the segment predictions of a track into one genre."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from libtagger.genres import GENRES


@dataclass(frozen=True)
class Vote:
    """The verdict for one track."""

    genre: str
    confidence: float
    runner_up: str
    runner_up_confidence: float
    probabilities: tuple[float, ...]


def vote(probabilities: np.ndarray, *, weights: np.ndarray | None = None,
         labels: tuple[str, ...] = GENRES) -> Vote:
    """Average segment probabilities (soft voting) into a track verdict.

    Soft voting keeps how sure each segment was: two lukewarm "rock" segments
    do not out-vote one segment that is certain of "jazz" the way a majority
    count would.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_segments, n_labels)
        One probability row per segment.
    weights : np.ndarray, shape (n_segments,), optional
        Relative weight of each segment (e.g. its duration); equal by default.

    Examples
    --------
    >>> v = vote(np.array([[0.7, 0.3], [0.5, 0.5]]), labels=("jazz", "rock"))
    >>> v.genre, round(v.confidence, 2), v.runner_up
    ('jazz', 0.6, 'rock')
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] != len(labels):
        raise ValueError(f"probabilities must have shape (n_segments>0, {len(labels)}), got {p.shape}")
    w = np.ones(p.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (p.shape[0],) or not np.all(w >= 0) or w.sum() <= 0:
        raise ValueError(f"weights must be {p.shape[0]} non-negative numbers with a positive sum, got {w!r}")
    mean = (p * w[:, None]).sum(axis=0) / w.sum()
    order = np.argsort(-mean, kind="stable")
    return Vote(genre=labels[order[0]], confidence=float(mean[order[0]]),
                runner_up=labels[order[1]], runner_up_confidence=float(mean[order[1]]),
                probabilities=tuple(float(x) for x in mean))
