"""Water uses (paired events), stored idempotently by their deterministic use_id."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from atlas.uses import UseStatus, WaterUse
from service.storage.events import utc
from service.storage.inlists import batches
from service.storage.schema import events, use_events, uses


def insert_uses(
    conn: Connection, new_uses: Sequence[WaterUse], now: datetime | None = None
) -> set[str]:
    """Store ``new_uses`` and their event links; returns the use_ids that were new.

    Use ids are ``"u-" + first event_id`` (contracts §3), so re-pairing after a restart produces
    the same ids and this insert is a no-op for uses already stored. Links of a use that already
    existed are skipped too: an event belongs to one use only. Event ids are unique per home
    only, so a use whose id another home's use holds is stored under :func:`home_scoped_use_id`.
    """
    if not new_uses:
        return set()
    now = now or datetime.now(UTC)
    new_uses = _rename_taken(conn, new_uses)
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
        {"use_id": u.use_id, "event_id": eid, "home_id": u.home_id, "role": role}
        for u in new_uses
        if u.use_id in created
        for role, ids in (("open", u.open_event_ids), ("close", u.close_event_ids))
        for eid in ids
    ]
    if links:
        unique = ["event_id", "home_id"]
        conn.execute(ins(use_events).on_conflict_do_nothing(index_elements=unique), links)
    return created


def home_scoped_use_id(use: WaterUse) -> str:
    """The id of ``use`` when another home's use has its usual one (both homes' gateways sent
    the same first event id): ``h-`` (never ``u-``), a digest of the home, the event id.

    >>> from atlas.uses import WaterUse
    >>> home_scoped_use_id(WaterUse("u-e1", "h1", ("hot",), None, None, "open", ("e1",), ()))
    'h-33112ee14ee469c3-e1'
    """
    home = hashlib.sha256(use.home_id.encode()).hexdigest()[:16]
    return f"h-{home}-{use.use_id.removeprefix('u-')[:100]}"


def _rename_taken(conn: Connection, new_uses: Sequence[WaterUse]) -> list[WaterUse]:
    """``new_uses``, each whose id a use of another home holds renamed (deterministic, so a
    re-pairing of the same home after a restart finds the same id)."""
    ids = [u.use_id for u in new_uses]
    holders: dict[str, str] = {}
    for chunk in batches(ids):
        query = select(uses.c.use_id, uses.c.home_id).where(uses.c.use_id.in_(chunk))
        holders.update((use_id, home) for use_id, home in conn.execute(query))
    return [
        replace(u, use_id=home_scoped_use_id(u))
        if holders.get(u.use_id, u.home_id) != u.home_id
        else u
        for u in new_uses
    ]


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
    rows = [
        r
        for r in conn.execute(query.order_by(uses.c.t, uses.c.use_id))
        if not exclude or r.use_id not in exclude
    ]
    if not rows:
        return []
    links: dict[str, dict[str, list[str]]] = {}
    ids = [r.use_id for r in rows]
    for chunk in batches(ids):
        for link in conn.execute(
            select(use_events.c.use_id, use_events.c.event_id, use_events.c.role, events.c.t)
            .join(
                events,
                (events.c.event_id == use_events.c.event_id)
                & (events.c.home_id == use_events.c.home_id),
            )
            .where(use_events.c.use_id.in_(chunk))
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
