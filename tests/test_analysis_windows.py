"""The analysis of given windows (audio.analysis.analyse_windows, frontend_log_mels, segment_taggrams).

The scan and the benchmarks that try other windows or another checkpoint
(benchmarks/segment_placement.py, benchmarks/mtt_zero_shot.py) run these functions, so a
benchmark measures what the scan computes. Real files the tests write, the real network.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import music_like
from libtagger.audio.analysis import (AnalysisJob, TrackAnalysis, analyse_windows, analyze_file,
                                      decode_windows, frontend_log_mels, segment_taggrams,
                                      taggrams_of_log_mels)
from libtagger.audio.musicnn_numpy import load_runtime
from libtagger.errors import FileError, TooShortError


def _loud_stereo(path: Path, seconds: float = 70.0) -> Path:
    """A stereo 44.1-kHz track mastered loud: the front-end gain is not 1."""
    y = music_like(seconds, sr=44100, channels=2, seed=21)
    sf.write(path, 0.99 * y / np.abs(y).max(), 44100)
    return path


def test_the_scans_windows_give_the_scans_numbers_bit_for_bit(tmp_path):
    path = str(_loud_stereo(tmp_path / "loud.wav"))
    # Loading the runtime limits BLAS to one thread, which moves the last bits of the features:
    # analyze_file loads it first (test below); analyse_windows needs it loaded to match.
    load_runtime()
    scan = analyze_file(AnalysisJob(path, max_segments=2))
    assert isinstance(scan, TrackAnalysis), scan
    analysed = analyse_windows(path, scan.windows)
    assert [y.shape for y in analysed.segments] == [(30 * 22050,)] * 2
    assert analysed.features.shape == (2, 57) and analysed.features.dtype == np.float64
    assert np.array_equal(analysed.features.astype(np.float32), scan.features)
    assert np.array_equal(analysed.pulse.astype(np.float32), scan.pulse)
    taggrams = segment_taggrams(analysed.segments, analysed.features)
    assert len(taggrams) == 2 and all(np.array_equal(t, s) for t, s in zip(taggrams, scan.taggrams))
    # a benchmark running a checkpoint of its own over the same spectrograms
    by_hand = taggrams_of_log_mels(frontend_log_mels(analysed.segments, list(analysed.features)), load_runtime())
    assert all(np.array_equal(t, s) for t, s in zip(by_hand, scan.taggrams))


def test_other_windows_are_decoded_and_checked_as_the_scans(tmp_path):
    path = str(_loud_stereo(tmp_path / "loud.wav", seconds=40.0))
    inset = analyse_windows(path, [(4.0, 34.0)], pulse=False)
    assert inset.pulse is None and inset.features.shape == (1, 57)
    assert inset.segments[0].shape == (30 * 22050,) and inset.segments[0].dtype == np.float32
    with pytest.raises(TooShortError) as short:
        decode_windows(path, [(0.0, 30.0), (39.0, 69.0)])
    assert short.value.reason == "only 1.0 s of audio could be decoded at 39 s"


def test_silence_and_invalid_audio_in_the_given_windows_are_file_errors(tmp_path):
    sr = 22050
    y = music_like(60.0, sr=sr, channels=1, seed=3)[:, 0].astype(np.float32)
    y[: 30 * sr] = 0.0  # a silent first half
    y[45 * sr: 46 * sr] = np.nan  # 1 s of NaN: a third of the 50-53 s window
    path = tmp_path / "half.wav"
    sf.write(path, y, sr, subtype="FLOAT")
    with pytest.raises(FileError) as silent:
        decode_windows(str(path), [(0.0, 30.0)])
    assert silent.value.reason == ("silence: the analysed audio never rises above -80 dBFS,"
                                   " there is no music to tell a genre from")
    with pytest.raises(FileError) as invalid:
        decode_windows(str(path), [(44.0, 47.0)])
    assert invalid.value.reason == "invalid audio: 33% of the samples from 44 s are NaN or infinite"
    assert len(decode_windows(str(path), [(0.0, 30.0), (30.0, 45.0)])) == 2  # the check is over all windows


_FEATURES_IN_ORDER = """
import sys, numpy as np
from libtagger.audio.analysis import AnalysisJob, analyze_file
first, second, out = sys.argv[1:]
analysed = {p: analyze_file(AnalysisJob(p, max_segments=1)) for p in (first, second)}
np.save(out, np.vstack([analysed[p].features for p in sorted(analysed)]))
"""


def test_a_workers_first_file_gets_the_same_numbers_as_a_later_one(tmp_path):
    """Loading the network limits BLAS to one thread; before the features were computed on the
    first file a process analysed, they differed from that file's later analyses in the last bits,
    so a verdict could depend on the order of the files."""
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    for seed, path in ((31, a), (32, b)):
        sf.write(path, music_like(8.0, sr=22050, channels=1, seed=seed), 22050)
    for first, second, out in ((a, b, "ab.npy"), (b, a, "ba.npy")):
        subprocess.run([sys.executable, "-c", _FEATURES_IN_ORDER, str(first), str(second), str(tmp_path / out)],
                       check=True)
    assert np.array_equal(np.load(tmp_path / "ab.npy"), np.load(tmp_path / "ba.npy"))
