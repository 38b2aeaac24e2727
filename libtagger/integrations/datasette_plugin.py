"""A Datasette plugin: the SQL function of the "genre disagrees" canned query on every connection.

Registered as the ``datasette`` entry point ``libtagger`` (pyproject.toml), so the metadata of
``libtagger browse --metadata-out`` works in a plain ``datasette index.db -m metadata.json``
too; ``libtagger browse`` registers this module itself when the entry point is not installed.
Only Datasette imports it: nothing in the core does.
"""

from __future__ import annotations

import sqlite3

from datasette import hookimpl

from libtagger.store.query import DISAGREES_FUNCTION, genre_disagrees


@hookimpl
def prepare_connection(conn: sqlite3.Connection) -> None:
    """Add ``libtagger_genre_disagrees(previous, genre)`` (see :func:`genre_disagrees`)."""
    conn.create_function(DISAGREES_FUNCTION, 2, genre_disagrees, deterministic=True)
