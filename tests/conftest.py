"""Shared fixtures: databases (SQLite file, PostgreSQL schema), unique ids, MQTT brokers.

Tests run in parallel with other engineers' runs against the same Mosquitto and PostgreSQL, so
every test gets its own home id, MQTT client ids, topic prefix and PostgreSQL schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from shared_services import PG_URL
from sqlalchemy import Engine, text

from atlas.homespec import HomeSpec, parse_home_spec
from service.broker import PrivateBroker
from service.storage.engine import make_engine, upgrade
from simulator.presets import load_preset


@pytest.fixture
def uid() -> str:
    """A short id unique to this test run (for home ids, client ids, topic prefixes)."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path}/atlas.db")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine(uid: str) -> Iterator[Engine]:
    """A migrated PostgreSQL schema of its own, dropped afterwards."""
    schema = f"t_{uid}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each storage test runs on both supported databases."""
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def home_spec(uid: str) -> HomeSpec:
    """The two_bath_house preset under a home id unique to this test."""
    return parse_home_spec(load_preset("two_bath_house").to_dict() | {"home_id": f"h-{uid}"})


@pytest.fixture
def topic_prefix(uid: str) -> str:
    """A topic prefix of this test's own, so parallel runs on the shared broker never mix."""
    return f"test-{uid}/v1"


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A Mosquitto on a free port with the data-keeping config; stopped afterwards."""
    with PrivateBroker(tmp_path / "broker") as broker:
        yield broker
