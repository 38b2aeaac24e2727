"""The package's layers: inference (classify/, scan/) never imports or loads the training code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import libtagger

PACKAGE = Path(libtagger.__file__).resolve().parent


def imported_modules(source: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in ``source`` names (at any depth)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_classify_and_scan_sources_never_import_training():
    offenders = {}
    sources = sorted((PACKAGE / "classify").glob("*.py")) + sorted((PACKAGE / "scan").glob("*.py"))
    assert len(sources) >= 10  # the glob found the real packages
    for source in sources:
        bad = sorted(n for n in imported_modules(source)
                     if n == "libtagger.training" or n.startswith("libtagger.training."))
        if bad:
            offenders[source.relative_to(PACKAGE).as_posix()] = bad
    assert offenders == {}


def test_the_ast_check_sees_imports_inside_functions(tmp_path):
    # A lazy import in a function body is still an import: the check above must catch it.
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from libtagger.training.train import train\n")
    assert "libtagger.training.train" in imported_modules(probe)


def loaded_after(code: str) -> list[str]:
    """The libtagger modules in sys.modules after running ``code`` in a fresh interpreter."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('libtagger'))))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_scan_and_the_classifiers_loads_no_training_module():
    loaded = loaded_after("import libtagger.scan.pipeline, libtagger.classify.head, libtagger.classify.seed\n"
                          "from libtagger.classify.classifier import kind_class\n"
                          "kind_class('seed'); kind_class('musicnn-head')")
    assert "libtagger.classify.head" in loaded and "libtagger.scan.pipeline" in loaded
    assert [m for m in loaded if m.startswith("libtagger.training")] == []


def import_graph(folder: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same folder it imports (lazy imports in functions included)."""
    prefix = f"libtagger.{folder.name}."
    mods = {f"{prefix}{p.stem}": p for p in folder.glob("*.py") if p.stem != "__init__"}
    return {m: {n for n in imported_modules(p) if n in mods and n != m} for m, p in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` as a list of modules, or [] (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles_inside_training_classify_or_scan():
    for folder in ("training", "classify", "scan"):
        graph = import_graph(PACKAGE / folder)
        assert len(graph) >= 4, folder
        assert find_cycle(graph) == [], folder
    training = import_graph(PACKAGE / "training")
    assert "libtagger.training.seed_training" in training["libtagger.training.evaluate"]  # the graph is real


def test_every_model_kind_with_a_classifier_has_a_trainer():
    from libtagger.classify.classifier import _KIND_MODULES, kind_class
    from libtagger.training.train import TRAINERS

    assert set(_KIND_MODULES) <= set(TRAINERS)  # trainers of other models (not classifiers) may exist too
    for kind in _KIND_MODULES:
        cls = kind_class(kind)
        assert cls.kind == kind
        # what the scan plans from without loading weights
        assert cls.needs_taggrams == (cls.n_tags > 0)
