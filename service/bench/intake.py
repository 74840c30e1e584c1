"""Intake throughput: events/s from Mosquitto into SQLite vs a bare paho subscriber.

Both consumers drain the same backlog: N events (1.75 s windows at 1 kHz from the simulator,
spread over several homes) are queued at a private broker for a persistent session while the
consumer is offline, then the consumer connects and the time from its first to its last
message is measured. Draining a backlog isolates the consumer from the publisher's speed, which
on a 2-core machine would otherwise set both rates. The bare subscriber only counts messages;
the intake validates, commits batches to SQLite (WAL), acks and pairs. Goal: ratio >= 0.5.

Besides the rates, each consumer's process CPU time per message over the same interval is
reported, and its ratio (bare CPU per message / intake CPU per event): on a shared 2-core machine
the wall-clock rates move with whatever else runs, the CPU cost per message much less, and it
says how far the intake is from the bare subscriber's cost.

The bare subscriber and the intake alternate ``--repeat`` times (bare, intake, bare, intake...),
each draining its own copy of the backlog (all sessions are created first and the backlog is
published once), and the ratios are taken round by round: a burst of load from other jobs then
moves one round's pair, not every intake figure against every bare one. The reported figures
are the medians over the rounds; every round is listed under ``rounds``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
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
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of bare then intake; medians are reported"
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


def shared_topic(group: str) -> str:
    """The filter of a shared subscription: the broker hands each message to one member."""
    return f"$share/{group}/{TOPIC}"


def _intake_worker(
    port: int, client_id: str, topic: str, db_url: str, batch_size: int, pair: bool, ctl: dict
) -> None:
    """One intake process of a shared subscription (``multiprocessing`` target).

    Waits for ``go`` so every process starts together, publishes its received count, and when
    ``stop`` is set reports (time of its first message, CPU seconds up to its last batch).
    """
    engine = make_engine(db_url)
    config = IntakeConfig(
        broker_url=f"mqtt://127.0.0.1:{port}",
        client_id=client_id,
        topic_filter=topic,
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


def shared_intake_rate(
    port: int, ids: list[str], topic: str, n: int, db_url: str, batch_size: int
) -> Drain:
    """Events/s of one intake process per client id in ``ids``, draining the shared
    subscription ``topic`` together.

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
    procs = [
        ctx.Process(target=_intake_worker, args=(port, cid, topic, db_url, batch_size, i == 0, ctl))
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


@dataclass(frozen=True)
class Consumer:
    """One drain of the plan: who (``name``), in which round, with which sessions."""

    name: str
    round: int
    client_ids: list[str]
    topic: str


def _plan(names: list[str], repeat: int, workers: int) -> list[Consumer]:
    """Bare subscriber(s), then the intake, ``repeat`` times: alternating, so each round's pair
    of drains meets the same background load."""
    plan = []
    for r in range(repeat):
        for name in [*names, "intake"]:
            if name == "intake" and workers > 1:
                ids = [f"bench-shared-{r}-{i}" for i in range(workers)]
                plan.append(Consumer(name, r, ids, shared_topic(f"atlas-bench-{r}")))
            else:
                plan.append(Consumer(name, r, [f"bench-{r}-{name.replace('+', '-')}"], TOPIC))
    return plan


def _fresh_db(url: str, specs: list[dict]) -> None:
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        for spec in specs:
            upsert_home(conn, parse_home_spec(spec))
    engine.dispose()


def _distinct_events(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(select(func.count(func.distinct(events.c.event_id)))).scalar_one()
    engine.dispose()
    return stored


def _drain(port: int, c: Consumer, n: int, db_url: str, args: argparse.Namespace) -> Drain:
    if c.name in BARE_WORK:
        return bare_rate(port, c.client_ids[0], n, c.name)
    if len(c.client_ids) > 1:
        return shared_intake_rate(port, c.client_ids, c.topic, n, db_url, args.batch_size)
    return intake_rate(port, c.client_ids[0], n, db_url, args.batch_size)


def _median(values: list[float], digits: int) -> float:
    return round(statistics.median(values), digits)


def run(args: argparse.Namespace) -> int:
    specs, messages = make_backlog(args.events, args.seed)
    n = len(messages)
    names = ["bare", "bare+json", "bare+decode"] if args.wall else ["bare"]
    plan = _plan(names, args.repeat, args.workers)
    load_before = os.getloadavg()
    drains: dict[tuple[str, int], Drain] = {}
    with tempfile.TemporaryDirectory(prefix="atlas-bench-") as tmp, PrivateBroker(Path(tmp)) as b:
        for c in plan:  # every consumer's backlog is queued by one publish
            for cid in c.client_ids:
                _create_session(b.port, cid, c.topic)
        report = stream_events(messages, b.url, speed=0, progress=False)
        if report.acknowledged != n:
            raise RuntimeError(f"bench: only {report.acknowledged}/{n} publishes acknowledged")
        for c in plan:
            db_url = f"sqlite:///{tmp}/bench-{c.round}.db"
            if c.name == "intake":
                _fresh_db(db_url, specs)
            drains[c.name, c.round] = _drain(b.port, c, n, db_url, args)
            for cid in c.client_ids:  # the broker can forget this backlog copy now
                _drop_session(b.port, cid)
            if c.name == "intake" and (stored := _distinct_events(db_url)) != n:
                raise RuntimeError(f"bench: the database holds {stored}/{n} distinct events")
    rounds = []
    for r in range(args.repeat):
        bare, intake = drains["bare", r], drains["intake", r]
        row = {
            "bare_msgs_per_s": round(bare.rate, 1),
            "intake_events_per_s": round(intake.rate, 1),
            "ratio": round(intake.rate / bare.rate, 3),
            "bare_cpu_us": round(bare.cpu_us, 1),
            "intake_cpu_us": round(intake.cpu_us, 1),
            "cpu_ratio": round(bare.cpu_us / intake.cpu_us, 3),
        }
        for name in names[1:]:
            row[f"{name.replace('+', '_')}_ratio"] = round(drains[name, r].rate / bare.rate, 3)
        rounds.append(row)

    def med(key: str, digits: int = 3) -> float:
        return _median([row[key] for row in rounds], digits)

    result = {
        "events": n,
        "window": "1750 samples at 1000 Hz (0.25 s + 1.5 s)",
        "bare_subscriber_msgs_per_s": med("bare_msgs_per_s", 1),
        "intake_sqlite_events_per_s": med("intake_events_per_s", 1),
        "ratio": med("ratio"),
        "bare_cpu_us_per_msg": med("bare_cpu_us", 1),
        "intake_cpu_us_per_event": med("intake_cpu_us", 1),
        "cpu_ratio": med("cpu_ratio"),
        "batch_size": args.batch_size,
        "intake_processes": args.workers,
        "repeat": args.repeat,
        "load_avg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    for name in names[1:]:
        key = name.replace("+", "_")
        result[f"{key}_msgs_per_s"] = _median([drains[name, r].rate for r in range(args.repeat)], 1)
        result[f"{key}_ratio"] = med(f"{key}_ratio")
    result["rounds"] = rounds
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), "utf-8")
    return 0
