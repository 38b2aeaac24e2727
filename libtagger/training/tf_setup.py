"""Reproducible TensorFlow for training: fixed seeds, deterministic ops, few CPU threads."""

from __future__ import annotations


def configure_tensorflow(*, seed: int = 0, threads: int = 2) -> None:
    """Fix seeds (Python, NumPy, TF), turn on op determinism and cap TF at ``threads`` CPU threads.

    Thread counts can only be set before TF starts its runtime; later calls keep
    the first setting (TF raises RuntimeError, which is ignored here).
    """
    import keras
    import tensorflow as tf

    for setter in (tf.config.threading.set_intra_op_parallelism_threads,
                   tf.config.threading.set_inter_op_parallelism_threads):
        try:
            setter(threads)
        except RuntimeError:
            pass
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
