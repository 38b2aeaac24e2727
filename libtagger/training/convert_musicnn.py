"""Convert the MSD_musicnn checkpoint in the ``musicnn==0.1.0`` wheel to Keras 3 weights.

The musicnn package cannot be installed with current NumPy, so we read its TF1
checkpoint directly with TensorFlow's checkpoint reader and copy each variable into
the matching layer of :func:`libtagger.audio.musicnn.build_msd_musicnn`.

Usage::

    python -m libtagger.training.convert_musicnn musicnn-0.1.0-py3-none-any.whl --out models/musicnn
"""

from __future__ import annotations

import argparse
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from libtagger.audio.musicnn import MIDEND, TEMPORAL, TIMBRAL, WEIGHTS_NAME

#: The checkpoints of the wheel that share MSD_musicnn's graph (MTT_musicnn: 50 MagnaTagATune tags).
CHECKPOINTS = ("MSD_musicnn", "MTT_musicnn")
LICENSE_MEMBER = "musicnn-0.1.0.dist-info/LICENSE.md"
LICENSE_NAME = "LICENSE-musicnn.txt"

# Checkpoint scope -> Keras layer, in the order the TF1 graph created them.
_BN_LAYERS = ["input_bn", *(f"{n}_bn" for n, _ in TIMBRAL), *(f"{n}_bn" for n, _ in TEMPORAL),
              *(f"{n}_bn" for n in MIDEND), "pool_bn", "dense_bn"]
_CONV_LAYERS = [*(f"{n}_conv" for n, _ in TIMBRAL), *(f"{n}_conv" for n, _ in TEMPORAL),
                *(f"{n}_conv" for n in MIDEND)]


def _scope(prefix: str, i: int) -> str:
    return prefix if i == 0 else f"{prefix}_{i}"


def layer_map() -> dict[str, list[str]]:
    """Keras layer name -> checkpoint variable names, in Keras weight order."""
    mapping: dict[str, list[str]] = {}
    for i, layer in enumerate(_BN_LAYERS):
        s = _scope("batch_normalization", i)
        mapping[layer] = [f"{s}/gamma", f"{s}/beta", f"{s}/moving_mean", f"{s}/moving_variance"]
    for i, layer in enumerate(_CONV_LAYERS):
        s = _scope("conv2d", i)
        mapping[layer] = [f"{s}/kernel", f"{s}/bias"]
    for i, layer in enumerate(["dense", "logits"]):
        s = _scope("dense", i)
        mapping[layer] = [f"{s}/kernel", f"{s}/bias"]
    return mapping


def _model_variables(reader_shapes: dict[str, list[int]]) -> set[str]:
    """Checkpoint variables that are weights (not Adam slots or Adam's beta powers)."""
    return {n for n in reader_shapes
            if not n.endswith(("/Adam", "/Adam_1")) and n not in ("beta1_power", "beta2_power")}


def convert(wheel: Path, out_dir: Path, *, checkpoint: str = "MSD_musicnn") -> Path:
    """Write ``msd_musicnn.weights.h5`` and the ISC license from the musicnn wheel.

    Parameters
    ----------
    wheel : Path
        ``musicnn-0.1.0-py3-none-any.whl`` (``pip download --no-deps musicnn==0.1.0``).
    out_dir : Path
        Destination folder, created if needed.
    checkpoint : str
        One of :data:`CHECKPOINTS`. ``MTT_musicnn`` has the same graph and other tags; it is
        converted only to be measured (``benchmarks/mtt_zero_shot.py``), and its weights take
        the same file name so :func:`libtagger.audio.musicnn_numpy.load_runtime` reads them.

    Returns
    -------
    Path
        The weights file.
    """
    import tensorflow as tf

    from libtagger.audio.musicnn import build_msd_musicnn

    wheel, out_dir = Path(wheel), Path(out_dir)
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"unknown musicnn checkpoint {checkpoint!r}; known: {', '.join(CHECKPOINTS)}")
    if not zipfile.is_zipfile(wheel):
        raise ValueError(f"{wheel} is not a wheel (zip) file")
    with zipfile.ZipFile(wheel) as zf, tempfile.TemporaryDirectory() as tmp:
        names = set(zf.namelist())
        # The wheel stores the checkpoint with an empty prefix (files ".index",
        # ".data-00000-of-00001"); give it a name so the reader accepts it.
        prefix = Path(tmp) / "msd_musicnn"
        for suffix in (".index", ".data-00000-of-00001"):
            member = f"musicnn/{checkpoint}/{suffix}"
            if member not in names:
                raise ValueError(f"{wheel} has no {member}: not the musicnn 0.1.0 wheel?")
            Path(f"{prefix}{suffix}").write_bytes(zf.read(member))
        if LICENSE_MEMBER not in names:
            raise ValueError(f"{wheel} has no {LICENSE_MEMBER}")
        license_text = zf.read(LICENSE_MEMBER).decode("utf-8")

        reader = tf.train.load_checkpoint(str(prefix))
        shapes = reader.get_variable_to_shape_map()
        wanted = _model_variables(shapes)
        model = build_msd_musicnn()
        used: list[str] = []
        for layer_name, var_names in layer_map().items():
            layer = model.get_layer(layer_name)
            values = []
            for var, target in zip(var_names, layer.get_weights(), strict=True):
                value = reader.get_tensor(var)
                if value.shape != target.shape:
                    # Mid-end kernels are (7, F, 1, 64) Conv2D kernels spanning all F
                    # features; as Conv1D kernels they are (7, F, 64).
                    if value.size != target.size or layer_name not in {f"{n}_conv" for n in MIDEND}:
                        raise ValueError(f"{var} has shape {value.shape}, layer {layer_name} "
                                         f"expects {target.shape}")
                    value = value.reshape(target.shape)
                values.append(value.astype(np.float32))
                used.append(var)
            layer.set_weights(values)

    if sorted(used) != sorted(wanted):
        missing = sorted(wanted - set(used))
        extra = sorted(set(used) - wanted)
        dup = sorted({v for v in used if used.count(v) > 1})
        raise AssertionError(f"checkpoint mapping is wrong: unused {missing}, unknown {extra}, twice {dup}")
    n_numbers = sum(int(np.prod(shapes[v])) for v in used)
    if n_numbers != model.count_params():
        raise AssertionError(f"copied {n_numbers} numbers but the model has {model.count_params()}")

    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / WEIGHTS_NAME
    model.save_weights(weights)
    (out_dir / LICENSE_NAME).write_text(license_text.rstrip("\n") + "\n", encoding="utf-8")
    return weights


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m libtagger.training.convert_musicnn", description=__doc__.split("\n")[0])
    parser.add_argument("wheel", type=Path, help="musicnn-0.1.0-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: models/musicnn)")
    args = parser.parse_args(argv)
    if args.out is None:
        from libtagger.paths import models_dir
        args.out = models_dir() / "musicnn"
    path = convert(args.wheel, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
