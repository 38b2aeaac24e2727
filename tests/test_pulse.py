"""libtagger.audio.pulse.pulse_clarity on audio the test makes: a drum loop keeps a beat,
read speech (espeak-ng), white noise and silence do not; bad input is refused by name."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from libtagger.audio.pulse import pulse_clarity
from libtagger.classify.openset import T_PULSE

SR = 22050


def _drum_loop(bpm: float, seconds: float = 30.0) -> np.ndarray:
    """Decaying noise bursts (kick on every beat, a softer hat between), at ``bpm``."""
    rng = np.random.default_rng(0)
    y = np.zeros(int(seconds * SR))
    hit = rng.standard_normal(int(0.08 * SR)) * np.exp(-np.arange(int(0.08 * SR)) / (0.015 * SR))
    beat = 60.0 / bpm
    for k in range(int(seconds / beat * 2)):
        start = int(k * beat / 2 * SR)
        gain = 1.0 if k % 2 == 0 else 0.3
        y[start:start + len(hit)] += gain * hit[:len(y) - start]
    return 0.5 * y / np.max(np.abs(y))


@pytest.mark.parametrize("bpm", [70, 120, 170])
def test_a_drum_loop_keeps_a_beat(bpm):
    assert pulse_clarity(_drum_loop(bpm), sr=SR) > 0.6


def test_noise_and_silence_keep_none():
    noise = np.random.default_rng(1).standard_normal(30 * SR) * 0.1
    assert pulse_clarity(noise, sr=SR) < T_PULSE
    assert pulse_clarity(np.zeros(30 * SR), sr=SR) == 0.0


def test_read_speech_keeps_none(tmp_path: Path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install -y espeak-ng)")
    text = ("It was the best of times, it was the worst of times. It was the age of wisdom, it was the age of "
            "foolishness. It was the epoch of belief, it was the epoch of incredulity. It was the season of "
            "light, it was the season of darkness. We had everything before us, we had nothing before us.")
    wav = tmp_path / "read.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), text], check=True)
    y, sr = sf.read(wav, dtype="float32")
    assert len(y) > 15 * sr
    assert pulse_clarity(y, sr=sr) < T_PULSE


@pytest.mark.parametrize("y,sr,message", [
    (np.zeros((2, 30 * SR)), SR, r"mono, shape \(n_samples,\), got shape \(2, 661500\)"),
    (np.zeros(SR), SR, r"at least 1.5 s of audio, got 1.00 s"),
    (np.full(30 * SR, np.nan), SR, "NaN or infinity"),
    (np.zeros(30 * SR), 0, "sr must be positive, got 0"),
])
def test_bad_input_is_refused_by_name(y, sr, message):
    with pytest.raises(ValueError, match=message):
        pulse_clarity(y, sr=sr)
