"""Dead letters: every rejected payload, kept with the reason a person can act on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select

from service.storage.schema import dead_letters

#: Bytes of a rejected payload kept for diagnosis. A hostile 100 MB payload must not become a
#: 100 MB row; the first 64 KiB show what it was, ``payload_size`` records how big it really was.
DEAD_LETTER_KEEP_BYTES = 64 * 1024


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    payload: bytes
    reason: str
    message: str
    home_id: str | None  # only a registered home, so error topics name real homes only
    received_at: datetime


def insert_dead_letters(conn: Connection, letters: list[DeadLetter]) -> None:
    if not letters:
        return
    conn.execute(
        insert(dead_letters),
        [
            {
                "received_at": d.received_at,
                "topic": d.topic[:512],
                "home_id": d.home_id,
                "reason": d.reason[:32],
                "message": d.message[:2000],
                "payload": d.payload[:DEAD_LETTER_KEEP_BYTES],
                "payload_size": len(d.payload),
            }
            for d in letters
        ],
    )


def dead_letter_counts(conn: Connection) -> dict[str, int]:
    """Dead letters per reason code."""
    rows = conn.execute(select(dead_letters.c.reason, func.count()).group_by(dead_letters.c.reason))
    return {reason: n for reason, n in rows}
