"""The pretrained MSD_musicnn tagger (Pons & Serra, musicnn 0.1.0) as a Keras 3 model.

The network maps a 3-s log-mel patch, shape ``(187, 96)``, to 50 sigmoid tag
likelihoods (the Million Song Dataset tags in :data:`TAGS`). A clip's rows over its
patches form its *taggram*. The weights were converted from the ISC-licensed
checkpoint in the ``musicnn==0.1.0`` wheel by :mod:`libtagger.training.convert_musicnn`
and live in ``models/musicnn/msd_musicnn.weights.h5``.

Feature extraction (:func:`mel_patches`) is pure NumPy/librosa so joblib workers can
run it; TensorFlow is imported only inside :func:`build_msd_musicnn`,
:func:`load_frontend` and :func:`taggrams`, which the main process calls.

Example
-------
>>> patches = mel_patches(y, sr=22050)          # doctest: +SKIP
>>> rows = taggrams(patches)                    # doctest: +SKIP
>>> rows.shape                                  # doctest: +SKIP
(28, 50)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from libtagger.errors import ModelError

if TYPE_CHECKING:  # keep TensorFlow out of module import
    import keras

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
PATCH_FRAMES = 187
# musicnn's 1-s overlap: librosa.time_to_frames(1, sr=16000, hop_length=256, n_fft=512)
# = 61 frames. (62 drifts off the reference taggrams after the first few patches.)
PATCH_HOP = 61
#: Hop between the patches the scan feeds the network (see issue #10: fewer, less
#: overlapping patches cost proportionally less CPU). ``PATCH_HOP`` stays the reference
#: hop (musicnn's taggrams); only this value may be tuned by cross-validation.
# 3 x PATCH_HOP: non-overlapping patches, exactly every third reference patch, a third of the
# forward passes. Chosen in issue #10 on the artist-grouped CV (accuracy 0.800 vs 0.789 at hop 61)
# and bench_robustness (genre kept 92.7 vs 95.5 %, 20 clips): models/musicnn-head/meta.json.
INFERENCE_PATCH_HOP = 3 * PATCH_HOP
RESAMPLER = "soxr_vhq"
WEIGHTS_NAME = "msd_musicnn.weights.h5"

#: The 50 MSD tags in the order of the model's outputs (musicnn's ``MSD_LABELS``).
TAGS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance",
    "00s", "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s",
    "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
    "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal",
    "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy",
)

# Layer names of the Keras model, shared with the converter so it can map checkpoint
# variables onto them. Front-end: two timbral branches (7 frames x 40% / 70% of the mel
# bands) and three temporal branches (128 / 64 / 32 frames x 1 band).
TIMBRAL = (("timbral_74", 38), ("timbral_77", 67))     # int(0.4 * 96), int(0.7 * 96)
TEMPORAL = (("temporal_128", 128), ("temporal_64", 64), ("temporal_32", 32))
MIDEND = ("midend_1", "midend_2", "midend_3")

_CACHE: dict[Path, "keras.Model"] = {}


def mel_patches(y: np.ndarray, *, sr: int = SAMPLE_RATE, hop: int = PATCH_HOP) -> np.ndarray:
    """Cut audio into the log-mel patches MSD_musicnn was trained on.

    Resamples to 16 kHz (soxr, very high quality), takes a 96-band mel power
    spectrogram (n_fft 512, hop 256), rounds it to float16 as musicnn does, applies
    ``log10(10000 x + 1)`` in float32 (:func:`log_mel`) and cuts patches of 187 frames
    (3 s) every ``hop`` frames (:func:`patch_starts`; default 61 frames, 1 s, musicnn's
    reference). Audio shorter than one patch is zero-padded (silence) to one patch.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,) or (n_channels, n_samples)
        Audio samples; multichannel audio is averaged to mono.
    sr : int
        Sample rate of ``y`` in Hz.
    hop : int
        Frames between patch starts; the scan uses :data:`INFERENCE_PATCH_HOP`.

    Returns
    -------
    np.ndarray, shape (n_patches, 187, 96), float32
    """
    if hop <= 0:
        raise ValueError(f"patch hop must be positive, got hop={hop}")
    logmel = log_mel(y, sr=sr)
    return np.stack([logmel[s:s + PATCH_FRAMES] for s in patch_starts(logmel.shape[0], hop)])


def log_mel(y: np.ndarray, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The log-mel spectrogram :func:`mel_patches` cuts, zero-padded to at least one patch.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,) or (n_channels, n_samples)
    sr : int

    Returns
    -------
    np.ndarray, shape (max(n_frames, 187), 96), float32
    """
    from libtagger.audio import numba_cache

    numba_cache.install()  # before librosa compiles its cached kernels
    import librosa  # librosa is slow to import; keep `libtagger query` fast

    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = librosa.to_mono(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"mel_patches needs mono or (channels, samples) audio, got shape {y.shape}")
    if sr <= 0:
        raise ValueError(f"sample rate must be positive, got sr={sr}")
    if sr != SAMPLE_RATE:
        # soxr_vhq matched the GTZAN reference taggrams better than librosa's default
        # soxr_hq on every one of the 38 parity clips (resampy/scipy were far worse).
        y = librosa.resample(y, orig_sr=sr, target_sr=SAMPLE_RATE, res_type=RESAMPLER)
    mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, n_fft=N_FFT,
                                         hop_length=HOP_LENGTH, n_mels=N_MELS, power=2.0).T
    # musicnn stored float16 spectrograms; the rounding is part of the reference. Cast
    # back before scaling: 10000 * x overflows float16 under NumPy 2 promotion.
    logmel = np.log10(10000.0 * mel.astype(np.float16).astype(np.float32) + 1.0, dtype=np.float32)
    n_frames = logmel.shape[0]
    if n_frames < PATCH_FRAMES:
        logmel = np.pad(logmel, ((0, PATCH_FRAMES - n_frames), (0, 0)))
    return logmel


def patch_starts(n_frames: int, hop: int = PATCH_HOP) -> range:
    """First frame of each patch of a log-mel spectrogram of ``n_frames`` (>= 187) frames.

    >>> list(patch_starts(400, 61))
    [0, 61, 122, 183]
    """
    return range(0, n_frames - PATCH_FRAMES + 1, hop)


def build_msd_musicnn() -> "keras.Model":
    """Build the MSD_musicnn graph (untrained): ``(None, 187, 96) -> (None, 50)`` sigmoid.

    Every convolution is ReLU then batch normalisation (inference statistics, epsilon
    0.001 like ``tf.layers.batch_normalization``); dropout is omitted (inference only).
    """
    import keras
    from keras import layers, ops

    def bn(name: str) -> layers.BatchNormalization:
        return layers.BatchNormalization(epsilon=1e-3, name=name)

    x_in = keras.Input(shape=(PATCH_FRAMES, N_MELS), name="logmel")
    x = layers.Reshape((PATCH_FRAMES, N_MELS, 1), name="add_channel")(x_in)
    x = bn("input_bn")(x)

    front = []
    # Timbral filters span 7 frames and part of the mel axis; time is zero-padded so the
    # output keeps 187 frames, then max-pooling over all remaining frequency positions.
    padded = layers.ZeroPadding2D(((3, 3), (0, 0)), name="timbral_pad")(x)
    for name, height in TIMBRAL:
        h = layers.Conv2D(204, (7, height), padding="valid", activation="relu", name=f"{name}_conv")(padded)
        h = bn(f"{name}_bn")(h)
        front.append(ops.max(h, axis=2))
    # Temporal filters span many frames and one band ('same' padding, as in musicnn).
    for name, length in TEMPORAL:
        h = layers.Conv2D(51, (length, 1), padding="same", activation="relu", name=f"{name}_conv")(x)
        h = bn(f"{name}_bn")(h)
        front.append(ops.max(h, axis=2))
    frontend = layers.Concatenate(axis=-1, name="frontend")(front)          # (187, 561)

    # Mid-end: three 7-frame convolutions across all features (a Conv1D is musicnn's
    # Conv2D whose kernel spans the whole feature axis); layers 2 and 3 are residual.
    mids = [frontend]
    h = frontend
    for i, name in enumerate(MIDEND):
        c = layers.Conv1D(64, 7, padding="same", activation="relu", name=f"{name}_conv")(h)
        c = bn(f"{name}_bn")(c)
        h = c if i == 0 else layers.Add(name=f"{name}_res")([c, h])
        mids.append(h)
    midend = layers.Concatenate(axis=-1, name="midend")(mids)               # (187, 753)

    # Back-end: max and mean over time. musicnn flattens a (753, 2) [max, mean] array,
    # so the 1506 dense inputs interleave max_0, mean_0, max_1, mean_1, ...
    pooled = ops.stack([ops.max(midend, axis=1), ops.mean(midend, axis=1)], axis=-1)
    flat = layers.Reshape((2 * 753,), name="pool_flat")(pooled)
    h = bn("pool_bn")(flat)
    h = layers.Dense(200, activation="relu", name="dense")(h)
    h = bn("dense_bn")(h)
    logits = layers.Dense(len(TAGS), name="logits")(h)
    out = layers.Activation("sigmoid", name="tags")(logits)
    return keras.Model(x_in, out, name="msd_musicnn")


def load_frontend(path: Path | None = None) -> "keras.Model":
    """The pretrained MSD_musicnn model, loaded once per process.

    Parameters
    ----------
    path : Path, optional
        A ``.weights.h5`` file or a folder holding ``msd_musicnn.weights.h5``;
        default ``models/musicnn/`` (see :func:`libtagger.paths.models_dir`).
    """
    from libtagger.paths import models_dir

    path = Path(path) if path is not None else models_dir() / "musicnn"
    if path.is_dir():
        path = path / WEIGHTS_NAME
    path = path.resolve()
    if path not in _CACHE:
        if not path.is_file():
            raise ModelError(f"MSD_musicnn weights not found at {path}; "
                             "run `python -m libtagger.training.convert_musicnn WHEEL` to create them")
        model = build_msd_musicnn()
        try:
            model.load_weights(path)
        except Exception as exc:  # h5py / keras raise many types for a bad file
            raise ModelError(f"cannot load MSD_musicnn weights from {path}: {exc}") from exc
        _CACHE[path] = model
    return _CACHE[path]


def taggrams(patches: np.ndarray, *, model: "keras.Model | None" = None,
             batch_size: int = 8) -> np.ndarray:
    """Tag likelihoods of each patch.

    Parameters
    ----------
    patches : np.ndarray, shape (n, 187, 96)
        Output of :func:`mel_patches` (possibly stacked over several clips).
    model : keras.Model, optional
        Default :func:`load_frontend`.
    batch_size : int
        Patches per forward pass. The front-end's first convolutions hold about
        15 MB of activations per patch: 8 runs as fast as 64 on a CPU, and the
        scanning process peaks at 1.2 GB instead of 2.2 GB.

    Returns
    -------
    np.ndarray, shape (n, 50), float32, columns in :data:`TAGS` order.
    """
    patches = np.asarray(patches, dtype=np.float32)
    if patches.ndim != 3 or patches.shape[1:] != (PATCH_FRAMES, N_MELS):
        raise ValueError(f"patches must have shape (n, {PATCH_FRAMES}, {N_MELS}), got {patches.shape}")
    if patches.shape[0] == 0:
        return np.zeros((0, len(TAGS)), dtype=np.float32)
    model = load_frontend() if model is None else model
    n = patches.shape[0]
    # Every batch has the same shape (the last one zero-padded), so the compiled
    # graph is traced once: a second shape cost a second graph and ~700 MB.
    padded = np.zeros((-(-n // batch_size) * batch_size, PATCH_FRAMES, N_MELS), dtype=np.float32)
    padded[:n] = patches
    # predict_on_batch runs a compiled graph: ~20% less CPU than eager model(x) calls.
    out = [np.asarray(model.predict_on_batch(padded[i:i + batch_size]))
           for i in range(0, padded.shape[0], batch_size)]
    return np.concatenate(out)[:n].astype(np.float32, copy=False)
