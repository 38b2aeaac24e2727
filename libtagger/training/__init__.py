"""Building and scoring models: GTZAN readers, trainers per kind, evaluation, conversion.

The top of the library beside scan/: nothing below imports it.
"""
