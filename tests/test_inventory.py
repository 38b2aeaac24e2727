"""The scan's inventory: files found under the roots sorted against a real SQLite index."""

from __future__ import annotations

import doctest
import os
from pathlib import Path

import libtagger.scan.inventory as inventory_module
from libtagger.scan.inventory import gone_tracks, take_inventory, verdict_may_change
from libtagger.store.index import Index

MODEL = "seed-1234abcd"


def test_docstring_examples():
    assert doctest.testmod(inventory_module).failed == 0


def test_verdict_may_change_follows_the_options():
    assert verdict_may_change("would-tag", None, min_confidence=0.5, overwrite=False)
    assert not verdict_may_change("unsure", 0.4, min_confidence=0.5, overwrite=False)
    assert verdict_may_change("unsure", 0.5, min_confidence=0.5, overwrite=False)
    assert not verdict_may_change("unsure", None, min_confidence=0.0, overwrite=True)
    for status in ("kept", "undone"):
        assert verdict_may_change(status, 0.9, min_confidence=0.5, overwrite=True)
        assert not verdict_may_change(status, 0.9, min_confidence=0.5, overwrite=False)
    assert not verdict_may_change("tagged", 0.9, min_confidence=0.0, overwrite=True)


def make_file(path: Path, payload: bytes = b"not really audio") -> os.stat_result:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return os.stat(path)


def index_as_found(index: Index, path: Path, st: os.stat_result, **values) -> int:
    return index.save_track(str(path), {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "model_id": MODEL,
                                        "status": "tagged", "confidence": 0.9, **values})


def test_every_file_lands_in_one_list(tmp_path: Path):
    lib = tmp_path / "lib"
    index = Index(tmp_path / "index.db")
    try:
        same = index_as_found(index, lib / "a-same.flac", make_file(lib / "a-same.flac"))
        other_model = index_as_found(index, lib / "b-model.flac", make_file(lib / "b-model.flac"),
                                     model_id="musicnn-head-0000")
        dry = index_as_found(index, lib / "c-dry.flac", make_file(lib / "c-dry.flac"), status="would-tag")
        st = make_file(lib / "d-changed.flac")
        index_as_found(index, lib / "d-changed.flac", st)
        (lib / "d-changed.flac").write_bytes(b"longer content than before")
        st = make_file(lib / "e-error.flac")
        index_as_found(index, lib / "e-error.flac", st, status="error")
        make_file(lib / "f-new.flac")
        gone = index_as_found(index, lib / "sub" / "g-gone.flac", make_file(lib / "sub" / "g-gone.flac"))
        (lib / "sub" / "g-gone.flac").unlink()
        outside = index_as_found(index, tmp_path / "elsewhere" / "h.flac", make_file(tmp_path / "elsewhere" / "h.flac"))
        (tmp_path / "elsewhere" / "h.flac").unlink()
        make_file(lib / "notes.txt")

        unchanged: list[int] = []
        errors: list[tuple[str, str]] = []
        todo = take_inventory([lib], index.file_states(), model_id=MODEL, rescan=False, min_confidence=0.5,
                              overwrite=False, include_hidden=False,
                              file_error=lambda p, why: errors.append((p, why)) or False,
                              unchanged=unchanged.append)
        assert unchanged == [same]
        assert todo.reclassify == [other_model]
        assert todo.redecide == [dry]
        assert [Path(p).name for p, _ in todo.to_analyse] == ["d-changed.flac", "e-error.flac", "f-new.flac"]
        assert all(st.st_size == os.stat(p).st_size for p, st in todo.to_analyse)
        assert todo.gone == {str(lib / "sub" / "g-gone.flac"): gone}  # not h.flac: outside the root
        assert outside not in todo.gone.values()
        assert errors == []

        again = take_inventory([lib], index.file_states(), model_id=MODEL, rescan=True, min_confidence=0.5,
                               overwrite=False, include_hidden=False, file_error=lambda p, why: False,
                               unchanged=unchanged.append)
        assert len(again.to_analyse) == 6 and again.reclassify == again.redecide == []
    finally:
        index.close()


def test_gone_tracks_of_a_single_file_root(tmp_path: Path):
    index = Index(tmp_path / "index.db")
    try:
        song = tmp_path / "one.flac"
        track = index_as_found(index, song, make_file(song))
        twin = index_as_found(index, tmp_path / "one.flac.d" / "x.flac", make_file(tmp_path / "one.flac.d" / "x.flac"))
        states = index.file_states()
        assert gone_tracks([song], states, seen=set()) == {str(song): track}  # not the folder's twin
        assert twin not in gone_tracks([song], states, seen=set()).values()
        assert gone_tracks([song], states, seen={str(song)}) == {}
    finally:
        index.close()
