"""Every import in Atlas's packages is a runtime dependency that pyproject.toml declares.

The test environment has the dev extras, so importing the modules here proves nothing: this
test reads every import statement instead and checks that the distribution providing it is one
of ``atlas-water``'s own runtime requirements. A package that only arrives as a dependency of a
dependency (starlette through fastapi, pydantic-core through pydantic) does not count: the
next release of its parent may drop it. (``.ci/run`` also imports every module in a
runtime-only venv, ``scripts/import_all.py``.)
"""

from __future__ import annotations

import ast
import functools
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("atlas", "rules", "codebook", "service", "simulator")


def _declared(dist: str, extra: str = "") -> set[str]:
    """Normalised names of the requirements ``dist`` declares itself (for ``extra``, if any)."""
    out = set()
    for text in metadata.requires(dist) or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": extra}):
            out.add(_normalise(req.name))
    return out


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _imports(path: Path) -> set[str]:
    """Top-level names of every absolute import, module level or inside a function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _third_party_imports() -> dict[str, set[str]]:
    """``{relative path: third-party top-level names}`` over the five packages."""
    out = {}
    for package in FIRST_PARTY:
        for path in sorted((ROOT / package).rglob("*.py")):
            names = _imports(path) - set(sys.stdlib_module_names) - set(FIRST_PARTY)
            names.discard("__future__")
            out[str(path.relative_to(ROOT))] = names
    return out


@functools.cache
def _providers() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _distributions(top_level: str) -> set[str]:
    return {_normalise(d) for d in _providers().get(top_level, [])}


def test_every_import_is_a_declared_runtime_requirement() -> None:
    runtime = _declared("atlas-water")
    missing = []
    for path, names in _third_party_imports().items():
        for name in sorted(names):
            dists = _distributions(name)
            if not dists:
                missing.append(f"{path}: {name} (no installed distribution provides it)")
            elif not dists & runtime:
                missing.append(f"{path}: {name} (from {sorted(dists)}, not declared at runtime)")
    assert not missing, "imports a runtime-only install may lack:\n" + "\n".join(missing)


def test_dev_tools_and_transitive_packages_are_not_runtime_requirements() -> None:
    """The guard above must be able to fail: pytest is installed here, but as a dev tool, and
    anyio comes only through fastapi."""
    runtime = _declared("atlas-water")
    assert "pytest" not in runtime and "pytest" in _declared("atlas-water", "dev")
    assert "anyio" not in runtime and "anyio" in _declared("fastapi")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import httpx\n", {"httpx"}),
        ("from sklearn.cluster import KMeans\n", {"sklearn"}),
        ("def f():\n    import matplotlib.pyplot as plt\n", {"matplotlib"}),
        ("from . import sibling\n", set()),
    ],
)
def test_imports_are_read_from_every_statement(tmp_path: Path, source: str, expected: set) -> None:
    path = tmp_path / "module.py"
    path.write_text(source)
    assert _imports(path) == expected
