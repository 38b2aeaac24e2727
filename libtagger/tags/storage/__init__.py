"""Read and write the genre tag of every supported audio format, safely.

One storage module per tag format (the beets/mediafile way). Which extension uses which
storage class is the ``storage`` column of :data:`libtagger.formats.FORMATS`, mapped to its
class in :mod:`.table` (a file whose content is another format than its extension says goes to
its content's storage: :func:`.table.storage_for`):

===========================  ==========================  ================================  ==========
storage key (formats)        genre is stored in          libtagger marker                  module
===========================  ==========================  ================================  ==========
id3-mp3, id3-wave, id3-aiff  ID3v2 ``TCON``              ``TXXX:LIBTAGGER_GENRE``          ``id3``
id3-wave (WAV) also          RIFF INFO ``IGNR``          (the ID3 chunk's marker)          ``wave``
id3-mp3 (MP3) also           APEv2 ``Genre`` (if there)  (the ID3 tag's marker)            ``id3``
vorbis (FLAC, Ogg)           Vorbis comment ``GENRE``    ``LIBTAGGER_GENRE``               ``keyed``
mp4 (AAC, ALAC)              MP4 ``©gen`` (+ old gnre)   ``----:org.libtagger:genre``      ``mp4``
asf (WMA)                    ASF ``WM/Genre``            ``LIBTAGGER/Genre``               ``keyed``
None (.au, raw .aac, ...)    (no genre; writing raises)
===========================  ==========================  ================================  ==========

The marker holds the value libtagger wrote, so a later run can tell its own
genre (which it may replace) from one a person set (which it keeps):
:func:`written_by_libtagger` is true when the current genre equals the marker.

The rest of the package: :mod:`.base` (what every storage class does), :mod:`.snapshots`
(:class:`Snapshot`, a file's genre state, and its JSON form for the journal), :mod:`.write`
(snapshot, write, restore; every write is a checked copy renamed over the file, see
:mod:`libtagger.tags.safe_write` for the permission, ownership, mtime and hard-link policy),
:mod:`.fields` (the scan's one read per file and what the index keeps of it).

Example
-------
>>> snap = snapshot("song.flac")                    # doctest: +SKIP
>>> write_genre("song.flac", "Hip-Hop")             # doctest: +SKIP
>>> read_genres("song.flac"), written_by_libtagger("song.flac")  # doctest: +SKIP
(['Hip-Hop'], True)
>>> restore("song.flac", snap)                      # undo        # doctest: +SKIP
"""

from libtagger.tags.safe_write import WriteResult, remove_stale_temporaries
from libtagger.tags.storage.fields import (LibraryFields, TagState, read_genres, read_library_fields,
                                           read_tag_state, written_by_libtagger)
from libtagger.tags.storage.snapshots import Snapshot, SnapshotError, genre_fields
from libtagger.tags.storage.table import STORAGE_KEYS, TAGGABLE_EXTENSIONS, can_hold_genre, cannot_hold
from libtagger.tags.storage.write import EditWatcher, restore, snapshot, write_genre

__all__ = [
    "TAGGABLE_EXTENSIONS", "STORAGE_KEYS", "WriteResult", "read_genres", "snapshot", "write_genre",
    "restore", "written_by_libtagger", "remove_stale_temporaries", "LibraryFields", "TagState",
    "read_library_fields", "read_tag_state", "genre_fields", "EditWatcher", "Snapshot", "SnapshotError",
    "can_hold_genre", "cannot_hold",
]
