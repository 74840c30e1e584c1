"""The retained label-request and alert states a phone or Home Assistant reads, and the
webhook bodies (pure, no I/O)."""

from __future__ import annotations

from datetime import datetime

from atlas.homespec import HomeSpec
from service.storage.alerts import StoredAlert

SCHEMA = "atlas.label-requests/1"
ALERT_SCHEMA = "atlas.alerts/1"
#: The push title of each alert kind (ntfy's ``Title``), in a homeowner's words.
ALERT_TITLES = {
    "running": "Water is still running",
    "flapper": "A toilet may be leaking",
    "night": "Water at night",
}
NOT_SURE = "not sure"


def choice_label(spec: HomeSpec, choice: str) -> str:
    """A person's words for a choice: fixture name, "fixture name (valve)", or the text."""
    if choice == NOT_SURE:
        return "Not sure"
    fixture_id, _, valve = choice.partition("/")
    try:
        fixture = spec.fixture(fixture_id)
    except (KeyError, ValueError):
        return choice.replace("_", " ")
    return f"{fixture.name} ({valve.replace('_', ' ')})" if valve else fixture.name


def request_view(spec: HomeSpec, req: dict, answer_topic: str) -> dict:
    """One open request as pushed: id, words, choices with labels, expiry, where to answer."""
    return {
        "request_id": req["request_id"],
        "prompt": req["prompt"],
        "choices": [{"id": c, "label": choice_label(spec, c)} for c in req["choices"]],
        "expires_at": req["expires_at"].isoformat(),
        "answer_topic": answer_topic,
    }


def state_payload(
    spec: HomeSpec, open_requests: list[dict], now: datetime, topic_of: callable
) -> dict:
    """The retained message: every open request of the home (empty list: nothing to answer)."""
    return {
        "schema": SCHEMA,
        "home_id": spec.home_id,
        "updated_at": now.isoformat(),
        "requests": [request_view(spec, r, topic_of(r["request_id"])) for r in open_requests],
    }


def alert_view(alert: StoredAlert) -> dict:
    """One alert as pushed and published: what, when, why, and whether it was seen."""
    return {
        "alert_id": alert.alert_id,
        "kind": alert.kind,
        "title": ALERT_TITLES[alert.kind],
        "message": alert.message,
        "at": alert.at.isoformat(),
        "evidence": alert.evidence,
        "use_ids": list(alert.use_ids),
        "acknowledged_at": None
        if alert.acknowledged_at is None
        else alert.acknowledged_at.isoformat(),
    }


def alert_payload(spec: HomeSpec, alerts: list[StoredAlert], now: datetime) -> dict:
    """A webhook body (one new alert) or the retained MQTT state (every open alert)."""
    return {
        "schema": ALERT_SCHEMA,
        "home_id": spec.home_id,
        "updated_at": now.isoformat(),
        "alerts": [alert_view(a) for a in alerts],
    }
