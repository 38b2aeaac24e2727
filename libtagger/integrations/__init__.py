"""Plug-ins that other programs load (beets, Datasette) and ``libtagger browse``'s Datasette server.

The core never imports this package; only ``libtagger browse`` (in :mod:`libtagger.cli`)
imports :mod:`libtagger.integrations.browse`, inside the command.
"""
