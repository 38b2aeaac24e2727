"""The ``musicnn-head`` classifier: a small CNN-RNN over MSD_musicnn taggrams joined with the 57 features.

Inference only (the network is built and trained by :mod:`libtagger.training.head_training`).
One 30-s segment is described by its taggram (one row of 50 MSD_musicnn tag likelihoods per
3-s patch, a patch every ~1 s, so 1..~30 rows) and by its 57 Kaggle-style features. The
network runs a 1-D convolution over time, then a recurrent layer, pools over time, joins the
pooled summary with the standardised features and ends in a softmax over the ten genres.

Variable length without masking: sequences are predicted in buckets of equal length (every
layer accepts any length >= 1), so no padding ever reaches the network and a one-patch
segment is scored like the crops it was trained on.

A shipped model is a folder with ``meta.json`` and one ``model.keras`` that holds every
ensemble member (same architecture, different seeds) and averages their probabilities; it
is made of standard Keras layers only, so no custom objects are needed to load it.

>>> clf = load_classifier("musicnn-head")                       # doctest: +SKIP
>>> clf.predict(features, taggrams=[t0, t1]).shape              # doctest: +SKIP
(2, 10)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libtagger.audio.musicnn import TAGS
from libtagger.classify.classifier import META_FILE, Classifier, register_kind
from libtagger.classify.scaler import Scaler
from libtagger.errors import ModelError
from libtagger.genres import GENRES

KIND = "musicnn-head"
#: Columns of a taggram row: the MSD_musicnn tags (audio.musicnn imports TensorFlow lazily).
N_TAGS = len(TAGS)
#: The front-end whose taggrams the head reads, relative to the models folder.
FRONTEND = "musicnn/msd_musicnn.weights.h5"


def network_inputs(model: Any, seqs: np.ndarray, feats: np.ndarray) -> list[np.ndarray]:
    """The model's inputs: ``[seqs, feats]``, or ``[seqs]`` for a taggram-only head."""
    return [seqs, feats] if len(model.inputs) == 2 else [seqs]


def batches_by_length(seqs: Sequence[np.ndarray], batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (indices, stacked (b, L, 50) float32 array), all sequences of one batch equally long."""
    lengths = np.array([len(s) for s in seqs])
    for L in np.unique(lengths):
        idx = np.flatnonzero(lengths == L)
        for i in range(0, len(idx), batch_size):
            j = idx[i:i + batch_size]
            yield j, np.stack([seqs[k] for k in j]).astype(np.float32)


def predict_members(models: Sequence[Any], seqs: Sequence[np.ndarray], feats: np.ndarray,
                    *, batch_size: int = 256) -> np.ndarray:
    """Average softmax of several heads.

    Parameters
    ----------
    seqs : n arrays of shape (n_patches_i, 50).
    feats : (n, 57) standardised features.

    Returns
    -------
    (n, 10) float64 probabilities.
    """
    out = np.zeros((len(seqs), len(GENRES)), dtype=np.float64)
    if len(seqs) == 0:
        return out
    for model in models:
        for idx, batch in batches_by_length(seqs, batch_size):
            p = model(network_inputs(model, batch, feats[idx].astype(np.float32)), training=False)
            out[idx] += np.asarray(p, dtype=np.float64)
    return out / len(models)


class MusicnnHead(Classifier):
    """Classifier of kind ``musicnn-head``: needs each segment's taggram besides its 57 features."""

    kind = KIND
    needs_taggrams = True
    n_tags = N_TAGS

    def __init__(self, folder: Path, meta: dict[str, Any], model: Any) -> None:
        super().__init__(folder, meta, model)
        self.scaler = Scaler.from_meta(meta.get("scaler"), n_features=self.n_features,
                                       where=Path(folder) / META_FILE)

    def predict(self, features: np.ndarray,
                taggrams: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Genre probabilities (n, 10) for n segments.

        Parameters
        ----------
        features : (n, 57) raw features in ``feature_names`` order.
        taggrams : n arrays of shape (n_patches_i, 50), n_patches_i >= 1 (any mix of lengths).
        """
        X = self._check_features(features)
        if taggrams is None:
            raise ModelError(f"model {self.name!r} needs the MSD_musicnn taggram of every segment")
        if len(taggrams) != len(X):
            raise ModelError(f"model {self.name!r}: {len(X)} feature rows but {len(taggrams)} taggrams")
        seqs = []
        for i, t in enumerate(taggrams):
            t = np.asarray(t, dtype=np.float32)
            if t.ndim != 2 or t.shape[1] != self.n_tags or len(t) == 0:
                raise ModelError(f"model {self.name!r}: taggram {i} has shape {t.shape}, "
                                 f"expected (n_patches >= 1, {self.n_tags})")
            if not np.isfinite(t).all():
                raise ModelError(f"model {self.name!r}: taggram {i} contains NaN or infinity")
            seqs.append(t)
        probs = predict_members([self.model], seqs, self.scaler.transform(X))
        return probs / probs.sum(axis=1, keepdims=True).clip(min=1e-12)


register_kind(KIND, MusicnnHead)
