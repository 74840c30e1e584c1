"""Migrations on SQLite and PostgreSQL: head matches the tables, and they go down and up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import IntegrityError

from service.storage.engine import alembic_config, current_revision, upgrade
from service.storage.homes import upsert_home
from service.storage.labelrequests import plan_request
from service.storage.schema import announcements, home_status, label_requests, metadata

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_head_is_0005_and_matches_schema(engine):
    assert current_revision(engine) == "0005"
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_downgrade_to_0001_and_back(engine):
    command.downgrade(alembic_config(engine), "0001")
    assert not inspect(engine).has_table("home_status")
    columns = {c["name"] for c in inspect(engine).get_columns("label_requests")}
    assert "inclusion_prob" not in columns
    upgrade(engine)
    assert current_revision(engine) == "0005"
    assert inspect(engine).has_table("announcements")


def test_new_request_columns_default_and_round_trip(engine, home_spec):
    with engine.begin() as conn:
        upsert_home(conn, home_spec)
        plan_request(
            conn,
            request_id="r1",
            home_id=home_spec.home_id,
            round_=1,
            slot=0,
            use_id=None,
            choices=["a", "not sure"],
            prompt="p",
            now=NOW,
        )
        row = conn.execute(select(label_requests).where(label_requests.c.request_id == "r1")).one()
    assert row.is_audit is False and row.inclusion_prob is None and row.predicted is None


def test_home_status_rejects_unknown_level(engine, home_spec):
    with engine.begin() as conn:
        upsert_home(conn, home_spec)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            insert(home_status).values(
                home_id=home_spec.home_id,
                phase="week1",
                calibration_day=1,
                level="bogus",
                reason={},
                updated_at=NOW,
            )
        )


def test_announcement_is_unique_per_home_valve_time(engine, home_spec):
    with engine.begin() as conn:
        upsert_home(conn, home_spec)
    row = {"home_id": home_spec.home_id, "valve_id": "kitchen_sink/hot", "t": NOW}
    with engine.begin() as conn:
        conn.execute(insert(announcements).values(**row))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(announcements).values(**row))
