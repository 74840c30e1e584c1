"""Week-1 announcements ("I'm about to run the dishwasher"), later matched to a use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service.storage.inlists import batches
from service.storage.schema import announcements, labels


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
    return unmatched_announcements_by_home(conn, [home_id]).get(home_id, [])


def unmatched_announcements_by_home(
    conn: Connection, home_ids: Sequence[str]
) -> dict[str, list[tuple[int, str, datetime]]]:
    """:func:`unmatched_announcements` of several homes, one query per batch of ids
    (:func:`service.storage.inlists.batches`)."""
    out: dict[str, list[tuple[int, str, datetime]]] = {}
    for chunk in batches(home_ids):
        rows = conn.execute(
            select(
                announcements.c.home_id,
                announcements.c.id,
                announcements.c.valve_id,
                announcements.c.t,
            )
            .where(
                announcements.c.home_id.in_(chunk),
                announcements.c.matched_use_id.is_(None),
            )
            .order_by(announcements.c.t)
        )
        for r in rows:  # not ``r.t``: that is the Row's own tuple accessor, not the column
            out.setdefault(r.home_id, []).append((r.id, r.valve_id, r._mapping["t"]))
    return out


def mark_matched(conn: Connection, announcement_id: int, use_id: str) -> None:
    conn.execute(
        update(announcements)
        .where(announcements.c.id == announcement_id)
        .values(matched_use_id=use_id)
    )


def record_guided_label(
    conn: Connection, home_id: str, use_id: str, valve_id: str, at: datetime
) -> bool:
    """Store the label an announcement gave ``use_id`` (source ``guided``) and mark the
    announcement that produced it matched; False when that use already has its guided label.

    The announcement is the unmatched one at ``at`` naming ``valve_id`` or its fixture (the
    homeowner may announce "the shower" and the engine picks the valve).
    """
    exists = conn.execute(
        select(labels.c.id).where(labels.c.use_id == use_id, labels.c.source == "guided")
    ).first()
    if exists is not None:
        return False
    conn.execute(
        insert(labels).values(
            home_id=home_id,
            use_id=use_id,
            level="valve",
            label=valve_id,
            source="guided",
            answered_by="checklist",
            request_id=None,
            answered_at=at,
        )
    )
    fixture_id = valve_id.split("/", 1)[0]
    for ann_id, named, t in unmatched_announcements(conn, home_id):
        if t == at and named in (valve_id, fixture_id):
            mark_matched(conn, ann_id, use_id)
            break
    return True
