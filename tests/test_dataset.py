"""The GTZAN readers: feature table, split lists, row mapping and taggrams (real reference data)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from libtagger.training.dataset import (DatasetError, clip_id, feature_names_from_csv, load_feature_table, load_split,
                               load_taggrams, rows_for, split_path)
from libtagger.genres import GENRES


@pytest.mark.parametrize("text, expected", [
    ("blues/blues.00029.wav", "blues.00029"),
    ("blues.00029.au", "blues.00029"),
    ("blues/blues.00029.au\r\n", "blues.00029"),
    ("blues.00029", "blues.00029"),
])
def test_clip_id_normalises_every_spelling(text: str, expected: str) -> None:
    assert clip_id(text) == expected


def test_feature_table_has_1000_rows_of_57_features(gtzan: Path) -> None:
    ids, X, y = load_feature_table(gtzan / "features_30_sec.csv")
    assert X.shape == (1000, 57) and X.dtype == np.float64
    assert len(ids) == len(set(ids)) == 1000
    assert ids[0] == "blues.00000"
    assert Counter(y.tolist()) == {i: 100 for i in range(10)}
    # label index follows the genre in the clip id
    assert all(GENRES[label] == cid.split(".")[0] for cid, label in zip(ids, y))
    assert X[0, 0] == pytest.approx(0.35008811950683594)  # chroma_stft_mean of blues.00000


def test_feature_names_are_the_columns_between_length_and_label(gtzan: Path) -> None:
    names = feature_names_from_csv(gtzan / "features_30_sec.csv")
    assert len(names) == 57
    assert names[0] == "chroma_stft_mean" and names[-1] == "mfcc20_var"
    try:
        from libtagger.audio.features import FEATURE_NAMES
    except ImportError:
        return
    assert tuple(FEATURE_NAMES) == names


def test_filtered_splits_are_disjoint_and_in_the_table(gtzan: Path) -> None:
    ids, _, _ = load_feature_table(gtzan / "features_30_sec.csv")
    splits = {name: load_split(split_path(name, gtzan)) for name in ("train", "valid", "test")}
    assert {k: len(v) for k, v in splits.items()} == {"train": 443, "valid": 197, "test": 290}
    assert splits["train"][0] == "blues.00029"
    all_ids = [c for v in splits.values() for c in v]
    assert len(set(all_ids)) == 930
    rows = rows_for(ids, splits["test"])
    assert [ids[r] for r in rows] == splits["test"]


def test_split_path_resolves_names_and_passes_paths(tmp_path: Path) -> None:
    assert split_path("test", tmp_path) == tmp_path / "splits" / "test_filtered.txt"
    assert split_path(tmp_path / "mine.txt", tmp_path) == tmp_path / "mine.txt"


def test_rows_for_names_missing_clips() -> None:
    with pytest.raises(DatasetError, match="jazz.00054"):
        rows_for(["blues.00000"], ["blues.00000", "jazz.00054"])


def test_taggrams_group_rows_per_clip(gtzan: Path) -> None:
    taggrams, labels = load_taggrams(gtzan / "musicnn" / "training_data_GTZAN_MSDmusicnn_taggram.npz")
    train = load_split(split_path("train", gtzan))
    assert sorted(taggrams) == sorted(train)
    assert sum(len(t) for t in taggrams.values()) == 12415
    first = taggrams["blues.00029"]
    assert first.shape[1] == 50 and 25 <= len(first) <= 30 and first.dtype == np.float32
    assert all(GENRES[labels[c]] == c.split(".")[0] for c in taggrams)


def test_small_table_with_crlf(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_bytes(b"filename,length,a,b,label\r\nrock.00001.au,10,1.5,2,rock\r\npop.00002.au,10,3,4e-3,pop\r\n")
    ids, X, y = load_feature_table(csv)
    assert ids == ["rock.00001", "pop.00002"]
    assert X.tolist() == [[1.5, 2.0], [3.0, 0.004]]
    assert [GENRES[i] for i in y] == ["rock", "pop"]


@pytest.mark.parametrize("body, message", [
    (b"filename,length,a,label\nrock.1.au,1,2,polka\n", "unknown label 'polka'"),
    (b"filename,length,a,label\nrock.1.au,1,rock\n", "has 3 columns"),
    (b"filename,length,a,label\nrock.1.au,1,x,rock\n", "non-numeric"),
    (b"name,a,genre\nrock.1.au,1,rock\n", "expected columns"),
    (b"filename,length,a,label\n", "no data rows"),
])
def test_bad_tables_name_the_problem(tmp_path: Path, body: bytes, message: str) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_bytes(body)
    with pytest.raises(DatasetError, match=message):
        load_feature_table(csv)


def test_missing_files_raise_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read split list"):
        load_split(tmp_path / "nope.txt")
    with pytest.raises(DatasetError, match="cannot read feature table"):
        load_feature_table(tmp_path / "nope.csv")
    with pytest.raises(DatasetError, match="not a taggram npz"):
        load_taggrams(tmp_path / "nope.npz")
