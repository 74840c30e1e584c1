"""Read queries behind the dashboard and homeowner endpoints (the HTTP handlers hold no SQL).

Every function takes the home id it reads, and nothing here ever returns rows of another home:
access control happens in the API, but a query that cannot cross homes is the second fence.
Rows are returned as plain dataclasses/dicts of stored values; the API's schemas shape them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from service.storage.answers import utc
from service.storage.schema import (
    accuracy_history,
    announcements,
    classifications,
    fixtures,
    home_status,
    homes,
    label_requests,
    labels,
    uses,
    valves,
)

#: The classifier level shown for each display level ("rules": the rule categories).
CLASSIFICATION_LEVEL = {
    "rules": "category",
    "category": "category",
    "fixture": "fixture",
    "valve": "valve",
}
#: The stored display levels, coarse to fine.
DISPLAY_ORDER: tuple[str, ...] = tuple(CLASSIFICATION_LEVEL)
ACCURACY_LEVELS = ("category", "fixture", "valve")


class CursorError(ValueError):
    """A paging cursor that this module did not produce."""


@dataclass(frozen=True)
class HomeSummary:
    home_id: str
    name: str
    timezone: str
    phase: str | None
    calibration_day: int | None
    level: str | None
    updated_at: datetime | None


def home_exists(conn: Connection, home_id: str) -> bool:
    return (
        conn.execute(select(homes.c.home_id).where(homes.c.home_id == home_id)).first() is not None
    )


def list_homes(conn: Connection, home_ids: frozenset[str] | None = None) -> list[HomeSummary]:
    """All homes (``home_ids`` None) or only those in ``home_ids``, with their status row."""
    stmt = (
        select(
            homes.c.home_id,
            homes.c.name,
            homes.c.timezone,
            home_status.c.phase,
            home_status.c.calibration_day,
            home_status.c.level,
            home_status.c.updated_at,
        )
        .select_from(homes.outerjoin(home_status, home_status.c.home_id == homes.c.home_id))
        .order_by(homes.c.home_id)
    )
    if home_ids is not None:
        stmt = stmt.where(homes.c.home_id.in_(sorted(home_ids)))
    return [
        HomeSummary(
            r.home_id, r.name, r.timezone, r.phase, r.calibration_day, r.level, utc(r.updated_at)
        )
        for r in conn.execute(stmt)
    ]


def home_spec_dict(conn: Connection, home_id: str) -> dict[str, Any] | None:
    """The stored home spec (the installer's file), or None for an unknown home."""
    return conn.execute(select(homes.c.spec).where(homes.c.home_id == home_id)).scalar_one_or_none()


def home_status_row(conn: Connection, home_id: str) -> dict[str, Any] | None:
    """The runtime's status row of ``home_id`` (None before the runtime wrote one)."""
    row = conn.execute(select(home_status).where(home_status.c.home_id == home_id)).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out["level_changed_at"] = utc(out["level_changed_at"])
    out["updated_at"] = utc(out["updated_at"])
    return out


def shown_level(status: Mapping[str, Any]) -> str:
    """The display level of a status row: ``rules`` before the first daily update, and for a
    name this version does not know (shown as little as possible)."""
    level = status.get("level") or "rules"
    return level if level in CLASSIFICATION_LEVEL else "rules"


def shown_lumps(status: Mapping[str, Any]) -> list[list[str]]:
    """The fixture lumps decided with the display level (status row); only the fixture level
    shows lumps, so any other level has none."""
    if status.get("level") != "fixture":
        return []
    return (status.get("reason") or {}).get("lumps", [])


def latest_accuracy(conn: Connection, home_id: str) -> dict[str, dict[str, Any]]:
    """The newest accuracy estimate per level: estimate, lower bound, labels, displayed, t."""
    out = {}
    for level in ACCURACY_LEVELS:
        row = conn.execute(
            select(accuracy_history)
            .where(accuracy_history.c.home_id == home_id, accuracy_history.c.level == level)
            .order_by(accuracy_history.c.t.desc(), accuracy_history.c.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            out[level] = _accuracy_dict(row)
    return out


def _accuracy_dict(row) -> dict[str, Any]:
    return {
        "t": utc(row._mapping["t"]),  # Row.t is the row as a tuple
        "level": row.level,
        "estimate": row.estimate,
        "lower_bound": row.lower_bound,
        "n_labels": row.n_labels,
        "displayed": row.displayed,
        "model_version": row.model_version,
    }


def accuracy_history_rows(
    conn: Connection, home_id: str, *, level: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Accuracy estimates of ``home_id`` oldest first (the last ``limit`` of them)."""
    stmt = select(accuracy_history).where(accuracy_history.c.home_id == home_id)
    if level is not None:
        stmt = stmt.where(accuracy_history.c.level == level)
    stmt = stmt.order_by(accuracy_history.c.t.desc(), accuracy_history.c.id.desc()).limit(limit)
    return [_accuracy_dict(r) for r in reversed(conn.execute(stmt).all())]


def level_timeline(conn: Connection, home_id: str) -> list[tuple[datetime, str]]:
    """When the displayed level changed: ``(t, level)`` change points, oldest first.

    Derived from the accuracy history's ``displayed`` flags; a time with no displayed level
    shows the rules.
    """
    rows = conn.execute(
        select(accuracy_history.c.t, accuracy_history.c.level, accuracy_history.c.displayed)
        .where(accuracy_history.c.home_id == home_id)
        .order_by(accuracy_history.c.t, accuracy_history.c.id)
    ).all()
    shown: dict[datetime, str] = {}
    for t, level, displayed in rows:
        shown.setdefault(utc(t), "rules")
        if displayed:
            shown[utc(t)] = level
    timeline: list[tuple[datetime, str]] = []
    for t, level in shown.items():
        if not timeline or timeline[-1][1] != level:
            timeline.append((t, level))
    return timeline


def request_counts(conn: Connection, home_id: str) -> dict[str, int]:
    """Label requests of ``home_id`` by state (every state present, zero when none)."""
    rows = conn.execute(
        select(label_requests.c.state, func.count())
        .where(label_requests.c.home_id == home_id)
        .group_by(label_requests.c.state)
    )
    counts = {s: 0 for s in ("planned", "sent", "answered", "expired", "declined")}
    counts.update({state: int(n) for state, n in rows})
    return counts


def label_counts(conn: Connection, home_id: str) -> dict[str, int]:
    """Labels of ``home_id`` by source (guided, active, audit)."""
    rows = conn.execute(
        select(labels.c.source, func.count())
        .where(labels.c.home_id == home_id)
        .group_by(labels.c.source)
    )
    counts = {s: 0 for s in ("guided", "active", "audit")}
    counts.update({source: int(n) for source, n in rows})
    return counts


def guided_valve_labels(conn: Connection, home_id: str) -> list[str]:
    """Valve ids of the guided (week-1) labels, one per labelled use, for checklist progress."""
    return list(
        conn.execute(
            select(labels.c.label).where(
                labels.c.home_id == home_id,
                labels.c.source == "guided",
                labels.c.level == "valve",
            )
        ).scalars()
    )


def label_requests_of(
    conn: Connection, home_id: str, *, state: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Label requests of ``home_id`` (newest first), with the recorded answer when there is one."""
    stmt = (
        select(label_requests, labels.c.label.label("answer"), labels.c.answered_by)
        .select_from(
            label_requests.outerjoin(labels, labels.c.request_id == label_requests.c.request_id)
        )
        .where(label_requests.c.home_id == home_id)
    )
    if state is not None:
        stmt = stmt.where(label_requests.c.state == state)
    stmt = stmt.order_by(label_requests.c.created_at.desc(), label_requests.c.request_id).limit(
        limit
    )
    out = []
    for r in conn.execute(stmt):
        row = dict(r._mapping)
        for key in ("created_at", "sent_at", "expires_at", "closed_at"):
            row[key] = utc(row[key])
        out.append(row)
    return out


def fixture_inventory(conn: Connection, home_id: str) -> list[dict[str, Any]]:
    """Fixtures of ``home_id`` with their valves, in id order."""
    valve_rows = conn.execute(
        select(valves).where(valves.c.home_id == home_id).order_by(valves.c.valve_id)
    ).all()
    by_fixture: dict[str, list[dict[str, Any]]] = {}
    for v in valve_rows:
        by_fixture.setdefault(v.fixture_id, []).append(
            {"valve_id": v.valve_id, "name": v.name, "lines": v.lines.split(",")}
        )
    return [
        {
            "fixture_id": f.fixture_id,
            "name": f.name,
            "category": f.category,
            "handle": f.handle,
            "location": f.location,
            "valves": by_fixture.get(f.fixture_id, []),
        }
        for f in conn.execute(
            select(fixtures).where(fixtures.c.home_id == home_id).order_by(fixtures.c.fixture_id)
        )
    ]


def announcements_of(conn: Connection, home_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The newest announcements of ``home_id`` (week-1 "I'm about to do it" presses)."""
    rows = conn.execute(
        select(announcements)
        .where(announcements.c.home_id == home_id)
        .order_by(announcements.c.t.desc(), announcements.c.id.desc())
        .limit(limit)
    )
    return [
        {"valve_id": r.valve_id, "t": utc(r._mapping["t"]), "matched_use_id": r.matched_use_id}
        for r in rows
    ]


#: A keyset cursor: microseconds since the epoch of the last use on a page, "~", its use id.
#: Every string of this form is a valid position, so the API schema can state it exactly.
CURSOR_PATTERN = r"^[0-9]{1,17}~[A-Za-z0-9_.:\-]{1,130}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(t: datetime, use_id: str) -> str:
    """The cursor after the use (``t``, ``use_id``) in newest-first order."""
    micros = (utc(t) - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}~{use_id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of :func:`encode_cursor`; raises :class:`CursorError` for another form."""
    if re.fullmatch(CURSOR_PATTERN, cursor) is None:
        raise CursorError(f"cursor={cursor[:40]!r} does not match {CURSOR_PATTERN}")
    micros, use_id = cursor.split("~", 1)
    return _EPOCH + timedelta(microseconds=int(micros)), use_id


def recent_uses(
    conn: Connection, home_id: str, level: str, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], str | None]:
    """Uses of ``home_id`` newest first, each with its newest classification at ``level``.

    ``level`` is a display level (``rules`` reads the category classifications). Keyset
    paging on (t, use_id): returns the page and the cursor of the next one (None at the end).
    The label is the stored classification (a fixture id at the fixture level; the API shows
    it as its lump when the model cannot tell it from another fixture).
    """
    stmt = select(uses).where(uses.c.home_id == home_id)
    if cursor is not None:
        t, use_id = decode_cursor(cursor)
        stmt = stmt.where(or_(uses.c.t < t, and_(uses.c.t == t, uses.c.use_id < use_id)))
    page = conn.execute(stmt.order_by(uses.c.t.desc(), uses.c.use_id.desc()).limit(limit + 1)).all()
    more = len(page) > limit
    page = page[:limit]
    found = _classifications_at(
        conn, home_id, [u.use_id for u in page], CLASSIFICATION_LEVEL[level]
    )
    items = []
    for u in page:
        t_open, t_close = utc(u.t_open), utc(u.t_close)
        items.append(
            {
                "use_id": u.use_id,
                "t": utc(u._mapping["t"]),
                "t_open": t_open,
                "t_close": t_close,
                "duration_s": (t_close - t_open).total_seconds() if t_open and t_close else None,
                "lines": u.lines.split(","),
                "status": u.status,
                "classification": found.get(u.use_id),
            }
        )
    next_cursor = encode_cursor(page[-1]._mapping["t"], page[-1].use_id) if more else None
    return items, next_cursor


def _classifications_at(
    conn: Connection, home_id: str, use_ids: list[str], level: str
) -> dict[str, dict[str, Any]]:
    if not use_ids:
        return {}
    rows = conn.execute(
        select(classifications)
        .where(
            classifications.c.home_id == home_id,
            classifications.c.level == level,
            classifications.c.use_id.in_(use_ids),
        )
        .order_by(classifications.c.created_at, classifications.c.id)
    )
    newest: dict[str, dict[str, Any]] = {}
    for r in rows:  # ascending: the last row per use wins
        newest[r.use_id] = {
            "level": r.level,
            "label": r.label,
            "probability": r.probability,
            "model_version": r.model_version,
            "created_at": utc(r.created_at),
        }
    return newest
