"""`libtagger evaluate --groups FILE`: the verdicts with each clip's artist as context, on real GTZAN data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from libtagger.classify.context import combine, group_ids
from libtagger.cli import app
from libtagger.genres import GENRES
from libtagger.training.evaluate import context_scores, expected_calibration_error, load_groups

NPZ = "musicnn/training_data_GTZAN_MSDmusicnn_taggram.npz"


@pytest.fixture(scope="module")
def real_data(gtzan: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 60-clip slice of the train split (the shared taggrams cover the train split only) and a groups
    file in Sturm's format made from the real index, with the variants the parser accepts."""
    if not (gtzan / NPZ).exists() or not (gtzan / "metadata" / "GTZANindex.txt").exists():
        pytest.skip(f"the train taggrams ({NPZ}) or metadata/GTZANindex.txt are not in {gtzan}")
    folder = tmp_path_factory.mktemp("groups")
    clips = (gtzan / "splits" / "train_filtered.txt").read_text().split()
    # Every 7th clip across the genres keeps artists with several clips (Bob Marley, Britney Spears, ...)
    chosen = clips[::7]
    split = folder / "slice.txt"
    split.write_text("\n".join(chosen) + "\n")
    index = (gtzan / "metadata" / "GTZANindex.txt").read_text(encoding="utf-8", errors="replace").splitlines()
    wanted = {Path(c).name.split(".wav")[0].split(".au")[0] for c in chosen}
    lines = ["## Sturm's format: comments and blank lines are skipped", ""]
    left_out = sorted(wanted)[::9]  # clips absent from the groups file: each is its own group
    for n, line in enumerate(line for line in index if ":::" in line):
        clip = line.split(":::")[0].strip().removesuffix(".wav")
        if clip in wanted and clip not in left_out:
            # both spellings of a clip: "blues.00000.wav" and "blues/blues.00000"
            lines.append(line if n % 2 else line.replace(f"{clip}.wav", f"{clip.split('.')[0]}/{clip}"))
    groups = folder / "artists.txt"
    groups.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "left_out.txt").write_text("\n".join(left_out))
    return {"split": split, "groups": groups, "npz": gtzan / NPZ, "gtzan": gtzan, "left_out": folder / "left_out.txt"}


def _run(data: dict[str, Path], *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["evaluate", "--split", str(data["split"]), "--taggrams", str(data["npz"]),
                                      "--gtzan", str(data["gtzan"]), *extra])
    return result.exit_code, result.output


def test_json_reports_the_context_beside_the_clip_alone_figures(real_data: dict[str, Path]) -> None:
    code, output = _run(real_data, "--groups", str(real_data["groups"]), "--json")
    assert code == 0, output
    result = json.loads(output)
    ctx, tracks = result["context"], result["tracks"]
    assert {"track_accuracy", "ece", "n_tracks"} <= set(ctx) and ctx["n_tracks"] == result["n_tracks"] == len(tracks)
    # the clip-alone figures are still the clip-alone ones
    assert result["track_accuracy"] == pytest.approx(np.mean([t["true"] == t["predicted"] for t in tracks]))
    # the context figures recompute from the per-clip rows
    assert ctx["track_accuracy"] == pytest.approx(np.mean([t["true"] == t["context_predicted"] for t in tracks]))
    # the rule was applied with each clip left out of its artist: recompute from the groups file
    artists = load_groups(real_data["groups"])
    ids = group_ids([artists.get(t["id"]) or None for t in tracks])
    assert ctx["n_with_group"] == int(sum((ids == g).sum() > 1 for g in ids)) > 10
    changed = [t for t in tracks if t["context_predicted"] != t["predicted"]]
    assert changed, "the artists' other clips changed no verdict"
    # clips absent from the groups file keep their own verdict and confidence
    left_out = set(real_data["left_out"].read_text().split())
    alone = [t for t in tracks if t["id"] in left_out]
    assert alone and all(t["context_predicted"] == t["predicted"] for t in alone)
    assert all(t["context_confidence"] == pytest.approx(t["confidence"]) for t in alone)
    assert 0.0 <= ctx["ece"] <= 1.0


def test_context_scores_use_the_library_rule_and_the_existing_ece() -> None:
    probs = np.array([[0.55, 0.45] + [0.0] * 8, [0.1, 0.9] + [0.0] * 8, [0.2, 0.8] + [0.0] * 8])
    pooled = combine(np.log(np.clip(probs, 1e-12, 1)), np.array([0, 0, 0]))
    scores, out = context_scores(probs, np.array([1, 1, 1]), ["a.1", "a.2", "a.3"], {"a.1": "X", "a.2": "X", "a.3": "X"})
    np.testing.assert_allclose(out, pooled)
    assert scores["ece"] == pytest.approx(expected_calibration_error(pooled, np.array([1, 1, 1])))
    assert scores["track_accuracy"] == 1.0 and probs.argmax(1)[0] == 0


def test_table_output_has_a_context_line(real_data: dict[str, Path]) -> None:
    code, output = _run(real_data, "--groups", str(real_data["groups"]))
    assert code == 0, output
    assert "with context (artists.txt): track accuracy" in output


def test_a_bad_groups_file_is_one_line_naming_file_and_line(real_data: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("## comment\nblues.00029.wav ::: John Lee Hooker ::: x\nthis line has no separators\n")
    code, output = _run(real_data, "--groups", str(bad))
    assert code == 1
    assert f"{bad}: line 3 is not 'clip ::: artist ::: title'" in output and "Traceback" not in output
    code, output = _run(real_data, "--groups", str(tmp_path / "absent.txt"))
    assert code == 1 and "cannot read the groups file" in output


def test_load_groups_accepts_sturms_spellings(tmp_path: Path) -> None:
    index = tmp_path / "GTZANindex.txt"
    index.write_text("## header\n\nblues.00000.wav ::: John Lee Hooker ::: One Bourbon\n"
                     "blues/blues.00001.au ::: John Lee Hooker\nblues.00002 :::  ::: unknown\n"
                     f"{GENRES[1]}.00003.wav ::: Bach ::: Air\n")
    assert load_groups(index) == {"blues.00000": "John Lee Hooker", "blues.00001": "John Lee Hooker",
                                  "blues.00002": "", "classical.00003": "Bach"}
    index.write_text("blues.00000.wav ::: A ::: x\nblues.00000 ::: B ::: y\n")
    with pytest.raises(Exception, match="line 2 gives blues.00000 a second artist"):
        load_groups(index)
