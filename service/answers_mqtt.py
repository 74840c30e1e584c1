"""Homeowner answers over MQTT: ``<base>/homes/{home}/label-requests/{id}/answer``.

The payload is JSON ``{"choice": "...", "answered_by": "..."}`` (or the bare choice as text),
validated by :class:`service.storage.answers.AnswerCreate`, the model of the HTTP body, and
recorded by :func:`service.storage.answers.record_answer`, the function the HTTP endpoint
calls: both channels accept and refuse the same answers. The outcome is published on
``.../answer/result`` (the phone sees why an answer was refused).

Every answer ends in an outcome, so the runtime can acknowledge it: a payload that is not an
answer and any unexpected failure are kept as dead letters with their reason. A message left
unacknowledged would be redelivered after every reconnect and, with the broker's in-flight
window full of them, block the answers behind it. Only a database that is unavailable
(``OperationalError``) is raised: the message is sound and is handled again once it is back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import pydantic_core
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from service import metrics
from service.storage.answers import AnswerCreate, AnswerError, record_answer
from service.storage.dashboard import home_exists
from service.storage.deadletters import DeadLetter, insert_dead_letters

_LOGGER = logging.getLogger(__name__)

#: Bytes of an answer payload: a choice and a name fit in a few hundred.
MAX_ANSWER_BYTES = 4096


@dataclass(frozen=True)
class AnswerOutcome:
    home_id: str
    request_id: str
    ok: bool
    created: bool
    detail: dict


def parse_answer_topic(topic: str) -> tuple[str, str] | None:
    """``(home_id, request_id)`` from ``.../homes/{home}/label-requests/{id}/answer``."""
    parts = topic.split("/")
    if len(parts) >= 5 and (parts[-5], parts[-3], parts[-1]) == (
        "homes",
        "label-requests",
        "answer",
    ):
        return parts[-4], parts[-2]
    return None


def parse_answer_payload(payload: bytes) -> AnswerCreate:
    """The answer in ``payload``; raises ValueError naming what is wrong.

    A JSON object is validated by :class:`AnswerCreate` as the HTTP body is (pydantic's parser
    refuses hostile nesting instead of recursing), with ``answered_by`` "mqtt" when absent;
    anything else is the bare choice as UTF-8 text.
    """
    if len(payload) > MAX_ANSWER_BYTES:
        raise ValueError(f"answer payload is {len(payload)} bytes; the limit is {MAX_ANSWER_BYTES}")
    text = payload.strip()
    if text.startswith(b"{"):
        data = pydantic_core.from_json(text)
        return AnswerCreate.model_validate({"answered_by": "mqtt", **data})
    return AnswerCreate.model_validate({"choice": text.decode("utf-8"), "answered_by": "mqtt"})


def describe_error(err: Exception) -> str:
    """One line a person can act on: the field, the constraint and (briefly) the value."""
    if not isinstance(err, ValidationError):
        return str(err)[:500]
    parts = []
    for e in err.errors(include_url=False):
        field = ".".join(str(x) for x in e["loc"]) or "payload"
        value = e.get("input")
        shown = "" if isinstance(value, dict) else f", got {str(value)[:60]!r}"
        parts.append(f"{field}: {e['msg']}{shown}")
    return "; ".join(parts)[:500]


def handle_answer(db: Engine, topic: str, payload: bytes, now: datetime) -> AnswerOutcome | None:
    """Record one MQTT answer; None when the topic is not an answer topic.

    Raises only ``OperationalError`` (the database is unavailable); everything else becomes
    an outcome, dead-lettered when the payload was not an answer or the handling failed.
    """
    ids = parse_answer_topic(topic)
    if ids is None:
        return None
    try:
        return _answer(db, *ids, topic, payload, now)
    except OperationalError:
        raise
    except Exception as exc:
        _LOGGER.exception("handling the answer on %s failed", topic[:200])
        message = f"{type(exc).__name__}: {exc}"
        return _refused(db, topic, payload, "internal_error", "internal_error", message)


def _answer(
    db: Engine, home_id: str, request_id: str, topic: str, payload: bytes, now: datetime
) -> AnswerOutcome:
    try:
        body = parse_answer_payload(payload)
    except ValueError as err:  # pydantic's ValidationError and UnicodeDecodeError are ValueErrors
        return _refused(db, topic, payload, "bad_answer", "bad_payload", describe_error(err))
    try:
        with db.begin() as conn:
            result = record_answer(conn, home_id, request_id, body.choice, body.answered_by, now)
    except AnswerError as err:  # a refusal the homeowner reads on the result topic, not a fault
        return AnswerOutcome(
            home_id, request_id, False, False, {"error": err.code, "message": str(err)}
        )
    if result.created:
        metrics.REQUESTS_ANSWERED.labels("mqtt").inc()
    detail = {"state": result.state, "choice": result.choice, "level": result.level}
    return AnswerOutcome(home_id, request_id, True, result.created, detail)


def _refused(
    db: Engine, topic: str, payload: bytes, reason: str, code: str, message: str
) -> AnswerOutcome:
    """Keep ``payload`` as a dead letter (received now, wall time, as the intake's are) and say
    why on the result topic."""
    home_id, request_id = parse_answer_topic(topic) or ("", "")
    received = datetime.now(UTC)
    with db.begin() as conn:
        known = home_id if home_exists(conn, home_id) else None
        insert_dead_letters(conn, [DeadLetter(topic, payload, reason, message, known, received)])
    metrics.DEAD_LETTERS.inc()
    return AnswerOutcome(home_id, request_id, False, False, {"error": code, "message": message})
