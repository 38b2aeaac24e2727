"""The library context: each track's verdict pooled with the other tracks of its album or artist.

The tracks of one album almost always share a genre, so a scan judges a track with its group
(:mod:`libtagger.classify.context` for the rule and its evidence, :mod:`libtagger.classify.groups`
for what an album and an artist are). The scan first saves each analysed track's own verdict
(``own_*`` columns) with status ``pending``; once every file of the run is analysed, this stage
pools, from the stored rows alone (nothing is decoded again):

* every track of the run, and every other track of an album or artist the run touched (a new
  track on an old album can change the old tracks' verdicts too);
* at level ``album`` (the default): a track with at least one other voting track on its album
  pools with the album, else with its artist (the second tier); at ``artist``: with its artist;
  ``none`` skips this stage and each track keeps its own verdict.

A track whose pooled verdict differs from the one stored (or that is ``pending``) goes through
the scan's policy and journaled write again, so a changed genre is rewritten and can be undone,
and a genre a person set is never replaced. Rejected and failed tracks lend no evidence; a
sibling whose genre a person set lends that genre (:func:`~libtagger.classify.context.person_log_probs`).

Why album first and pooling (not a majority vote): ``benchmarks/context_cv.py`` (README, "Library
context") measured both on GTZAN's artists, the only labelled groups there are; an album is a
narrower group of the same artist, and pooling gives a calibrated probability the write
threshold can trust, which a hard majority vote does not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from libtagger.classify import context as rule
from libtagger.classify.groups import GroupKeys, group_keys
from libtagger.classify.vote import Vote
from libtagger.store.index import GroupFields
from libtagger.store.records import ContextVerdict, TrackRow, Verdict

#: What ``scan --context`` accepts.
CONTEXT_LEVELS = ("album", "artist", "none")
#: The default level (see the module docstring for the evidence).
DEFAULT_CONTEXT = "album"


@dataclass(frozen=True)
class Pooled:
    """One track's verdict after pooling: the row it had, the model label and the new columns."""

    row: TrackRow
    label: str
    verdict: Verdict
    context: ContextVerdict

    @property
    def changed(self) -> bool:
        """Whether the stored verdict or its context differ from this one (or the row waits for it)."""
        old = self.row
        return (old.status == "pending" or old.genre != self.verdict.genre
                or old.runner_up != self.verdict.runner_up
                or abs((old.confidence or 0.0) - (self.verdict.confidence or 0.0)) > 1e-4
                or (old.context_level, old.context_size) != (self.context.context_level, self.context.context_size))


def own_context(vote: Vote, spellings: Sequence[str], labels: Sequence[str]) -> ContextVerdict:
    """The own-verdict columns of a track from its segments' vote (the model's ``labels``, written as ``spellings``)."""
    return ContextVerdict(own_genre=spellings[labels.index(vote.genre)], own_confidence=vote.confidence,
                          own_probabilities=json.dumps([round(p, 6) for p in vote.probabilities]))


def keys_of(row: TrackRow | GroupFields, *, folder_as_album: bool = False) -> GroupKeys:
    """The album and artist keys of an indexed track (see :func:`libtagger.classify.groups.group_keys`)."""
    return group_keys(row.artist, row.albumartist, row.album, row.compilation, row.real_path,
                      folder_as_album=folder_as_album)


def pool(rows: Sequence[TrackRow], *, level: str, labels: Sequence[str], spellings: Sequence[str],
         label_of: Callable[[str | None], str | None], folder_as_album: bool = False) -> list[Pooled]:
    """Every voting row's verdict pooled with its group (the row itself left out of it).

    Parameters
    ----------
    rows : the index's voting rows of one model (:meth:`~libtagger.store.index.Index.voting_rows`):
        each with ``own_probabilities`` over ``labels``.
    level : ``album`` (album, else artist), ``artist``, or ``none`` (each row its own verdict).
    label_of : the model label of a genre as a person spells it (None: not one of the labels).

    Returns
    -------
    One :class:`Pooled` per row, in order; a row without another voting track in its group
    keeps its own verdict (``context_level`` None).
    """
    if level not in CONTEXT_LEVELS:
        raise ValueError(f"level must be one of {', '.join(CONTEXT_LEVELS)}, got {level!r}")
    if not rows:
        return []
    own = _own_log_probs(rows, labels)
    keys = [keys_of(r, folder_as_album=folder_as_album) for r in rows]
    if level == "none":  # every track alone: its own verdict (a scan that turned the context off)
        n_others = chosen = np.zeros(len(rows), dtype=np.int64)
        probs = rule.blend(own, np.zeros_like(own), n_others)
    else:
        person = np.array([_person_label(r, label_of, labels) for r in rows])
        albums = rule.group_ids([k.album for k in keys]) if level == "album" else None
        probs, n_others, chosen = rule.combine_tiers(own, albums, rule.group_ids([k.artist for k in keys]),
                                                     person_labels=person)
    return [_pooled(row, probs[i], int(n_others[i]), int(chosen[i]), keys[i], labels, spellings)
            for i, row in enumerate(rows)]


def pool_as_album(rows: Sequence[TrackRow], *, key: str, labels: Sequence[str], spellings: Sequence[str],
                  label_of: Callable[[str | None], str | None]) -> list[Pooled]:
    """``rows`` pooled as the tracks of one album named ``key``, whatever their tags say.

    For a caller that knows the album better than the files' tags do (a beets import task,
    whose items beets has matched to one release before their tags are written). Rows
    without an own verdict (rejected, failed) are left out; the order of the others is kept.
    """
    voting = [r for r in rows if r.own_probabilities and r.status not in ("rejected", "error")]
    if not voting:
        return []
    own = _own_log_probs(voting, labels)
    person = np.array([_person_label(r, label_of, labels) for r in voting])
    probs = rule.combine(own, np.zeros(len(voting), dtype=np.int64), person_labels=person)
    chosen = 2 if len(voting) > rule.MIN_OTHERS else 0
    return [_pooled(r, probs[i], len(voting) - 1, chosen, GroupKeys(f"album\x1f{key}", None), labels, spellings)
            for i, r in enumerate(voting)]


def to_decide(pooled: Sequence[Pooled], run_id: int, *, folder_as_album: bool = False,
              everything: bool = False) -> list[Pooled]:
    """The pooled verdicts this run must decide: changed ones of the run's tracks and of their groups.

    A group is touched when a track of run ``run_id`` belongs to it (as album or as artist);
    tracks outside touched groups are left as they are, so a run over one new album never
    re-votes the rest of the library. ``everything``: every changed verdict (the scan's
    ``--context`` differs from the last scan's).
    """
    if everything:
        return [p for p in pooled if p.changed]
    touched: set[str] = set()
    for p in pooled:
        if p.row.run_id == run_id:
            touched.update(k for k in keys_of(p.row, folder_as_album=folder_as_album) if k is not None)
    return [p for p in pooled if p.changed and (
        p.row.run_id == run_id or any(k in touched for k in keys_of(p.row, folder_as_album=folder_as_album)
                                      if k is not None))]


def touched_members(rows: Sequence[TrackRow | GroupFields], run_id: int, *,
                    folder_as_album: bool = False) -> list[int]:
    """Ids of the rows in a group (album or artist) that a row of run ``run_id`` belongs to, and the
    run's own rows: every track whose pooled verdict the run can change.

    ``rows`` need only the group fields (:meth:`~libtagger.store.index.Index.voting_group_fields`).
    The set is closed: a member's album and artist groups are wholly inside it (an album's
    tracks share its artist key), so pooling these rows alone gives the same verdicts as
    pooling the whole library.
    """
    keys = [keys_of(r, folder_as_album=folder_as_album) for r in rows]
    touched = {k for r, ks in zip(rows, keys) if r.run_id == run_id for k in ks if k is not None}
    return [r.id for r, ks in zip(rows, keys)
            if r.id is not None and (r.run_id == run_id or any(k in touched for k in ks if k is not None))]


def _own_log_probs(rows: Sequence[TrackRow], labels: Sequence[str]) -> np.ndarray:
    """The rows' stored own verdicts as log-probabilities, shape (len(rows), len(labels)); ValueError
    when a row's ``own_probabilities`` is missing or has another length (another model's row)."""
    own = np.log(np.maximum(np.array([json.loads(r.own_probabilities or "[]") for r in rows]), 1e-12))
    if own.shape != (len(rows), len(labels)):
        raise ValueError(f"own probabilities must be ({len(rows)}, {len(labels)}), got {own.shape}")
    return own


def _pooled(row: TrackRow, probs: np.ndarray, n_others: int, chosen: int, keys: GroupKeys,
            labels: Sequence[str], spellings: Sequence[str]) -> Pooled:
    order = np.argsort(-probs, kind="stable")
    own = row.context.alone()
    if chosen == 0:
        context = own
    else:
        key = keys.album if chosen == 2 else keys.artist
        context = ContextVerdict(own.own_genre, own.own_confidence, own.own_probabilities,
                                 context_level="album" if chosen == 2 else "artist",
                                 context_key=_readable(key), context_size=n_others,
                                 context_probabilities=json.dumps([round(float(p), 6) for p in probs]))
    verdict = Verdict(spellings[order[0]], float(probs[order[0]]), spellings[order[1]], float(probs[order[1]]))
    return Pooled(row, labels[order[0]], verdict, context)


def _person_label(row: TrackRow, label_of: Callable[[str | None], str | None], labels: Sequence[str]) -> int:
    """Index of the first of the row's person genres that is one of ``labels``; -1 when none is.

    A genre equal to the row's ``written_genre`` (or its ``second_genre``, the runner-up
    ``--second-genre`` wrote beside it) is libtagger's own, written by another program from its
    verdict (beets: :func:`libtagger.verdict_api.note_rewritten`), not a person's.
    """
    for genre in json.loads(row.person_genres) if row.person_genres else []:
        if genre in (row.written_genre, row.second_genre):
            continue
        label = label_of(genre)
        if label is not None:
            return labels.index(label)
    return -1


def _readable(key: str | None) -> str | None:
    """A group key as ``show`` prints it (its parts joined by " / ")."""
    if key is None or "\x1f" not in key:
        return key  # an artist key is the artist's name as compared
    return " / ".join(key.split("\x1f")[1:])  # ("album", artist, title) or ("folder", path)
