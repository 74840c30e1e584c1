"""Migration 0003 on SQLite and PostgreSQL: paired events keep their use, ids become per home."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import insert, select, text

from atlas.homespec import parse_home_spec
from service.storage.engine import alembic_config, current_revision, upgrade
from service.storage.homes import upsert_home
from service.storage.schema import events, use_events

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _event(event_id: str, home_id: str) -> dict:
    return {
        "event_id": event_id,
        "home_id": home_id,
        "sensor_id": "hot",
        "line": "hot",
        "t": NOW,
        "sample_rate_hz": 1000,
        "n_samples": 1,
        "scale_kpa": 0.01,
        "offset_kpa": 0.0,
        "waveform": b"x",
        "received_at": NOW,
    }


def test_upgrade_keeps_links_and_lets_homes_share_event_ids(engine, home_spec):
    home = home_spec.home_id
    with engine.begin() as conn:
        upsert_home(conn, home_spec)
    command.downgrade(alembic_config(engine), "0002")
    with engine.begin() as conn:  # a paired event as 0002 stored it
        conn.execute(insert(events), [_event("e1", home)])
        conn.execute(
            text(
                "INSERT INTO uses (use_id, home_id, status, lines, t, drop_kpa, created_at) "
                "VALUES ('u-e1', :home, 'paired', 'hot', :t, '{}', :t)"
            ),
            {"home": home, "t": NOW},
        )
        conn.execute(text("INSERT INTO use_events VALUES ('e1', 'u-e1', 'open')"))
    upgrade(engine)
    assert current_revision(engine) == "0005"
    other = home_spec.to_dict() | {"home_id": f"{home}-b"}
    with engine.begin() as conn:
        links = conn.execute(select(use_events.c.event_id, use_events.c.home_id)).all()
        upsert_home(conn, parse_home_spec(other))
        conn.execute(insert(events), [_event("e1", f"{home}-b")])
        stored = conn.execute(select(events.c.home_id).where(events.c.event_id == "e1")).all()
    assert links == [("e1", home)]
    assert sorted(h for (h,) in stored) == sorted([home, f"{home}-b"])
