"""One status row per home (phase, day, display level and why) and the accuracy history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from service.storage.schema import accuracy_history, home_status

#: atlas.levels display levels -> stored names (the schema says "rules" for week-1 rules).
LEVEL_NAMES = {
    "rule_categories": "rules",
    "category": "category",
    "fixture": "fixture",
    "valve": "valve",
}


def upsert_home_status(
    conn: Connection,
    home_id: str,
    *,
    phase: str,
    calibration_day: int,
    level: str,
    reason: dict,
    model_version: str,
    now: datetime,
) -> bool:
    """Write the home's status; returns True when the display level changed."""
    current = conn.execute(
        select(home_status.c.level).where(home_status.c.home_id == home_id)
    ).scalar_one_or_none()
    values = {
        "phase": phase,
        "calibration_day": calibration_day,
        "level": level,
        "reason": reason,
        "model_version": model_version,
        "updated_at": now,
    }
    if current is None:
        conn.execute(insert(home_status).values(home_id=home_id, level_changed_at=now, **values))
        return True
    changed = current != level
    if changed:
        values["level_changed_at"] = now
    conn.execute(update(home_status).where(home_status.c.home_id == home_id).values(**values))
    return changed


def load_home_status(conn: Connection, home_id: str) -> dict | None:
    row = conn.execute(select(home_status).where(home_status.c.home_id == home_id)).first()
    return None if row is None else dict(row._mapping)


def append_accuracy(
    conn: Connection,
    home_id: str,
    *,
    t: datetime,
    estimates: dict[str, tuple[float, float, int]],
    displayed: str,
    model_version: str,
) -> None:
    """One history row per level: ``estimates[level] = (point, lower bound, n_labels)``."""
    conn.execute(
        insert(accuracy_history),
        [
            {
                "home_id": home_id,
                "t": t,
                "level": level,
                "estimate": point,
                "lower_bound": lower,
                "n_labels": n,
                "displayed": level == displayed,
                "model_version": model_version,
            }
            for level, (point, lower, n) in estimates.items()
        ],
    )
