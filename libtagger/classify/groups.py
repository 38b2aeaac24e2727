"""Which album and which artist a track belongs to, from the fields the index keeps: pure, no I/O.

The groups whose tracks vote together (:mod:`libtagger.classify.context`): the album is
``(album artist or artist, album)``, the artist level (the second tier) is the album artist or
the artist. A compilation (the flag ``TCMP``/``cpil``/``COMPILATION`` set, or an album artist
such as "Various Artists") is no album for this purpose: its tracks are by different artists
in different genres, so each falls back to its own artist. The keys are opaque strings made to
be compared (feed them to :func:`libtagger.classify.context.group_ids`); None means "no such
group": the track is a group of one at that level.

Names are compared by :func:`name_key`: Unicode NFKC, case folded, runs of white space made one
space, trimmed. Unlike :func:`libtagger.training.labels.label_key` (genre spellings) it keeps
punctuation: it tells artists apart ("!!!", "Sunn O)))", "AC/DC" and "ACDC" on two albums are
rare enough to stay apart rather than risk merging names that differ only there).

>>> keys = group_keys(artist="Bob Marley & The Wailers", albumartist=None, album="Exodus",
...                   compilation=0, path="/m/Marley/Exodus/01.flac")
>>> keys.album == album_key("bob marley  & the wailers", None, "EXODUS", 0), keys.artist
(True, 'bob marley & the wailers')
>>> group_keys("Nas", "Various Artists", "Hip-Hop Classics", 0, "/m/c/01.mp3")
GroupKeys(album=None, artist='nas')
"""

from __future__ import annotations

import os
import unicodedata
from typing import NamedTuple

#: Album artists that say "compilation" (after :func:`name_key`): MusicBrainz's special artist,
#: its common short forms, and the same in the languages of the big tagging databases (German
#: Discogs/CDDB entries, French, Spanish, Portuguese, Italian, Dutch). Never an artist key either.
VARIOUS_ARTISTS: frozenset[str] = frozenset({
    "various artists", "various artist", "various", "va", "v.a.", "v/a", "v. a.",
    "verschiedene interpreten", "verschiedene künstler", "verschiedene", "artistes divers",
    "artistes variés", "varios artistas", "vários artistas", "artisti vari", "artisti varie",
    "diverse artiesten", "diverse interpreten",
})

#: Joins the parts of a key (a character no tag text holds in practice).
_SEP = "\x1f"


class GroupKeys(NamedTuple):
    """A track's album key and artist key (None: no group at that level)."""

    album: str | None
    artist: str | None


def name_key(text: str | None) -> str | None:
    """The normalised form names are compared in (NFKC, case folded, one space), or None when blank.

    >>> name_key("  The  Beatles "), name_key("ＡＢＢＡ"), name_key("   "), name_key(None)
    ('the beatles', 'abba', None, None)
    """
    if text is None:
        return None
    key = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return key or None


def is_various(name: str | None) -> bool:
    """True when ``name`` says "various artists" in one of the spellings of :data:`VARIOUS_ARTISTS`.

    >>> is_various("Various Artists"), is_various("VA"), is_various("Verschiedene Interpreten"), is_various("Nas")
    (True, True, True, False)
    """
    return name_key(name) in VARIOUS_ARTISTS


def is_compilation(albumartist: str | None, compilation: int | None) -> bool:
    """True for a track of a compilation: the flag set, or a "Various Artists" album artist.

    ``compilation`` None (not read yet) counts as not flagged.
    """
    return bool(compilation) or is_various(albumartist)


def artist_key(artist: str | None, albumartist: str | None, compilation: int | None = 0) -> str | None:
    """The track's artist group: the album artist, else the artist; a compilation's track its own artist.

    Never a "Various Artists" name (None instead); None when no artist is known.

    >>> artist_key("Nas", "Nas"), artist_key("Nas feat. AZ", "Nas"), artist_key("Nas", "Various Artists")
    ('nas', 'nas', 'nas')
    >>> artist_key("Nas", "DJ Premier", compilation=1), artist_key(None, "VA"), artist_key(" ", None)
    ('nas', None, None)
    """
    # A compilation's album artist is whoever compiled it, not who plays the track.
    order = (artist, albumartist) if is_compilation(albumartist, compilation) else (albumartist, artist)
    for name in order:
        key = name_key(name)
        if key is not None and key not in VARIOUS_ARTISTS:
            return key
    return None


def album_key(artist: str | None, albumartist: str | None, album: str | None, compilation: int | None = 0,
              path: str | None = None, *, folder_as_album: bool = False) -> str | None:
    """The track's album group, ``(album artist or artist, album)``; None when it has none.

    None for a compilation (the track falls back to its artist, see :func:`artist_key`), and
    for an album title without any artist: "Greatest Hits" alone would pool strangers.

    ``folder_as_album``: a track without an album tag takes its parent folder (of ``path``) as
    its album. Off by default: GTZAN, the only labelled data here, has no folders to measure
    it on, and a folder of mixed downloads would pool unrelated tracks, which costs more than
    an untagged album's tracks each voting alone.

    >>> album_key("Nas", None, "Illmatic") == album_key("NAS", "nas", "illmatic")
    True
    >>> album_key("Nas", None, "Illmatic", compilation=1), album_key(None, None, "Greatest Hits")
    (None, None)
    >>> album_key(None, None, None, 0, "/m/untagged/01.mp3") is None
    True
    >>> album_key(None, None, None, 0, "/m/untagged/01.mp3", folder_as_album=True)
    'folder\\x1f/m/untagged'
    """
    if is_compilation(albumartist, compilation):
        return None
    title = name_key(album)
    if title is None:
        if folder_as_album and path:
            return f"folder{_SEP}{os.path.dirname(path)}"
        return None
    who = artist_key(artist, albumartist, compilation)
    return None if who is None else f"album{_SEP}{who}{_SEP}{title}"


def group_keys(artist: str | None, albumartist: str | None, album: str | None, compilation: int | None,
               path: str | None = None, *, folder_as_album: bool = False) -> GroupKeys:
    """Both keys of a track (see :func:`album_key` and :func:`artist_key`), from its index fields."""
    return GroupKeys(album_key(artist, albumartist, album, compilation, path, folder_as_album=folder_as_album),
                     artist_key(artist, albumartist, compilation))
