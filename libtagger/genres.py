"""The ten GTZAN genres, their label order and the names written into tags."""

from __future__ import annotations

import re

#: Label order used by every model (alphabetical, as in GTZAN and the musicnn npz).
GENRES: tuple[str, ...] = (
    "blues", "classical", "country", "disco", "hiphop",
    "jazz", "metal", "pop", "reggae", "rock",
)

#: How each genre is written into a tag.
DISPLAY_NAMES: dict[str, str] = {
    "blues": "Blues", "classical": "Classical", "country": "Country",
    "disco": "Disco", "hiphop": "Hip-Hop", "jazz": "Jazz", "metal": "Metal",
    "pop": "Pop", "reggae": "Reggae", "rock": "Rock",
}


def display_name(label: str) -> str:
    """Return the tag spelling of a genre label.

    >>> display_name("hiphop")
    'Hip-Hop'
    """
    try:
        return DISPLAY_NAMES[label]
    except KeyError:
        raise ValueError(f"unknown genre label {label!r}; expected one of {', '.join(GENRES)}") from None


def parse_genre(text: str | None) -> str | None:
    """Map free tag text to a genre label, or None when it is not one of the ten.

    Case, spaces, hyphens and a few common spellings are ignored.

    >>> parse_genre("Hip Hop")
    'hiphop'
    >>> parse_genre("Synthwave") is None
    True
    """
    if not text:
        return None
    key = re.sub(r"[^a-z]", "", text.lower())
    key = {"rap": "hiphop", "hiphoprap": "hiphop", "heavymetal": "metal"}.get(key, key)
    return key if key in DISPLAY_NAMES else None
