"""MQTT helpers for the service tests: a running in-process intake and a QoS 1 publisher."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from service.intake.mqtt import IntakeConfig, MqttIntake
from service.intake.pipeline import IngestPipeline
from service.mqttutil import parse_broker_url


@contextlib.contextmanager
def running_intake(
    engine: Engine, broker_url: str, prefix: str, client_id: str, **config_overrides
) -> Iterator[MqttIntake]:
    config = IntakeConfig(
        broker_url=broker_url,
        client_id=client_id,
        topic_filter=f"{prefix}/homes/+/sensors/+/events",
        **config_overrides,
    )
    intake = MqttIntake(IngestPipeline(engine), config)
    intake.start()
    try:
        assert intake.connected.wait(10), f"intake did not connect to {broker_url}"
        time.sleep(0.2)  # the SUBACK
        yield intake
    finally:
        intake.stop()


class Collector:
    """Subscribes to ``topic`` and keeps what arrives (e.g. the errors topic)."""

    def __init__(self, broker_url: str, topic: str, client_id: str) -> None:
        self.messages: list[bytes] = []
        ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = lambda c, u, m: self.messages.append(m.payload)
        self.client.connect(*parse_broker_url(broker_url))
        self.client.loop_start()
        assert ready.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_all(
    broker_url: str, messages: list[tuple[str, bytes]], client_id: str, qos: int = 1
) -> None:
    """Publish at ``qos`` (1: and wait for every PUBACK)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(*parse_broker_url(broker_url))
    client.loop_start()
    try:
        infos = [client.publish(topic, body, qos=qos) for topic, body in messages]
        for info in infos:
            info.wait_for_publish(60)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()
