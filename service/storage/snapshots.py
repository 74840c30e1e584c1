"""Model snapshots in the database, so any worker can load the current model by version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, insert, select

from service.storage.schema import model_snapshots


def save_snapshot(
    conn: Connection, home_id: str, kind: str, blob: bytes, meta: dict, now: datetime
) -> int:
    """Store a new version of ``kind`` for ``home_id``; returns the version number (1, 2, ...).

    Two writers racing get a unique-constraint error on (home, kind, version) rather than
    silently overwriting each other.
    """
    latest = conn.execute(
        select(func.max(model_snapshots.c.version)).where(
            model_snapshots.c.home_id == home_id, model_snapshots.c.kind == kind
        )
    ).scalar_one()
    version = (latest or 0) + 1
    conn.execute(
        insert(model_snapshots).values(
            home_id=home_id, kind=kind, version=version, created_at=now, meta=meta, blob=blob
        )
    )
    return version


def load_snapshot(
    conn: Connection, home_id: str, kind: str, version: int | None = None
) -> tuple[int, dict, bytes] | None:
    """``(version, meta, blob)`` of the given or latest version, or None when there is none."""
    query = select(model_snapshots.c.version, model_snapshots.c.meta, model_snapshots.c.blob).where(
        model_snapshots.c.home_id == home_id, model_snapshots.c.kind == kind
    )
    if version is not None:
        query = query.where(model_snapshots.c.version == version)
    row = conn.execute(query.order_by(model_snapshots.c.version.desc()).limit(1)).first()
    return None if row is None else (row.version, row.meta, row.blob)
