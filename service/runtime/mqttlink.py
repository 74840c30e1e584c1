"""The runtime's own MQTT session: retained state out, homeowner answers and HA status in.

Separate from the intake's session so a slow answer never delays event acks. Same reliability
settings as the intake (why each: :mod:`service.intake.mqtt`): stable client id,
``clean_start=False`` with a session expiry, QoS 1, ``manual_ack`` after the answer is
committed; the paho callback only queues. A will message marks the service offline for Home
Assistant when the process dies.

Every message is acknowledged once handled, even when its handler raised: an unacknowledged
message comes back after each reconnect and fails again, and the broker stops delivering once
its in-flight window (Mosquitto: 20) is full of them, so a few poison messages would silence
the channel. The handler records what it refuses (the answer handler keeps dead letters); the
link logs and counts the rest. Only a database that is unavailable (``OperationalError``) is
retried, with backoff, because the message itself is fine.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.exc import OperationalError

from service import metrics
from service.intake.messages import InboundMessage
from service.mqttconn import BrokerEndpoint, new_client

_LOGGER = logging.getLogger(__name__)


class MqttLink:
    """``handler(topic, payload)`` runs on a worker thread; the message is acked after it
    returns or raises (except while the database is unavailable: then it is retried)."""

    def __init__(
        self,
        broker_url: str,
        client_id: str,
        subscriptions: list[str],
        handler: Callable[[str, bytes], None],
        availability_topic: str,
        session_expiry_s: int = 7 * 24 * 3600,
    ) -> None:
        self.broker = BrokerEndpoint.from_url(broker_url)
        self.subscriptions = subscriptions
        self.handler = handler
        self.availability_topic = availability_topic
        self.session_expiry_s = session_expiry_s
        self.connected = threading.Event()
        self._queue: queue.Queue[InboundMessage] = queue.Queue()
        self._stop = threading.Event()
        self._generation = 0
        self._worker = threading.Thread(target=self._work, name="atlas-mqtt-link", daemon=True)
        self.client = new_client(self.broker, client_id, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_message = self._on_message
        self.client.will_set(availability_topic, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(1, 30)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            _LOGGER.warning(
                "%s refused the runtime connection: %s", self.broker.masked(), reason_code
            )
            return
        self._generation += 1
        for topic in self.subscriptions:
            client.subscribe(topic, qos=1)
        client.publish(self.availability_topic, "online", qos=1, retain=True)
        self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        try:
            self._queue.put(
                InboundMessage(
                    msg.topic, msg.payload, datetime.now(UTC), msg.mid, msg.qos, self._generation
                )
            )
        except Exception:  # never raise into paho's loop
            _LOGGER.exception("could not queue a runtime message")

    def _work(self) -> None:
        while not self._stop.is_set() or not self._queue.empty():
            try:
                msg = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            # a message of an earlier connection is redelivered anyway, and its packet id may
            # belong to another message now (service/intake/messages.py)
            if self._handle(msg) and msg.qos > 0 and msg.generation == self._generation:
                self.client.ack(msg.mid, msg.qos)

    def _handle(self, msg: InboundMessage) -> bool:
        """Run the handler; False only when stopping while the database is unavailable."""
        delay = 0.5
        while True:
            try:
                self.handler(msg.topic, msg.payload)
                return True
            except OperationalError as exc:
                _LOGGER.warning(
                    "database unavailable handling %s (%s); retrying in %.1f s",
                    msg.topic[:200],
                    exc,
                    delay,
                )
            except Exception:
                _LOGGER.exception("handling %s failed; acknowledged all the same", msg.topic[:200])
                metrics.MQTT_LINK_FAILURES.inc()
                return True
            if self._stop.wait(delay):
                return False  # unacknowledged: the broker redelivers it after the restart
            delay = min(delay * 2, 30.0)

    def publish_json(self, topic: str, payload: dict | None, retain: bool = True) -> None:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        self.client.publish(topic, body, qos=1, retain=retain)

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        self.client.connect_async(
            self.broker.host, self.broker.port, keepalive=30, clean_start=False, properties=props
        )
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
