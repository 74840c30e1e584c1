"""Label requests: created once per (home, round, slot), then moved through a guarded state machine.

planned -> sent -> answered | expired | declined (and planned -> expired when a round passes
unsent). Each transition is one ``UPDATE ... WHERE state = <from>``: of two workers racing on the
same request exactly one wins, and a repeated answer changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service.storage.schema import label_requests

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "planned": ("sent", "expired"),
    "sent": ("answered", "expired", "declined"),
    "answered": (),
    "expired": (),
    "declined": (),
}


class TransitionError(ValueError):
    """A state change the machine does not allow (or the request does not exist)."""


def plan_request(
    conn: Connection,
    *,
    request_id: str,
    home_id: str,
    round_: int,
    slot: int,
    use_id: str | None,
    choices: list,
    prompt: str,
    now: datetime,
) -> bool:
    """Create the request in state ``planned``; False when (home, round, slot) already exists."""
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        ins(label_requests)
        .values(
            request_id=request_id,
            home_id=home_id,
            round=round_,
            slot=slot,
            use_id=use_id,
            state="planned",
            choices=choices,
            prompt=prompt,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(label_requests.c.request_id)
    )
    return conn.execute(stmt).first() is not None


def transition(conn: Connection, request_id: str, to_state: str, now: datetime) -> bool:
    """Move ``request_id`` to ``to_state``; False if it is already there (idempotent repeat).

    Raises :class:`TransitionError` for a transition the machine forbids.
    """
    current = conn.execute(
        select(label_requests.c.state).where(label_requests.c.request_id == request_id)
    ).scalar_one_or_none()
    if current is None:
        raise TransitionError(f"label request {request_id!r} does not exist")
    if current == to_state:
        return False
    if to_state not in TRANSITIONS[current]:
        raise TransitionError(
            f"label request {request_id!r} is {current!r}; it cannot become {to_state!r} "
            f"(allowed: {list(TRANSITIONS[current])})"
        )
    stamp = {"sent_at": now} if to_state == "sent" else {"closed_at": now}
    result = conn.execute(
        update(label_requests)
        .where(label_requests.c.request_id == request_id, label_requests.c.state == current)
        .values(state=to_state, **stamp)
        .returning(label_requests.c.request_id)
    )
    return result.first() is not None
