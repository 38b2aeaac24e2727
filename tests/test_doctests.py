"""The examples in the docstrings of the pure modules run and stay true."""

import doctest
import importlib

import pytest

MODULES = ["libtagger.genres", "libtagger.errors", "libtagger.segments", "libtagger.vote",
           "libtagger.policy", "libtagger.index", "libtagger.query", "libtagger.report",
           "libtagger.lock", "libtagger.parallel"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
