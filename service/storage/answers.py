"""Homeowner answers to label requests: validated and recorded in one transaction.

Both answer paths (HTTP ``POST .../answer`` and MQTT ``.../answer``) validate the body with
:class:`AnswerCreate` and call :func:`record_answer`, so they accept and refuse the same answers
and race safely. The request's state moves ``sent -> answered``
(or ``sent -> declined`` for "not sure") with a guarded ``UPDATE ... WHERE state = 'sent'``; of
two concurrent answers exactly one wins the row, and the loser re-reads the winner's outcome:
the same choice is an idempotent repeat, a different one a conflict. The caller owns the
transaction (``with engine.begin() as conn``) and calls hooks only after it commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, insert, select, update

from service.storage.schema import fixtures, label_requests, labels, valves

#: The choice that answers without a label (the request is declined); atlas.engine.NOT_SURE.
NOT_SURE = "not sure"
#: Request states in which an answer may still arrive.
ANSWERABLE = ("sent",)


class AnswerCreate(BaseModel):
    """The homeowner's answer: one of the request's choices.

    The one model of an answer body, whichever channel brings it: the HTTP endpoint declares
    it, the MQTT handler validates its payload with it. Unknown fields are refused (a misspelt
    field is an error, not silently ignored).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    choice: str = Field(
        min_length=1,
        max_length=127,
        examples=["kitchen/hot"],
        description="One of the request's choices (its ``choices``); 422 otherwise.",
    )
    answered_by: str = Field(
        default="homeowner", min_length=1, max_length=120, pattern=r"^[^\x00-\x1f]+$"
    )


class AnswerError(ValueError):
    """An answer that cannot be recorded; ``code`` says why (the API maps it to a status).

    Codes: ``not_found`` (no such request in this home), ``invalid_choice`` (not among the
    request's choices), ``conflict`` (already answered differently), ``expired`` (past its
    expiry or expired), ``not_sent`` (planned, not yet offered to the homeowner).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AnswerResult:
    """The recorded answer of one request (``created`` is False for an idempotent repeat)."""

    home_id: str
    request_id: str
    use_id: str | None
    choice: str
    state: str  # "answered" | "declined"
    level: str | None  # "valve" | "fixture" | "category"; None for "not sure"
    source: str | None  # "active" | "audit"; None for "not sure"
    answered_by: str | None
    answered_at: datetime | None
    created: bool


def utc(t: datetime | None) -> datetime | None:
    """``t`` as an aware UTC datetime (SQLite returns naive datetimes; all stored times are UTC)."""
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _choice_level(conn: Connection, home_id: str, choice: str) -> str:
    """The hierarchy level a choice names: a valve id, a fixture id, else a category."""
    is_valve = conn.execute(
        select(valves.c.valve_id).where(valves.c.home_id == home_id, valves.c.valve_id == choice)
    ).first()
    if is_valve is not None:
        return "valve"
    is_fixture = conn.execute(
        select(fixtures.c.fixture_id).where(
            fixtures.c.home_id == home_id, fixtures.c.fixture_id == choice
        )
    ).first()
    return "fixture" if is_fixture is not None else "category"


def _request_row(conn: Connection, home_id: str, request_id: str):
    return conn.execute(
        select(label_requests).where(
            label_requests.c.request_id == request_id, label_requests.c.home_id == home_id
        )
    ).first()


def load_answer(conn: Connection, home_id: str, request_id: str) -> AnswerResult | None:
    """The recorded answer of ``request_id`` in ``home_id``, or None when it has none yet.

    A declined request (answered "not sure") has no label row; its choice is :data:`NOT_SURE`.
    """
    req = _request_row(conn, home_id, request_id)
    if req is None or req.state not in ("answered", "declined"):
        return None
    label = conn.execute(select(labels).where(labels.c.request_id == request_id)).first()
    if label is None:
        return AnswerResult(
            home_id,
            request_id,
            req.use_id,
            NOT_SURE,
            req.state,
            None,
            None,
            None,
            utc(req.closed_at),
            created=False,
        )
    return AnswerResult(
        home_id,
        request_id,
        req.use_id,
        label.label,
        req.state,
        label.level,
        label.source,
        label.answered_by,
        utc(label.answered_at),
        created=False,
    )


def _repeat_or_conflict(
    conn: Connection, home_id: str, request_id: str, choice: str, state: str
) -> AnswerResult:
    """The outcome for a request no longer open: idempotent repeat, conflict or expired."""
    if state == "expired":
        raise AnswerError("expired", f"label request {request_id!r} has expired")
    existing = load_answer(conn, home_id, request_id)
    if existing is None:  # a state outside the machine (schema CHECK forbids it)
        raise AnswerError("conflict", f"label request {request_id!r} is {state!r}")
    if existing.choice != choice:
        raise AnswerError(
            "conflict",
            f"label request {request_id!r} was already answered {existing.choice!r}; "
            f"choice={choice!r} conflicts with it",
        )
    return existing


def record_answer(
    conn: Connection,
    home_id: str,
    request_id: str,
    choice: str,
    answered_by: str,
    now: datetime,
) -> AnswerResult:
    """Validate ``choice`` against the request and record it; idempotent for the same choice.

    Raises :class:`AnswerError` (``not_found``, ``invalid_choice``, ``conflict``, ``expired``,
    ``not_sent``). Writes the label (source ``audit`` when the request was an audit draw, else
    ``active``) and the state change in the caller's transaction.
    """
    req = _request_row(conn, home_id, request_id)
    if req is None:
        raise AnswerError(
            "not_found", f"home {home_id!r} has no label request request_id={request_id!r}"
        )
    if choice not in req.choices:
        raise AnswerError(
            "invalid_choice",
            f"choice={choice!r} is not one of request {request_id!r}'s choices {req.choices}",
        )
    if req.state not in ANSWERABLE:
        if req.state == "planned":
            raise AnswerError("not_sent", f"label request {request_id!r} has not been sent yet")
        return _repeat_or_conflict(conn, home_id, request_id, choice, req.state)
    expires_at = utc(req.expires_at)
    if expires_at is not None and now > expires_at:
        raise AnswerError(
            "expired", f"label request {request_id!r} expired at {expires_at.isoformat()}"
        )
    to_state = "declined" if choice == NOT_SURE else "answered"
    if to_state == "answered" and req.use_id is None:
        raise AnswerError("not_found", f"label request {request_id!r} names no water use")
    won = conn.execute(
        update(label_requests)
        .where(label_requests.c.request_id == request_id, label_requests.c.state == "sent")
        .values(state=to_state, closed_at=now)
        .returning(label_requests.c.request_id)
    ).first()
    if won is None:  # a concurrent answer committed first: judge ours against it
        state = conn.execute(
            select(label_requests.c.state).where(label_requests.c.request_id == request_id)
        ).scalar_one()
        return _repeat_or_conflict(conn, home_id, request_id, choice, state)
    if to_state == "declined":
        return AnswerResult(
            home_id,
            request_id,
            req.use_id,
            choice,
            to_state,
            None,
            None,
            answered_by,
            now,
            created=True,
        )
    level = _choice_level(conn, home_id, choice)
    source = "audit" if req.is_audit else "active"
    conn.execute(
        insert(labels).values(
            home_id=home_id,
            use_id=req.use_id,
            level=level,
            label=choice,
            source=source,
            answered_by=answered_by,
            request_id=request_id,
            answered_at=now,
        )
    )
    return AnswerResult(
        home_id,
        request_id,
        req.use_id,
        choice,
        to_state,
        level,
        source,
        answered_by,
        now,
        created=True,
    )
