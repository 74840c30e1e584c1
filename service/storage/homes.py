"""Homes, their sensors and fixture inventory, registered from a home spec."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, delete, insert, select, update

from atlas.homespec import HomeSpec
from service.storage.homefleet import record_home_fleet
from service.storage.schema import fixtures, homes, sensors, valves

SensorMap = dict[str, tuple[str, int]]  # sensor_id -> (line, sample_rate_hz)


def upsert_home(conn: Connection, spec: HomeSpec, now: datetime | None = None) -> bool:
    """Register ``spec`` or replace the stored one; returns True when the home is new.

    Re-registering replaces sensors and inventory wholesale: the spec file is the installer's
    source of truth, so a removed fixture must disappear rather than linger. A new home starts
    from the newest fleet version (:func:`service.storage.homefleet.record_home_fleet`).
    """
    now = now or datetime.now(UTC)
    model = spec.model
    row = {"name": model.name, "timezone": model.timezone, "spec": spec.to_dict()}
    exists = conn.execute(select(homes.c.home_id).where(homes.c.home_id == spec.home_id)).first()
    if exists:
        conn.execute(
            update(homes).where(homes.c.home_id == spec.home_id).values(**row, updated_at=now)
        )
        for table in (valves, fixtures, sensors):
            conn.execute(delete(table).where(table.c.home_id == spec.home_id))
    else:
        conn.execute(
            insert(homes).values(home_id=spec.home_id, created_at=now, updated_at=now, **row)
        )
    conn.execute(
        insert(sensors),
        [
            {
                "home_id": spec.home_id,
                "sensor_id": s.sensor_id,
                "line": str(line),
                "sample_rate_hz": s.sample_rate_hz,
            }
            for line, s in model.sensors.items()
        ],
    )
    conn.execute(
        insert(fixtures),
        [
            {
                "home_id": spec.home_id,
                "fixture_id": f.id,
                "name": f.name,
                "category": str(f.category),
                "handle": str(f.handle),
                "location": f.location,
            }
            for f in spec.fixtures
        ],
    )
    conn.execute(
        insert(valves),
        [
            {
                "home_id": spec.home_id,
                "valve_id": v.id,
                "fixture_id": v.fixture_id,
                "name": v.name,
                "lines": ",".join(str(line) for line in v.lines),
            }
            for v in spec.valves
        ],
    )
    record_home_fleet(conn, spec, now, created=not exists)
    return not exists


def load_sensors(conn: Connection, home_id: str) -> SensorMap | None:
    """The registered sensors of ``home_id``, or None when the home is unknown."""
    if conn.execute(select(homes.c.home_id).where(homes.c.home_id == home_id)).first() is None:
        return None
    rows = conn.execute(
        select(sensors.c.sensor_id, sensors.c.line, sensors.c.sample_rate_hz).where(
            sensors.c.home_id == home_id
        )
    )
    return {r.sensor_id: (r.line, r.sample_rate_hz) for r in rows}


def list_home_ids(conn: Connection) -> list[str]:
    return list(conn.execute(select(homes.c.home_id).order_by(homes.c.home_id)).scalars())
