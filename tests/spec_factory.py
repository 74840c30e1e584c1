"""Small hand-made home specs for unit tests: the fixtures vary, the envelope does not.

A module of its own so test files can import it by a unique name (several conftest.py files
exist, and `from conftest import ...` picks whichever was imported first).
"""

from __future__ import annotations

from typing import Any

from atlas.homespec import HomeSpec, parse_home_spec


def home_spec(fixtures: list[dict[str, Any]], **fields: Any) -> HomeSpec:
    """A valid spec with a hot and a cold sensor around ``fixtures`` (home spec dicts)."""
    data: dict[str, Any] = {
        "home_id": "h1",
        "name": "test home",
        "residents": 2,
        "static_pressure_kpa": 400,
        "sensors": {"hot": {"sensor_id": "hot"}, "cold": {"sensor_id": "cold"}},
        "fixtures": fixtures,
    }
    return parse_home_spec(data | fields)


def fixture(fid: str, category: str, handle: str, runs: dict, **fields: Any) -> dict[str, Any]:
    """A fixture entry named after its id."""
    return {"id": fid, "name": fid, "category": category, "handle": handle, "runs": runs} | fields
