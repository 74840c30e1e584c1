"""No-loss crash test: stream events while the intake is SIGKILLed and the broker restarted.

A private Mosquitto with the deployment's data-keeping settings, an ``atlas intake`` subprocess
on SQLite, and the outbox publisher streaming N events paced over ``--duration`` seconds. At
random points (seeded) the intake is SIGKILLed and restarted ``--kills`` times and the broker
restarted ``--broker-restarts`` times (SIGTERM, or SIGKILL with ``--broker-kill``). Afterwards
every event_id must be stored exactly once. Exit status 0 only if none is missing.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import select

from atlas.homespec import parse_home_spec
from service.bench.intake import TOPIC, _create_session, make_backlog
from service.broker import PrivateBroker
from service.storage.engine import make_engine, upgrade
from service.storage.homes import upsert_home
from service.storage.schema import events
from service.storage.stats import db_stats
from simulator.stream import StreamReport, stream_events

INTAKE_CLIENT_ID = "crash-test-intake"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of streaming")
    parser.add_argument("--kills", type=int, default=2, help="intake SIGKILLs")
    parser.add_argument("--broker-restarts", type=int, default=1)
    parser.add_argument("--broker-kill", action="store_true", help="SIGKILL the broker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None)


class _Intake:
    """``atlas intake`` as a subprocess that can be SIGKILLed and started again."""

    def __init__(self, broker_url: str, db_url: str, log: Path) -> None:
        self.cmd = [
            sys.executable,
            "-m",
            "service.cli",
            "intake",
            "--broker",
            broker_url,
            "--db",
            db_url,
            "--client-id",
            "crash-test-intake",
            "--topic",
            TOPIC,
        ]
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.cmd, stdout=log, stderr=log)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def run_crash_test(
    workdir: Path,
    *,
    n_events: int,
    duration_s: float,
    kills: int,
    broker_restarts: int,
    broker_kill: bool = False,
    seed: int = 0,
    progress: bool = False,
    log=print,
) -> dict:
    rng = random.Random(seed)
    specs, messages = make_backlog(n_events, seed=1)
    step = duration_s / len(messages)
    messages = [(topic, body, i * step) for i, (topic, body, _) in enumerate(messages)]
    expected = {json.loads(body)["event_id"] for _, body, _ in messages}
    db_url = f"sqlite:///{workdir}/crash.db"
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        for spec in specs:
            upsert_home(conn, parse_home_spec(spec))
    chaos = sorted(
        [("intake", rng.uniform(0.1, 0.9) * duration_s) for _ in range(kills)]
        + [("broker", rng.uniform(0.2, 0.8) * duration_s) for _ in range(broker_restarts)],
        key=lambda c: c[1],
    )
    started = time.monotonic()
    with PrivateBroker(workdir / "broker") as broker:
        # The intake's session (and subscription) must exist before the first publish, as it
        # does in a deployment; otherwise the broker routes early events to nobody.
        _create_session(broker.port, INTAKE_CLIENT_ID)
        intake = _Intake(broker.url, db_url, workdir / "intake.log")
        intake.start()
        reports: list[StreamReport] = []
        publisher = threading.Thread(
            target=lambda: reports.append(
                stream_events(
                    messages,
                    broker.url,
                    speed=1.0,
                    outbox_dir=workdir / "outbox",
                    progress=progress,
                    replay_window_s=10.0,
                )
            )
        )
        t0 = time.monotonic()
        publisher.start()
        try:
            for what, at in chaos:
                time.sleep(max(0.0, at - (time.monotonic() - t0)))
                if what == "intake":
                    intake.kill()
                    log(f"{time.monotonic() - t0:6.2f} s  intake SIGKILLed")
                    time.sleep(rng.uniform(0.2, 1.5))
                    intake.start()
                    log(f"{time.monotonic() - t0:6.2f} s  intake restarted")
                else:
                    broker.restart(kill=broker_kill)
                    signal_name = "SIGKILL" if broker_kill else "SIGTERM"
                    log(f"{time.monotonic() - t0:6.2f} s  broker restarted ({signal_name})")
            publisher.join()
            report = reports[0]
            log(f"publisher: {report}")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    stored = set(conn.execute(select(events.c.event_id)).scalars())
                if expected <= stored:
                    break
                time.sleep(0.5)
        finally:
            intake.stop()
    with engine.connect() as conn:
        stats = db_stats(conn)
        stored = set(conn.execute(select(events.c.event_id)).scalars())
    engine.dispose()
    return {
        "events_sent": len(expected),
        "publisher_acknowledged": report.acknowledged,
        "publisher_resent": report.resent,
        "stored_rows": stats["events"],
        "distinct_event_ids": stats["distinct_event_ids"],
        "missing": len(expected - stored),
        "unexpected": len(stored - expected),
        "dead_letters": stats["dead_letters"],
        "intake_kills": kills,
        "broker_restarts": broker_restarts,
        "broker_signal": "SIGKILL" if broker_kill else "SIGTERM",
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="atlas-crash-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = run_crash_test(
            workdir,
            n_events=args.events,
            duration_s=args.duration,
            kills=args.kills,
            broker_restarts=args.broker_restarts,
            broker_kill=args.broker_kill,
            seed=args.seed,
            progress=True,
        )
    print(json.dumps(result, indent=2))
    ok = result["missing"] == 0 and result["stored_rows"] == result["events_sent"]
    return 0 if ok else 1
