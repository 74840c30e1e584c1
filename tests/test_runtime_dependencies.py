"""Every import in Atlas's packages is installed by its runtime dependencies, not a dev extra.

The test environment has the dev extras, so importing the modules here proves nothing: this
test reads every import statement instead and checks that the distribution providing it is
reachable from ``atlas-water``'s runtime requirements. (``.ci/run`` also imports every module in
a runtime-only venv, ``scripts/import_all.py``.)
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
#: Modules that need an optional extra; callers import them lazily and say what to install.
EXTRA_MODULES = {"service/bench/_skactiveml.py": "bench"}


def _runtime_closure(dist: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """Normalised names of ``dist`` and every distribution its requirements pull in."""
    seen: set[str] = set()
    stack = [(dist, extras)]
    while stack:
        name, wanted = stack.pop()
        key = _normalise(name)
        if key in seen and not wanted:
            continue
        seen.add(key)
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            marker_env = [{"extra": e} for e in wanted] or [{"extra": ""}]
            applies = req.marker is None or any(req.marker.evaluate(e) for e in marker_env)
            if applies and _normalise(req.name) not in seen:
                stack.append((req.name, frozenset(req.extras)))
    return seen


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _imports(path: Path) -> set[str]:
    """Top-level names of absolute imports, outside ``try: ... except ImportError``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
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


def test_every_import_is_installed_by_the_runtime_requirements() -> None:
    runtime = _runtime_closure("atlas-water")
    missing = []
    for path, names in _third_party_imports().items():
        allowed = runtime
        if path in EXTRA_MODULES:
            allowed = runtime | _runtime_closure("atlas-water", frozenset({EXTRA_MODULES[path]}))
        for name in sorted(names):
            dists = _distributions(name)
            if not dists:
                missing.append(f"{path}: {name} (no installed distribution provides it)")
            elif not dists & allowed:
                missing.append(f"{path}: {name} (from {sorted(dists)}, not a runtime dependency)")
    assert not missing, "imports not installed by a runtime-only install:\n" + "\n".join(missing)


def test_dev_only_tools_are_not_runtime_dependencies() -> None:
    """The guard above must be able to fail: pytest is installed here, but only as a dev tool."""
    assert "pytest" not in _runtime_closure("atlas-water")
    assert "pytest" in _runtime_closure("atlas-water", frozenset({"dev"}))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import httpx\n", {"httpx"}),
        ("from sklearn.cluster import KMeans\n", {"sklearn"}),
        ("def f():\n    import matplotlib.pyplot as plt\n", {"matplotlib"}),
        ("try:\n    import skactiveml\nexcept ImportError:\n    pass\n", set()),
        ("from . import sibling\n", set()),
    ],
)
def test_imports_are_read_from_every_statement(tmp_path: Path, source: str, expected: set) -> None:
    path = tmp_path / "module.py"
    path.write_text(source)
    assert _imports(path) == expected
