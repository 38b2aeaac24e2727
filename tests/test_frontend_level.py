"""The MSD_musicnn front-end sees a loud master at GTZAN's usual level (audio.analysis.frontend_gain).

Its input, log10(10000 x + 1) of the mel power, moves with the playback level, and the heads
learnt from GTZAN clips. Measured with the real analysis on real files the test writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from conftest import music_like
from libtagger.audio import musicnn
from libtagger.audio.musicnn_numpy import load_runtime
from libtagger.audio.analysis import FRONTEND_RMS_RANGE, AnalysisJob, analyze_file, frontend_gain

SR = 22050


def _write(path: Path, y: np.ndarray) -> Path:
    sf.write(path, y, SR, subtype="FLOAT")  # float: +12 dB is not clipped
    return path


def _frame_rms_mean(y: np.ndarray) -> float:
    import librosa

    return float(librosa.feature.rms(y=y).mean())


def test_gain_leaves_gtzan_levels_alone_and_brings_others_into_range():
    assert frontend_gain(0.12) == 1.0 and frontend_gain(FRONTEND_RMS_RANGE[0]) == 1.0
    assert np.isclose(0.5 * frontend_gain(0.5), FRONTEND_RMS_RANGE[1])
    assert np.isclose(0.03 * frontend_gain(0.03), FRONTEND_RMS_RANGE[0])
    assert np.isclose(frontend_gain(1e-4), 10 ** (12 / 20))  # at most +12 dB: hiss stays hiss
    assert frontend_gain(0.0) == 1.0


def test_a_track_12_db_louder_reaches_the_front_end_almost_as_the_original(tmp_path):
    y = music_like(30.0, sr=SR, channels=1, seed=4)[:, 0].astype(np.float64)
    y *= 0.12 / _frame_rms_mean(y.astype(np.float32))  # inside GTZAN's usual range
    original = analyze_file(AnalysisJob(str(_write(tmp_path / "original.wav", y))))
    loud = analyze_file(AnalysisJob(str(_write(tmp_path / "loud.wav", 4 * y))))
    # The workers return taggrams (issue #10): compare what the front-end made of each input.
    runtime = load_runtime()

    def taggram(audio: np.ndarray) -> np.ndarray:
        return runtime.taggrams(musicnn.mel_patches(audio.astype(np.float32), sr=SR,
                                                    hop=musicnn.INFERENCE_PATCH_HOP))

    assert np.allclose(original.taggrams[0], taggram(y), atol=1e-4)
    ungained = taggram(4 * y)
    moved_without = np.abs(ungained - original.taggrams[0]).mean()
    moved_with = np.abs(loud.taggrams[0] - original.taggrams[0]).mean()
    assert moved_with < 0.5 * moved_without, (moved_with, moved_without)
    # the 57 features are computed before the gain: the stored rows are the file's own
    assert loud.features[0][2] > 3 * original.features[0][2]  # rms_mean
