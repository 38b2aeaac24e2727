"""README.md's module map lists exactly the package's modules, so it cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_modules() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- module-map:", 1)[1].split("<!-- /module-map -->", 1)[0]
    return set(re.findall(r"^\| `([\w/]+\.py)` \|", block, flags=re.M))


def _package_modules() -> set[str]:
    package = ROOT / "libtagger"
    return {p.relative_to(package).as_posix() for p in package.rglob("*.py") if p.name != "__init__.py"}


def test_readme_module_map_matches_the_package() -> None:
    listed, present = _readme_modules(), _package_modules()
    assert not present - listed, f"modules missing from README's module map: {sorted(present - listed)}"
    assert not listed - present, f"README's module map names modules that do not exist: {sorted(listed - present)}"


def test_every_layer_says_what_it_holds() -> None:
    for init in sorted((ROOT / "libtagger").glob("*/__init__.py")):
        assert init.read_text(encoding="utf-8").strip().startswith('"""'), f"{init} has no docstring"
