"""The 57 GTZAN features: parity with the Kaggle table, fast path == reference, and input checks."""

from __future__ import annotations

import csv
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.ndimage

from conftest import music_like
from libtagger.audio import features
from libtagger.audio.features import FEATURE_NAMES, SAMPLE_RATE, paper_segment_features, segment_features
from libtagger.genres import GENRES

SR = SAMPLE_RATE
FUNCTIONS = {"fast": segment_features, "paper": paper_segment_features}


@pytest.fixture(scope="module")
def table(gtzan: Path) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:
    """(header, {filename: 57 values}, per-column std over the 1000 rows) of features_30_sec.csv."""
    with open(gtzan / "features_30_sec.csv", newline="") as fh:  # CRLF lines
        reader = csv.reader(fh)
        header = next(reader)
        rows = {r[0]: np.array([float(v) for v in r[2:-1]]) for r in reader}
    values = np.vstack(list(rows.values()))
    assert values.shape == (1000, 57)
    return header, rows, values.std(axis=0)


@pytest.fixture(scope="module")
def clips(gtzan: Path) -> dict[str, np.ndarray]:
    """The 10 original 30-s clips, loaded whole as the table's authors did."""
    return {g: librosa.load(gtzan / "audio" / f"{g}.00000.au", sr=SR)[0] for g in GENRES}


def test_feature_names_are_the_table_columns(table):
    header, _, _ = table
    assert header[0] == "filename" and header[1] == "length" and header[-1] == "label"
    assert FEATURE_NAMES == tuple(header[2:-1])


@pytest.mark.parametrize("kind", FUNCTIONS)
def test_parity_with_kaggle_table(kind, table, clips):
    _, rows, std = table
    for genre, y in clips.items():
        ref = rows[f"{genre}.00000.au"]
        got = FUNCTIONS[kind](y, sr=SR)
        rel = np.abs(got - ref) / np.abs(ref)
        # Absolute error in column-std units, which also suits harmony_mean/perceptr_mean (near zero).
        in_std = np.abs(got - ref) / std
        assert np.median(rel) <= 1e-3, f"{kind} {genre}: median relative error {np.median(rel):.2e}"
        worst = int(np.argmax(in_std))
        assert in_std[worst] <= 0.05, (
            f"{kind} {genre}: {FEATURE_NAMES[worst]} = {got[worst]!r}, table {ref[worst]!r} "
            f"({in_std[worst]:.3f} of the column std)")


def test_fast_equals_reference_on_gtzan(clips, table):
    """The shortcuts change nothing measurable: fast and plain librosa agree to 1e-5 of a column std."""
    _, _, std = table
    y = clips["disco"]
    diff = np.abs(segment_features(y) - paper_segment_features(y)) / std
    assert diff.max() < 1e-5, f"{FEATURE_NAMES[int(diff.argmax())]} differs by {diff.max():.2e} std"


@pytest.mark.parametrize("seconds, seed", [(3, 0), (10, 3)])
def test_fast_equals_reference_on_other_audio(seconds, seed):
    y = music_like(seconds, sr=SR, channels=1, seed=seed)[:, 0]
    y = y + np.random.default_rng(seed).normal(0, 0.05, y.size).astype(np.float32)
    fast, paper = segment_features(y), paper_segment_features(y)
    assert fast[FEATURE_NAMES.index("tempo")] == paper[FEATURE_NAMES.index("tempo")]
    np.testing.assert_allclose(fast, paper, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("kind", FUNCTIONS)
@pytest.mark.parametrize("seconds", [3, 30])
def test_shape_dtype_finite(kind, seconds):
    y = music_like(seconds, sr=SR, channels=1)[:, 0]
    out = FUNCTIONS[kind](y, sr=SR)
    assert out.shape == (57,) and out.dtype == np.float64
    assert np.isfinite(out).all()
    assert out[FEATURE_NAMES.index("tempo")] > 0
    assert out[FEATURE_NAMES.index("spectral_centroid_mean")] > 100


def test_float64_input_gives_the_float32_result():
    y = music_like(4, sr=SR, channels=1)[:, 0]
    np.testing.assert_array_equal(segment_features(y.astype(np.float64)), segment_features(y))


@pytest.mark.parametrize("kind", FUNCTIONS)
@pytest.mark.parametrize("seconds", [3, 30])
def test_silence_is_finite(kind, seconds):
    out = FUNCTIONS[kind](np.zeros(seconds * SR, dtype=np.float32), sr=SR)
    assert out.shape == (57,)
    assert np.isfinite(out).all()
    assert out[FEATURE_NAMES.index("tempo")] == 0.0
    assert out[FEATURE_NAMES.index("rms_mean")] == 0.0


def test_near_silence_and_dc_are_finite():
    for y in (np.full(3 * SR, 1e-30, np.float32), np.full(3 * SR, 0.5, np.float32)):
        assert np.isfinite(segment_features(y)).all()


@pytest.mark.parametrize("kind", FUNCTIONS)
def test_bad_input_raises_naming_the_value(kind):
    fn = FUNCTIONS[kind]
    y = np.zeros(3 * SR, dtype=np.float32)
    with pytest.raises(ValueError, match="44100"):
        fn(y, sr=44100)
    with pytest.raises(ValueError, match="empty segment: 0 samples"):
        fn(np.zeros(0, dtype=np.float32), sr=SR)
    with pytest.raises(ValueError, match="1000 samples"):
        fn(np.zeros(1000, dtype=np.float32), sr=SR)
    bad = y.copy()
    bad[123] = np.nan
    with pytest.raises(ValueError, match=r"1 non-finite samples \(first at index 123: nan\)"):
        fn(bad, sr=SR)
    bad[5] = np.inf
    with pytest.raises(ValueError, match="2 non-finite samples .first at index 5: inf"):
        fn(bad, sr=SR)
    with pytest.raises(ValueError, match=r"\(66150, 2\)"):
        fn(np.zeros((3 * SR, 2), dtype=np.float32), sr=SR)
    with pytest.raises(ValueError, match="int16"):
        fn(np.zeros(3 * SR, dtype=np.int16), sr=SR)


# ---------------------------------------------------------------- the shortcuts, one by one


@pytest.mark.parametrize("shape", [(1025, 130), (40, 7), (7, 40), (3, 3), (1, 1), (200, 64)])
def test_median_filter_is_scipys_exactly(shape):
    rng = np.random.default_rng(sum(shape))
    X = rng.random(shape).astype(np.float32)
    X[X < 0.3] = 0.0  # many ties, as in silent bins
    X[:, ::5] = X[:, :1]  # repeated values
    for k in (31, 5, 1):
        expected = scipy.ndimage.median_filter(X, size=(k, 1), mode="reflect")
        out = np.empty_like(X)
        features._median_filter_axis0(X, k, out)
        np.testing.assert_array_equal(out, expected)
        # Strided (transposed) input and output views, as _hpss passes them.
        out = np.empty_like(X)
        features._median_filter_axis0(X.T, k, out.T)
        np.testing.assert_array_equal(out, scipy.ndimage.median_filter(X, size=(1, k), mode="reflect"))


def _music(seconds: float = 6, seed: int = 1) -> np.ndarray:
    y = music_like(seconds, sr=SR, channels=1, seed=seed)[:, 0]
    return y + np.random.default_rng(seed).normal(0, 0.02, y.size).astype(np.float32)


def test_hpss_matches_librosa():
    y = _music()
    stft = librosa.stft(y)
    harm, perc = features._hpss(stft, np.abs(stft), y)
    ref_harm, ref_perc = librosa.effects.hpss(y)
    scale = np.abs(y).max()
    np.testing.assert_allclose(harm, ref_harm, rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(perc, ref_perc, rtol=0, atol=1e-6 * scale)


def test_spectral_shortcuts_match_librosa():
    y = _music()
    mag = np.abs(librosa.stft(y))
    centroid, bandwidth = features._centroid_bandwidth(mag, sr=SR)
    np.testing.assert_allclose(centroid, librosa.feature.spectral_centroid(S=mag, sr=SR)[0], rtol=1e-6)
    np.testing.assert_allclose(bandwidth, librosa.feature.spectral_bandwidth(S=mag, sr=SR)[0], rtol=1e-6)
    np.testing.assert_array_equal(features._rolloff(mag, sr=SR), librosa.feature.spectral_rolloff(S=mag, sr=SR)[0])
    np.testing.assert_array_equal(features._zero_crossing_rate(y), librosa.feature.zero_crossing_rate(y)[0])
    power = mag**2
    assert features._estimate_tuning(power, sr=SR) == librosa.estimate_tuning(S=power, sr=SR, bins_per_octave=12)


def test_tuning_follows_a_detuned_tone():
    t = np.arange(3 * SR) / SR
    y = (0.3 * np.sin(2 * np.pi * 440 * 2 ** (0.3 / 12) * t)).astype(np.float32)  # A4 + 30 cents
    power = np.abs(librosa.stft(y)) ** 2
    assert features._estimate_tuning(power, sr=SR) == pytest.approx(0.3, abs=0.05)
    assert features._estimate_tuning(power, sr=SR) == librosa.estimate_tuning(S=power, sr=SR, bins_per_octave=12)
    assert features._estimate_tuning(np.zeros_like(power), sr=SR) == 0.0


def test_tempo_is_beat_tracks():
    y = _music(8, seed=2)
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR))
    tempo, _ = librosa.beat.beat_track(y=y, sr=SR)
    assert features._tempo(mel_db, sr=SR) == float(np.atleast_1d(tempo)[0])
