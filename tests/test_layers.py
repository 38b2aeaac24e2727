"""The package's layers: no import circle anywhere, the core never imports integrations/, and
inference (everything but cli.py and training/) never imports or loads the training code; and
no function of the package is longer than 80 lines."""

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


def _outside(*excluded: str) -> list[Path]:
    """Every module of the package but those whose path (relative to it) starts with an ``excluded``."""
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if not p.relative_to(PACKAGE).as_posix().startswith(excluded))


def test_nothing_but_cli_and_training_imports_training():
    # Inference is classify/, scan/, audio/, store/, tags/ and the shared modules beside cli.py
    # (parallel, report, verdict_api...), wherever a module moves among them.
    offenders = {}
    sources = _outside("cli.py", "training/")
    assert {"scan/pipeline.py", "classify/head.py", "verdict_api.py", "parallel.py",
            "audio/analysis.py"} <= {p.relative_to(PACKAGE).as_posix() for p in sources}
    for source in sources:
        bad = sorted(n for n in absolute_imports(source)
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
    loaded = loaded_after("import libtagger.scan.pipeline, libtagger.verdict_api, libtagger.classify.head, "
                          "libtagger.classify.seed\n"
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


def module_name(source: Path, package: Path = PACKAGE) -> str:
    """``libtagger/scan/pipeline.py`` -> ``libtagger.scan.pipeline``; a package's ``__init__.py`` -> the package."""
    parts = source.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute_imports(source: Path, package_root: Path = PACKAGE) -> set[str]:
    """:func:`imported_modules`, with relative imports (``from .base import X``) made absolute."""
    name = module_name(source, package_root)
    package = name.split(".") if source.name == "__init__.py" else name.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[:len(package) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def package_import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, over all of ``package`` (lazy imports included).

    ``from libtagger.scan.pipeline import Scanner`` is an edge to ``libtagger.scan.pipeline``;
    an import of one of the module's own packages (its ``__init__``) is no edge: Python runs
    that ``__init__`` before the module anyway, and a package importing its own modules is how
    a package is made, not a circle.
    """
    mods = {module_name(p, package): p for p in package.rglob("*.py")}

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for mod, source in mods.items():
        parts = mod.split(".")
        own_packages = {".".join(parts[:i]) for i in range(1, len(parts))}
        graph[mod] = {target for name in absolute_imports(source, package)
                      if (target := known(name)) and target != mod and target not in own_packages}
    return graph


def test_no_import_circle_anywhere_in_the_package():
    graph = package_import_graph()
    assert "libtagger.store.run_context" in graph["libtagger.scan.pipeline"]  # the graph is real
    assert "libtagger.store.query" in graph["libtagger.integrations.datasette_plugin"]
    assert find_cycle(graph) == []


def test_the_package_graph_sees_relative_lazy_imports(tmp_path):
    # A circle through a relative import inside a function is still a circle.
    package = tmp_path / "libtagger"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import a\n")  # its own package: no circle
    (package / "sub" / "a.py").write_text("from libtagger.sub.b import f\n")
    (package / "sub" / "b.py").write_text("def f():\n    from .a import g\n")
    graph = package_import_graph(package)
    assert graph["libtagger.sub"] == {"libtagger.sub.a"}
    assert find_cycle(graph) == ["libtagger.sub.a", "libtagger.sub.b", "libtagger.sub.a"]


def test_the_core_never_imports_integrations():
    # Plug-ins import the core, never the other way round; only cli's `browse` command imports
    # libtagger.integrations.browse (inside the command).
    offenders = {}
    sources = _outside("cli.py", "integrations/")
    assert len(sources) >= 40
    for source in sources:
        bad = sorted(n for n in absolute_imports(source)
                     if n == "libtagger.integrations" or n.startswith("libtagger.integrations."))
        if bad:
            offenders[source.relative_to(PACKAGE).as_posix()] = bad
    assert offenders == {}


def test_every_model_kind_with_a_classifier_has_a_trainer():
    from libtagger.classify.classifier import _KIND_MODULES, kind_class
    from libtagger.training.train import TRAINERS

    assert set(_KIND_MODULES) <= set(TRAINERS)  # trainers of other models (not classifiers) may exist too
    for kind in _KIND_MODULES:
        cls = kind_class(kind)
        assert cls.kind == kind
        # what the scan plans from without loading weights
        assert cls.needs_taggrams == (cls.n_tags > 0)


#: The longest a function or method may be, in lines from its ``def`` to its last line (docstring
#: included, decorators not): a newcomer reads one whole on a screen (issue 18).
MAX_FUNCTION_LINES = 80


def long_functions(source: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``qualified.name (N lines)`` of every function or method in ``source`` longer than ``limit``
    lines, nested ones included."""
    found: list[str] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                # lineno is the def line (decorators have their own), end_lineno its last line
                length = child.end_lineno - child.lineno + 1
                if not isinstance(child, ast.ClassDef) and length > limit:
                    found.append(f"{name} ({length} lines)")
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source.read_text(), filename=str(source)), "")
    return found


def test_no_function_is_longer_than_80_lines():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) >= 40
    offenders = [f"{source.relative_to(PACKAGE).as_posix()}::{name}"
                 for source in sources for name in long_functions(source)]
    assert offenders == [], "split these into steps named for what they do: " + ", ".join(offenders)


def test_the_length_check_sees_a_long_function(tmp_path):
    def function(name: str, lines: int, indent: str = "") -> str:
        # ``lines`` lines in all: the def, a docstring, assignments and a return
        body = [f'{indent}def {name}():', f'{indent}    """Docstring lines count."""']
        body += [f"{indent}    x = {i}" for i in range(lines - 3)] + [f"{indent}    return x"]
        return "\n".join(body) + "\n"

    probe = tmp_path / "probe.py"
    probe.write_text(function("short", 80) + function("long", 81)
                     + "class Holder:\n    @decorate(\n        'decorators do not count',\n    )\n"
                     + function("method", 80, "    ")
                     + function("long_method", 90, "    ")
                     + "def outer():\n" + function("inner", 81, "    ") + "    return inner\n")
    assert long_functions(probe) == ["long (81 lines)", "Holder.long_method (90 lines)",
                                     "outer (83 lines)", "outer.inner (81 lines)"]
