"""The ``musicnn-head`` classifier: a small CNN-RNN over MSD_musicnn taggrams joined with the features.

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

Optional meta.json keys (folders without them load as before: raw 57 features, the
network alone, no temperature):

* ``feature_transform``: a name from :data:`libtagger.audio.level_invariant.TRANSFORMS`
  applied to the 57 raw features before ``scaler`` (e.g. ``level-invariant-53``);
* ``linear``: a logistic regression on [taggram mean, max, std over patches, transformed
  features] stored as plain numbers (:class:`LinearBranch`), averaged with the network's
  probabilities with weight ``linear["weight"]``;
* ``temperature``: T > 0; the averaged probabilities p become softmax(log p / T).
  T < 1 sharpens (an averaged, label-smoothed ensemble is under-confident).

>>> clf = load_classifier("musicnn-head")                       # doctest: +SKIP
>>> clf.predict(features, taggrams=[t0, t1]).shape              # doctest: +SKIP
(2, 10)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from libtagger.audio.level_invariant import transform_by_name
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
    feats : (n, d) standardised (transformed) features.

    Returns
    -------
    (n, k) float64 probabilities, k = the heads' output width (10 for the shipped head).
    """
    k = int(models[0].outputs[0].shape[-1]) if models else len(GENRES)
    out = np.zeros((len(seqs), k), dtype=np.float64)
    if len(seqs) == 0:
        return out
    for model in models:
        for idx, batch in batches_by_length(seqs, batch_size):
            p = model(network_inputs(model, batch, feats[idx].astype(np.float32)), training=False)
            out[idx] += np.asarray(p, dtype=np.float64)
    return out / len(models)


def pooled_taggram(seqs: Sequence[np.ndarray]) -> np.ndarray:
    """Per segment the mean, max and std (ddof 0) of each tag over its patches.

    Parameters
    ----------
    seqs : n arrays of shape (n_patches_i >= 1, 50).

    Returns
    -------
    (n, 150) float64: 50 means, 50 maxima, 50 standard deviations.
    """
    rows = [np.asarray(s, dtype=np.float64) for s in seqs]
    if not rows:
        return np.zeros((0, 3 * N_TAGS))
    return np.stack([np.concatenate([s.mean(axis=0), s.max(axis=0), s.std(axis=0)]) for s in rows])


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) row by row; (n, k) in, (n, k) float64 out (T = 1 only renormalises)."""
    logits = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)) / float(temperature)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


@dataclass(eq=False)
class LinearBranch:
    """A multinomial logistic regression on standardised inputs, as plain arrays.

    Attributes
    ----------
    mean, scale : (d,) standardisation of the inputs.
    coef : (k, d); intercept : (k,), k = the model's labels (10 for the shipped head).
    weight : share of this branch in the average with the network (0..1).
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    weight: float = 0.5

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, d) raw inputs -> (n, 10) float64 probabilities."""
        z = ((np.asarray(X, dtype=np.float64) - self.mean) / self.scale) @ self.coef.T + self.intercept
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def to_meta(self) -> dict[str, Any]:
        """meta.json form: ``{"weight", "inputs", "mean", "scale", "coef", "intercept"}``."""
        return {"weight": self.weight,
                "inputs": "taggram mean, max, std (ddof 0) over patches (150) + transformed features",
                "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept.tolist()}

    @classmethod
    def from_meta(cls, stored: Mapping[str, Any], *, n_inputs: int, where: Any = "meta.json",
                  n_classes: int = len(GENRES)) -> LinearBranch:
        """Read :meth:`to_meta`'s layout; ModelError (naming ``where``) unless the shapes fit ``n_inputs``
        and ``n_classes`` (the model's labels)."""
        try:
            b = cls(np.asarray(stored["mean"], dtype=np.float64), np.asarray(stored["scale"], dtype=np.float64),
                    np.asarray(stored["coef"], dtype=np.float64), np.asarray(stored["intercept"], dtype=np.float64),
                    float(stored.get("weight", 0.5)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{where}: linear branch is incomplete ({type(exc).__name__}: {exc})") from None
        k = n_classes
        if (b.mean.shape != (n_inputs,) or b.scale.shape != (n_inputs,) or b.coef.shape != (k, n_inputs)
                or b.intercept.shape != (k,)):
            raise ModelError(f"{where}: linear branch must have {n_inputs} means and scales, "
                             f"({k}, {n_inputs}) coefficients and {k} intercepts")
        if not (b.scale > 0).all() or not 0.0 <= b.weight <= 1.0:
            raise ModelError(f"{where}: linear branch needs positive scales and a weight in [0, 1]")
        return b


class MusicnnHead(Classifier):
    """Classifier of kind ``musicnn-head``: needs each segment's taggram besides its 57 features."""

    kind = KIND
    needs_taggrams = True
    n_tags = N_TAGS

    def __init__(self, folder: Path, meta: dict[str, Any], model: Any) -> None:
        super().__init__(folder, meta, model)
        where = Path(folder) / META_FILE
        self.feature_transform = transform_by_name(meta.get("feature_transform"))
        # Width of the transformed rows, from a dummy row (the transforms are pure functions).
        width = self.feature_transform(np.ones((1, self.n_features)), self.feature_names).shape[1]
        self.scaler = Scaler.from_meta(meta.get("scaler"), n_features=width, where=where)
        stored = meta.get("linear")
        self.linear = (None if stored is None
                       else LinearBranch.from_meta(stored, n_inputs=3 * N_TAGS + width, where=where,
                                                   n_classes=len(self.labels)))
        width_out = int(model.outputs[0].shape[-1])
        if width_out != len(self.labels):
            raise ModelError(f"{where}: the network outputs {width_out} probabilities for {len(self.labels)} labels")
        self.temperature = float(meta.get("temperature", 1.0))
        if not self.temperature > 0:
            raise ModelError(f"{where}: temperature must be positive, got {self.temperature}")

    def predict(self, features: np.ndarray,
                taggrams: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Genre probabilities (n, k) for n segments, k = ``len(labels)`` (10 for the shipped head).

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
        Xt = self.feature_transform(X, self.feature_names)
        probs = predict_members([self.model], seqs, self.scaler.transform(Xt))
        probs = probs / probs.sum(axis=1, keepdims=True).clip(min=1e-12)
        if self.linear is not None and len(seqs):
            lin = self.linear.predict_proba(np.hstack([pooled_taggram(seqs), Xt]))
            probs = (1.0 - self.linear.weight) * probs + self.linear.weight * lin
        if self.temperature != 1.0 and len(seqs):
            probs = apply_temperature(probs, self.temperature)
        return probs


register_kind(KIND, MusicnnHead)
