"""Week-1 announcements ("I'm about to run the dishwasher"), later matched to a use."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service.storage.schema import announcements


def insert_announcement(conn: Connection, home_id: str, valve_id: str, t: datetime) -> bool:
    """Record an announcement; False when the same (home, valve, t) was already recorded."""
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        ins(announcements)
        .values(home_id=home_id, valve_id=valve_id, t=t)
        .on_conflict_do_nothing()
        .returning(announcements.c.id)
    )
    return conn.execute(stmt).first() is not None


def unmatched_announcements(conn: Connection, home_id: str) -> list[tuple[int, str, datetime]]:
    """``(id, valve_id, t)`` of announcements not yet matched to a use, oldest first."""
    rows = conn.execute(
        select(announcements.c.id, announcements.c.valve_id, announcements.c.t)
        .where(announcements.c.home_id == home_id, announcements.c.matched_use_id.is_(None))
        .order_by(announcements.c.t)
    )
    return [(r.id, r.valve_id, r.t) for r in rows]


def mark_matched(conn: Connection, announcement_id: int, use_id: str) -> None:
    conn.execute(
        update(announcements)
        .where(announcements.c.id == announcement_id)
        .values(matched_use_id=use_id)
    )
