"""``atlas demo``: a simulated home streamed through a real broker into the intake, end to end.

Temporary until the full service exists (issue 6): it shows the intake path working from a
fresh install in about a minute: a private Mosquitto with the data-keeping config (or
``--broker``), SQLite in a temporary folder, a ``two_bath_house`` preset home, a few simulated
days published at QoS 1 through the outbox publisher, and a summary.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import Engine, select

from service.broker import PrivateBroker
from service.intake.mqtt import IntakeConfig, MqttIntake
from service.intake.pipeline import IngestPipeline
from service.storage.engine import make_engine, upgrade
from service.storage.homes import upsert_home
from service.storage.schema import use_events
from service.storage.stats import db_stats
from simulator.generate import SimEvent, generate_run
from simulator.presets import load_preset
from simulator.stream import stream_events


def pairing_accuracy(engine: Engine, sim: list[SimEvent]) -> tuple[int, int]:
    """(simulated uses stored with exactly their events, simulated uses): truth is ``use_id``."""
    truth: dict[str, set[str]] = defaultdict(set)
    for s in sim:
        truth[s.truth["use_id"]].add(s.event.event_id)
    stored: dict[str, set[str]] = defaultdict(set)
    with engine.connect() as conn:
        for use_id, event_id in conn.execute(select(use_events.c.use_id, use_events.c.event_id)):
            stored[use_id].add(event_id)
    found = {frozenset(ids) for ids in stored.values()}
    return sum(frozenset(ids) in found for ids in truth.values()), len(truth)


def wait_for(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()


def run_demo(
    *,
    days: int = 28,
    stream_s: float = 30.0,
    seed: int = 1,
    preset: str = "two_bath_house",
    broker_url: str | None = None,
    workdir: Path | None = None,
    progress: bool = True,
    out: Callable[[str], None] = print,
) -> dict:
    """Run the demo and return its summary (also printed through ``out``)."""
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atlas-demo-")))
        if broker_url is None:
            broker = stack.enter_context(PrivateBroker(workdir))
            broker_url = broker.url
            out(f"started a private mosquitto at {broker_url} (config {workdir}/mosquitto.conf)")
        engine = make_engine(f"sqlite:///{workdir}/atlas.db")
        upgrade(engine)
        spec = load_preset(preset)
        with engine.begin() as conn:
            upsert_home(conn, spec)
        out(f"registered home {spec.home_id!r} ({preset}); database {workdir}/atlas.db")
        sim = generate_run(spec, days=days, seed=seed)
        out(f"simulated {days} days: {len(sim)} events")
        t0 = sim[0].event.t
        messages = [
            (s.event.topic(), json.dumps(s.payload()).encode(), (s.event.t - t0).total_seconds())
            for s in sim
        ]
        pipeline = IngestPipeline(engine)
        intake = MqttIntake(
            pipeline,
            IntakeConfig(broker_url=broker_url, client_id=f"atlas-demo-{uuid.uuid4().hex[:8]}"),
        )
        intake.start()
        try:
            if not intake.connected.wait(15):
                raise ConnectionError(f"the intake could not connect to {broker_url}")
            # Accelerated time: the whole run plays in about ``stream_s`` seconds (0: at once).
            span = messages[-1][2] or 1.0
            speed = span / stream_s if stream_s > 0 else 0.0
            out(
                f"streaming at {speed:,.0f}x real time ({span / 86400:.1f} days in ~{stream_s:g} s)"
            )
            report = stream_events(
                messages, broker_url, speed=speed, outbox_dir=workdir / "outbox", progress=progress
            )
            wait_for(lambda: intake.counters.received >= report.acknowledged, timeout_s=60)
        finally:
            intake.stop()
        pipeline.pair({spec.home_id}, final=True)  # end of the demo's data: close what runs
        with engine.connect() as conn:
            stats = db_stats(conn)
        correct, total = pairing_accuracy(engine, sim)
        engine.dispose()
    summary = {
        "events_simulated": len(sim),
        "published": report.sent,
        "acknowledged": report.acknowledged,
        "stored": stats["events"],
        "distinct_event_ids": stats["distinct_event_ids"],
        "uses": stats["uses"],
        "uses_by_status": stats["uses_by_status"],
        "simulated_uses_paired_exactly": f"{correct}/{total}",
        "dead_letters": stats["dead_letters"],
        "stream_s": round(report.elapsed_s, 2),
    }
    width = max(len(k) for k in summary)
    out("\nsummary")
    for key, value in summary.items():
        out(f"  {key:<{width}}  {value}")
    return summary
