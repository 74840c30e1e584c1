"""Classifications of uses at every level, keyed (use, level, model version): re-runs are no-ops."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from service.storage.schema import classifications

#: model_version of rows written by the rule classifier (week 1, before any trained model).
RULES_VERSION = "rules"


def model_version_name(version: int) -> str:
    """The stored name of classifier version ``version`` (0 = rules only)."""
    return RULES_VERSION if version == 0 else f"m{version}"


def insert_classifications(
    conn: Connection, home_id: str, rows: Sequence[dict], now: datetime
) -> int:
    """Insert ``{"use_id", "level", "label", "probability", "model_version"}`` rows.

    Returns the number of new rows; rows already stored for the same model version are skipped.
    """
    if not rows:
        return 0
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        ins(classifications)
        .on_conflict_do_nothing(index_elements=["use_id", "level", "model_version"])
        .returning(classifications.c.id)
    )
    values = [dict(r, home_id=home_id, created_at=now) for r in rows]
    return len(conn.execute(stmt, values).all())
