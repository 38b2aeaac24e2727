"""The examples in the docstrings of the pure modules run and stay true."""

import doctest
import importlib

import pytest

MODULES = ["libtagger.genres", "libtagger.errors", "libtagger.audio.segments", "libtagger.classify.vote",
           "libtagger.scan.policy", "libtagger.store.index", "libtagger.store.query", "libtagger.report",
           "libtagger.store.lock", "libtagger.store.run_context", "libtagger.parallel", "libtagger.audio.analysis",
           "libtagger.classify.scaler", "libtagger.scan.inventory", "libtagger.formats",
           "libtagger.audio.decode", "libtagger.tags.riff_info"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
