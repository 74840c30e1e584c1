"""API test fixtures: two seeded homes (A and B) on SQLite and PostgreSQL, a client per role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_factories import api_settings, preset_spec, seed_home
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.api.app import create_app


@pytest.fixture
def homes(engine: Engine, uid: str) -> dict:
    """Home A (two_bath_house) and home B (apartment), seeded through the storage layer."""
    a = seed_home(engine, preset_spec("two_bath_house", f"ha-{uid}"))
    b = seed_home(engine, preset_spec("apartment", f"hb-{uid}"))
    return {"a": a, "b": b}


@pytest.fixture
def app(engine: Engine, homes: dict):
    return create_app(api_settings(homes["a"]["home_id"], homes["b"]["home_id"]), db=engine)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def homes_sqlite(sqlite_engine: Engine, uid: str) -> dict:
    """Homes A and B on SQLite only (for the slower generated-input tests)."""
    a = seed_home(sqlite_engine, preset_spec("two_bath_house", f"ha-{uid}"))
    b = seed_home(sqlite_engine, preset_spec("apartment", f"hb-{uid}"))
    return {"a": a, "b": b}
