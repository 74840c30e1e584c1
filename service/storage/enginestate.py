"""Calibration-engine snapshots in ``model_snapshots`` (kind ``engine``), JSON plus one array.

Why not pickle: a snapshot outlives the code that wrote it (a worker upgraded mid-fleet must
read it), and ``CalibrationEngine.snapshot`` is plain JSON types except numpy arrays (the
codes, the projection), which go in an ``.npz`` beside the JSON. The blob is
zlib-compressed; older versions are pruned so the table holds the last few states of each
home rather than one per batch.
"""

from __future__ import annotations

import io
import json
import zlib
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, delete

from service.storage.schema import model_snapshots
from service.storage.snapshots import load_snapshot, save_snapshot

KIND = "engine"
KEEP_VERSIONS = 3


def _split(obj: Any, arrays: list[np.ndarray]) -> Any:
    """``obj`` with every ndarray replaced by ``{"__nd__": index}`` into ``arrays``."""
    if isinstance(obj, np.ndarray):
        arrays.append(obj)
        return {"__nd__": len(arrays) - 1}
    if isinstance(obj, dict):
        return {k: _split(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_split(v, arrays) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__nd__"}:
            return arrays[f"a{obj['__nd__']}"]
        return {k: _join(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, arrays) for v in obj]
    return obj


def encode_state(state: dict[str, Any]) -> bytes:
    """``CalibrationEngine.snapshot()`` as compressed bytes (JSON + ``.npz`` of its arrays)."""
    arrays: list[np.ndarray] = []
    body = json.dumps(_split(state, arrays)).encode()
    buf = io.BytesIO()
    np.savez(buf, **{f"a{i}": a for i, a in enumerate(arrays)})
    return zlib.compress(len(body).to_bytes(8, "little") + body + buf.getvalue(), 1)


def decode_state(blob: bytes) -> dict[str, Any]:
    """The inverse of :func:`encode_state`."""
    raw = zlib.decompress(blob)
    n = int.from_bytes(raw[:8], "little")
    with np.load(io.BytesIO(raw[8 + n :]), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return _join(json.loads(raw[8 : 8 + n]), arrays)


def save_engine_state(
    conn: Connection, home_id: str, state: dict[str, Any], meta: dict[str, Any], now: datetime
) -> int:
    """Store a new snapshot version and prune all but the last :data:`KEEP_VERSIONS`."""
    version = save_snapshot(conn, home_id, KIND, encode_state(state), meta, now)
    conn.execute(
        delete(model_snapshots).where(
            model_snapshots.c.home_id == home_id,
            model_snapshots.c.kind == KIND,
            model_snapshots.c.version <= version - KEEP_VERSIONS,
        )
    )
    return version


def load_engine_state(
    conn: Connection, home_id: str
) -> tuple[int, dict[str, Any], dict[str, Any]] | None:
    """``(version, meta, state)`` of the newest snapshot, or None for a home never processed."""
    found = load_snapshot(conn, home_id, KIND)
    if found is None:
        return None
    version, meta, blob = found
    return version, meta, decode_state(blob)


def latest_engine_version(conn: Connection, home_id: str) -> int:
    """The newest snapshot version (0 when none): a worker reloads when another saved later."""
    from sqlalchemy import func, select

    return (
        conn.execute(
            select(func.max(model_snapshots.c.version)).where(
                model_snapshots.c.home_id == home_id, model_snapshots.c.kind == KIND
            )
        ).scalar_one()
        or 0
    )
