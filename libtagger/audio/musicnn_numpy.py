"""MSD_musicnn's forward pass in NumPy: taggrams where the audio is decoded, without TensorFlow.

The same network as :func:`libtagger.audio.musicnn.build_msd_musicnn` (the Keras model stays
the reference: tests/test_musicnn_runtime.py checks this pass against it), read from the same
``msd_musicnn.weights.h5`` with h5py. The convolutions are BLAS matrix products over
sliding-window views; batch normalisation is a per-channel affine map. Every time-axis and
mid-end padding matches Keras's ``same``/``valid`` conventions.

Why NumPy (issue #10, benchmarks/bench_musicnn.py, one thread, 2-core Xeon under load): it
needs nothing beyond NumPy, h5py and threadpoolctl, which a worker already has. A fresh process
with a worker's imports and this model takes 134 MB (with TensorFlow and the Keras model: 981 MB),
and a worker's peak while analysing a file stays at 309 MB with or without the front-end (a
5-min MP3, a two-hour FLAC: decoding and the 57 features set it). The Keras pass took 47 ms per
patch, this one 55 ms per patch and, over a whole segment (:meth:`MusicnnRuntime.taggrams_of_logmel`,
timbral branches once per frame), about 40 ms per patch at the 61-frame hop. ONNX Runtime, from a
graph built with the ``onnx`` helper, took 47 ms: not worth a new dependency. A worker holds one
:class:`MusicnnRuntime` per process (:func:`load_runtime`), shared by the threads of a Dask worker.

Example
-------
>>> runtime = load_runtime()                                 # doctest: +SKIP
>>> runtime.taggrams(mel_patches(y, sr=22050)).shape         # doctest: +SKIP
(28, 50)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from libtagger.audio.musicnn import (MIDEND, N_MELS, PATCH_FRAMES, TAGS, TEMPORAL, TIMBRAL,
                                     WEIGHTS_NAME)
from libtagger.errors import ModelError

#: ``tf.layers.batch_normalization``'s epsilon, as in the Keras port.
BN_EPSILON = 1e-3

_LOCK = threading.Lock()
_RUNTIMES: dict[Path, "MusicnnRuntime"] = {}


@dataclass(frozen=True)
class _Affine:
    """Batch normalisation at inference: ``x * scale + shift`` per channel."""

    scale: np.ndarray
    shift: np.ndarray


@dataclass(frozen=True)
class _Conv:
    """A convolution as a matrix, shape (kernel_size, n_out), with bias (n_out,) and the BN after its ReLU."""

    kernel: np.ndarray
    bias: np.ndarray
    bn: _Affine


class MusicnnRuntime:
    """The pretrained MSD_musicnn, as NumPy arrays, and its forward pass.

    Thread-safe: :meth:`taggrams` only reads the weights.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        layers = _read_layers(path)

        def bn(name: str) -> _Affine:
            gamma, beta, mean, var = layers[name]
            scale = gamma / np.sqrt(var + BN_EPSILON)
            return _Affine(scale.astype(np.float32), (beta - mean * scale).astype(np.float32))

        def conv(name: str) -> _Conv:
            kernel, bias = layers[f"{name}_conv"]
            return _Conv(kernel.astype(np.float32), bias.astype(np.float32), bn(f"{name}_bn"))

        self.input_bn = bn("input_bn")
        # Kernels (7, height, 1, 204) -> (7 * height, 204), rows in (time, band) order like the
        # windows of a (7, height) sliding view.
        self.timbral = [(height, _flat(conv(name), 7 * height)) for name, height in TIMBRAL]
        self.temporal = [(length, _flat(conv(name), length)) for name, length in TEMPORAL]
        self.midend = [conv(name) for name in MIDEND]                  # kernels (7, n_in, 64)
        self.pool_bn = bn("pool_bn")
        self.dense = layers["dense"]
        self.dense_bn = bn("dense_bn")
        self.logits = layers["logits"]

    def taggrams(self, patches: np.ndarray) -> np.ndarray:
        """Tag likelihoods of each patch.

        Parameters
        ----------
        patches : np.ndarray, shape (n, 187, 96)
            Log-mel patches (:func:`libtagger.audio.musicnn.mel_patches`).

        Returns
        -------
        np.ndarray, shape (n, 50), float32, columns in :data:`~libtagger.audio.musicnn.TAGS` order.
        """
        patches = np.asarray(patches, dtype=np.float32)
        if patches.ndim != 3 or patches.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise ValueError(f"patches must have shape (n, {PATCH_FRAMES}, {N_MELS}), got {patches.shape}")
        if patches.shape[0] == 0:
            return np.zeros((0, len(TAGS)), dtype=np.float32)
        # One patch at a time: the timbral windows of a patch are ~12 MB, so memory stays
        # flat whatever the clip's length, and BLAS matrices of 11000 rows are already large.
        scale, shift = self.input_bn.scale[0], self.input_bn.shift[0]
        return self._backend(np.stack([self._pooled(p * scale + shift) for p in patches]))  # (n, 1506)

    def taggrams_of_logmel(self, logmel: np.ndarray, hop: int) -> np.ndarray:
        """Tag likelihoods of the patches of a spectrogram, as ``taggrams(patches)`` gives them.

        Same result as ``taggrams`` of the patches cut every ``hop`` frames, with less work
        when patches overlap: the timbral convolutions (four fifths of the arithmetic) look
        at 7 frames only, so they run once per frame of the spectrogram, and again only for
        the 3 frames at each end of a patch, which see that patch's zero padding.

        Parameters
        ----------
        logmel : np.ndarray, shape (n_frames, 96), n_frames >= 187
            :func:`libtagger.audio.musicnn.log_mel`.
        hop : int
            Frames between patch starts (:func:`libtagger.audio.musicnn.patch_starts`).

        Returns
        -------
        np.ndarray, shape (n_patches, 50), float32
        """
        from libtagger.audio.musicnn import patch_starts

        logmel = np.asarray(logmel, dtype=np.float32)
        if logmel.ndim != 2 or logmel.shape[1] != N_MELS or logmel.shape[0] < PATCH_FRAMES:
            raise ValueError(f"logmel must have shape (>= {PATCH_FRAMES}, {N_MELS}), got {logmel.shape}")
        starts = list(patch_starts(logmel.shape[0], hop))
        x = logmel[:starts[-1] + PATCH_FRAMES] * self.input_bn.scale[0] + self.input_bn.shift[0]
        # Every patch's frames 3..183 see only frames of the patch: the same as the spectrogram's.
        inner = [_timbral_frames(x, height, conv) for height, conv in self.timbral]   # (frames, 204) each
        # Frames 0-2 and 184-186 of each patch, with the patch's own zero padding: 9 rows per end.
        zeros = np.zeros((3, N_MELS), dtype=np.float32)
        ends = np.stack([block for s in starts for block in (
            np.concatenate([zeros, x[s:s + 6]]), np.concatenate([x[s + PATCH_FRAMES - 6:s + PATCH_FRAMES], zeros]))])
        edges = []
        for height, conv in self.timbral:
            windows = np.lib.stride_tricks.sliding_window_view(ends, (7, height), axis=(1, 2))  # (2P, 3, pos, 7, h)
            z = windows.reshape(-1, 7 * height) @ conv.kernel
            edges.append(_relu_bn_max(z.reshape(len(ends), 3, -1, z.shape[-1]), conv))             # (2P, 3, 204)
        pooled = []
        for p, s in enumerate(starts):
            timbral = []
            for full, edge in zip(inner, edges):
                t = full[s:s + PATCH_FRAMES].copy()
                t[:3], t[-3:] = edge[2 * p], edge[2 * p + 1]
                timbral.append(t)
            pooled.append(self._pooled(x[s:s + PATCH_FRAMES], timbral))
        return self._backend(np.stack(pooled))

    def _backend(self, pooled: np.ndarray) -> np.ndarray:
        """(n, 1506) pooled mid-end -> (n, 50) sigmoid tag likelihoods."""
        h = pooled * self.pool_bn.scale + self.pool_bn.shift
        kernel, bias = self.dense
        h = np.maximum(h @ kernel + bias, 0.0)
        h = h * self.dense_bn.scale + self.dense_bn.shift
        kernel, bias = self.logits
        logits = h @ kernel + bias
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def _pooled(self, x: np.ndarray, timbral: list[np.ndarray] | None = None) -> np.ndarray:
        """One patch after the input BN (187, 96) -> the back-end's input (1506,): max and
        mean over time, interleaved. ``timbral``: the two timbral branches' outputs, (187, 204)
        each, when already known."""
        front = []
        if timbral is None:
            # Timbral: 7 frames x `height` bands, time zero-padded by 3 (after the input BN),
            # frequency 'valid'; then max over the frequency positions.
            padded = np.pad(x, ((3, 3), (0, 0)))
            for height, conv in self.timbral:
                windows = np.lib.stride_tricks.sliding_window_view(padded, (7, height))
                front.append(_conv_relu_bn_max(windows.reshape(-1, 7 * height), conv, PATCH_FRAMES))
        else:
            front.extend(timbral)
        # Temporal: `length` frames x 1 band, Keras 'same' padding (the extra frame at the end).
        for length, conv in self.temporal:
            before = (length - 1) // 2
            padded_t = np.pad(x, ((before, length - 1 - before), (0, 0)))
            windows = np.lib.stride_tricks.sliding_window_view(padded_t, length, axis=0)  # (187, 96, L)
            front.append(_conv_relu_bn_max(windows.reshape(-1, length), conv, PATCH_FRAMES))
        h = np.concatenate(front, axis=1)                             # (187, 561)
        mids = [h]
        for i, conv in enumerate(self.midend):
            c = _conv1d_same(h, conv.kernel) + conv.bias
            c = np.maximum(c, 0.0) * conv.bn.scale + conv.bn.shift
            h = c if i == 0 else c + h
            mids.append(h)
        midend = np.concatenate(mids, axis=1)                         # (187, 753)
        return np.stack([midend.max(axis=0), midend.mean(axis=0)], axis=1).reshape(-1)


def _flat(conv: _Conv, rows: int) -> _Conv:
    return _Conv(np.ascontiguousarray(conv.kernel.reshape(rows, -1)), conv.bias, conv.bn)


def _conv_relu_bn_max(windows: np.ndarray, conv: _Conv, n_frames: int) -> np.ndarray:
    """Conv, ReLU, BN, then max over the band positions, without applying BN to every position.

    BN after ReLU is ``scale * relu(z) + shift`` per channel: monotone in z, increasing where
    ``scale >= 0`` and decreasing elsewhere, so the max over positions is that of the largest
    z or of the smallest one.

    Parameters
    ----------
    windows : np.ndarray, shape (n_frames * n_positions, kernel_size)
    conv : _Conv, kernel shape (kernel_size, n_out)

    Returns
    -------
    np.ndarray, shape (n_frames, n_out)
    """
    return _relu_bn_max((windows @ conv.kernel).reshape(n_frames, -1, conv.kernel.shape[1]), conv)


def _relu_bn_max(z: np.ndarray, conv: _Conv) -> np.ndarray:
    """Bias, ReLU, BN and max over axis -2 (the band positions) of convolution outputs
    ``z``, shape (..., n_positions, n_out) -> (..., n_out); see :func:`_conv_relu_bn_max`."""
    picked = np.where(conv.bn.scale >= 0, z.max(axis=-2), z.min(axis=-2)) + conv.bias
    return np.maximum(picked, 0.0) * conv.bn.scale + conv.bn.shift


def _timbral_frames(x: np.ndarray, height: int, conv: _Conv, chunk: int = 256) -> np.ndarray:
    """A timbral branch on every frame of a whole spectrogram (time zero-padded by 3), in
    chunks of ``chunk`` frames so the windows stay ~16 MB: (n_frames, 96) -> (n_frames, 204)."""
    padded = np.pad(x, ((3, 3), (0, 0)))
    out = []
    for start in range(0, x.shape[0], chunk):
        stop = min(start + chunk, x.shape[0])
        windows = np.lib.stride_tricks.sliding_window_view(padded[start:stop + 6], (7, height))
        out.append(_conv_relu_bn_max(windows.reshape(-1, 7 * height), conv, stop - start))
    return np.concatenate(out)


def _conv1d_same(h: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Keras ``Conv1D(padding="same")`` without bias: (n_frames, n_in) x (k, n_in, n_out) -> (n_frames, n_out)."""
    k = kernel.shape[0]
    before = (k - 1) // 2
    padded = np.pad(h, ((before, k - 1 - before), (0, 0)))
    n = h.shape[0]
    out = padded[0:n] @ kernel[0]
    for i in range(1, k):
        out += padded[i:i + n] @ kernel[i]
    return out


def _read_layers(path: Path) -> dict[str, list[np.ndarray]]:
    """The weights of every named layer of a Keras 3 ``.weights.h5`` file, in Keras's order
    (conv/dense: kernel, bias; BN: gamma, beta, moving mean, moving variance)."""
    import h5py

    layers: dict[str, list[np.ndarray]] = {}
    try:
        with h5py.File(path, "r") as f:
            for group in f["layers"].values():
                variables = group.get("vars")
                if variables is None or not len(variables):
                    continue
                name = variables.attrs.get("name", "")
                layers[str(name)] = [np.asarray(variables[str(i)]) for i in range(len(variables))]
    except (OSError, KeyError) as exc:
        raise ModelError(f"cannot read MSD_musicnn weights from {path}: {exc}") from exc
    wanted = ({"input_bn", "pool_bn", "dense", "dense_bn", "logits"}
              | {f"{n}_{p}" for n, _ in (*TIMBRAL, *TEMPORAL) for p in ("conv", "bn")}
              | {f"{n}_{p}" for n in MIDEND for p in ("conv", "bn")})
    missing = sorted(wanted - set(layers))
    if missing:
        raise ModelError(f"MSD_musicnn weights at {path} lack the layers {', '.join(missing)}")
    return layers


def load_runtime(path: Path | None = None) -> MusicnnRuntime:
    """The NumPy MSD_musicnn, loaded once per process (safe from several threads).

    Also limits BLAS to one thread in this process: a worker is one core's worth of work
    (a loky worker, or a Dask worker started with ``--nthreads 1``); more BLAS threads
    would only fight the other workers for the same cores.

    Parameters
    ----------
    path : Path, optional
        A ``.weights.h5`` file or a folder holding ``msd_musicnn.weights.h5``;
        default ``models/musicnn/``.
    """
    from libtagger.paths import models_dir

    path = Path(path) if path is not None else models_dir() / "musicnn"
    if path.is_dir():
        path = path / WEIGHTS_NAME
    path = path.resolve()
    with _LOCK:
        runtime = _RUNTIMES.get(path)
        if runtime is None:
            if not path.is_file():
                raise ModelError(f"MSD_musicnn weights not found at {path}; "
                                 "run `python -m libtagger.training.convert_musicnn WHEEL` to create them")
            _one_blas_thread()
            runtime = _RUNTIMES[path] = MusicnnRuntime(path)
    return runtime


def _one_blas_thread() -> None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it BLAS keeps its default
        return
    threadpool_limits(limits=1, user_api="blas")
