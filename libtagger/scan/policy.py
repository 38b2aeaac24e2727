"""The write policy: given a verdict and a file's current tags, what happens to the file.

Rules (README.md, "Write policy"):

* below ``min_confidence``: nothing is written, the track is ``unsure``;
* the file has no genre, or its genre is one libtagger wrote: the genre is
  written (``tagged``; ``would-tag`` in a dry run);
* a genre a person set is kept (``kept``) unless ``overwrite``;
* a file that already holds exactly the verdict's genre is ``kept`` and not written.
"""

from __future__ import annotations

from dataclasses import dataclass

from libtagger.genres import display_name

#: The default threshold, read off the default model's calibrated out-of-fold predictions
#: (nested artist-grouped CV on the train split, models/README.md): at 0.6 it writes 74 % of
#: tracks and 88 % of those tags are right; at 0.5, 84 % and 85 %; at 0.7, 65 % and 91 %.
DEFAULT_MIN_CONFIDENCE = 0.6


@dataclass(frozen=True)
class Decision:
    """``status`` is the report status; ``write`` tells whether the file must change."""

    status: str
    write: bool


def decide(*, genre_label: str, confidence: float, current: list[str], ours: bool, written: str | None = None,
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
    written : str, optional
        The genre as it would be written (a learned model's own spelling); default the
        display name of ``genre_label``.

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
    """
    if confidence < min_confidence:
        return Decision("unsure", False)
    wanted = written if written is not None else display_name(genre_label)
    if current and not ours and not overwrite:
        return Decision("kept", False)
    if current == [wanted]:
        # Already holds exactly this genre (libtagger's or a person's spelling of it): nothing is
        # written, the file is left alone, and the report says so (``tagged`` means "written").
        return Decision("kept", False)
    return Decision("would-tag" if dry_run else "tagged", not dry_run)

