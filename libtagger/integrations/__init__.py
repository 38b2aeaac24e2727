"""Plug-ins that other programs load (beets, Datasette); the core never imports this package."""
