"""The SQLite index (the only module that writes SQL), the run lock, and questions asked of the index.

Never imports TensorFlow or librosa, so `query`, `stats`, `show` and `runs` start fast.
"""
