"""The models on the search path, described for listing (``libtagger models``, ``--version``).

Reads only meta.json files: no TensorFlow, no librosa, so listing takes a fraction of a second.
"""

from __future__ import annotations

from typing import Any

from libtagger.classify.classifier import (DEFAULT_MODEL, ModelLocation, label_spellings, list_models, locate_model,
                                           read_meta)
from libtagger.errors import ModelError
from libtagger.paths import USER


def model_figures(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures of a meta.json ``metrics`` object, one per evaluated split or scheme.

    A ``metrics`` entry that is an object with a ``track_accuracy`` is a figure; one that is a
    string says why a figure is missing (e.g. ``"test": "not measured here: ..."``, or ``"test": null``
    with the reason in ``"test_note"``). Each figure is
    ``{"name", "track_accuracy" (None when not measured), "n_tracks", "measured_on", "note"}``;
    ``measured_on`` is the entry's ``scheme`` when the meta says what it was measured on.
    """
    figures = []
    for name, value in metrics.items():
        if name == "protocol":
            continue
        if isinstance(value, dict) and isinstance(value.get("track_accuracy"), (int, float)):
            figures.append({"name": name, "track_accuracy": float(value["track_accuracy"]),
                            "n_tracks": value.get("n_tracks"), "measured_on": value.get("scheme"),
                            "note": value.get("note")})
        elif value is None and isinstance(metrics.get(f"{name}_note"), str):  # "test": null + "test_note"
            figures.append({"name": name, "track_accuracy": None, "n_tracks": None,
                            "measured_on": None, "note": metrics[f"{name}_note"]})
        elif isinstance(value, str) and not (name.endswith("_note") and name[:-5] in metrics):
            figures.append({"name": name, "track_accuracy": None, "n_tracks": None,
                            "measured_on": None, "note": value})
    return figures


def describe_model(location: ModelLocation) -> dict[str, Any]:
    """One model as ``libtagger models`` lists it; ``error`` holds why its meta.json is unusable."""
    row: dict[str, Any] = {"name": location.name, "default": location.name == DEFAULT_MODEL,
                           "source": location.source, "folder": str(location.folder),
                           "shadows": [str(p) for p in location.shadows],
                           "kind": None, "model_id": None, "labels": None, "genres": None,
                           "learned": False, "n_tracks": None,
                           "protocol": None, "figures": [], "metrics": None, "error": None}
    try:
        meta = read_meta(location.folder, check_features=False)
    except ModelError as exc:
        row["error"] = str(exc)
        return row
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    data = metrics.get("data") if isinstance(metrics.get("data"), dict) else {}
    # a learned model (libtagger learn) writes its labels in the library's spelling: show those
    genres = list(label_spellings(meta)) if meta["kind"] != "music-detector" else list(meta["labels"])
    row.update(kind=meta["kind"], model_id=meta["model_id"], labels=list(meta["labels"]), genres=genres,
               learned=bool(meta.get("learned")), n_tracks=data.get("tracks"),
               protocol=metrics.get("protocol"), figures=model_figures(metrics), metrics=meta.get("metrics"))
    return row


def describe_models() -> list[dict[str, Any]]:
    """Every model on the search path (see :func:`describe_model`), sorted by name."""
    return [describe_model(location) for location in list_models()]


def default_model_id() -> str:
    """The default model's ``model_id`` from its meta.json, or a short reason it cannot be read."""
    try:
        return read_meta(locate_model(DEFAULT_MODEL).folder, check_features=False)["model_id"]
    except ModelError as exc:
        return f"{DEFAULT_MODEL}: {exc}"


def remove_model(name: str) -> ModelLocation:
    """Delete the model ``name`` from the user's models folder (where ``libtagger learn`` writes).

    ModelError, nothing deleted, when the first model of that name on the search path is not in
    the user's folder: a shipped model, or one in ``$LIBTAGGER_MODELS``, is never removed.
    """
    import shutil

    location = locate_model(name, genre=None)
    if location.source != USER or location.name != name:
        raise ModelError(f"model {name!r} is {location.source} ({location.folder}), not one in the user's models "
                         f"folder: only those (learned or trained by you) can be removed")
    shutil.rmtree(location.folder)
    return location
