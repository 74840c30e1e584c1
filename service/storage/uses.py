"""Water uses (paired events), stored idempotently by their deterministic use_id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from atlas.uses import WaterUse
from service.storage.schema import use_events, uses


def insert_uses(
    conn: Connection, new_uses: Sequence[WaterUse], now: datetime | None = None
) -> set[str]:
    """Store ``new_uses`` and their event links; returns the use_ids that were new.

    Use ids are ``"u-" + first event_id`` (contracts §3), so re-pairing after a restart produces
    the same ids and this insert is a no-op for uses already stored. Links of a use that already
    existed are skipped too: an event belongs to one use only.
    """
    if not new_uses:
        return set()
    now = now or datetime.now(UTC)
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = ins(uses).on_conflict_do_nothing(index_elements=["use_id"]).returning(uses.c.use_id)
    created = set(
        conn.execute(
            stmt,
            [
                {
                    "use_id": u.use_id,
                    "home_id": u.home_id,
                    "status": str(u.status),
                    "lines": ",".join(u.lines),
                    "t": u.t,
                    "t_open": u.t_open,
                    "t_close": u.t_close,
                    "drop_kpa": dict(u.drop_kpa),
                    "created_at": now,
                }
                for u in new_uses
            ],
        ).scalars()
    )
    links = [
        {"use_id": u.use_id, "event_id": eid, "role": role}
        for u in new_uses
        if u.use_id in created
        for role, ids in (("open", u.open_event_ids), ("close", u.close_event_ids))
        for eid in ids
    ]
    if links:
        conn.execute(ins(use_events).on_conflict_do_nothing(index_elements=["event_id"]), links)
    return created
