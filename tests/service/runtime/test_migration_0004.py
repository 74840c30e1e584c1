"""Migration 0004 on SQLite and PostgreSQL: homes registered before it get a fleet row."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text

from service.storage.engine import alembic_config, current_revision, upgrade
from service.storage.homefleet import HomeFleet, load_home_fleet
from service.storage.homes import upsert_home

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_upgrade_gives_existing_homes_no_fleet_and_no_opt_out(engine, home_spec):
    command.downgrade(alembic_config(engine), "0003")
    assert not inspect(engine).has_table("fleet_versions")
    with engine.begin() as conn:  # registered as 0003 knew it: no fleet row
        conn.execute(
            text(
                "INSERT INTO homes (home_id, name, timezone, spec, created_at, updated_at) "
                "VALUES (:h, 'x', 'UTC', '{}', :t, :t)"
            ),
            {"h": home_spec.home_id, "t": NOW},
        )
    upgrade(engine)
    assert current_revision(engine) == "0005"
    with engine.begin() as conn:
        assert load_home_fleet(conn, home_spec.home_id) == HomeFleet()
        upsert_home(conn, home_spec, NOW)  # re-registered: keeps its (absent) fleet
        assert load_home_fleet(conn, home_spec.home_id) == HomeFleet()
