"""The write policy: given a verdict and a file's current tags, what happens to the file.

Rules (README.md, "Write policy"):

* below ``min_confidence``: nothing is written, the track is ``unsure``;
* the file has no genre, or its genre is one libtagger wrote: the genre is
  written (``tagged``; ``would-tag`` in a dry run);
* a genre a person set is kept (``kept``) unless ``overwrite``;
* a file that already holds exactly the verdict's genre is ``kept`` and not written.

With ``--second-genre`` (:func:`genres_to_write`), the runner-up is written as a second value when
it is close: its confidence at least :data:`SECOND_GENRE_RATIO` times the first's, and the pair's
summed confidence at least ``min_confidence`` (the pair then stands for the verdict in the rules
above: a track torn between two genres may be written with both where one alone is unsure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from libtagger.genres import display_name

#: The default threshold, read off the default model's calibrated out-of-fold predictions
#: (nested artist-grouped CV on the train split, models/README.md): at 0.6 it writes 74 % of
#: tracks and 88 % of those tags are right; at 0.5, 84 % and 85 %; at 0.7, 65 % and 91 %.
DEFAULT_MIN_CONFIDENCE = 0.6


#: The closeness rule of ``--second-genre``: runner_up_confidence >= R * confidence. Chosen on the
#: shipped head's out-of-fold GTZAN probabilities as the lowest R whose written tags stay 87 % right
#: (benchmarks/second_genre.py; README "Two genres" has the figures on GTZAN and realdev).
SECOND_GENRE_RATIO = 0.5


@dataclass(frozen=True)
class Decision:
    """``status`` is the report status; ``write`` tells whether the file must change."""

    status: str
    write: bool


def decide(*, genre_label: str, confidence: float, current: list[str], ours: bool,
           written: str | Sequence[str] | None = None,
           min_confidence: float = DEFAULT_MIN_CONFIDENCE, overwrite: bool = False,
           dry_run: bool = False) -> Decision:
    """Apply the write policy to one track.

    Parameters
    ----------
    genre_label : str
        The voted genre label (``"hiphop"``).
    confidence : float
        Its voted probability.
    current : list of str
        The genre values the file holds now.
    ours : bool
        Whether those values are the ones libtagger wrote.
    written : str or sequence of str, optional
        The genre as it would be written (a learned model's own spelling), or the genres
        (:func:`genres_to_write`); default the display name of ``genre_label``.

    Examples
    --------
    >>> decide(genre_label="jazz", confidence=0.9, current=[], ours=False)
    Decision(status='tagged', write=True)
    >>> decide(genre_label="jazz", confidence=0.9, current=["Bebop"], ours=False)
    Decision(status='kept', write=False)
    >>> decide(genre_label="jazz", confidence=0.3, current=[], ours=False)
    Decision(status='unsure', write=False)
    >>> decide(genre_label="jazz", confidence=0.9, current=["Jazz"], ours=True)
    Decision(status='kept', write=False)
    >>> decide(genre_label="rock", written=("Rock", "Metal"), confidence=0.9, current=["Rock", "Metal"], ours=True)
    Decision(status='kept', write=False)
    """
    if confidence < min_confidence:
        return Decision("unsure", False)
    wanted = written if written is not None else display_name(genre_label)
    wanted_values = [wanted] if isinstance(wanted, str) else list(wanted)
    if current and not ours and not overwrite:
        return Decision("kept", False)
    if current == wanted_values:
        # Already holds exactly this genre (libtagger's or a person's spelling of it): nothing is
        # written, the file is left alone, and the report says so (``tagged`` means "written").
        return Decision("kept", False)
    return Decision("would-tag" if dry_run else "tagged", not dry_run)



def genres_to_write(genre: str, confidence: float, runner_up: str | None, runner_up_confidence: float | None, *,
                    second_genre: bool, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                    ratio: float = SECOND_GENRE_RATIO) -> tuple[tuple[str, ...], float]:
    """The genres a verdict writes (one, or two when the runner-up is close) and the confidence the policy tests.

    Parameters
    ----------
    genre, confidence
        The verdict's genre (as written) and its voted confidence.
    runner_up, runner_up_confidence
        The second genre of the vote and its confidence (None: there is none).
    second_genre
        ``--second-genre``: without it the verdict writes its one genre.
    min_confidence, ratio
        The runner-up is added when ``runner_up_confidence >= ratio * confidence`` and
        ``confidence + runner_up_confidence >= min_confidence``; the pair's sum is then the
        confidence :func:`decide` tests.

    Examples
    --------
    >>> genres_to_write("Rock", 0.5, "Metal", 0.4, second_genre=True)
    (('Rock', 'Metal'), 0.9)
    >>> genres_to_write("Rock", 0.9, "Metal", 0.05, second_genre=True)
    (('Rock',), 0.9)
    >>> genres_to_write("Rock", 0.5, "Metal", 0.4, second_genre=False)
    (('Rock',), 0.5)
    """
    if (not second_genre or runner_up is None or runner_up_confidence is None or runner_up == genre
            or runner_up_confidence < ratio * confidence
            or confidence + runner_up_confidence < min_confidence):
        return (genre,), confidence
    return (genre, runner_up), round(confidence + runner_up_confidence, 6)
