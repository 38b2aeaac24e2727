"""Which 30-s windows of a track are analysed.

GTZAN's feature table is defined on 30-s clips, so a segment is 30 s: the model
sees the same unit it was trained on. A long track gets several segments spread
over it; voting them gives a genre for the whole track rather than for its intro.
"""

from __future__ import annotations

SEGMENT_SECONDS = 30.0
MIN_SECONDS = 3.0

#: Three windows: enough to out-vote an atypical intro, bridge or outro, while a
#: 4-minute track costs 90 s of analysed audio instead of 240 s (feature
#: extraction time grows linearly with analysed audio).
DEFAULT_MAX_SEGMENTS = 3


def plan_segments(duration: float, *, max_segments: int = DEFAULT_MAX_SEGMENTS,
                  length: float = SEGMENT_SECONDS) -> list[tuple[float, float]]:
    """Choose the (start, end) windows, in seconds, to analyse in a track.

    Windows are ``length`` long and spread evenly over the track (first one at
    the start, last one at the end when there is room); a track shorter than
    ``length`` is one window over all of it.

    Parameters
    ----------
    duration : float
        Track length in seconds, at least ``MIN_SECONDS``.
    max_segments : int
        Upper bound on the number of windows (>= 1).
    length : float
        Window length in seconds.

    Returns
    -------
    list of (start, end) tuples, sorted, non-overlapping.

    Examples
    --------
    >>> plan_segments(20.0)
    [(0.0, 20.0)]
    >>> plan_segments(240.0, max_segments=3)
    [(0.0, 30.0), (105.0, 135.0), (210.0, 240.0)]
    """
    if max_segments < 1:
        raise ValueError(f"max_segments must be at least 1, got {max_segments!r}")
    if not duration >= MIN_SECONDS:  # also catches NaN
        raise ValueError(f"duration must be at least {MIN_SECONDS} s, got {duration!r}")
    if duration <= length:
        return [(0.0, float(duration))]
    n = min(max_segments, int(duration // length))
    if n == 1:
        start = (duration - length) / 2.0
        return [(round(start, 3), round(start + length, 3))]
    step = (duration - length) / (n - 1)
    return [(round(i * step, 3), round(i * step + length, 3)) for i in range(n)]
