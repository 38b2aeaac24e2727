"""A track's verdict in the context of its group (album or artist): pure functions, no I/O.

The tracks of one album or one artist almost always share a genre, so the other
tracks' verdicts are evidence about this one. The rule is log-linear pooling with
the track itself left out of its group:

    s      = (1 - weight) * n / (n + size_prior)                 n = other tracks in the group
    logits = (1 - s) * log p_own + s * mean over the others of log p_other
    p      = softmax(logits / temperature)

A track with fewer than ``min_others`` other tracks (or none: a group of one) keeps its
own probabilities untouched. A sibling whose genre a person set counts as one more
sibling whose probabilities are that genre at :data:`PERSON_CONFIDENCE` (the rest spread
evenly): strong evidence, but one voice among the others, never an override.

The constants below were chosen by nested artist-grouped CV on the out-of-fold
probabilities of the shipped head (``models/musicnn-head/cv_oof.json``, GTZAN train
split, artists from Sturm's index); ``benchmarks/context_cv.py`` reproduces the choice
and every figure. The test split took no part.

>>> own = np.log(np.array([[0.6, 0.4], [0.1, 0.9], [0.2, 0.8]]))
>>> combine(own, np.array([0, 0, 0]), weight=0.5, min_others=1, size_prior=0.0, temperature=1.0).argmax(1)
array([1, 1, 1])
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

# Chosen on all 443 out-of-fold train clips of the shipped head (models/musicnn-head/cv_oof.json),
# artists from Sturm's index, by `.venv/bin/python benchmarks/context_cv.py`: the weight with the best
# leave-one-out accuracy (grid 0.0 ... 1.0), then the temperature minimising the NLL of the tracks the
# context changes. Nested (chosen on 4 outer folds, scored on the 5th): accuracy 0.786 alone -> 0.815
# with context (0.865 without Bob Marley's 29 clips), ECE 0.029 -> 0.042; majority vote 0.856 (0.845).
# A minimum group size and a size prior were tried in the same nesting and did not pay (0.810).
#: Weight of the track's own log-probabilities (the others' mean gets 1 - WEIGHT).
WEIGHT: float = 0.5
#: Fewer other tracks than this in the group: the track keeps its own verdict.
MIN_OTHERS: int = 1
#: Pseudo-count that shrinks the group's weight for small groups (0: a single sibling counts fully).
SIZE_PRIOR: float = 0.0
#: Divides the pooled logits. Below 1: pooling log-probabilities averages them, which leaves the
#: pooled verdict less sure than it is right (the NLL fit sharpens it back).
TEMPERATURE: float = 0.7481
#: Probability a person's genre on a sibling track stands for (the rest spread over the other labels).
#: Not measurable on GTZAN (no person's tags); set by judgement to a confident model verdict's level.
PERSON_CONFIDENCE: float = 0.9

#: Log-probabilities are floored here so a zero probability stays finite (as apply_temperature does).
_LOG_FLOOR = float(np.log(1e-12))


def group_ids(keys: Sequence[Hashable | None]) -> np.ndarray:
    """(n,) int group ids from one key per track; a None or empty key makes a group of one.

    >>> group_ids(["Bob Marley", None, "Bob Marley", "", "Nas"]).tolist()
    [0, 1, 0, 2, 3]
    """
    ids: dict[Hashable, int] = {}
    out = np.empty(len(keys), dtype=np.int64)
    for i, key in enumerate(keys):
        if key is None or key == "":
            out[i] = len(ids)
            ids[("__alone__", i)] = out[i]
        else:
            out[i] = ids.setdefault(key, len(ids))
    return out


def person_log_probs(labels: np.ndarray, n_labels: int, confidence: float = PERSON_CONFIDENCE) -> np.ndarray:
    """(n, k) log-probabilities standing for a person's genre: ``confidence`` on label i, the rest shared.

    Parameters
    ----------
    labels : (n,) label indices in [0, n_labels).
    """
    if not 0.0 < confidence < 1.0 or n_labels < 2:
        raise ValueError(f"confidence must be in (0, 1) and n_labels >= 2, got {confidence} and {n_labels}")
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full((len(labels), n_labels), np.log((1.0 - confidence) / (n_labels - 1)))
    out[np.arange(len(labels)), labels] = np.log(confidence)
    return out


def leave_one_out_mean(evidence: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each track's mean of the *other* tracks' evidence in its group, and how many others there are.

    Parameters
    ----------
    evidence : (n, k) log-probabilities each track lends its group.
    groups : (n,) group ids (any integers).

    Returns
    -------
    others_mean : (n, k); zeros where a track has no other track.
    n_others : (n,) int.
    """
    evidence = np.asarray(evidence, dtype=np.float64)
    groups = np.asarray(groups)
    if evidence.ndim != 2 or groups.shape != (len(evidence),):
        raise ValueError(f"evidence must be (n, k) and groups (n,), got {evidence.shape} and {groups.shape}")
    _, index = np.unique(groups, return_inverse=True)
    index = index.reshape(-1)
    sums = np.zeros((index.max(initial=-1) + 1, evidence.shape[1]))
    np.add.at(sums, index, evidence)
    n_others = np.bincount(index)[index] - 1
    others_mean = (sums[index] - evidence) / np.maximum(n_others, 1)[:, None]
    others_mean[n_others == 0] = 0.0
    return others_mean, n_others


def blend(own_log_probs: np.ndarray, others_mean: np.ndarray, n_others: np.ndarray, *, weight: float = WEIGHT,
          min_others: int = MIN_OTHERS, size_prior: float = SIZE_PRIOR,
          temperature: float = TEMPERATURE) -> np.ndarray:
    """The pooling rule of this module, given each track's others already averaged.

    Parameters
    ----------
    own_log_probs : (n, k) the track's own log-probabilities.
    others_mean : (n, k) mean log-probabilities of its other tracks; n_others : (n,) how many.

    Returns
    -------
    (n, k) probabilities; rows with ``n_others < min_others`` are the track's own, renormalised.
    """
    if not 0.0 <= weight <= 1.0 or temperature <= 0 or size_prior < 0 or min_others < 1:
        raise ValueError(f"need 0 <= weight <= 1, temperature > 0, size_prior >= 0, min_others >= 1; got "
                         f"{weight}, {temperature}, {size_prior}, {min_others}")
    own = np.maximum(np.asarray(own_log_probs, dtype=np.float64), _LOG_FLOOR)
    n = np.asarray(n_others, dtype=np.float64)
    share = (1.0 - weight) * n / np.maximum(n + size_prior, 1e-12)
    pooled = ((1.0 - share)[:, None] * own + share[:, None] * np.asarray(others_mean)) / temperature
    logits = np.where((n >= min_others)[:, None], pooled, own)
    return _softmax(logits)


def combine(own_log_probs: np.ndarray, groups: np.ndarray, *, weight: float = WEIGHT,
            min_others: int = MIN_OTHERS, size_prior: float = SIZE_PRIOR, temperature: float = TEMPERATURE,
            person_labels: np.ndarray | None = None,
            person_confidence: float = PERSON_CONFIDENCE) -> np.ndarray:
    """Every track's probabilities pooled with its group's, the track itself left out of its group.

    Parameters
    ----------
    own_log_probs : (n, k) log-probabilities of each track's own verdict (e.g. ``np.log(probs)``).
    groups : (n,) group ids (see :func:`group_ids`); tracks sharing an id are one album or artist.
    person_labels : (n,) label index of a genre a person set on the track, -1 where none (optional).
        Such a track lends its group :func:`person_log_probs` instead of its own verdict.

    Returns
    -------
    (n, k) probabilities (rows sum to 1).
    """
    own = np.maximum(np.asarray(own_log_probs, dtype=np.float64), _LOG_FLOOR)
    evidence = _lent_evidence(own, person_labels, person_confidence)
    others_mean, n_others = leave_one_out_mean(evidence, groups)
    return blend(own, others_mean, n_others, weight=weight, min_others=min_others, size_prior=size_prior,
                 temperature=temperature)


def combine_tiers(own_log_probs: np.ndarray, album_groups: np.ndarray | None, artist_groups: np.ndarray, *,
                  person_labels: np.ndarray | None = None,
                  person_confidence: float = PERSON_CONFIDENCE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`combine` over two tiers: each track pools with its album when the album has another
    track (``min_others``), else with its artist (the second tier), else stays alone.

    Parameters
    ----------
    own_log_probs : (n, k); album_groups : (n,) group ids, or None (artist tier only);
    artist_groups : (n,) group ids; person_labels : (n,) as for :func:`combine`.

    Returns
    -------
    probs : (n, k) pooled probabilities; n_others : (n,) others in the chosen group;
    tier : (n,) 0 alone, 1 artist, 2 album.
    """
    own = np.maximum(np.asarray(own_log_probs, dtype=np.float64), _LOG_FLOOR)
    evidence = _lent_evidence(own, person_labels, person_confidence)
    mean, n_others = leave_one_out_mean(evidence, artist_groups)
    tier = np.where(n_others >= MIN_OTHERS, 1, 0)
    if album_groups is not None:
        album_mean, album_n = leave_one_out_mean(evidence, album_groups)
        on_album = album_n >= MIN_OTHERS
        mean = np.where(on_album[:, None], album_mean, mean)
        n_others = np.where(on_album, album_n, n_others)
        tier = np.where(on_album, 2, tier)
    return blend(own, mean, n_others), n_others, tier


def _lent_evidence(own: np.ndarray, person_labels: np.ndarray | None, person_confidence: float) -> np.ndarray:
    """(n, k) what each track lends its group: its own log-probabilities, or a person's genre where
    ``person_labels`` (n,) names one (>= 0)."""
    evidence = own.copy()
    if person_labels is not None:
        person = np.asarray(person_labels, dtype=np.int64)
        known = person >= 0
        evidence[known] = person_log_probs(person[known], own.shape[1], person_confidence)
    return evidence


def majority_vote(own_probs: np.ndarray, groups: np.ndarray, *, min_others: int = 1) -> np.ndarray:
    """Baseline: the most common top-1 label among the track and its other tracks; (n,) label indices.

    A tie goes to the track's own label when it is among the tied, else to the tied label
    with the highest summed probability in the group. Tracks with fewer than ``min_others``
    others keep their own top-1.

    Parameters
    ----------
    own_probs : (n, k) probabilities; groups : (n,) group ids.
    """
    probs = np.asarray(own_probs, dtype=np.float64)
    own = probs.argmax(axis=1)
    k = probs.shape[1]
    votes, n_others = leave_one_out_mean(np.eye(k)[own], groups)
    prob_sum, _ = leave_one_out_mean(probs, groups)
    counts = votes * n_others[:, None] + np.eye(k)[own]  # the others' votes plus the track's own
    # Ties: own label first (+0.5 is less than one vote), then the group's summed probability (< 0.5).
    score = counts + 0.5 * np.eye(k)[own] + 0.25 * (prob_sum * n_others[:, None] + probs) / (n_others + 1)[:, None]
    return np.where(n_others >= min_others, score.argmax(axis=1), own)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)
