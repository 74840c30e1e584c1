"""Calibration-engine snapshots in ``model_snapshots`` (kind ``engine``), JSON plus arrays.

Why not pickle: a snapshot outlives the code that wrote it (a worker upgraded mid-fleet must
read it), and ``CalibrationEngine.snapshot`` is plain JSON types except numpy arrays (the
codes, the projection): :mod:`service.storage.jsonarrays` stores them as JSON beside an
``.npz``.

Versions form chains: a full snapshot (meta ``base`` None) and the deltas saved after it
(meta ``base``: the full one's version), each holding the uses and events added since the
previous save and the rest of the engine's state whole. Loading the latest version reads its
chain. Older chains are pruned so the table holds the current chain and the last few versions
before it, not one state per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select

from service.storage.jsonarrays import decode_state, encode_state
from service.storage.schema import model_snapshots
from service.storage.snapshots import load_snapshot, save_snapshot

KIND = "engine"
KEEP_VERSIONS = 3


def save_engine_state(
    conn: Connection,
    home_id: str,
    state: dict[str, Any],
    meta: dict[str, Any],
    now: datetime,
    *,
    base: int | None = None,
) -> int:
    """Store a new version: a full snapshot, or (``base``: its chain's full version) a delta.

    Prunes the versions before the chain that are not among the last :data:`KEEP_VERSIONS`.
    """
    version = save_snapshot(conn, home_id, KIND, encode_state(state), {**meta, "base": base}, now)
    keep_from = min(version if base is None else base, version - KEEP_VERSIONS + 1)
    conn.execute(
        delete(model_snapshots).where(
            model_snapshots.c.home_id == home_id,
            model_snapshots.c.kind == KIND,
            model_snapshots.c.version < keep_from,
        )
    )
    return version


@dataclass(frozen=True)
class StoredEngine:
    """The newest version of a home's engine: its full snapshot and the deltas after it."""

    version: int
    meta: dict[str, Any]
    base: int  # the version of the full snapshot
    state: dict[str, Any]
    deltas: list[dict[str, Any]]


def load_engine_state(conn: Connection, home_id: str) -> StoredEngine | None:
    """The newest version with its chain, or None for a home never processed."""
    found = load_snapshot(conn, home_id, KIND)
    if found is None:
        return None
    version, meta, blob = found
    base = meta.get("base")
    if base is None:
        return StoredEngine(version, meta, version, decode_state(blob), [])
    rows = conn.execute(
        select(model_snapshots.c.version, model_snapshots.c.blob)
        .where(
            model_snapshots.c.home_id == home_id,
            model_snapshots.c.kind == KIND,
            model_snapshots.c.version >= base,
            model_snapshots.c.version <= version,
        )
        .order_by(model_snapshots.c.version)
    ).all()
    if [r.version for r in rows] != list(range(base, version + 1)):
        raise RuntimeError(f"engine snapshots of {home_id}: the chain {base}..{version} is broken")
    states = [decode_state(r.blob) for r in rows]
    return StoredEngine(version, meta, base, states[0], states[1:])


def latest_engine_version(conn: Connection, home_id: str) -> int:
    """The newest snapshot version (0 when none): a worker reloads when another saved later."""
    return (
        conn.execute(
            select(func.max(model_snapshots.c.version)).where(
                model_snapshots.c.home_id == home_id, model_snapshots.c.kind == KIND
            )
        ).scalar_one()
        or 0
    )
