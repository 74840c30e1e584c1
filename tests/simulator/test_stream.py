"""The QoS 1 publisher: everything acknowledged, and its outbox resent after a restart."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from service.mqttutil import parse_broker_url
from simulator.stream import Outbox, stream_events

pytestmark = pytest.mark.mqtt
BROKER = "mqtt://127.0.0.1:1883"


def _subscribe(topic: str, client_id: str) -> tuple[mqtt.Client, list[bytes]]:
    got: list[bytes] = []
    ready = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *a: ready.set()
    client.on_message = lambda c, u, m: got.append(m.payload)
    client.connect(*parse_broker_url(BROKER))
    client.loop_start()
    assert ready.wait(10)
    return client, got


def _wait(pred, timeout_s: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not pred():
        time.sleep(0.02)
    return pred()


def test_every_message_is_acknowledged_and_received(uid, tmp_path):
    topic = f"test-{uid}/stream"
    sub, got = _subscribe(topic, f"sub-{uid}")
    try:
        messages = [(topic, f"m{i}".encode(), i * 0.001) for i in range(300)]
        report = stream_events(messages, BROKER, speed=10.0, outbox_dir=tmp_path, progress=False)
        assert (report.sent, report.acknowledged, report.pending) == (300, 300, 0)
        assert report.elapsed_s >= 0.299 / 10  # paced by speed
        assert _wait(lambda: len(got) == 300)
        assert sorted(got) == sorted(m for _, m, _ in messages)
    finally:
        sub.disconnect()
        sub.loop_stop()


def test_outbox_left_by_a_crashed_publisher_is_resent(uid, tmp_path):
    topic = f"test-{uid}/stream"
    crashed = Outbox(tmp_path)  # what a publisher killed before its PUBACKs leaves on disk
    crashed.add([(topic, b"left-1"), (topic, b"left-2")])
    crashed.close()
    sub, got = _subscribe(topic, f"sub-{uid}")
    try:
        report = stream_events(
            [(topic, b"new", 0.0)], BROKER, speed=0, outbox_dir=tmp_path, progress=False
        )
        assert (report.sent, report.resent, report.acknowledged) == (1, 2, 3)
        assert _wait(lambda: len(got) == 3)
        assert sorted(got) == [b"left-1", b"left-2", b"new"]
        assert Outbox(tmp_path).unacked() == []
    finally:
        sub.disconnect()
        sub.loop_stop()


def test_negative_speed_is_refused():
    with pytest.raises(ValueError, match="speed=-1"):
        stream_events([], BROKER, speed=-1)
