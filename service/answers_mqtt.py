"""Homeowner answers over MQTT: ``<base>/homes/{home}/label-requests/{id}/answer``.

The payload is JSON ``{"choice": "...", "answered_by": "..."}`` (or the bare choice as text).
It goes through :func:`service.storage.answers.record_answer`, the function the HTTP endpoint
uses, so both paths validate identically; the outcome is published on ``.../answer/result``
(the phone sees why an answer was refused), and the message is acknowledged only after commit.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from service import metrics
from service.storage.answers import AnswerError, record_answer

_LOGGER = logging.getLogger(__name__)


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


def parse_answer_payload(payload: bytes) -> tuple[str, str]:
    """``(choice, answered_by)``; raises ValueError naming what is wrong."""
    text = payload.decode("utf-8", "strict").strip()
    if text.startswith("{"):
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("choice"), str):
            raise ValueError(f"answer payload needs a string 'choice', got {text[:120]!r}")
        who = data.get("answered_by", "mqtt")
        return data["choice"], str(who)[:120] if who else "mqtt"
    if not text:
        raise ValueError("answer payload is empty")
    return text[:200], "mqtt"


def handle_answer(db: Engine, topic: str, payload: bytes, now: datetime) -> AnswerOutcome | None:
    """Record one MQTT answer; None when the topic is not an answer topic."""
    ids = parse_answer_topic(topic)
    if ids is None:
        return None
    home_id, request_id = ids
    try:
        choice, who = parse_answer_payload(payload)
        with db.begin() as conn:
            result = record_answer(conn, home_id, request_id, choice, who, now)
    except AnswerError as err:
        return AnswerOutcome(
            home_id, request_id, False, False, {"error": err.code, "message": str(err)}
        )
    except (ValueError, UnicodeDecodeError) as err:
        return AnswerOutcome(
            home_id, request_id, False, False, {"error": "bad_payload", "message": str(err)}
        )
    if result.created:
        metrics.REQUESTS_ANSWERED.labels("mqtt").inc()
    detail = {"state": result.state, "choice": result.choice, "level": result.level}
    return AnswerOutcome(home_id, request_id, True, result.created, detail)
