"""The shipped models, installed as the data package ``libtagger.shipped_models``.

This folder holds no code: pyproject.toml maps it into the package so that every
install (wheel, pipx, editable) carries the models; :mod:`libtagger.paths` finds them
with importlib.resources. Each sub-folder with a meta.json is a model (see README.md).
"""
