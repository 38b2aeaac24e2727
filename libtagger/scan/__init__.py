"""A scan and an undo: discovery, what changed, classification, policy, writes, each file's outcome.

Uses audio/ (one file's analysis in a worker), classify/, tags/, store/ and
:mod:`libtagger.parallel` (every joblib call); never training/.
"""
