"""The 57 GTZAN features of one audio segment, as in the Kaggle ``features_30_sec.csv``.

Two implementations return the same vector (columns :data:`FEATURE_NAMES`):

* :func:`paper_segment_features` -- the reference: one plain librosa call per
  feature, each recomputing its own STFT, exactly how the table was made
  (whole clip, 22050 Hz, librosa defaults: n_fft 2048, hop 512; HPSS via
  ``librosa.effects.hpss``; tempo via ``librosa.beat.beat_track``; 20 MFCC).
* :func:`segment_features` -- the fast path used by the scanner: ONE STFT per
  segment feeds chroma, centroid, bandwidth, rolloff, the mel spectrogram
  (MFCC and the tempo's onset envelope) and HPSS. It is about 16x faster
  (0.08 s vs 1.25 s of CPU per 30-s segment) and agrees with the reference to
  1e-6 of a column's spread, so it matches the table just as well (see
  ``tests/test_features.py`` and ``benchmarks/bench_features.py``).

The fast path's numba kernels are compiled on first use (some seconds) and
cached in ``__pycache__``, like librosa's own; :mod:`libtagger.audio.numba_cache`
keeps that cache consistent when several processes compile at once.

Every ``_mean``/``_var`` is ``np.mean``/``np.var`` over frames (over samples for
``harmony``/``perceptr``).

>>> import numpy as np
>>> y = np.random.default_rng(0).normal(0, 0.1, 3 * SAMPLE_RATE).astype(np.float32)
>>> segment_features(y).shape
(57,)
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from libtagger.audio import numba_cache

# librosa compiles its cached kernels when imported: guard numba's on-disk cache first.
numba_cache.install()
import librosa  # noqa: E402
import numba  # noqa: E402

#: The only sample rate the features (and every model trained on them) are defined at.
SAMPLE_RATE: int = 22050
N_FFT: int = 2048
HOP_LENGTH: int = 512
N_MFCC: int = 20
#: librosa.decompose.hpss' median-filter length (frames for harmonic, bins for percussive).
HPSS_KERNEL: int = 31
#: The threshold librosa.zero_crossings treats as zero.
_ZC_THRESHOLD: float = 1e-10

FEATURE_NAMES: tuple[str, ...] = (
    "chroma_stft_mean", "chroma_stft_var", "rms_mean", "rms_var",
    "spectral_centroid_mean", "spectral_centroid_var",
    "spectral_bandwidth_mean", "spectral_bandwidth_var",
    "rolloff_mean", "rolloff_var", "zero_crossing_rate_mean", "zero_crossing_rate_var",
    "harmony_mean", "harmony_var", "perceptr_mean", "perceptr_var", "tempo",
    *(f"mfcc{i}_{stat}" for i in range(1, N_MFCC + 1) for stat in ("mean", "var")),
)
assert len(FEATURE_NAMES) == 57


def _check_segment(y: np.ndarray, sr: int) -> np.ndarray:
    """Validate one segment and return it as contiguous mono float32."""
    if sr != SAMPLE_RATE:
        raise ValueError(f"sr={sr!r}: the GTZAN features are defined at {SAMPLE_RATE} Hz only; resample first")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"expected a mono signal of shape (n_samples,), got shape {y.shape}")
    if y.size == 0:
        raise ValueError("empty segment: 0 samples")
    if y.size < N_FFT:
        raise ValueError(f"segment of {y.size} samples is shorter than one {N_FFT}-sample analysis frame")
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f"expected floating-point samples, got dtype {y.dtype}")
    y = np.ascontiguousarray(y, dtype=np.float32)
    finite = np.isfinite(y)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"segment has {int(y.size - finite.sum())} non-finite samples "
                         f"(first at index {bad}: {float(y[bad])})")
    return y


def _mean_var(x: np.ndarray) -> tuple[float, float]:
    return float(np.mean(x)), float(np.var(x))


# --------------------------------------------------------------------------- reference


def paper_segment_features(y: np.ndarray, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The 57 features with one plain librosa call each, as the Kaggle table was made.

    Slow (each call recomputes its STFT; HPSS alone takes about a second for
    30 s) but it is the definition: parity tests and the speed benchmark
    compare :func:`segment_features` against it.

    Parameters
    ----------
    y : (n_samples,) mono float audio at ``sr`` (cast to float32, as ``librosa.load`` returns).
    sr : must be :data:`SAMPLE_RATE`.

    Returns
    -------
    (57,) float64 in :data:`FEATURE_NAMES` order.

    Raises
    ------
    ValueError
        Wrong ``sr``; empty, shorter than one frame (2048 samples), non-finite,
        non-float or not 1-D input. The message names the bad value.
    """
    y = _check_segment(y, sr)
    out: list[float] = []
    with warnings.catch_warnings():
        # The tuning estimate warns on silence and returns 0.0, which is what we want.
        warnings.filterwarnings("ignore", "Trying to estimate tuning from empty frequency set")
        out += _mean_var(librosa.feature.chroma_stft(y=y, sr=sr))
    out += _mean_var(librosa.feature.rms(y=y))
    out += _mean_var(librosa.feature.spectral_centroid(y=y, sr=sr))
    out += _mean_var(librosa.feature.spectral_bandwidth(y=y, sr=sr))
    out += _mean_var(librosa.feature.spectral_rolloff(y=y, sr=sr))
    out += _mean_var(librosa.feature.zero_crossing_rate(y))
    y_harm, y_perc = librosa.effects.hpss(y)
    out += _mean_var(y_harm)
    out += _mean_var(y_perc)
    tempo, _ = librosa.beat.beat_track(y=y, sr=sr)
    out.append(float(np.atleast_1d(tempo)[0]))
    for row in librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC):
        out += _mean_var(row)
    return np.asarray(out, dtype=np.float64)


# --------------------------------------------------------------------------- fast path


def segment_features(y: np.ndarray, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The 57 features of one segment from a single shared STFT (the scanner's fast path).

    Same definitions as :func:`paper_segment_features`; what is shared and why
    it keeps parity:

    * one ``librosa.stft(y)`` (n_fft 2048, hop 512, hann, centred) -- it is
      bit-identical to the STFT every plain librosa call computes internally;
      its magnitude feeds centroid, bandwidth, rolloff and HPSS, its power
      feeds chroma and the mel spectrogram;
    * chroma: librosa's own ``chroma_stft(S=power, tuning=...)``; only the
      tuning estimate (librosa's ``piptrack`` + ``pitch_tuning``) is
      recomputed in one pass (:func:`_estimate_tuning`), with the same
      arithmetic, so it picks the same tuning bin;
    * centroid, bandwidth, rolloff, zero-crossing rate: closed forms of
      librosa's definitions (:func:`_centroid_bandwidth`, :func:`_rolloff`,
      :func:`_zero_crossing_rate`);
    * rms: ``librosa.feature.rms(y=y)`` on the waveform, as the table was made
      (from the STFT it would be a windowed rms, a different number); it costs
      about 1 ms and needs no STFT;
    * HPSS: exact median filters (:func:`_median_filter_axis0`) on the shared
      magnitude, one soft mask and ONE inverse STFT; the percussive waveform
      is ``y - harmonic`` (:func:`_hpss`);
    * MFCC and tempo share one dB mel spectrogram: ``librosa.feature.mfcc``
      and ``beat_track``'s onset envelope compute exactly this one
      (128 bands, power 2, ``power_to_db``); tempo is librosa's
      ``feature.tempo`` on that envelope, which is the number ``beat_track``
      returns (the beat positions it also tracks are not needed).

    Parameters
    ----------
    y : (n_samples,) mono float audio at ``sr``, typically 30 s (3 s and more work).
    sr : must be :data:`SAMPLE_RATE`.

    Returns
    -------
    (57,) float64 in :data:`FEATURE_NAMES` order; finite for any finite input
    (silence gives tempo 0).

    Raises
    ------
    ValueError
        Wrong ``sr``; empty, shorter than one frame (2048 samples), non-finite,
        non-float or not 1-D input. The message names the bad value.
    """
    y = _check_segment(y, sr)
    stft = librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH)
    mag = np.abs(stft)
    power = mag * mag
    out: list[float] = []
    out += _mean_var(librosa.feature.chroma_stft(S=power, sr=sr, tuning=_estimate_tuning(power, sr=sr)))
    out += _mean_var(librosa.feature.rms(y=y))
    centroid, bandwidth = _centroid_bandwidth(mag, sr=sr)
    out += _mean_var(centroid)
    out += _mean_var(bandwidth)
    out += _mean_var(_rolloff(mag, sr=sr))
    out += _mean_var(_zero_crossing_rate(y))
    y_harm, y_perc = _hpss(stft, mag, y)
    out += _mean_var(y_harm)
    out += _mean_var(y_perc)
    mel_db = librosa.power_to_db(_mel_basis(sr) @ power)
    out.append(_tempo(mel_db, sr=sr))
    for row in librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC):
        out += _mean_var(row)
    return np.asarray(out, dtype=np.float64)


@functools.lru_cache(maxsize=4)
def _fft_frequencies(sr: int) -> np.ndarray:
    freq = librosa.fft_frequencies(sr=sr, n_fft=N_FFT)
    freq.flags.writeable = False  # shared by every call
    return freq


@functools.lru_cache(maxsize=4)
def _mel_basis(sr: int) -> np.ndarray:
    """librosa's default 128-band mel filterbank (rebuilt on every plain call; cached here)."""
    basis = librosa.filters.mel(sr=sr, n_fft=N_FFT)
    basis.flags.writeable = False  # shared by every call
    return basis


def _centroid_bandwidth(mag: np.ndarray, *, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Spectral centroid and bandwidth (p=2) of each frame, shape (n_frames,) each.

    librosa computes ``sum(f * S/sum(S))`` and ``sqrt(sum(S/sum(S) * (f - c)**2))``
    with several full-size float64 temporaries. Here both come from the first
    three moments ``[1, f, f**2] @ S`` in float64: ``bw**2 = E[f**2] - c**2``, the
    same quantity, with float64 rounding far below the tolerance. Silent frames
    (zero sum) give 0 for both, as in librosa (it leaves them unnormalised).
    """
    freq = _fft_frequencies(sr)
    moments = np.stack([np.ones_like(freq), freq, freq * freq]) @ mag.astype(np.float64)
    total, first, second = moments
    ok = total > 0
    safe = np.where(ok, total, 1.0)
    centroid = np.where(ok, first / safe, 0.0)
    spread = np.where(ok, second / safe - centroid**2, 0.0)
    return centroid, np.sqrt(np.maximum(spread, 0.0))


def _rolloff(mag: np.ndarray, *, sr: int, roll_percent: float = 0.85) -> np.ndarray:
    """Spectral rolloff per frame, shape (n_frames,), as ``librosa.feature.spectral_rolloff``.

    librosa takes a float32 cumsum over bins, the threshold ``0.85 * total``
    and the lowest frequency whose cumulative energy reaches it. The cumsum of
    non-negative values never decreases, so :func:`_rolloff_bins` accumulates
    each frame in the same order and stops at that bin instead of building
    full-size cumsum and NaN arrays.
    """
    bins = _rolloff_bins(np.ascontiguousarray(mag.T), np.float32(roll_percent))
    return _fft_frequencies(sr)[bins]


@numba.njit(cache=True, nogil=True)
def _rolloff_bins(mag_t, roll_percent):  # pragma: no cover - compiled
    n_frames, n_bins = mag_t.shape
    out = np.zeros(n_frames, np.int64)
    for t in range(n_frames):
        total = np.float32(0.0)
        for f in range(n_bins):
            total += mag_t[t, f]
        threshold = roll_percent * total
        running = np.float32(0.0)
        for f in range(n_bins):
            running += mag_t[t, f]
            if running >= threshold:
                out[t] = f
                break
    return out


def _zero_crossing_rate(y: np.ndarray) -> np.ndarray:
    """librosa's zero-crossing rate (centred frames, edge padding), shape (n_frames,).

    librosa frames the padded signal and counts sign changes inside each frame
    (samples with ``|y| <= 1e-10`` count as positive). Counting the changes
    of the whole signal once and differencing a cumulative sum gives the same
    integer counts, divided by the frame length as ``np.mean`` does.
    """
    padded = np.pad(y, N_FFT // 2, mode="edge")
    negative = padded < -_ZC_THRESHOLD
    changes = np.concatenate(([0], np.cumsum(negative[1:] != negative[:-1])))
    starts = np.arange(1 + (padded.size - N_FFT) // HOP_LENGTH) * HOP_LENGTH
    return (changes[starts + N_FFT - 1] - changes[starts]) / N_FFT


def _estimate_tuning(power: np.ndarray, *, sr: int) -> float:
    """``librosa.estimate_tuning(S=power, sr=sr, bins_per_octave=12)`` in one pass.

    librosa's ``piptrack`` builds several full-size arrays (gradient, parabolic
    shifts, thresholded copy, local-maximum mask) to keep the few hundred peaks
    per frame between 150 and 4000 Hz; :func:`_pitch_candidates` visits only
    that band once with the same float32/float64 arithmetic. The median
    threshold and the histogram are librosa's own code, so the tuning is the same.
    """
    freq = _fft_frequencies(sr)
    band = np.flatnonzero((150.0 <= freq) & (freq < min(4000.0, sr / 2)))
    ref = 0.1 * power.max(axis=0)
    pitches, mags = _pitch_candidates(power, ref, int(band[0]), int(band[-1]) + 1, float(sr) / N_FFT)
    voiced = pitches > 0
    if not voiced.any():
        return 0.0
    threshold = np.median(mags[voiced])
    frequencies = pitches[(mags >= threshold) & voiced]
    if not (frequencies > 0).any():
        return 0.0
    return float(librosa.pitch_tuning(frequencies, resolution=0.01, bins_per_octave=12))


@numba.njit(cache=True, nogil=True)
def _pitch_candidates(S, ref, lo, hi, bin_hz):  # pragma: no cover - compiled
    """Pitches and magnitudes of librosa.piptrack's peaks in bins [lo, hi) (float32, 1-D).

    Expressions and their types copy librosa's stencils (``_pi_stencil``,
    ``_localmax_sten``) and numpy's float32 ``gradient`` so the values match.
    """
    n_bins, n_frames = S.shape
    count = 0
    pitches = np.empty((hi - lo) * n_frames, np.float32)
    mags = np.empty((hi - lo) * n_frames, np.float32)
    zero = np.float32(0.0)
    for f in range(max(lo, 1), hi):
        last = f == n_bins - 1
        for t in range(n_frames):
            r = ref[t]
            x = S[f, t]
            if not x > r:
                continue  # thresholded to 0, cannot be a strict local maximum
            xm = S[f - 1, t]
            vm = xm if xm > r else zero
            if last:
                if not x > vm:
                    continue
                shift = np.float32(0.0)
                avg = x - xm
            else:
                xp = S[f + 1, t]
                vp = xp if xp > r else zero
                if not (x > vm and x >= vp):
                    continue
                a = xp + xm - 2 * x
                b = (xp - xm) / 2
                shift = np.float32(0.0) if np.abs(b) >= np.abs(a) else np.float32(-b / a)
                avg = (xp - xm) / np.float32(2.0)
            dskew = np.float32(0.5) * avg * shift
            pitches[count] = np.float32((f + shift) * bin_hz)
            mags[count] = x + dskew
            count += 1
    return pitches[:count], mags[:count]


def _hpss(stft: np.ndarray, mag: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``librosa.effects.hpss(y)`` from the shared STFT: (harmonic, percussive) waveforms.

    * The median filters are exact (:func:`_median_filter_axis0`); they were
      ~95 % of the plain call's time in ``scipy.ndimage.median_filter``.
    * librosa's masks with margin 1 are ``H**2 / (H**2 + P**2)`` and
      ``P**2 / (H**2 + P**2)`` (0.5 each where both are 0): they sum to one, so
      ``stft_harm + stft_perc == stft``. The inverse STFT is linear and inverts
      this STFT exactly (hann at hop n_fft/4), hence
      ``perc = istft(stft) - harm = y - harm`` up to float32 rounding: one
      inverse STFT instead of two.

    Works on the (frames, bins) layout, which is how librosa's STFT is stored
    in memory (Fortran order), so every inner loop below runs over contiguous bins.
    """
    stft_t = np.ascontiguousarray(stft.T)
    mag_t = np.ascontiguousarray(mag.T)
    harmonic_t = np.empty_like(mag_t)
    _median_filter_axis0(mag_t, HPSS_KERNEL, harmonic_t)  # along time
    percussive = np.empty_like(mag_t.T)
    _median_filter_axis0(mag_t.T, HPSS_KERNEL, percussive)  # along frequency
    stft_harm_t = _apply_soft_mask(stft_t, harmonic_t, np.ascontiguousarray(percussive.T))
    y_harm = librosa.istft(stft_harm_t.T, n_fft=N_FFT, hop_length=HOP_LENGTH, length=y.size, dtype=y.dtype)
    return y_harm, y - y_harm


@numba.njit(cache=True, nogil=True)
def _apply_soft_mask(stft_t, harmonic_t, percussive_t):  # pragma: no cover - compiled
    """``stft * softmask(H, P, power=2, split_zeros=True)`` with librosa's float32 steps.

    All arrays are C-contiguous (frames, bins); the complex STFT is read as
    interleaved float32 pairs and the mask is computed without branches, so
    the loop vectorises.
    """
    n_frames, n_bins = stft_t.shape
    out = np.empty_like(stft_t)
    pairs_in = stft_t.view(np.float32)
    pairs_out = out.view(np.float32)
    tiny = np.finfo(np.float32).tiny
    half = np.float32(0.5)
    one = np.float32(1.0)
    for t in range(n_frames):
        for f in range(n_bins):
            h = harmonic_t[t, f]
            p = percussive_t[t, f]
            z = max(h, p)
            bad = z < tiny  # librosa sets Z = 1 there and the mask to 0.5
            z = one if bad else z
            a = h / z
            a = a * a
            b = p / z
            b = b * b
            m = half if bad else a / (a + b)
            pairs_out[t, 2 * f] = pairs_in[t, 2 * f] * m
            pairs_out[t, 2 * f + 1] = pairs_in[t, 2 * f + 1] * m
    return out


@numba.njit(cache=True, nogil=True)
def _reflect(i, n):  # pragma: no cover - compiled
    """Index i of a length-n axis under scipy.ndimage's 'reflect' (d c b a | a b c d) padding."""
    j = i % (2 * n)
    return 2 * n - 1 - j if j >= n else j


@numba.njit(cache=True, nogil=True)
def _median_filter_axis0(X, k, out):  # pragma: no cover - compiled
    """``out[:] = scipy.ndimage.median_filter(X, size=(k, 1), mode='reflect')``, exactly.

    scipy's generic 2-D rank filter sorts a 31-element neighbourhood for every
    one of the 1.3 M bins (about 0.5 s per filter for 30 s). Here a window of
    k rows slides down axis 0 and every column keeps its current median m.
    When one row leaves and one enters, the k-th/2 order statistic moves by at
    most one rank, so counting how many window values are below / not above m
    tells whether m stays, becomes the largest value below m, or the smallest
    value above m. The result is an element of the window chosen by rank,
    i.e. exactly the median scipy returns. The inner loop runs across
    columns, so it vectorises (SIMD), which is where the speed comes from.
    """
    n, n_cols = X.shape
    h = k // 2
    window = np.empty((k, n_cols), X.dtype)
    for q in range(k):
        window[q] = X[_reflect(q - h, n)]
    med = np.empty(n_cols, X.dtype)
    column = np.empty(k, X.dtype)
    for c in range(n_cols):
        for q in range(k):
            column[q] = window[q, c]
        column.sort()
        med[c] = column[h]
    out[0] = med
    below = np.empty(n_cols, np.int32)
    not_above = np.empty(n_cols, np.int32)
    lower = np.empty(n_cols, X.dtype)
    upper = np.empty(n_cols, X.dtype)
    slot = 0
    for i in range(1, n):
        window[slot] = X[_reflect(i + h, n)]  # replaces row i - 1 - h
        slot = slot + 1 if slot + 1 < k else 0
        below[:] = 0
        not_above[:] = 0
        lower[:] = -np.inf
        upper[:] = np.inf
        for q in range(k):
            row = window[q]
            for c in range(n_cols):
                v = row[c]
                m = med[c]
                below[c] += v < m
                not_above[c] += v <= m
                if v < m and v > lower[c]:
                    lower[c] = v
                if v > m and v < upper[c]:
                    upper[c] = v
        for c in range(n_cols):
            if below[c] > h:
                med[c] = lower[c]
            elif not_above[c] <= h:
                med[c] = upper[c]
        out[i] = med


def _tempo(mel_db: np.ndarray, *, sr: int) -> float:
    """The tempo ``librosa.beat.beat_track(y=y)`` returns, from the shared dB mel spectrogram.

    beat_track's onset envelope is ``onset_strength(y, aggregate=np.median)``,
    whose spectrogram is this one; its tempo is ``feature.tempo`` of that
    envelope (0 when the envelope is all zero, e.g. silence).
    """
    envelope = librosa.onset.onset_strength(S=mel_db, sr=sr, aggregate=np.median)
    if not envelope.any():
        return 0.0
    return float(librosa.feature.tempo(onset_envelope=envelope, sr=sr, hop_length=HOP_LENGTH)[0])
