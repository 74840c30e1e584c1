"""The runtime's MQTT link acknowledges every message it handled, even when the handler raised,
and retries only while the database is unavailable (against the real broker)."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import REGISTRY
from shared_services import SHARED_BROKER_URL
from sqlalchemy.exc import OperationalError

from service.runtime.mqttlink import MqttLink
from service.waiting import wait_until

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]


def _link_failures() -> float:
    """``atlas_mqtt_link_failures_total`` (service/metrics.py), as a scrape reads it."""
    return REGISTRY.get_sample_value("atlas_mqtt_link_failures_total") or 0.0


def _link(uid: str, handler) -> MqttLink:
    link = MqttLink(SHARED_BROKER_URL, f"link-{uid}", [f"t-{uid}/in/+"], handler, f"t-{uid}/st")
    link.start()
    assert link.connected.wait(10)
    time.sleep(0.3)  # the SUBACK
    return link


def _publish(uid: str, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    try:
        for info in [client.publish(f"t-{uid}/in/{t}", body, qos=1) for t, body in messages]:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_handler_that_raises_never_blocks_the_session(uid) -> None:
    handled: list[str] = []

    def handler(topic: str, payload: bytes) -> None:
        handled.append(topic)
        if payload == b"poison":
            raise RecursionError("maximum recursion depth exceeded")

    failures = _link_failures()
    link = _link(uid, handler)
    try:
        _publish(uid, [("bad", b"poison")] * 25 + [("good", b"fine")])
        assert wait_until(lambda: f"t-{uid}/in/good" in handled, 20), len(handled)
    finally:
        link.stop()
    assert _link_failures() - failures == 25
    again: list[str] = []
    link = _link(uid, lambda topic, payload: again.append(topic))
    try:  # all acknowledged: the persistent session holds nothing to redeliver
        assert not wait_until(lambda: again, 1.5)
    finally:
        link.stop()


def test_an_unavailable_database_is_retried_not_acknowledged(uid) -> None:
    calls: list[float] = []

    def handler(topic: str, payload: bytes) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database down"))

    link = _link(uid, handler)
    try:
        _publish(uid, [("answer", b"fine")])
        assert wait_until(lambda: len(calls) == 2, 10)
    finally:
        link.stop()
    assert calls[1] - calls[0] >= 0.4  # after the first backoff step
