"""The NumPy MSD_musicnn (audio/musicnn_numpy.py) against the Keras model, on real audio, and
the scan's workers computing taggrams without TensorFlow (issue #10)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import music_like
from libtagger.audio import musicnn
from libtagger.audio.musicnn_numpy import MusicnnRuntime, load_runtime
from libtagger.errors import ModelError

ROOT = Path(__file__).resolve().parent.parent


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_same_taggrams_as_keras_on_audio_the_test_makes():
    runtime, keras_model = load_runtime(), musicnn.load_frontend()
    for seed, sr in ((1, 44100), (2, 22050), (3, 16000)):
        y = music_like(9.0, sr=sr, channels=1, seed=seed)[:, 0]
        patches = musicnn.mel_patches(y, sr=sr)
        ours, ref = runtime.taggrams(patches), musicnn.taggrams(patches, model=keras_model)
        assert ours.shape == ref.shape == (patches.shape[0], 50) and ours.dtype == np.float32
        assert _corr(ours, ref) >= 0.99
        np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_same_taggrams_as_keras_on_every_gtzan_clip(gtzan):
    """The ten full 30-s clips: correlation >= 0.99 per clip (measured 1 - 1e-9), max |diff| <= 1e-3."""
    runtime, keras_model = load_runtime(), musicnn.load_frontend()
    clips = sorted((gtzan / "audio").glob("*.au"))
    assert len(clips) == 10
    report = []
    for path in clips:
        y, sr = sf.read(path, dtype="float32")
        patches = musicnn.mel_patches(y, sr=sr)
        ours, ref = runtime.taggrams(patches), musicnn.taggrams(patches, model=keras_model)
        report.append((path.name, _corr(ours, ref), float(np.abs(ours - ref).max())))
    print("\n".join(f"{n}: corr={c:.6f} max|diff|={d:.2e}" for n, c, d in report))
    assert all(c >= 0.99 and d <= 1e-3 for _, c, d in report), report


def test_parity_with_reference_taggrams(gtzan):
    """As tests/test_musicnn.py does for Keras: the reference rows of every clip that has them."""
    ref = np.load(gtzan / "musicnn" / "training_data_GTZAN_MSDmusicnn_taggram.npz")
    X, ids = ref["X"], ref["IDS"]
    known = set(ids.tolist())

    def clip_id(p: Path) -> str:
        return f"{p.stem.split('.')[0]}/{p.stem}.au"

    clips = [p for p in sorted((gtzan / "audio").iterdir()) if p.suffix in (".wav", ".au") and clip_id(p) in known]
    assert len(clips) >= 38
    runtime, failures = load_runtime(), []
    for path in clips:
        y, sr = sf.read(path, dtype="float32")
        got = runtime.taggrams(musicnn.mel_patches(y, sr=sr))
        expected = X[ids == clip_id(path)]
        n16 = int(np.ceil(y.size * musicnn.SAMPLE_RATE / sr))
        inside = [i for i in range(len(got))
                  if (i * musicnn.PATCH_HOP + musicnn.PATCH_FRAMES + 1) * musicnn.HOP_LENGTH <= n16]
        n = min(len(inside), len(expected))
        assert n >= 10, path.name
        corr, mad = _corr(got[:n], expected[:n]), float(np.abs(got[:n] - expected[:n]).mean())
        if not (corr >= 0.98 and mad <= 0.01):
            failures.append(f"{path.name}: corr={corr:.4f} mad={mad:.4f}")
    assert not failures, failures


@pytest.mark.parametrize("hop", [musicnn.PATCH_HOP, 2 * musicnn.PATCH_HOP, 183, 100])
def test_whole_spectrogram_pass_equals_the_pass_per_patch(hop):
    """What the workers run (timbral branches once per frame) is the per-patch network."""
    runtime = load_runtime()
    y = music_like(20.0, sr=22050, channels=1, seed=7)[:, 0]
    patches = musicnn.mel_patches(y, sr=22050, hop=hop)
    np.testing.assert_allclose(runtime.taggrams_of_logmel(musicnn.log_mel(y, sr=22050), hop),
                               runtime.taggrams(patches), atol=1e-6)
    short = y[:22050 * 2]  # shorter than one patch: zero-padded to one
    np.testing.assert_allclose(runtime.taggrams_of_logmel(musicnn.log_mel(short, sr=22050), hop),
                               runtime.taggrams(musicnn.mel_patches(short, sr=22050, hop=hop)), atol=1e-6)


def test_shapes_and_bad_input():
    runtime = load_runtime()
    assert runtime.taggrams(np.zeros((0, 187, 96))).shape == (0, 50)
    one = runtime.taggrams(np.zeros((1, 187, 96)))
    assert one.shape == (1, 50) and ((one > 0) & (one < 1)).all()
    with pytest.raises(ValueError, match="187, 96"):
        runtime.taggrams(np.zeros((2, 96, 187)))
    with pytest.raises(ValueError, match="logmel"):
        runtime.taggrams_of_logmel(np.zeros((100, 96)), 61)


def test_loaded_once_per_process_even_from_many_threads(tmp_path):
    got: list[MusicnnRuntime] = []
    threads = [threading.Thread(target=lambda: got.append(load_runtime())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(r is got[0] for r in got) and got[0] is load_runtime()
    with pytest.raises(ModelError, match="not found"):
        load_runtime(tmp_path)
    (tmp_path / musicnn.WEIGHTS_NAME).write_bytes(b"not hdf5")
    with pytest.raises(ModelError, match="cannot read"):
        load_runtime(tmp_path)


def _worker_report(job):
    """Runs in a loky worker: the analysis, and which network libraries the worker then holds."""
    from libtagger.audio.analysis import analyze_file

    result = analyze_file(job)
    return result, sorted(m for m in ("tensorflow", "keras") if m in sys.modules)


def test_workers_compute_taggrams_without_tensorflow(tmp_path):
    from libtagger.audio.analysis import AnalysisJob, TrackAnalysis
    from libtagger.parallel import map_unordered

    y = music_like(65.0, sr=44100, channels=2, seed=5)
    path = tmp_path / "song.flac"
    sf.write(path, y, 44100)
    [(_, (result, loaded))] = list(map_unordered(_worker_report, [AnalysisJob(str(path), max_segments=2)], jobs=1))
    assert isinstance(result, TrackAnalysis), result
    assert loaded == [], f"the worker imported {loaded}"
    assert len(result.taggrams) == len(result.windows) == 2
    assert all(t.shape[1] == 50 and t.dtype == np.float32 for t in result.taggrams)
    assert not hasattr(result, "patches")   # only taggrams cross the process boundary
    # the same taggrams as the Keras model on the same patches (the gain is 1 or not: recompute it)
    from libtagger.audio import decode, features
    from libtagger.audio.analysis import frontend_gain

    start, end = result.windows[0]
    seg = decode.load(str(path), sr=features.SAMPLE_RATE, offset=start, duration=end - start)
    gain = frontend_gain(float(np.mean(result.features[:, features.FEATURE_NAMES.index("rms_mean")])))
    ref = musicnn.taggrams(musicnn.mel_patches(seg * gain, sr=features.SAMPLE_RATE, hop=musicnn.INFERENCE_PATCH_HOP))
    assert _corr(result.taggrams[0], ref) >= 0.99


def test_a_fresh_worker_process_stays_light(tmp_path):
    """What a worker imports and loads for one file: no TensorFlow, and its peak memory (VmHWM)."""
    y = music_like(35.0, sr=44100, channels=2, seed=6)
    path = tmp_path / "song.wav"
    sf.write(path, y, 44100)
    code = (
        "import json, sys\n"
        "from libtagger.audio.analysis import AnalysisJob, analyze_file\n"
        f"r = analyze_file(AnalysisJob({str(path)!r}))\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(json.dumps({'taggrams': [t.shape for t in r.taggrams], 'hwm_mb': int(hwm) / 1024,\n"
        "                  'tf': [m for m in ('tensorflow', 'keras') if m in sys.modules]}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["tf"] == [] and len(out["taggrams"]) == 1
    # TensorFlow and Keras alone take a process past 600 MB; a worker stays well under it.
    assert out["hwm_mb"] < 450, out
