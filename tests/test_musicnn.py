"""MSD_musicnn port: shapes, padding, lazy TensorFlow, the converter, and parity with the
reference taggrams of real GTZAN clips."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import music_like
from libtagger.audio import musicnn
from libtagger.errors import ModelError

ROOT = Path(__file__).resolve().parent.parent
WHEEL = ROOT.parent / "wheels" / "musicnn-0.1.0-py3-none-any.whl"


def expected_patches(n_samples_16k: int) -> int:
    n_frames = 1 + n_samples_16k // musicnn.HOP_LENGTH
    return max(1, 1 + (n_frames - musicnn.PATCH_FRAMES) // musicnn.PATCH_HOP)


def test_constants_and_tags():
    assert (musicnn.SAMPLE_RATE, musicnn.N_MELS, musicnn.PATCH_FRAMES) == (16000, 96, 187)
    assert musicnn.PATCH_HOP == 61
    assert len(musicnn.TAGS) == 50 and len(set(musicnn.TAGS)) == 50
    assert musicnn.TAGS[:3] == ("rock", "pop", "alternative") and musicnn.TAGS[-1] == "happy"


def test_import_does_not_load_tensorflow():
    code = ("import sys, libtagger.audio.musicnn; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, f"importing libtagger.audio.musicnn loaded {proc.stdout.strip()}"


def test_mel_patches_shapes_from_44k_stereo():
    y = music_like(10.0, sr=44100, channels=2).T            # (channels, samples)
    patches = musicnn.mel_patches(y, sr=44100)
    assert patches.dtype == np.float32
    assert patches.shape == (expected_patches(160000), 187, 96) == (8, 187, 96)
    assert np.isfinite(patches).all() and patches.min() >= 0 and patches.max() > 1
    # consecutive patches overlap: patch 1 starts 61 frames into patch 0
    np.testing.assert_array_equal(patches[1][:126], patches[0][61:])


def test_mel_patches_at_16k_skips_resampling():
    y = music_like(4.0, sr=16000, channels=1)[:, 0]
    patches = musicnn.mel_patches(y, sr=16000)
    assert patches.shape == (expected_patches(y.size), 187, 96)


def test_short_audio_gives_one_zero_padded_patch():
    y = music_like(2.0, sr=22050, channels=1)[:, 0]
    patches = musicnn.mel_patches(y, sr=22050)
    assert patches.shape == (1, 187, 96)
    n_frames = 1 + 32000 // 256                               # 2 s at 16 kHz
    assert (patches[0, n_frames:] == 0).all()
    assert (patches[0, :n_frames].max(axis=1) > 0).all()


@pytest.mark.parametrize("bad", [np.zeros(0), np.zeros((2, 3, 4))])
def test_mel_patches_rejects_bad_audio(bad):
    with pytest.raises(ValueError, match="shape"):
        musicnn.mel_patches(bad, sr=16000)


def test_build_shapes_and_parameter_count():
    model = musicnn.build_msd_musicnn()
    assert model.input_shape == (None, 187, 96)
    assert model.output_shape == (None, 50)
    assert model.count_params() == 792_079                   # checkpoint minus Adam's beta powers


def test_load_frontend_is_cached_and_reports_missing_weights(tmp_path):
    assert musicnn.load_frontend() is musicnn.load_frontend()
    with pytest.raises(ModelError, match=str(tmp_path)):
        musicnn.load_frontend(tmp_path)


def test_taggrams_shape_range_and_batch_independence():
    y = music_like(8.0, sr=22050, channels=1, seed=3)[:, 0]
    patches = musicnn.mel_patches(y, sr=22050)
    rows = musicnn.taggrams(patches)
    assert rows.shape == (patches.shape[0], 50) and rows.dtype == np.float32
    assert ((rows > 0) & (rows < 1)).all()
    np.testing.assert_allclose(musicnn.taggrams(patches, batch_size=2), rows, atol=1e-5)
    assert musicnn.taggrams(np.zeros((0, 187, 96))).shape == (0, 50)
    with pytest.raises(ValueError, match="187, 96"):
        musicnn.taggrams(np.zeros((2, 96, 187)))


# Keras 3.15's save_weights calls np.array(tf.Variable) (its own NumPy 2 deprecation).
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_convert_reproduces_committed_weights(tmp_path):
    if not WHEEL.exists():
        pytest.skip(f"musicnn wheel not found at {WHEEL} (pip download --no-deps musicnn==0.1.0)")
    from libtagger.training.convert_musicnn import convert, layer_map

    out = convert(WHEEL, tmp_path)
    assert out == tmp_path / "msd_musicnn.weights.h5"
    assert "Permission to use, copy, modify" in (tmp_path / "LICENSE-musicnn.txt").read_text()
    fresh = musicnn.load_frontend(out)
    shipped = musicnn.load_frontend()
    assert fresh is not shipped
    for a, b in zip(fresh.weights, shipped.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    # every layer that has weights is fed from the checkpoint
    weighted = {layer.name for layer in fresh.layers if layer.weights}
    assert weighted == set(layer_map())


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_convert_reads_the_mtt_checkpoint_of_the_same_graph(tmp_path):
    if not WHEEL.exists():
        pytest.skip(f"musicnn wheel not found at {WHEEL} (pip download --no-deps musicnn==0.1.0)")
    from libtagger.training.convert_musicnn import convert

    mtt = musicnn.load_frontend(convert(WHEEL, tmp_path, checkpoint="MTT_musicnn"))
    shipped = musicnn.load_frontend()
    shapes = [w.shape for w in shipped.weights]
    assert [w.shape for w in mtt.weights] == shapes
    assert not np.array_equal(mtt.weights[-1].numpy(), shipped.weights[-1].numpy())


def test_convert_rejects_an_unknown_checkpoint(tmp_path):
    from libtagger.training.convert_musicnn import convert

    with pytest.raises(ValueError, match="'MSD_vgg'.*MSD_musicnn, MTT_musicnn"):
        convert(tmp_path / "musicnn.whl", tmp_path / "out", checkpoint="MSD_vgg")


def test_convert_rejects_a_non_wheel(tmp_path):
    from libtagger.training.convert_musicnn import convert

    bogus = tmp_path / "musicnn.whl"
    bogus.write_text("not a zip")
    with pytest.raises(ValueError, match="musicnn.whl"):
        convert(bogus, tmp_path / "out")


def _clip_id(path: Path) -> str:
    return f"{path.stem.split('.')[0]}/{path.stem}.au"


def test_parity_with_reference_taggrams(gtzan):
    """Every GTZAN excerpt with reference rows: correlation >= 0.98, MAD <= 0.01 per clip.

    The .wav excerpts hold the first 15-20 s of each clip, so only patches whose frames
    lie wholly inside the excerpt (one frame of margin for the resampler's edge) are
    compared. The three full-length .au clips are compared on all their rows.
    """
    ref = np.load(gtzan / "musicnn" / "training_data_GTZAN_MSDmusicnn_taggram.npz")
    X, ids = ref["X"], ref["IDS"]
    known = set(ids.tolist())
    clips = [p for p in sorted((gtzan / "audio").glob("*.wav")) if _clip_id(p) in known]
    clips += [p for p in sorted((gtzan / "audio").glob("*.au")) if _clip_id(p) in known]
    assert len(clips) >= 38, f"expected the 38 excerpts (+ full clips) with reference rows, found {len(clips)}"

    model = musicnn.load_frontend()
    failures, report = [], []
    for path in clips:
        y, sr = sf.read(path, dtype="float32")
        expected = X[ids == _clip_id(path)]
        got = musicnn.taggrams(musicnn.mel_patches(y, sr=sr), model=model)
        n16 = int(np.ceil(y.size * musicnn.SAMPLE_RATE / sr))
        inside = [i for i in range(len(got))
                  if (i * musicnn.PATCH_HOP + musicnn.PATCH_FRAMES + 1) * musicnn.HOP_LENGTH <= n16]
        n = min(len(inside), len(expected))
        assert n >= 10, f"{path.name}: only {n} comparable patches"
        a, b = got[:n], expected[:n]
        corr = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
        mad = float(np.abs(a - b).mean())
        report.append(f"{path.name}: {n} patches corr={corr:.4f} mad={mad:.4f}")
        if not (corr >= 0.98 and mad <= 0.01):
            failures.append(report[-1])
    print("\n".join(report))
    assert not failures, "taggram parity failed:\n" + "\n".join(failures)
