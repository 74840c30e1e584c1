"""The runtime's own MQTT session: retained state out, homeowner answers and HA status in.

Separate from the intake's session so a slow answer never delays event acks. Same reliability
settings as the intake (FACTS.md): stable client id, ``clean_start=False`` with a session
expiry, QoS 1, ``manual_ack`` after the answer is committed; the paho callback only queues.
A will message marks the service offline for Home Assistant when the process dies.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from service.mqttutil import parse_broker_url

_LOGGER = logging.getLogger(__name__)


class MqttLink:
    """``handler(topic, payload)`` runs on a worker thread; the message is acked after it."""

    def __init__(
        self,
        broker_url: str,
        client_id: str,
        subscriptions: list[str],
        handler: Callable[[str, bytes], None],
        availability_topic: str,
        session_expiry_s: int = 7 * 24 * 3600,
    ) -> None:
        self.broker_url = broker_url
        self.subscriptions = subscriptions
        self.handler = handler
        self.availability_topic = availability_topic
        self.session_expiry_s = session_expiry_s
        self.connected = threading.Event()
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="atlas-mqtt-link", daemon=True)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_message = self._on_message
        self.client.will_set(availability_topic, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(1, 30)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            _LOGGER.warning("broker refused the runtime connection: %s", reason_code)
            return
        for topic in self.subscriptions:
            client.subscribe(topic, qos=1)
        client.publish(self.availability_topic, "online", qos=1, retain=True)
        self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        try:
            self._queue.put((msg.topic, msg.payload, msg.mid, msg.qos))
        except Exception:  # never raise into paho's loop
            _LOGGER.exception("could not queue a runtime message")

    def _work(self) -> None:
        while not self._stop.is_set() or not self._queue.empty():
            try:
                topic, payload, mid, qos = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self.handler(topic, payload)
            except Exception:  # not acked: the broker redelivers after a reconnect
                _LOGGER.exception("handling %s failed", topic[:200])
                continue
            if qos > 0:
                self.client.ack(mid, qos)

    def publish_json(self, topic: str, payload: dict | None, retain: bool = True) -> None:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        self.client.publish(topic, body, qos=1, retain=retain)

    def start(self) -> None:
        host, port = parse_broker_url(self.broker_url)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        self.client.connect_async(host, port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        self._worker.join(10)
        if self.connected.is_set():
            self.client.publish(
                self.availability_topic, "offline", qos=1, retain=True
            ).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
