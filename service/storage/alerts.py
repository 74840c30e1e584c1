"""Leak and anomaly alerts in ``alerts``: stored once, pushed, acknowledged by the homeowner.

Why stored rather than recomputed on every read: an alert is an event in the homeowner's life
(a push arrived, they checked the toilet, they said so), and the detectors re-run over a sliding
window, so what was already raised must be remembered to raise it once
(:func:`atlas.alerts.is_repeat`). The key is derived from (home, kind, subject, time): a check
that runs twice after a crash stores the same row once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from atlas.alerts import Alert
from service.storage.schema import alerts


@dataclass(frozen=True)
class StoredAlert:
    """An alert as stored; open until the homeowner acknowledged it."""

    alert_id: str
    home_id: str
    kind: str
    subject: str
    at: datetime
    message: str
    evidence: dict
    use_ids: tuple[str, ...]
    created_at: datetime
    pushed_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None


def alert_id(home_id: str, alert: Alert) -> str:
    """A stable id: the same anomaly found at the same time by two runs is one row."""
    key = f"{home_id}\x00{alert.kind}\x00{alert.subject}\x00{alert.at.timestamp():.3f}"
    return "al-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _stored(row) -> StoredAlert:
    return StoredAlert(
        row.alert_id,
        row.home_id,
        row.kind,
        row.subject,
        row.at,
        row.message,
        dict(row.evidence),
        tuple(row.use_ids),
        row.created_at,
        row.pushed_at,
        row.acknowledged_at,
        row.acknowledged_by,
    )


def insert_alert(conn: Connection, home_id: str, alert: Alert, now: datetime) -> StoredAlert:
    """Store ``alert`` (a no-op when its id is stored already); returns the stored row."""
    aid = alert_id(home_id, alert)
    found = get_alert(conn, home_id, aid)
    if found is not None:
        return found
    conn.execute(
        insert(alerts).values(
            alert_id=aid,
            home_id=home_id,
            kind=alert.kind,
            subject=alert.subject,
            at=alert.at,
            message=alert.message,
            evidence=dict(alert.evidence),
            use_ids=list(alert.use_ids),
            created_at=now,
        )
    )
    stored = get_alert(conn, home_id, aid)
    assert stored is not None
    return stored


def get_alert(conn: Connection, home_id: str, aid: str) -> StoredAlert | None:
    row = conn.execute(
        select(alerts).where(alerts.c.home_id == home_id, alerts.c.alert_id == aid)
    ).first()
    return None if row is None else _stored(row)


def list_alerts(
    conn: Connection, home_id: str, *, only_open: bool = False, limit: int = 100
) -> list[StoredAlert]:
    """The home's alerts, newest first."""
    query = select(alerts).where(alerts.c.home_id == home_id)
    if only_open:
        query = query.where(alerts.c.acknowledged_at.is_(None))
    query = query.order_by(alerts.c.at.desc(), alerts.c.alert_id).limit(limit)
    return [_stored(row) for row in conn.execute(query)]


def raised_since(
    conn: Connection, home_id: str, since: datetime
) -> list[tuple[str, str, datetime]]:
    """(kind, subject, time) of the alerts raised at or after ``since``: what a new finding is
    checked against (:func:`atlas.alerts.is_repeat`)."""
    query = select(alerts.c.kind, alerts.c.subject, alerts.c.at).where(
        alerts.c.home_id == home_id, alerts.c.at >= since
    )
    return [(row.kind, row.subject, row.at) for row in conn.execute(query)]


def unpushed(conn: Connection, home_id: str) -> list[StoredAlert]:
    """Open alerts no channel has accepted yet, oldest first (pushed again until they are)."""
    query = (
        select(alerts)
        .where(
            alerts.c.home_id == home_id,
            alerts.c.pushed_at.is_(None),
            alerts.c.acknowledged_at.is_(None),
        )
        .order_by(alerts.c.at, alerts.c.alert_id)
    )
    return [_stored(row) for row in conn.execute(query)]


def mark_pushed(conn: Connection, aid: str, now: datetime) -> None:
    conn.execute(
        update(alerts)
        .where(alerts.c.alert_id == aid, alerts.c.pushed_at.is_(None))
        .values(pushed_at=now)
    )


def acknowledge(
    conn: Connection, home_id: str, aid: str, by: str, now: datetime
) -> StoredAlert | None:
    """Mark the alert seen (None: no such alert of this home). Idempotent: a second
    acknowledgement keeps the first one's time and name."""
    conn.execute(
        update(alerts)
        .where(
            alerts.c.home_id == home_id,
            alerts.c.alert_id == aid,
            alerts.c.acknowledged_at.is_(None),
        )
        .values(acknowledged_at=now, acknowledged_by=by)
    )
    return get_alert(conn, home_id, aid)
