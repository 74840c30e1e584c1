"""The intake's home-lookup cache is bounded; made-up home ids never grow it."""

from __future__ import annotations

from atlas.homespec import parse_home_spec
from service.intake.registry import UNKNOWN_HOMES_KEPT, HomeRegistry
from service.storage.homes import upsert_home


def test_unknown_home_ids_stay_apart_and_bounded(sqlite_engine, home_spec) -> None:
    with sqlite_engine.begin() as conn:
        upsert_home(conn, home_spec)
    registry = HomeRegistry(sqlite_engine, max_homes=10)
    assert registry.is_registered(home_spec.home_id)
    for i in range(3 * UNKNOWN_HOMES_KEPT):
        assert registry.sensors(f"made-up-{i}") is None
    assert registry.cached() == (1, UNKNOWN_HOMES_KEPT)
    assert registry.is_registered(home_spec.home_id)  # still cached, not pushed out


def test_registered_homes_are_kept_least_recently_used_first_out(sqlite_engine, home_spec) -> None:
    ids = [f"{home_spec.home_id}-{i}" for i in range(5)]
    with sqlite_engine.begin() as conn:
        for home_id in ids:
            upsert_home(conn, parse_home_spec(home_spec.to_dict() | {"home_id": home_id}))
    registry = HomeRegistry(sqlite_engine, max_homes=3)
    for home_id in ids:
        assert registry.sensors(home_id, "hot") is not None
    assert registry.cached() == (3, 0)
    assert registry.sensors(ids[0]) is not None  # read again from the database
