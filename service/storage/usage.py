"""Read query behind ``GET /v1/homes/{id}/usage``: a home's uses over a period, each with its
newest classification at every level (the HTTP handler holds no SQL).

Like :mod:`service.storage.dashboard`, every query is scoped to the home it reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, select

from service.storage.answers import utc
from service.storage.schema import classifications, events, uses

#: Classification levels read for each use (what the classifier stores per use).
LEVELS = ("category", "fixture", "valve")


@dataclass(frozen=True)
class StoredClassification:
    label: str
    probability: float


@dataclass(frozen=True)
class UsageUse:
    """One stored use as the volume estimate needs it, with its classification per level.

    ``drop_kpa`` is the pairing's mean steady drop per line (the only pressure figure stored
    with a use); ``classified`` maps a level to the newest classification at it.
    """

    use_id: str
    t: datetime
    t_open: datetime | None
    t_close: datetime | None
    lines: tuple[str, ...]
    status: str
    drop_kpa: dict[str, float]
    classified: dict[str, StoredClassification] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.t_open is None or self.t_close is None:
            return None
        return (self.t_close - self.t_open).total_seconds()


def uses_between(conn: Connection, home_id: str, start: datetime, end: datetime) -> list[UsageUse]:
    """Uses of ``home_id`` with ``start <= t < end`` (oldest first), each with its newest
    classification at each of :data:`LEVELS` (a level without one is absent).

    Two queries whatever the number of uses: the uses by the (home, t) index, then their
    classifications joined on the same range (no IN list of use ids).
    """
    in_range = (uses.c.home_id == home_id) & (uses.c.t >= start) & (uses.c.t < end)
    rows = conn.execute(select(uses).where(in_range).order_by(uses.c.t, uses.c.use_id)).all()
    if not rows:
        return []
    newest: dict[str, dict[str, StoredClassification]] = {}
    found = conn.execute(
        select(
            classifications.c.use_id,
            classifications.c.level,
            classifications.c.label,
            classifications.c.probability,
        )
        .join(uses, uses.c.use_id == classifications.c.use_id)
        .where(in_range, classifications.c.home_id == home_id, classifications.c.level.in_(LEVELS))
        .order_by(classifications.c.created_at, classifications.c.id)
    )
    for r in found:  # ascending: the last row per (use, level) wins
        newest.setdefault(r.use_id, {})[r.level] = StoredClassification(
            r.label, float(r.probability)
        )
    return [
        UsageUse(
            use_id=r.use_id,
            t=utc(r._mapping["t"]),  # Row.t is the row as a tuple
            t_open=utc(r.t_open),
            t_close=utc(r.t_close),
            lines=tuple(r.lines.split(",")),
            status=r.status,
            drop_kpa={k: float(v) for k, v in r.drop_kpa.items()},
            classified=newest.get(r.use_id, {}),
        )
        for r in rows
    ]


def first_use_at(conn: Connection, home_id: str) -> datetime | None:
    """When the home's first stored use started (None: no use yet): where its running totals
    since installation begin (:mod:`service.ha_discovery`)."""
    first = conn.execute(select(func.min(uses.c.t)).where(uses.c.home_id == home_id)).scalar()
    return utc(first)


def water_fingerprint(conn: Connection, home_id: str, now: datetime) -> tuple:
    """(newest event time, stored uses), both up to ``now``: it changes whenever an event
    arrives or a use is stored, so an alert check that finds it unchanged has nothing new to
    look at. Both read the (home, t) indexes only."""
    newest = conn.execute(
        select(func.max(events.c.t)).where(events.c.home_id == home_id, events.c.t <= now)
    ).scalar()
    count = conn.execute(
        select(func.count()).select_from(uses).where(uses.c.home_id == home_id, uses.c.t <= now)
    ).scalar_one()
    return (utc(newest) if newest is not None else None), count
