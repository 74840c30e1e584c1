"""Water uses (paired events), stored idempotently by their deterministic use_id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from atlas.uses import UseStatus, WaterUse
from service.storage.events import utc
from service.storage.schema import events, use_events, uses


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


def load_uses(
    conn: Connection,
    home_id: str | None,
    *,
    exclude: set[str] | None = None,
    only: list[str] | None = None,
    created_since: datetime | None = None,
) -> list[WaterUse]:
    """Stored uses (with their event ids by role) as :class:`WaterUse`, by time.

    ``created_since`` keeps only uses stored from then on: a caller that polls for new uses
    reads what changed instead of the home's whole history (``exclude`` filters after loading).
    """
    query = select(uses)
    if home_id is not None:
        query = query.where(uses.c.home_id == home_id)
    if created_since is not None:
        query = query.where(uses.c.created_at >= created_since)
    if only is not None:
        query = query.where(uses.c.use_id.in_(only))
    rows = [r for r in conn.execute(query.order_by(uses.c.t, uses.c.use_id))
            if not exclude or r.use_id not in exclude]  # fmt: skip
    if not rows:
        return []
    links: dict[str, dict[str, list[str]]] = {}
    ids = [r.use_id for r in rows]
    for chunk in range(0, len(ids), 500):
        for link in conn.execute(
            select(use_events.c.use_id, use_events.c.event_id, use_events.c.role, events.c.t)
            .join(events, events.c.event_id == use_events.c.event_id)
            .where(use_events.c.use_id.in_(ids[chunk : chunk + 500]))
            .order_by(events.c.t)
        ):
            links.setdefault(link.use_id, {"open": [], "close": []})[link.role].append(
                link.event_id
            )
    out = []
    for r in rows:
        m = r._mapping
        roles = links.get(m["use_id"], {"open": [], "close": []})
        out.append(
            WaterUse(
                use_id=m["use_id"],
                home_id=m["home_id"],
                lines=tuple(m["lines"].split(",")),
                t_open=None if m["t_open"] is None else utc(m["t_open"]),
                t_close=None if m["t_close"] is None else utc(m["t_close"]),
                status=UseStatus(m["status"]),
                open_event_ids=tuple(roles["open"]),
                close_event_ids=tuple(roles["close"]),
                drop_kpa={k: float(v) for k, v in m["drop_kpa"].items()},
            )
        )
    return out
