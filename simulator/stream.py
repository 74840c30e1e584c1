"""Play a gateway: publish events at QoS 1, each kept in an on-disk outbox until its PUBACK.

Why an outbox (measured with Mosquitto 2.0.11; docs/operations.md, 'The gateways: outbox'): a
PUBACK only means the broker has the message in memory; the broker persists by periodic snapshot,
and a publisher that dies loses whatever paho still held. So every message is written to a
small SQLite outbox *before* it is published and
deleted when its PUBACK arrives; a restarted publisher resends what is left. With
``replay_window_s`` > 0 it also keeps acknowledged messages that long and republishes them after
a reconnect, covering a broker that crashed before its next snapshot. Duplicates are harmless:
the service deduplicates by event_id. A PUBACK that refuses the message (an MQTT 5 reason code
such as "Not authorized": the gateway's login may not publish on that topic) acknowledges
nothing: the message stays in the outbox and the report counts it as refused.

The broker URL carries the gateway's login and TLS (service/mqttconn.py).
"""

from __future__ import annotations

import collections
import math
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from service.mqttconn import BrokerEndpoint, new_client

CHUNK = 200  # messages written to the outbox per transaction when they are due together
ACK_WAIT_S = 60.0  # give up waiting for the last PUBACKs after this long without progress


@dataclass(frozen=True)
class StreamReport:
    sent: int  # messages of this run published (first attempt)
    acknowledged: int  # PUBACKs received (first attempts and resends)
    resent: int  # outbox messages of an earlier run, or replayed after a broker restart
    elapsed_s: float
    pending: int = 0  # still in the outbox, not acknowledged, when the run ended
    #: PUBACKs that refused the message (MQTT 5 reason code, e.g. "Not authorized": the login
    #: may not publish on that topic); such messages stay in the outbox, counted in ``pending``
    refused: int = 0


class Outbox:
    """Messages awaiting PUBACK, in SQLite (``outbox_dir/outbox.sqlite``) or in memory."""

    def __init__(self, outbox_dir: Path | None) -> None:
        if outbox_dir is not None:
            Path(outbox_dir).mkdir(parents=True, exist_ok=True)
        path = ":memory:" if outbox_dir is None else str(Path(outbox_dir) / "outbox.sqlite")
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # survives a process crash
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
            "payload BLOB NOT NULL, acked_at REAL)"
        )
        self.db.commit()

    def add(self, items: list[tuple[str, bytes]]) -> list[int]:
        with self.db:
            return [
                self.db.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", item).lastrowid
                for item in items
            ]

    def unacked(self) -> list[tuple[int, str, bytes]]:
        return self.db.execute(
            "SELECT seq, topic, payload FROM outbox WHERE acked_at IS NULL ORDER BY seq"
        ).fetchall()

    def acked_since(self, t: float) -> list[tuple[int, str, bytes]]:
        return self.db.execute(
            "SELECT seq, topic, payload FROM outbox WHERE acked_at >= ? ORDER BY seq", (t,)
        ).fetchall()

    def mark_acked(self, seqs: list[int], keep_s: float) -> None:
        now = time.time()
        with self.db:
            if keep_s > 0:
                self.db.executemany(
                    "UPDATE outbox SET acked_at = ? WHERE seq = ?", [(now, s) for s in seqs]
                )
                self.db.execute("DELETE FROM outbox WHERE acked_at < ?", (now - keep_s,))
            else:
                self.db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def close(self) -> None:
        self.db.close()


class _Publisher:
    """paho client + the bookkeeping between publish() calls and their PUBACKs."""

    def __init__(self, broker: BrokerEndpoint, client_id: str) -> None:
        self.client = new_client(broker, client_id)
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_publish = self._on_publish
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.acked_mids: collections.deque[int] = collections.deque()
        self.refused_mids: collections.deque[int] = collections.deque()
        self.in_flight: dict[int, int] = {}  # mid -> outbox seq
        self.connected = threading.Event()
        #: why the broker refused the first connection (a wrong login, a topic not allowed)
        self.refused: str | None = None
        self.answered = threading.Event()  # the broker accepted or refused the first CONNECT
        self.reconnects: collections.deque[float] = collections.deque()  # disconnect times
        self._connects = 0
        self._disconnected_at = 0.0
        self.client.connect_async(broker.host, broker.port, keepalive=30)
        self.client.loop_start()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        (self.refused_mids if reason_code.is_failure else self.acked_mids).append(mid)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            if self._connects == 0:
                self.refused = str(reason_code)
                self.answered.set()
            return
        self.answered.set()
        self._connects += 1
        if self._connects > 1:
            self.reconnects.append(self._disconnected_at)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        self._disconnected_at = time.time()

    def publish(self, seq: int, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        self.in_flight[info.mid] = seq

    def drain_acks(self) -> tuple[list[int], list[int]]:
        """Outbox seqs whose PUBACK arrived since the last call: (accepted, refused)."""
        return self._drain(self.acked_mids), self._drain(self.refused_mids)

    def _drain(self, mids: collections.deque[int]) -> list[int]:
        seqs = []
        while mids:
            seq = self.in_flight.pop(mids.popleft(), None)
            if seq is not None:
                seqs.append(seq)
        return seqs

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stream_events(
    messages: Iterable[tuple[str, bytes, float]],
    broker_url: str,
    *,
    speed: float = 1.0,
    outbox_dir: Path | None = None,
    progress: bool = True,
    client_id: str | None = None,
    replay_window_s: float = 0.0,
    connect_timeout_s: float = 30.0,
) -> StreamReport:
    """Publish ``(topic, payload, seconds since start)`` at QoS 1; see the module docstring.

    ``speed`` 1 is real time, 60 a minute per second, 0 or ``inf`` as fast as possible.
    ``client_id`` defaults to a fresh random id (two publishers with one id kick each other off).
    """
    if speed < 0 or math.isnan(speed):
        raise ValueError(f"speed={speed} should be >= 0 (0 or inf: as fast as possible).")
    fast = speed == 0 or math.isinf(speed)
    items = list(messages)
    broker = BrokerEndpoint.from_url(broker_url)
    outbox = Outbox(outbox_dir)
    pub = _Publisher(broker, client_id or f"atlas-sim-{uuid.uuid4().hex[:12]}")
    started = time.monotonic()
    sent = acknowledged = resent = refused = 0
    bar = tqdm(total=len(items), file=sys.stderr, disable=not progress, unit="ev", desc="publish")

    def settle() -> None:
        nonlocal acknowledged, resent, refused
        seqs, refusals = pub.drain_acks()
        refused += len(refusals)
        if seqs:
            outbox.mark_acked(seqs, replay_window_s)
            acknowledged += len(seqs)
        while pub.reconnects and replay_window_s > 0:
            since = pub.reconnects.popleft() - replay_window_s
            for seq, topic, payload in outbox.acked_since(since):
                pub.publish(seq, topic, payload)
                resent += 1
        pub.reconnects.clear()

    try:
        pub.answered.wait(connect_timeout_s)
        if pub.refused is not None:
            raise ConnectionError(f"{broker.masked()} refused the connection: {pub.refused}")
        if not pub.connected.wait(0):
            raise ConnectionError(
                f"no connection to {broker.masked()} within {connect_timeout_s} s"
            )
        for seq, topic, payload in outbox.unacked():  # left over from an earlier run
            pub.publish(seq, topic, payload)
            resent += 1
        i = 0
        while i < len(items):
            due = time.monotonic() - started
            if not fast and items[i][2] / speed > due:
                settle()
                time.sleep(min(items[i][2] / speed - due, 0.05))
                continue
            j = i + 1
            while j < len(items) and j - i < CHUNK and (fast or items[j][2] / speed <= due):
                j += 1
            chunk = items[i:j]
            seqs = outbox.add([(topic, payload) for topic, payload, _ in chunk])
            for seq, (topic, payload, _) in zip(seqs, chunk, strict=True):
                pub.publish(seq, topic, payload)
            sent += len(chunk)
            bar.update(len(chunk))
            i = j
            settle()
        last_progress, last_answered = time.monotonic(), acknowledged + refused
        while pub.in_flight and time.monotonic() - last_progress < ACK_WAIT_S:
            time.sleep(0.02)
            settle()
            if acknowledged + refused != last_answered:
                last_progress, last_answered = time.monotonic(), acknowledged + refused
        settle()
        return StreamReport(
            sent,
            acknowledged,
            resent,
            time.monotonic() - started,
            pending=len(outbox.unacked()),
            refused=refused,
        )
    finally:
        bar.close()
        pub.close()
        outbox.close()
