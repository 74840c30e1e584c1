"""Writing the engine's label requests and reading the ones to push, send or expire.

The row key (home, round, slot) is the scheduler's idempotency key: a round re-run after a
crash inserts nothing, and only a ``planned -> sent`` transition that this call wins pushes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service.storage.answers import utc
from service.storage.inlists import batches
from service.storage.schema import label_requests, labels


def insert_planned(conn: Connection, home_id: str, rows: list[dict], now: datetime) -> list[str]:
    """Insert requests (``request_id, round, slot, use_id, choices, prompt, expires_at,
    inclusion_prob, is_audit, predicted``) as ``planned``; returns the ids that were new."""
    if not rows:
        return []
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = ins(label_requests).on_conflict_do_nothing().returning(label_requests.c.request_id)
    values = [dict(r, home_id=home_id, state="planned", created_at=now) for r in rows]
    return list(conn.execute(stmt, values).scalars())


def requests_in_state(conn: Connection, home_id: str, state: str) -> list[dict]:
    """Requests of ``home_id`` in ``state``, oldest round first, as dicts with UTC times."""
    rows = conn.execute(
        select(label_requests)
        .where(label_requests.c.home_id == home_id, label_requests.c.state == state)
        .order_by(label_requests.c.round, label_requests.c.slot)
    )
    out = []
    for r in rows:
        d = dict(r._mapping)
        for k in ("created_at", "sent_at", "expires_at", "closed_at"):
            d[k] = utc(d[k])
        out.append(d)
    return out


def mark_sent(conn: Connection, request_id: str, now: datetime, prompt: str) -> bool:
    """``planned -> sent`` with the prompt as sent; True only for the caller that made the
    change (no double push)."""
    won = conn.execute(
        update(label_requests)
        .where(label_requests.c.request_id == request_id, label_requests.c.state == "planned")
        .values(state="sent", sent_at=now, prompt=prompt)
        .returning(label_requests.c.request_id)
    ).first()
    return won is not None


def expire_due(conn: Connection, home_id: str, now: datetime) -> list[str]:
    """Move ``planned``/``sent`` requests past their expiry to ``expired``; returns their ids."""
    rows = conn.execute(
        update(label_requests)
        .where(
            label_requests.c.home_id == home_id,
            label_requests.c.state.in_(("planned", "sent")),
            label_requests.c.expires_at < now,
        )
        .values(state="expired", closed_at=now)
        .returning(label_requests.c.request_id)
    )
    return list(rows.scalars())


def closed_answers(conn: Connection, home_id: str) -> list[tuple[str, str, datetime]]:
    """``(request_id, choice, answered_at)`` of every answered or declined request.

    A declined request is a "not sure" answer; the engine applies each once (idempotently).
    """
    return closed_answers_by_home(conn, [home_id]).get(home_id, [])


def closed_answers_by_home(
    conn: Connection, home_ids: Sequence[str]
) -> dict[str, list[tuple[str, str, datetime]]]:
    """:func:`closed_answers` of several homes in one query per batch of ids
    (:func:`service.storage.inlists.batches`)."""
    out: dict[str, list[tuple[str, str, datetime]]] = {}
    for chunk in batches(home_ids):
        for home_id, answer in _closed_answers(conn, chunk):
            out.setdefault(home_id, []).append(answer)
    return out


def _closed_answers(
    conn: Connection, home_ids: Sequence[str]
) -> Iterator[tuple[str, tuple[str, str, datetime]]]:
    rows = conn.execute(
        select(
            label_requests.c.home_id,
            label_requests.c.request_id,
            label_requests.c.state,
            label_requests.c.closed_at,
            labels.c.label,
            labels.c.answered_at,
        )
        .select_from(
            label_requests.outerjoin(labels, labels.c.request_id == label_requests.c.request_id)
        )
        .where(
            label_requests.c.home_id.in_(home_ids),
            label_requests.c.state.in_(("answered", "declined")),
        )
        .order_by(label_requests.c.closed_at)
    )
    for r in rows:
        if r.state == "answered" and r.label is not None:
            yield r.home_id, (r.request_id, r.label, utc(r.answered_at))
        else:
            yield r.home_id, (r.request_id, "not sure", utc(r.closed_at))
