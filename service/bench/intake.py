"""Intake throughput: events/s from Mosquitto into SQLite vs a bare paho subscriber (issue 3).

Both consumers drain the same backlog: N events (1.75 s windows at 1 kHz from the simulator,
spread over several homes) are queued at a private broker for a persistent session while the
consumer is offline, then the consumer connects and the time from its first to its last
message is measured. Draining a backlog isolates the consumer from the publisher's speed, which
on a 2-core machine would otherwise set both rates. The bare subscriber only counts messages;
the intake validates, commits batches to SQLite (WAL), acks and pairs. Goal: ratio >= 0.5.

Besides the rates, each consumer's process CPU time per message over the same interval is
reported: on a shared 2-core machine the wall-clock rates move with whatever else runs, the CPU
cost per message much less, and it says how far the intake is from the bare subscriber's cost.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select

from atlas.events import EVENT_TOPIC, decode_event_counts
from atlas.homespec import parse_home_spec
from service.broker import PrivateBroker
from service.intake.mqtt import IntakeConfig, MqttIntake
from service.intake.pipeline import IngestPipeline
from service.storage.engine import make_engine, upgrade
from service.storage.homes import upsert_home
from service.storage.schema import events
from simulator.generate import generate_run
from simulator.presets import load_preset
from simulator.stream import stream_events

TOPIC = "bench/v1/homes/+/sensors/+/events"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=5000, help="events per consumer")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=IntakeConfig.batch_size)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="intake processes sharing one subscription ($share/...) and the SQLite file",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument(
        "--wall",
        action="store_true",
        help="also drain with bare subscribers that only json.loads / only decode each payload "
        "in the callback: the ceiling of any single-process intake on this machine",
    )


def make_backlog(n_events: int, seed: int) -> tuple[list[dict], list[tuple[str, bytes, float]]]:
    """``n_events`` simulator payloads over as many two_bath_house copies as needed."""
    base = load_preset("two_bath_house")
    sim = generate_run(base, days=7, seed=seed)
    specs, messages = [], []
    copy = 0
    while len(messages) < n_events:
        home_id = f"bench-{copy}"
        spec = base.to_dict() | {"home_id": home_id}
        specs.append(spec)
        for s in sim[: n_events - len(messages)]:
            payload = s.payload() | {"home_id": home_id, "event_id": f"{s.event.event_id}-{copy}"}
            topic = "bench/v1/" + EVENT_TOPIC.removeprefix("atlas/v1/").format(
                home_id=home_id, sensor_id=s.event.sensor_id
            )
            messages.append((topic, json.dumps(payload).encode(), 0.0))
        copy += 1
    return specs, messages


def _session_props(expiry_s: int = 3600) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry_s
    return props


def _create_session(url_port: int, client_id: str, topic: str = TOPIC) -> None:
    """Connect once and subscribe, so the broker queues the backlog for ``client_id``.

    ``clean_start=False`` although the session is new: mosquitto 2.0.11 does not keep a session
    begun with ``clean_start=True`` across its own restart (measured: "session present" False
    after a SIGTERM restart; True with ``clean_start=False``), and the crash test restarts it.
    """
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_subscribe = lambda *a: done.set()
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", url_port, clean_start=False, properties=_session_props())
    client.loop_start()
    if not done.wait(10):
        raise TimeoutError("bench: subscription was not acknowledged")
    client.disconnect()
    client.loop_stop()


def _drop_session(port: int, client_id: str) -> None:
    """End ``client_id``'s session: a clean start with no expiry ends it at the disconnect."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port, clean_start=True, properties=_session_props(0))
    client.loop_start()
    client.disconnect()
    client.loop_stop()


@dataclass(frozen=True)
class Drain:
    """One consumer draining the backlog: messages/s and process CPU microseconds per message."""

    rate: float
    cpu_us: float


#: What a "bare" subscriber does with each payload: nothing (the reference), or the unavoidable
#: first steps of any intake, to show how much of the budget they alone take.
BARE_WORK: dict[str, Callable[[bytes], object]] = {
    "bare": lambda payload: None,
    "bare+json": json.loads,
    "bare+decode": decode_event_counts,
}


def bare_rate(port: int, client_id: str, n: int, work: str = "bare") -> Drain:
    """Messages/s a paho subscriber receives while draining the backlog, doing ``work`` on each
    payload in its callback (only counting, by default)."""
    handle = BARE_WORK[work]
    received = [0]
    first = [0.0]
    cpu0 = [0.0]
    done = threading.Event()

    def on_message(client, userdata, msg) -> None:
        if received[0] == 0:
            first[0] = time.perf_counter()
            cpu0[0] = time.process_time()
        handle(msg.payload)
        received[0] += 1
        if received[0] >= n:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.connect("127.0.0.1", port, clean_start=False, properties=_session_props())
    client.loop_start()
    if not done.wait(300):
        raise TimeoutError(f"bare subscriber got {received[0]}/{n}")
    elapsed = time.perf_counter() - first[0]
    cpu = time.process_time() - cpu0[0]
    client.disconnect()
    client.loop_stop()
    return Drain((n - 1) / elapsed, cpu / (n - 1) * 1e6)


def intake_rate(port: int, client_id: str, n: int, db_url: str, batch_size: int) -> Drain:
    """Events/s the intake validates, stores (SQLite) and acks while draining the backlog."""
    engine = make_engine(db_url)
    config = IntakeConfig(
        broker_url=f"mqtt://127.0.0.1:{port}",
        client_id=client_id,
        topic_filter=TOPIC,
        batch_size=batch_size,
        publish_errors=False,
    )
    intake = MqttIntake(IngestPipeline(engine), config)
    first = [0.0]
    cpu0 = [0.0]
    original = intake._on_message

    def timed(client, userdata, msg) -> None:
        if not first[0]:
            first[0] = time.perf_counter()
            cpu0[0] = time.process_time()
        original(client, userdata, msg)

    intake.client.on_message = timed
    intake.start()
    try:
        deadline = time.monotonic() + 300
        while intake.counters.received < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"intake stored {intake.counters.stored}/{n}")
            time.sleep(0.005)
        elapsed = time.perf_counter() - first[0]
        cpu = time.process_time() - cpu0[0]
        if intake.counters.stored != n:
            raise RuntimeError(f"bench: stored {intake.counters.stored}/{n}: {intake.counters}")
    finally:
        intake.stop()
        engine.dispose()
    return Drain((n - 1) / elapsed, cpu / (n - 1) * 1e6)


SHARED_TOPIC = f"$share/atlas-bench/{TOPIC}"


def _intake_worker(
    port: int, client_id: str, db_url: str, batch_size: int, pair: bool, ctl: dict
) -> None:
    """One intake process of a shared subscription (``multiprocessing`` target).

    Waits for ``go`` so every process starts together, publishes its received count, and when
    ``stop`` is set reports (time of its first message, CPU seconds up to its last batch).
    """
    engine = make_engine(db_url)
    config = IntakeConfig(
        broker_url=f"mqtt://127.0.0.1:{port}",
        client_id=client_id,
        topic_filter=SHARED_TOPIC,
        batch_size=batch_size,
        publish_errors=False,
        pair=pair,
    )
    intake = MqttIntake(IngestPipeline(engine), config)
    first = [0.0, 0.0]
    original = intake._on_message

    def timed(client, userdata, msg) -> None:
        if not first[0]:
            first[0], first[1] = time.perf_counter(), time.process_time()
        original(client, userdata, msg)

    intake.client.on_message = timed
    ctl["ready"].release()
    ctl["go"].wait()
    intake.start()
    seen, cpu_at_last = 0, 0.0
    try:
        while not ctl["stop"].wait(0.005):
            if intake.counters.received != seen:
                seen, cpu_at_last = intake.counters.received, time.process_time()
                ctl["received"].put((client_id, seen))
    finally:
        intake.stop()
        engine.dispose()
    ctl["results"].put((client_id, first[0], cpu_at_last - first[1], intake.counters.stored))


def shared_intake_rate(port: int, n: int, db_url: str, batch_size: int, workers: int) -> Drain:
    """Events/s of ``workers`` intake processes draining one shared subscription together.

    Only the first process pairs (as one leader would in a deployment): SQLite has one writer,
    and two processes re-pairing the same home would race for its uses.
    """
    ctx = multiprocessing.get_context("spawn")
    ctl = {
        "ready": ctx.Semaphore(0),
        "go": ctx.Event(),
        "stop": ctx.Event(),
        "received": ctx.Queue(),
        "results": ctx.Queue(),
    }
    ids = [f"bench-shared-{i}" for i in range(workers)]
    procs = [
        ctx.Process(target=_intake_worker, args=(port, cid, db_url, batch_size, i == 0, ctl))
        for i, cid in enumerate(ids)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        if not ctl["ready"].acquire(timeout=60):
            raise TimeoutError("bench: an intake worker did not start")
    ctl["go"].set()
    counts = dict.fromkeys(ids, 0)
    deadline = time.monotonic() + 300
    while sum(counts.values()) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"shared intake received {sum(counts.values())}/{n}")
        client_id, seen = ctl["received"].get(timeout=300)
        counts[client_id] = seen
    end = time.perf_counter()
    ctl["stop"].set()
    results = [ctl["results"].get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
    stored = sum(r[3] for r in results)
    if stored != n:
        raise RuntimeError(f"bench: shared intake stored {stored}/{n}: {results}")
    start = min(r[1] for r in results if r[1])
    cpu = sum(r[2] for r in results)
    return Drain((n - 1) / (end - start), cpu / (n - 1) * 1e6)


def run(args: argparse.Namespace) -> int:
    specs, messages = make_backlog(args.events, args.seed)
    n = len(messages)
    with tempfile.TemporaryDirectory(prefix="atlas-bench-") as tmp, PrivateBroker(Path(tmp)) as b:
        db_url = f"sqlite:///{tmp}/bench.db"
        engine = make_engine(db_url)
        upgrade(engine)
        with engine.begin() as conn:
            for spec in specs:
                upsert_home(conn, parse_home_spec(spec))
        engine.dispose()
        rates = {}
        names = ["bare", "bare+json", "bare+decode"] if args.wall else ["bare"]
        for name in [*names, "intake"]:
            client_id = f"bench-{name.replace('+', '-')}"
            shared = name == "intake" and args.workers > 1
            ids = [f"bench-shared-{i}" for i in range(args.workers)] if shared else [client_id]
            for cid in ids:
                _create_session(b.port, cid, SHARED_TOPIC if shared else TOPIC)
            report = stream_events(messages, b.url, speed=0, progress=False)
            if report.acknowledged != n:
                raise RuntimeError(f"bench: only {report.acknowledged}/{n} publishes acknowledged")
            if name in BARE_WORK:
                rates[name] = bare_rate(b.port, client_id, n, name)
            elif shared:
                rates[name] = shared_intake_rate(b.port, n, db_url, args.batch_size, args.workers)
            else:
                rates[name] = intake_rate(b.port, client_id, n, db_url, args.batch_size)
            for cid in ids:  # the next consumer's backlog must not queue here too
                _drop_session(b.port, cid)
        engine = make_engine(db_url)
        with engine.connect() as conn:
            distinct = conn.execute(select(func.count(func.distinct(events.c.event_id))))
            stored = distinct.scalar_one()
        engine.dispose()
        if stored != n:
            raise RuntimeError(f"bench: the database holds {stored}/{n} distinct events")
    result = {
        "events": n,
        "window": "1750 samples at 1000 Hz (0.25 s + 1.5 s)",
        "bare_subscriber_msgs_per_s": round(rates["bare"].rate, 1),
        "intake_sqlite_events_per_s": round(rates["intake"].rate, 1),
        "ratio": round(rates["intake"].rate / rates["bare"].rate, 3),
        "bare_cpu_us_per_msg": round(rates["bare"].cpu_us, 1),
        "intake_cpu_us_per_event": round(rates["intake"].cpu_us, 1),
        "batch_size": args.batch_size,
        "intake_processes": args.workers,
    }
    for name in names[1:]:
        key = name.replace("+", "_")
        result[f"{key}_msgs_per_s"] = round(rates[name].rate, 1)
        result[f"{key}_ratio"] = round(rates[name].rate / rates["bare"].rate, 3)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), "utf-8")
    return 0
