"""How strongly a segment pulses: the periodicity of its onsets at the lags of a musical beat.

Almost all music repeats its onsets at a beat period; speech and everyday sounds do not. This
is Scheirer and Slaney's "pulse metric" (1997) for telling speech from music, in the form of
the normalised autocorrelation of librosa's onset-strength envelope. The music detector
(:mod:`libtagger.classify.openset`) uses it as a second opinion on the tracks its classifier
finds ambiguous: rap, which the classifier can take for speech, has a strong pulse; a read
poem or a typewriter, which it can take for rap, has almost none.

Measured per 30-s segment (benchmarks/pulse.py prints the table): the 100 GTZAN ``.wav``
clips of ``../shared/gtzan/audio`` from 0.04 (a jazz clip) to 0.83, hip-hop at least 0.24;
the 18 real non-music recordings of ``../shared/realdev/nonmusic`` at most 0.17.

>>> pulse_clarity(np.zeros(22050 * 30))
0.0
"""

from __future__ import annotations

import numpy as np

#: Beat periods searched, in seconds: 200 down to 40 beats per minute.
MIN_PERIOD = 0.3
MAX_PERIOD = 1.5
#: librosa's onset-strength hop (its default), in samples.
HOP_LENGTH = 512


def pulse_clarity(y: np.ndarray, *, sr: int = 22050) -> float:
    """The largest normalised autocorrelation of the onset envelope at a beat period.

    ``librosa.onset.onset_strength(y=y, sr=sr)`` (mel spectrogram, mean over bands), its mean
    removed, autocorrelated and divided by its value at lag 0; the maximum over lags of
    :data:`MIN_PERIOD` to :data:`MAX_PERIOD` seconds.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio at ``sr``, at least :data:`MAX_PERIOD` seconds long (typically a 30-s segment).
    sr : int
        Sample rate of ``y``, > 0.

    Returns
    -------
    float in [-1, 1]: near 1 for a steady beat, near 0 for speech, noise or silence (0.0 when the
    envelope is constant, e.g. silence).

    Raises
    ------
    ValueError
        ``y`` is not 1-D, is shorter than :data:`MAX_PERIOD` seconds or is not finite; ``sr`` is not
        positive. The message names the bad value.
    """
    import librosa

    y = np.asarray(y)
    if sr <= 0:
        raise ValueError(f"sr must be positive, got {sr}")
    if y.ndim != 1:
        raise ValueError(f"y must be mono, shape (n_samples,), got shape {y.shape}")
    if len(y) < MAX_PERIOD * sr:
        raise ValueError(f"y must hold at least {MAX_PERIOD} s of audio, got {len(y) / sr:.2f} s")
    if not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinity")
    envelope = librosa.onset.onset_strength(y=y.astype(np.float32, copy=False), sr=sr, hop_length=HOP_LENGTH)
    envelope = envelope - envelope.mean()
    lo = int(round(MIN_PERIOD * sr / HOP_LENGTH))
    hi = min(int(round(MAX_PERIOD * sr / HOP_LENGTH)), len(envelope) - 1)
    ac = librosa.autocorrelate(envelope, max_size=hi + 1)
    if not ac[0] > 0 or hi < lo:
        return 0.0
    return float(np.max(ac[lo:hi + 1]) / ac[0])
