"""The MQTT intake: a persistent QoS 1 session whose messages are acknowledged only after commit.

Why each setting (measured with mosquitto 2.0.11 and paho-mqtt 2.2; the figures are in
docs/operations.md, 'The intake's session'):

- ``clean_start=False`` + a session expiry: paho's default starts every new process clean and
  the broker throws away what it queued while the intake was down.
- ``manual_ack=True``: otherwise paho acknowledges when ``on_message`` returns, before the
  event is committed, and a crash in between loses it.
- The paho callback only wraps the message and queues it (an exception inside a callback would
  escape paho's network loop); a worker thread validates, commits a small batch, then acks.
- Events come at QoS 1 only. A QoS 0 message cannot be acknowledged after commit, and nothing
  bounds how many the broker forwards (the receive maximum counts QoS 1 and 2 only), so the
  callback drops it at once and counts it (``atlas_intake_refused_total{reason="qos0"}``).
- The queue is bounded (``queue_max``): when it is full the callback waits for room, paho's
  network thread stops reading, and the broker keeps what is not acknowledged.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from atlas.events import EVENT_TOPIC_FILTER
from service import metrics
from service.intake.messages import InboundMessage
from service.intake.pipeline import BatchOutcome, IngestPipeline
from service.mqttconn import BrokerEndpoint, new_client
from service.mqttutil import topic_prefix
from service.storage.deadletters import (
    DeadLetter,
    DeadLetterRetention,
    insert_dead_letters,
    purge_dead_letters,
)

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeConfig:
    #: login and TLS included (service/mqttconn.py); kept out of the repr for its password
    broker_url: str = field(default="mqtt://127.0.0.1:1883", repr=False)
    client_id: str = "atlas-intake"
    topic_filter: str = EVENT_TOPIC_FILTER
    session_expiry_s: int = 7 * 24 * 3600  # a week of downtime before the broker forgets us
    batch_size: int = 200
    batch_wait_s: float = 0.05
    idle_gap_s: float = 0.005  # a batch also ends when no message came for this long
    receive_maximum: int = 1000  # QoS 1 messages the broker may send before our acks
    queue_max: int = 1000  # messages received and not yet taken by the worker (back-pressure)
    keepalive_s: int = 30
    publish_errors: bool = True
    max_pair_delay_s: float = 5.0  # pairing yields to a draining backlog at most this long
    # A batch at least half full means messages arrive at >= batch_size / 2 per batch_wait_s
    # (2,000/s by default): a backlog draining, not live traffic. Pairing waits until no such
    # batch was taken for this long.
    drain_quiet_s: float = 0.25
    # False for intake-only workers (store and ack, no pairing): the fastest way to drain a
    # backlog. With True, several workers may pair the same home: per-home advisory locks
    # (service/storage/homelock.py) serialise them.
    pair: bool = True
    #: dead letters kept (a flood of bad payloads must not fill the disk), applied every
    #: ``purge_every_s`` seconds by the worker thread
    dead_letters: DeadLetterRetention = field(default_factory=DeadLetterRetention)
    purge_every_s: float = 60.0


@dataclass
class IntakeCounters:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    uses: int = 0
    batches: int = 0
    refused_qos0: int = 0  # dropped in the callback: published at QoS 0


class Batcher:
    """The intake's bounded queue of received messages and the batches its worker takes.

    The paho callback hands each message to :meth:`offer`, the worker commits what
    :meth:`take_batch` returns, and the pairing thread asks :meth:`draining` whether to yield
    to storage.

    WHY a class of its own: the batching and draining policy used to be private methods of
    :class:`MqttIntake`, reachable by a test only through its privates. It needs no broker and
    no database, so it is built and tested on its own (tests/service/test_intake_perf_paths.py).
    Thread-safe (a :class:`queue.Queue`); one thread takes the batches.
    """

    def __init__(self, config: IntakeConfig) -> None:
        """Sized and paced by ``config``: ``queue_max``, ``batch_size``, ``batch_wait_s``,
        ``idle_gap_s`` and ``drain_quiet_s`` (nothing else of it is used)."""
        self.config = config
        self._queue: queue.Queue[InboundMessage] = queue.Queue(maxsize=config.queue_max)
        self._last_busy_batch = float("-inf")  # monotonic time of the last half-full batch

    @property
    def capacity(self) -> int:
        """Messages the queue holds at most (``queue_max``; 0: unbounded)."""
        return self._queue.maxsize

    def empty(self) -> bool:
        return self._queue.empty()

    def offer(self, msg: InboundMessage, timeout: float | None = 0.0) -> bool:
        """Queue ``msg``, waiting up to ``timeout`` seconds for room (0: not at all; None: for
        ever); False if the queue stayed full."""
        try:
            if timeout == 0.0:
                self._queue.put_nowait(msg)
            else:
                self._queue.put(msg, timeout=timeout)
        except queue.Full:
            return False
        return True

    def take_batch(self, timeout: float = 0.2) -> list[InboundMessage]:
        """Up to ``batch_size`` messages: what is queued, then whatever arrives until
        ``batch_wait_s`` after the first or a gap of ``idle_gap_s`` (empty: nothing came
        within ``timeout``)."""
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.config.batch_wait_s
        get, get_nowait = self._queue.get, self._queue.get_nowait
        while len(batch) < self.config.batch_size:
            try:  # while a backlog drains the queue holds plenty: no clock, no timeout
                batch.append(get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(get(timeout=min(remaining, self.config.idle_gap_s)))
            except queue.Empty:
                break
        if 2 * len(batch) >= self.config.batch_size:  # see draining
            self._last_busy_batch = time.monotonic()
        return batch

    def draining(self) -> bool:
        """Whether a backlog is draining: more than a batch queued, or (when the worker keeps up
        with paho and the queue stays short while the broker still holds thousands) a half-full
        batch taken within the last ``drain_quiet_s``. Live traffic below 2,000 events/s (1,000
        homes make ~2/s) leaves neither."""
        if self._queue.qsize() > self.config.batch_size:
            return True
        return time.monotonic() - self._last_busy_batch < self.config.drain_quiet_s


class MqttIntake:
    """Run with :meth:`start` / :meth:`stop`, or :meth:`run` until a stop event is set."""

    def __init__(self, pipeline: IngestPipeline, config: IntakeConfig) -> None:
        self.pipeline = pipeline
        self.config = config
        self.counters = IntakeCounters()
        self.connected = threading.Event()
        self.batcher = Batcher(config)
        self._qos0_logged = float("-inf")  # monotonic time of the last QoS 0 warning
        self._stop = threading.Event()
        self._generation = 0
        self._next_purge = time.monotonic()  # of the dead letters
        self._errors_prefix = topic_prefix(config.topic_filter)
        self._worker = threading.Thread(target=self._work, name="atlas-intake-worker", daemon=True)
        # Pairing runs beside storage, not in its path: acks wait only for the commit, and a
        # burst of events re-pairs each home once instead of once per batch.
        self._dirty: set[str] = set()
        self._dirty_newest: datetime | None = None  # newest event time of the dirty homes
        self._dirty_cv = threading.Condition()
        #: Event time up to which every stored event's home has been handed to pairing (the
        #: runtime waits for a restart's backlog with it).
        self.paired_through: datetime | None = None
        self._pairing_done = threading.Event()
        self._pairing = threading.Thread(target=self._pair_loop, name="atlas-pairing", daemon=True)
        self.broker = BrokerEndpoint.from_url(config.broker_url)
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = new_client(self.broker, self.config.client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=30)  # exponential backoff
        client.max_queued_messages_set(0)
        return client

    # --- paho callbacks (network thread): hand over, never raise -------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            _LOGGER.warning("%s refused the connection: %s", self.broker.masked(), reason_code)
            return
        self._generation += 1
        _LOGGER.info(
            "connected to %s (session present: %s)", self.broker.masked(), flags.session_present
        )
        client.subscribe(self.config.topic_filter, qos=1)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            _LOGGER.warning("disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        try:
            if msg.qos == 0:
                self._refuse_qos0()
                return
            try:
                topic = msg.topic
            except UnicodeDecodeError:  # kept (and dead-lettered) rather than redelivered forever
                topic = bytes(msg._topic).decode("utf-8", "replace")
            self._hand_over(
                InboundMessage(
                    topic=topic,
                    payload=msg.payload,
                    received_at=datetime.now(UTC),
                    mid=msg.mid,
                    qos=msg.qos,
                    generation=self._generation,
                )
            )
        except Exception:  # never raise into paho's loop; unacked, it comes back on reconnect
            _LOGGER.exception("could not queue a message (mid %s)", getattr(msg, "mid", "?"))

    def _hand_over(self, msg: InboundMessage) -> None:
        """Queue ``msg``, waiting while the queue is full (back-pressure on the broker).

        Stopping drops it unacknowledged: the broker redelivers it to the next session.
        """
        if self.batcher.offer(msg):
            return
        metrics.INTAKE_QUEUE_FULL.inc()
        while not self._stop.is_set():
            if self.batcher.offer(msg, timeout=0.2):
                return

    def _refuse_qos0(self) -> None:
        """Count a QoS 0 message and drop it; warn at most once a minute (a flood would
        otherwise flood the log too)."""
        self.counters.refused_qos0 += 1
        metrics.INTAKE_REFUSED.labels("qos0").inc()
        now = time.monotonic()
        if now - self._qos0_logged >= 60.0:
            self._qos0_logged = now
            _LOGGER.warning(
                "dropping event messages published at QoS 0 (%d so far): publish events at "
                "QoS 1, they are acknowledged only once stored",
                self.counters.refused_qos0,
            )

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        # Acks wait for the commit, so the broker's in-flight window bounds throughput: with
        # its default (20) the intake idles while a batch commits. Ask for a larger window.
        props.ReceiveMaximum = self.config.receive_maximum
        self.client.connect_async(
            self.broker.host,
            self.broker.port,
            keepalive=self.config.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()  # reconnects by itself, with the backoff set above
        self._worker.start()
        if self.config.pair:
            self._pairing.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the queued batch, then disconnect (the session keeps anything not acked)."""
        self._stop.set()
        self._worker.join(timeout_s)
        with self._dirty_cv:
            self._dirty_cv.notify()
        if self._pairing.is_alive():
            self._pairing.join(timeout_s)
        self.client.disconnect()
        self.client.loop_stop()

    def run(self, stop: threading.Event) -> bool:
        """Run until ``stop`` is set; False if the worker thread died (a bug: exit non-zero so a
        supervisor restarts the process, and the broker redelivers what was not acked)."""
        self.start()
        try:
            while not stop.wait(1.0):
                if not self.worker_alive:
                    _LOGGER.error("the intake worker thread died; stopping")
                    return False
            return True
        finally:
            self.stop()

    # --- what operators and tests may read ------------------------------------------------------

    @property
    def queue_capacity(self) -> int:
        """Messages received and not yet taken by the worker that the queue holds at most."""
        return self.batcher.capacity

    @property
    def worker_alive(self) -> bool:
        """Whether the thread that commits and acks batches runs (False once stopped, or if it
        died: :meth:`run` then stops the process)."""
        return self._worker.is_alive()

    @property
    def pairing_alive(self) -> bool:
        """Whether the pairing thread runs (never for an intake-only worker, ``pair=False``)."""
        return self._pairing.is_alive()

    @property
    def homes_to_pair(self) -> frozenset[str]:
        """Homes with stored events that wait for the pairing thread."""
        with self._dirty_cv:
            return frozenset(self._dirty)

    # --- worker thread ---------------------------------------------------------------------------

    def _work(self) -> None:
        while not (self._stop.is_set() and self.batcher.empty()):
            self._purge_if_due()
            batch = self.batcher.take_batch()
            if not batch:
                continue
            try:
                outcome = self._commit(batch)
                if outcome is None:  # stopping while the database is down: the broker keeps them
                    return
                self._ack(batch)
                self._count(batch, outcome)
                committed = time.perf_counter()
                for msg in batch:
                    metrics.INTAKE_COMMIT_DELAY.observe(committed - msg.received_perf)
                self._publish_errors(outcome.dead)
            except Exception:  # unacked messages come back after the next reconnect
                _LOGGER.exception("intake batch of %d messages failed", len(batch))
                continue
            if outcome.homes and self.config.pair:
                with self._dirty_cv:
                    self._dirty |= outcome.homes
                    self._dirty_newest = _later(self._dirty_newest, outcome.newest_t)
                    self._dirty_cv.notify()

    def _purge_if_due(self) -> None:
        """Apply the dead-letter retention once per ``purge_every_s``; a failure waits for the
        next turn (nothing is lost by purging later)."""
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self.config.purge_every_s
        try:
            with self.pipeline.engine.begin() as conn:
                removed = purge_dead_letters(conn, self.config.dead_letters, datetime.now(UTC))
        except SQLAlchemyError as exc:
            _LOGGER.warning("could not purge dead letters (%s); trying again later", exc)
            return
        if removed:
            _LOGGER.info("purged %d dead letters beyond the retention", removed)

    def _commit(self, batch: list[InboundMessage]) -> BatchOutcome | None:
        """Commit ``batch``; retry while the database is unavailable, isolate a poison row.

        ``OperationalError`` (connection lost, SQLite busy) is transient: wait and retry, ack
        nothing meanwhile. Any other database error is about the data: commit one message at a
        time and dead-letter the one the database refuses.
        """
        delay = 0.5
        while True:
            try:
                return self.pipeline.process(batch)
            except OperationalError as exc:
                _LOGGER.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
            except SQLAlchemyError as exc:
                if len(batch) > 1:
                    return self._commit_one_by_one(batch)
                try:
                    return self._store_failure(batch[0], exc)
                except SQLAlchemyError as again:
                    _LOGGER.warning("cannot store a dead letter (%s); retrying", again)
            if self._stop.wait(delay):
                return None
            delay = min(delay * 2, 30.0)

    def _commit_one_by_one(self, batch: list[InboundMessage]) -> BatchOutcome | None:
        total = BatchOutcome()
        for msg in batch:
            one = self._commit([msg])
            if one is None:
                return None
            total.stored |= one.stored
            total.duplicates += one.duplicates
            total.dead += one.dead
            total.homes |= one.homes
        return total

    def _store_failure(self, msg: InboundMessage, exc: Exception) -> BatchOutcome:
        _LOGGER.error("storing a message from %s failed: %s", msg.topic[:200], exc)
        letter = DeadLetter(
            msg.topic,
            msg.payload,
            "storage_error",
            f"the database refused it: {type(exc).__name__}: {exc}"[:2000],
            None,
            msg.received_at,
        )
        with self.pipeline.engine.begin() as conn:
            insert_dead_letters(conn, [letter])
        return BatchOutcome(dead=[letter])

    def _ack(self, batch: list[InboundMessage]) -> None:
        generation = self._generation
        for msg in batch:
            if msg.qos > 0 and msg.generation == generation:
                self.client.ack(msg.mid, msg.qos)

    def _count(self, batch: list[InboundMessage], outcome: BatchOutcome) -> None:
        c = self.counters
        c.received += len(batch)
        c.stored += len(outcome.stored)
        c.duplicates += outcome.duplicates
        c.dead_letters += len(outcome.dead)
        c.batches += 1

    def _publish_errors(self, letters: list[DeadLetter]) -> None:
        if not self.config.publish_errors:
            return
        for d in letters:
            if d.home_id is None:
                continue
            body = {
                "reason": d.reason,
                "message": d.message,
                "topic": d.topic[:512],
                "payload_size": len(d.payload),
                "received_at": d.received_at.isoformat(),
            }
            topic = f"{self._errors_prefix}/homes/{d.home_id}/errors"
            self.client.publish(topic, json.dumps(body), qos=1)

    def _pair_loop(self) -> None:
        last = time.monotonic()
        pairer = self.pipeline.pairer
        while True:
            with self._dirty_cv:
                while not self._dirty and not self._stop.is_set():
                    due = pairer.due_homes()
                    if due:  # uses that settled by the wall clock: a quiet home's last use
                        self._dirty |= due
                        break
                    wait = pairer.next_due_s()
                    self._dirty_cv.wait(0.5 if wait is None else min(0.5, wait + 0.001))
            # Storage first: while a backlog drains, pairing (the costlier step, and one that can
            # always be redone from the database) waits, but never longer than max_pair_delay_s.
            while (
                self.batcher.draining()
                and not self._stop.is_set()
                and time.monotonic() - last < self.config.max_pair_delay_s
            ):
                time.sleep(0.01)
            last = time.monotonic()
            with self._dirty_cv:
                homes, self._dirty = self._dirty, set()
                newest, self._dirty_newest = self._dirty_newest, None
            if homes:
                try:
                    self.counters.uses += self.pipeline.pair(homes)
                except Exception:  # re-paired after the next batch of the home; events are safe
                    _LOGGER.exception("pairing failed for homes %s", sorted(homes))
                self.paired_through = _later(self.paired_through, newest)
            elif self._stop.is_set() and not self._worker.is_alive():
                return


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None else b if a is None else max(a, b)
