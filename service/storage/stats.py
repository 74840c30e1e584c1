"""Counts for ``atlas db stats``: what arrived, what was kept, what was rejected and why."""

from __future__ import annotations

from sqlalchemy import Connection, Table, func, select

from service.storage.deadletters import dead_letter_counts
from service.storage.schema import dead_letters, events, homes, use_events, uses


def _rows(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def db_stats(conn: Connection) -> dict:
    rows = conn.execute(select(uses.c.status, func.count()).group_by(uses.c.status))
    by_status = {status: int(n) for status, n in rows}
    distinct = conn.execute(select(func.count(events.c.event_id.distinct()))).scalar_one()
    return {
        "homes": _rows(conn, homes),
        "events": _rows(conn, events),
        "distinct_event_ids": int(distinct),
        "paired_events": _rows(conn, use_events),
        "uses": _rows(conn, uses),
        "uses_by_status": dict(sorted(by_status.items())),
        "dead_letters": _rows(conn, dead_letters),
        "dead_letters_by_reason": dict(sorted(dead_letter_counts(conn).items())),
    }
