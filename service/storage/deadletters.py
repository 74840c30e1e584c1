"""Dead letters: every rejected payload, kept with the reason a person can act on.

Kept for a while, not forever: a hostile sender makes one row per message, so the table is
bounded by a row count and an age (:class:`DeadLetterRetention`, settings
``dead_letter_max_rows`` and ``dead_letter_max_age_days``), applied by the intake every minute
and by ``atlas deadletters purge``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select

from service.storage.schema import dead_letters

#: Bytes of a rejected payload kept for diagnosis. A hostile 100 MB payload must not become a
#: 100 MB row; the first 64 KiB show what it was, ``payload_size`` records how big it really was.
DEAD_LETTER_KEEP_BYTES = 64 * 1024


@dataclass(frozen=True)
class DeadLetterRetention:
    """Which dead letters to keep: the newest ``max_rows`` received within ``max_age``.

    10,000 rows of at most 64 KiB each bound the table near 640 MB; two weeks leave time to
    look at a fault reported after a holiday.
    """

    max_rows: int = 10_000
    max_age: timedelta = timedelta(days=14)


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


def purge_dead_letters(conn: Connection, retention: DeadLetterRetention, now: datetime) -> int:
    """Delete the dead letters ``retention`` does not keep; returns how many.

    The row bound goes first, by id (the primary key, ascending with arrival), so the age scan
    that follows reads at most ``max_rows`` rows.
    """
    removed = 0
    oldest_kept = conn.execute(
        select(dead_letters.c.id)
        .order_by(dead_letters.c.id.desc())
        .offset(retention.max_rows - 1)
        .limit(1)
    ).scalar()
    if oldest_kept is not None:
        by_count = delete(dead_letters).where(dead_letters.c.id < oldest_kept)
        removed += conn.execute(by_count).rowcount
    removed += conn.execute(
        delete(dead_letters).where(dead_letters.c.received_at < now - retention.max_age)
    ).rowcount
    return removed


def list_dead_letters(
    conn: Connection, *, reason: str | None = None, limit: int = 20
) -> list[dict]:
    """The newest dead letters (``reason`` only, when given), without their payloads."""
    query = (
        select(
            dead_letters.c.id,
            dead_letters.c.received_at,
            dead_letters.c.reason,
            dead_letters.c.home_id,
            dead_letters.c.topic,
            dead_letters.c.payload_size,
            dead_letters.c.message,
        )
        .order_by(dead_letters.c.id.desc())
        .limit(limit)
    )
    if reason is not None:
        query = query.where(dead_letters.c.reason == reason)
    return [dict(r._mapping) for r in conn.execute(query)]
