"""The library's own genre labels: spelling normalised, merged by a mapping file, spelled back.

People spell one genre many ways (``Hip Hop``, ``Hip-Hop``, ``hiphop``; ``R&B``, ``RnB``), so a
label is a *key*: lower case, ``&`` read as ``and``, every character that is not a letter or
a digit dropped, then a few known variants folded (:data:`ALIASES`). A mapping file merges or
renames keys (``Death Metal = Metal``). A learned model writes each label in the library's
most common spelling of it (:func:`spellings`).

Mapping file: one ``FROM = TO`` per line; ``#`` starts a comment; both sides are normalised,
so ``death-metal = metal`` is the same line; ``FROM = -`` leaves that genre out.

>>> label_key("Hip-Hop"), label_key("hip hop"), label_key("R&B"), label_key("RnB")
('hiphop', 'hiphop', 'rnb', 'rnb')
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from libtagger.errors import LibtaggerError

#: Keys that name the same genre as another key (after case, spaces, hyphens and &/and are gone).
ALIASES: dict[str, str] = {
    "randb": "rnb", "rhythmandblues": "rnb", "rb": "rnb",
    "hiphoprap": "hiphop", "raphiphop": "hiphop",
    "drumnbass": "drumandbass", "dnb": "drumandbass",
    "rocknroll": "rockandroll", "rockroll": "rockandroll",
}
#: The right-hand side of a mapping line that leaves the genre out.
LEAVE_OUT = "-"


class MappingFileError(LibtaggerError):
    """A genre mapping file cannot be read or has a line that is not ``FROM = TO``."""


def label_key(text: str) -> str:
    """The normalised key of one genre value ('' when nothing is left).

    >>> label_key("  Singer/Songwriter "), label_key("Drum & Bass"), label_key("drum n bass")
    ('singersongwriter', 'drumandbass', 'drumandbass')
    """
    key = text.strip().lower().replace("&", " and ").replace("'n'", " n ")
    key = re.sub(r"[\W_]+", "", key)
    return ALIASES.get(key, key)


def read_mapping(path: str | os.PathLike[str]) -> dict[str, str]:
    """Key -> key (or :data:`LEAVE_OUT`) from a mapping file; MappingFileError names the line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingFileError(f"{path}: cannot read the genre mapping ({exc})") from None
    mapping: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        source, sep, target = text.partition("=")
        target = target.strip()
        if not sep or not label_key(source) or not (target == LEAVE_OUT or label_key(target)):
            raise MappingFileError(f"{path}:{number}: expected 'FROM = TO' (or 'FROM = -'), got {line.strip()!r}")
        mapping[label_key(source)] = LEAVE_OUT if target == LEAVE_OUT else label_key(target)
    return mapping


def mapping_targets(path: str | os.PathLike[str]) -> dict[str, str]:
    """Key -> the spelling the mapping file gives its right-hand side (used when the library never
    spells that genre itself)."""
    out: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        _, sep, target = line.split("#", 1)[0].partition("=")
        if sep and target.strip() and target.strip() != LEAVE_OUT:
            out.setdefault(label_key(target), target.strip())
    return out


def track_label(values: Sequence[str], mapping: Mapping[str, str], *, multi: str = "first") -> str | None:
    """The label of one track from its genre values (a person's), or None when it has none to learn.

    ``multi="first"``: the first value that has a key; ``"skip"``: None when the values name
    more than one label after normalising and mapping.

    >>> track_label(["Death Metal", "Rock"], {"deathmetal": "metal"})
    'metal'
    >>> track_label(["Hip Hop", "Rap"], {}, multi="skip") is None
    True
    """
    keys = []
    for value in values:
        key = label_key(value)
        if key:
            keys.append(mapping.get(key, key))
    if not keys:
        return None
    if multi == "skip" and len(set(keys)) > 1:
        return None
    if multi not in ("first", "skip"):
        raise ValueError(f"multi must be 'first' or 'skip', got {multi!r}")
    return None if keys[0] == LEAVE_OUT else keys[0]


def spellings(values_per_track: Iterable[Sequence[str]], labels: Iterable[str], mapping: Mapping[str, str],
              fallback: Mapping[str, str] | None = None) -> dict[str, str]:
    """Label -> the library's most common spelling of it (ties: the first seen).

    A value counts for the label its own key maps to, so after ``Metal = Rock`` the spelling
    of ``rock`` is the commonest of the values whose key is ``rock`` itself; a label no value
    spells directly takes ``fallback`` (the mapping file's spelling) or the most common value
    mapped to it.

    >>> spellings([["Hip Hop"], ["hip-hop"], ["Hip Hop"], ["Metal"]], ["hiphop", "rock"], {"metal": "rock"},
    ...           fallback={"rock": "Rock"})
    {'hiphop': 'Hip Hop', 'rock': 'Rock'}
    """
    direct: dict[str, Counter[str]] = {}
    merged: dict[str, Counter[str]] = {}
    for values in values_per_track:
        for value in values:
            key = label_key(value)
            if not key:
                continue
            direct.setdefault(key, Counter())[value.strip()] += 1
            merged.setdefault(mapping.get(key, key), Counter())[value.strip()] += 1
    out = {}
    for label in labels:
        if label in direct:
            out[label] = direct[label].most_common(1)[0][0]
        elif fallback and label in fallback:
            out[label] = fallback[label]
        else:
            out[label] = merged[label].most_common(1)[0][0] if label in merged else label
    return out
