"""One answer model for HTTP and MQTT; poison answers over MQTT never block the channel."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from api_factories import T0, api_settings, bearer
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from shared_services import SHARED_BROKER_URL
from sqlalchemy import select

from service.answers_mqtt import handle_answer, parse_answer_payload
from service.api.app import create_app
from service.runtime.mqttlink import MqttLink
from service.storage import answers
from service.storage.schema import dead_letters
from service.waiting import wait_until

NOW = T0 + timedelta(hours=1)
NESTED = b'{"choice": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def _refused_bodies(choice: str) -> list[dict]:
    return [
        {"choice": choice, "answered_by": {"name": "alice"}},
        {"choice": choice, "extra": 1},
        {"choice": [choice]},
        {"choice": choice, "answered_by": "tab\there"},
        {"choice": ""},
    ]


@pytest.mark.parametrize("i", range(5))
def test_http_and_mqtt_refuse_the_same_bodies(homes_sqlite, sqlite_engine, i) -> None:
    a, b = homes_sqlite["a"], homes_sqlite["b"]
    body = _refused_bodies(a["choices"][0])[i]
    url = f"/v1/homes/{a['home_id']}/label-requests/{a['requests'][0]}/answer"
    app = create_app(api_settings(a["home_id"], b["home_id"]), db=sqlite_engine)
    with TestClient(app) as client:
        assert client.post(url, json=body, headers=bearer("owner_a")).status_code == 422
    with pytest.raises(ValueError):
        parse_answer_payload(json.dumps(body).encode())


def test_nested_json_over_http_is_a_400(sqlite_engine, homes_sqlite) -> None:
    a, b = homes_sqlite["a"], homes_sqlite["b"]
    url = f"/v1/homes/{a['home_id']}/label-requests/{a['requests'][0]}/answer"
    app = create_app(api_settings(a["home_id"], b["home_id"]), db=sqlite_engine)
    headers = bearer("owner_a") | {"Content-Type": "application/json"}
    with TestClient(app) as client:
        assert client.post(url, content=NESTED[:60_000], headers=headers).status_code == 400


def test_mqtt_answer_defaults_to_mqtt_and_accepts_a_bare_choice() -> None:
    assert parse_answer_payload(b'{"choice": "toilet"}').answered_by == "mqtt"
    assert parse_answer_payload(b" toilet\n").choice == "toilet"
    with pytest.raises(ValueError, match="recursion limit"):
        parse_answer_payload(NESTED[:4000])


def test_unexpected_failure_is_a_dead_letter(sqlite_engine, homes_sqlite, monkeypatch) -> None:
    a = homes_sqlite["a"]

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("service.answers_mqtt.record_answer", broken)
    topic = f"t/v1/homes/{a['home_id']}/label-requests/{a['requests'][0]}/answer"
    outcome = handle_answer(sqlite_engine, topic, b'{"choice": "toilet"}', NOW)
    assert not outcome.ok and outcome.detail["error"] == "internal_error"
    assert _letters(sqlite_engine) == [("internal_error", a["home_id"])]


def _letters(engine) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(select(dead_letters.c.reason, dead_letters.c.home_id)).all()
    return [tuple(r) for r in rows]


class _Results:
    """Subscribes to the answer results of ``prefix``; keeps them by topic."""

    def __init__(self, prefix: str, client_id: str) -> None:
        self.got: dict[str, list[dict]] = {}
        ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        results = f"{prefix}/homes/+/label-requests/+/answer/result"
        self.client.on_connect = lambda c, *a: c.subscribe(results, qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = lambda c, u, m: self.got.setdefault(m.topic, []).append(
            json.loads(m.payload)
        )
        self.client.connect("127.0.0.1", 1883)
        self.client.loop_start()
        assert ready.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _runtime_link(engine, prefix: str, client_id: str, handled: list[str]) -> MqttLink:
    """The runtime's answer channel: handle the answer, publish its result."""

    def on_message(topic: str, payload: bytes) -> None:
        handled.append(topic)
        outcome = handle_answer(engine, topic, payload, NOW)
        link.publish_json(f"{topic}/result", {"ok": outcome.ok, **outcome.detail}, retain=False)

    link = MqttLink(
        SHARED_BROKER_URL,
        client_id,
        [f"{prefix}/homes/+/label-requests/+/answer"],
        on_message,
        f"{prefix}/status",
    )
    link.start()
    assert link.connected.wait(10)
    time.sleep(0.3)  # the SUBACK: a message published before it is not this new session's
    return link


@pytest.mark.mqtt
@pytest.mark.timeout(60)
def test_poison_answers_do_not_block_a_valid_one(sqlite_engine, homes_sqlite, uid) -> None:
    """More poison answers than the broker's in-flight window (20), then a valid answer."""
    a = homes_sqlite["a"]
    prefix = f"test-{uid}/v1"
    answer = f"{prefix}/homes/{a['home_id']}/label-requests/{a['requests'][0]}/answer"
    poison = f"{prefix}/homes/{a['home_id']}/label-requests/{a['requests'][1]}/answer"
    results = _Results(prefix, f"res-{uid}")
    handled: list[str] = []
    link = _runtime_link(sqlite_engine, prefix, f"link-{uid}", handled)
    try:
        sent = [results.client.publish(poison, NESTED, qos=1) for _ in range(25)]
        sent.append(results.client.publish(answer, json.dumps({"choice": a["choices"][0]}), qos=1))
        for info in sent:
            info.wait_for_publish(10)
        assert wait_until(lambda: f"{answer}/result" in results.got, 30), len(handled)
        assert results.got[f"{answer}/result"] == [
            {"ok": True, "state": "answered", "choice": a["choices"][0], "level": "valve"}
        ]
        assert wait_until(lambda: len(results.got.get(f"{poison}/result", [])) == 25, 10)
        assert {r["error"] for r in results.got[f"{poison}/result"]} == {"bad_payload"}
    finally:
        link.stop()
    assert _letters(sqlite_engine) == [("bad_answer", a["home_id"])] * 25
    # every one was acknowledged: the same session after a restart gets nothing again, and
    # a valid answer behind new poison gets its result there too
    again: list[str] = []
    link = _runtime_link(sqlite_engine, prefix, f"link-{uid}", again)
    try:
        assert not wait_until(lambda: again, 1.5)
        sent = [results.client.publish(poison, NESTED, qos=1) for _ in range(25)]
        sent.append(results.client.publish(poison, json.dumps({"choice": a["choices"][0]}), qos=1))
        for info in sent:
            info.wait_for_publish(10)
        assert wait_until(lambda: len(results.got.get(f"{poison}/result", [])) == 51, 30)
        assert results.got[f"{poison}/result"][-1] == {
            "ok": True,
            "state": "answered",
            "choice": a["choices"][0],
            "level": "valve",
        }
    finally:
        link.stop()
        results.close()


def test_answer_model_is_the_http_body() -> None:
    from service.api.schemas.label_requests import AnswerCreate

    assert AnswerCreate is answers.AnswerCreate
