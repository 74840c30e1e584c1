"""Fleet throughput: `atlas serve` workers on one PostgreSQL and one broker, 1 vs W workers.

Each measurement gets a fresh PostgreSQL database and a private Mosquitto (deployment config).
N simulated homes (``simulator.generate``) make the load. The W workers start and subscribe
through one shared subscription (``$share/atlas/...``); the events are then published as fast
as the broker takes them (the publisher needs ~2 % of the workers' time, measured by
``stream_events``' elapsed time), so the workers drain a backlog. Mosquitto 2.0.11 did not queue
shared-subscription messages published while every member was offline (tried first: the
workers never received them), hence live publishing. The rate is taken from the database's
own timestamps: first ``received_at`` to last ``received_at`` (intake) and
to the last classification (intake + pairing + classification, end to end). The latency of a
use is its first classification minus the arrival of its last event: in a drain it includes the
queueing behind the backlog. The same code (:class:`Fleet`) runs the acceptance test and
``scripts/fleet_test.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from atlas.homespec import HomeSpec, parse_home_spec
from service.broker import PrivateBroker, free_port
from service.storage.engine import make_engine, upgrade
from service.storage.homes import upsert_home
from service.storage.schema import classifications, events, model_snapshots, use_events, uses
from simulator.generate import SimEvent, generate_run
from simulator.presets import load_preset

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TOPIC_BASE = "fleet/v1"
SHARED_FILTER = f"$share/atlas/{TOPIC_BASE}/homes/+/sensors/+/events"
DATA_START = datetime(2026, 3, 2)  # local midnight of calibration day 8 (homes installed -7 d)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--homes", type=int, default=20, help="simulated homes")
    parser.add_argument("--days", type=int, default=2, help="simulated days per home")
    parser.add_argument("--workers", type=int, default=2, help="W: measured against 1 worker")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")


# ---------------------------------------------------------------------- the pieces of a fleet


class TempDatabase:
    """A fresh PostgreSQL database, dropped on exit (advisory locks are per database, so the
    fleet's leader lock never meets another test's)."""

    def __init__(self, admin_url: str = ADMIN_URL) -> None:
        self.admin_url = admin_url
        self.name = f"atlas_fleet_{uuid.uuid4().hex[:10]}"
        self.url = admin_url.rsplit("/", 1)[0] + "/" + self.name

    def __enter__(self) -> TempDatabase:
        admin = make_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        admin.dispose()
        return self

    def __exit__(self, *exc: object) -> None:
        admin = make_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()


def make_homes(
    n_homes: int, days: int, seed: int, max_events: int | None = None
) -> tuple[list[HomeSpec], list[SimEvent]]:
    """``n_homes`` presets (apartment / two_bath_house alternating) with their own seeds; events
    from ``DATA_START`` (calibration day 8), sorted by time across homes."""
    presets = [load_preset("apartment"), load_preset("two_bath_house")]
    specs, sim = [], []
    for i in range(n_homes):
        base = presets[i % 2]
        spec = parse_home_spec(base.to_dict() | {"home_id": f"fleet-{i:04d}"})
        run = generate_run(spec, days=days, seed=seed * 1000 + i, start=DATA_START)
        specs.append(spec)
        sim.extend(run[:max_events])
    sim.sort(key=lambda s: s.event.t)
    return specs, sim


def register(db: Engine, specs: Sequence[HomeSpec]) -> None:
    """Migrate and register the homes, installed a week before the data starts."""
    upgrade(db)
    with db.begin() as conn:
        for spec in specs:
            installed = (DATA_START - timedelta(days=7)).replace(
                tzinfo=_tz(spec)
            ).astimezone(UTC)
            upsert_home(conn, spec, now=installed)


def _tz(spec: HomeSpec):
    from zoneinfo import ZoneInfo

    return ZoneInfo(spec.model.timezone)


def messages_of(sim: Sequence[SimEvent], t0: datetime) -> list[tuple[str, bytes, float]]:
    return [
        (
            f"{TOPIC_BASE}/homes/{s.event.home_id}/sensors/{s.event.sensor_id}/events",
            json.dumps(s.payload()).encode(),
            (s.event.t - t0).total_seconds(),
        )
        for s in sim
    ]


@dataclass
class Worker:
    """One ``atlas serve --worker-id N`` process; SIGKILL and restart keep the same id."""

    worker_id: int
    config: Path
    log: Path
    http_port: int
    process: subprocess.Popen | None = None

    def start(self) -> None:
        env = os.environ | {"ATLAS_HTTP_PORT": str(self.http_port)}
        cmd = [sys.executable, "-m", "service.cli", "serve", "--config", str(self.config),
               "--worker-id", str(self.worker_id)]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.http_port}/readyz"
            with urllib.request.urlopen(url, timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def is_leader(self) -> bool:
        """The last leadership line of this worker's log says elected (and it is alive)."""
        if not self.alive() or not self.log.exists():
            return False
        state = False
        for line in self.log.read_text("utf-8", "replace").splitlines():
            if "elected scheduler leader" in line:
                state = True
            elif "no longer the scheduler leader" in line:
                state = False
        return state


class Fleet:
    """W workers, a private broker and a fresh database (``with Fleet(...) as fleet``)."""

    def __init__(
        self,
        workdir: Path,
        n_workers: int,
        *,
        settings: dict | None = None,
        push: dict[str, dict] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.n_workers = n_workers
        self.settings = settings or {}
        self.push = push or {}
        self._stack = ExitStack()
        self.workers: list[Worker] = []

    def __enter__(self) -> Fleet:
        self.database = self._stack.enter_context(TempDatabase())
        self.broker = self._stack.enter_context(PrivateBroker(self.workdir / "broker"))
        self.db = make_engine(self.database.url)
        self._stack.callback(self.db.dispose)
        self._stack.callback(self.stop_all)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def write_config(self) -> Path:
        lines = [
            f'db_url = "{self.database.url}"',
            f'broker_url = "{self.broker.url}"',
            f'event_topic = "{SHARED_FILTER}"',
            'mqtt_client_prefix = "fleet"',
            "log_json = true",
        ]
        for key, value in self.settings.items():
            lines.append(f"{key} = {json.dumps(value)}")
        for home_id, cfg in self.push.items():
            lines.append(f'[push."{home_id}"]')
            lines += [f"{k} = {json.dumps(v)}" for k, v in cfg.items()]
        path = self.workdir / "atlas.toml"
        path.write_text("\n".join(lines) + "\n", "utf-8")
        return path

    def start_workers(self, timeout_s: float = 90.0) -> None:
        config = self.write_config()
        if not self.workers:
            self.workers = [
                Worker(i + 1, config, self.workdir / f"worker-{i + 1}.log", free_port())
                for i in range(self.n_workers)
            ]
        for w in self.workers:
            w.start()
        self.wait_ready(self.workers, timeout_s)

    def wait_ready(self, workers: Sequence[Worker], timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(w.ready() for w in workers):
            dead = [w.worker_id for w in workers if not w.alive()]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"workers {dead or 'all'} not ready; see {self.workdir}")
            time.sleep(0.2)

    def stop_all(self) -> None:
        for w in self.workers:
            w.stop()

    def leader(self, timeout_s: float = 30.0) -> Worker:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [w for w in self.workers if w.is_leader()]
            if len(found) == 1:
                return found[0]
            time.sleep(0.1)
        raise TimeoutError(f"no single scheduler leader within {timeout_s} s")

    def count(self, query) -> int:
        with self.db.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def wait_stored(self, n: int, timeout_s: float) -> int:
        return wait_count(lambda: self.count(select(func.count()).select_from(events)), n,
                          timeout_s)  # fmt: skip


def wait_count(read: Callable[[], int], target: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    value = read()
    while value < target and time.monotonic() < deadline:
        time.sleep(0.25)
        value = read()
    return value


# ---------------------------------------------------------------------- the benchmark


def drain(workdir: Path, n_workers: int, specs, messages, log=print) -> dict:
    """Queue ``messages`` for ``n_workers`` stopped workers, start them, measure the drain."""
    from simulator.stream import stream_events

    with Fleet(workdir, n_workers, settings={"scheduler_sweep_s": 5.0}) as fleet:
        register(fleet.db, specs)
        cpu0 = os.times()
        fleet.start_workers()
        report = stream_events(messages, fleet.broker.url, speed=0.0, progress=False)
        if report.acknowledged < len(messages):
            raise RuntimeError(f"broker acknowledged {report.acknowledged}/{len(messages)}")
        stored = fleet.wait_stored(len(messages), timeout_s=900)
        # classification: every stored use is in its home's engine (snapshot meta n_uses);
        # pairing leaves the newest uses of each home waiting for later events, as live
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            n_uses = fleet.count(select(func.count()).select_from(uses))
            if engine_uses(fleet.db) == n_uses:
                time.sleep(3.0)  # settled: nothing new paired meanwhile
                if fleet.count(select(func.count()).select_from(uses)) == n_uses:
                    break
            time.sleep(0.5)
        result = _drain_figures(fleet.db)
        result |= {"workers": n_workers, "events": len(messages), "stored": stored}
        fleet.stop_all()  # reaped: their CPU time is counted below
        result["children_cpu_s"] = round(
            os.times().children_user + os.times().children_system
            - cpu0.children_user - cpu0.children_system, 1,
        )  # fmt: skip
    log(json.dumps(result))
    return result


def engine_uses(db: Engine) -> int:
    """Uses ingested by the homes' engines: ``n_uses`` of each home's newest engine snapshot."""
    newest = (
        select(model_snapshots.c.home_id, func.max(model_snapshots.c.version).label("v"))
        .where(model_snapshots.c.kind == "engine")
        .group_by(model_snapshots.c.home_id)
        .subquery()
    )
    with db.connect() as conn:
        metas = conn.execute(
            select(model_snapshots.c.meta).join(
                newest,
                (newest.c.home_id == model_snapshots.c.home_id)
                & (newest.c.v == model_snapshots.c.version),
            ).where(model_snapshots.c.kind == "engine")
        ).scalars()
        return sum(int(m["n_uses"]) for m in metas)


def _drain_figures(db: Engine) -> dict:
    with db.connect() as conn:
        first, last = conn.execute(select(func.min(events.c.received_at),
                                          func.max(events.c.received_at))).one()  # fmt: skip
        n_events = conn.execute(select(func.count()).select_from(events)).scalar_one()
        classified_at = (
            select(classifications.c.use_id, func.min(classifications.c.created_at).label("c"))
            .group_by(classifications.c.use_id)
            .subquery()
        )
        arrived = (
            select(use_events.c.use_id, func.max(events.c.received_at).label("a"))
            .join(events, events.c.event_id == use_events.c.event_id)
            .group_by(use_events.c.use_id)
            .subquery()
        )
        rows = conn.execute(
            select(classified_at.c.c, arrived.c.a).join(
                arrived, arrived.c.use_id == classified_at.c.use_id
            )
        ).all()
        n_uses = conn.execute(select(func.count()).select_from(uses)).scalar_one()
        done = conn.execute(
            select(func.max(model_snapshots.c.created_at)).where(model_snapshots.c.kind == "engine")
        ).scalar_one()
    latencies = sorted((c - a).total_seconds() for c, a in rows)
    intake_s = (last - first).total_seconds()
    total_s = (done - first).total_seconds()
    return {
        "intake_events_per_s": round(n_events / intake_s, 1),
        "end_to_end_events_per_s": round(n_events / total_s, 1),
        "end_to_end_s": round(total_s, 2),
        "uses": n_uses,
        "uses_in_engines": engine_uses(db),
        "uses_with_classification_rows": len(rows),
        "latency_p50_s": round(latencies[len(latencies) // 2], 2),
        "latency_p99_s": round(latencies[int(0.99 * (len(latencies) - 1))], 2),
    }


def run(args: argparse.Namespace) -> int:
    specs, sim = make_homes(args.homes, args.days, args.seed)
    messages = messages_of(sim, sim[0].event.t)
    print(f"{len(specs)} homes, {len(messages)} events; workers 1 and {args.workers}",
          file=sys.stderr)  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory(prefix="atlas-fleet-") as tmp:
        for n in sorted({1, args.workers}):
            results.append(drain(Path(tmp) / f"w{n}", n, specs, messages,
                                 log=lambda s: print(s, file=sys.stderr)))  # fmt: skip
    base = results[0]
    summary = {
        "homes": args.homes,
        "events": len(messages),
        "runs": results,
        "scaling_end_to_end": round(
            results[-1]["end_to_end_events_per_s"] / base["end_to_end_events_per_s"], 2
        ),
        "scaling_intake": round(
            results[-1]["intake_events_per_s"] / base["intake_events_per_s"], 2
        ),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2), "utf-8")
    return 0


# ---------------------------------------------------------------------- the acceptance run


class WebhookSink:
    """A local HTTP receiver counting webhook deliveries per ``Idempotency-Key`` (request id)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.deliveries: dict[str, int] = {}
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key", "")
                sink.deliveries[key] = sink.deliveries.get(key, 0) + 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def acceptance(
    workdir: Path,
    *,
    n_homes: int,
    events_per_home: int,
    days: int = 3,
    stream_s: float = 60.0,
    n_workers: int = 3,
    seed: int = 1,
    log: Callable[[str], None] = print,
) -> dict:
    """Issue 7's acceptance run; returns the figures the caller asserts on.

    ``n_workers`` ``atlas serve`` processes on a simulated clock (``days`` days played in about
    ``stream_s`` s) receive the homes' events through one shared subscription. At 40 % of the
    stream a non-leader worker is SIGKILLed and restarted 2 s later with the same id; just
    before the last round day's rounds are due the scheduler leader is SIGKILLed (and
    restarted as a standby). At the end of the data the test process pairs with "end of data"
    (as ``atlas demo`` does) and waits for the workers to classify every use.
    """
    from zoneinfo import ZoneInfo

    from service.intake.pipeline import IngestPipeline
    from service.storage.schema import label_requests
    from simulator.stream import stream_events

    specs, sim = make_homes(n_homes, days, seed, max_events=events_per_home)
    sim_start = sim[0].event.t - timedelta(minutes=5)
    speed = days * 86400 / stream_s
    messages = messages_of(sim, sim_start)
    expected_ids = {s.event.event_id for s in sim}
    tz = ZoneInfo(specs[0].model.timezone)
    last_round_day = 8 + 2 * ((days - 1) // 2)  # rounds on days 8, 10, ... (every 2 days)
    # a round runs at the day's last slot before quiet hours (21:00): kill the leader at 20:00
    leader_kill_at = datetime.combine(
        (DATA_START + timedelta(days=last_round_day - 8)).date(), datetime.min.time(), tz
    ) + timedelta(hours=20)
    with WebhookSink() as sink, ExitStack() as stack:
        wall_start = time.time() + 20.0 + 4.0 * n_workers  # after the workers are up
        settings = {
            "sim_start": sim_start.isoformat(),
            "sim_wall_start": wall_start,
            "sim_speed": speed,
            "scheduler_sweep_s": 2.0,
            "retrain_debounce_s": 1.0,
        }
        push = {s.home_id: {"webhook_url": sink.url, "webhook_secret": "fleet-test-secret-0123"}
                for s in specs}  # fmt: skip
        fleet = stack.enter_context(Fleet(workdir, n_workers, settings=settings, push=push))
        register(fleet.db, specs)
        fleet.start_workers()
        log(f"{n_workers} workers ready; {len(messages)} events of {n_homes} homes, "
            f"{days} days at {speed:,.0f}x")  # fmt: skip
        time.sleep(max(0.0, wall_start - time.time()))
        chaos: dict = {}

        def wall_of(t: datetime) -> float:
            return wall_start + (t - sim_start).total_seconds() / speed

        def run_chaos() -> None:
            time.sleep(max(0.0, wall_start + 0.4 * stream_s - time.time()))
            leader = fleet.leader()
            victim = next(w for w in fleet.workers if w is not leader)
            victim.kill()
            chaos["worker_killed"] = victim.worker_id
            log(f"worker {victim.worker_id} SIGKILLed")
            time.sleep(2.0)
            victim.start()
            time.sleep(max(0.0, wall_of(leader_kill_at) - time.time()))
            leader = fleet.leader()
            leader.kill()
            killed_at = time.monotonic()
            log(f"scheduler leader (worker {leader.worker_id}) SIGKILLed")
            deadline = time.monotonic() + 30
            while not any(w.is_leader() for w in fleet.workers if w is not leader):
                if time.monotonic() > deadline:
                    chaos["failover_s"] = None
                    break
                time.sleep(0.05)
            else:
                chaos["failover_s"] = round(time.monotonic() - killed_at, 2)
            chaos["leader_killed"] = leader.worker_id
            log(f"new leader after {chaos['failover_s']} s")
            leader.start()

        import threading

        chaos_thread = threading.Thread(target=run_chaos, daemon=True)
        chaos_thread.start()
        report = stream_events(messages, fleet.broker.url, speed=speed,
                               outbox_dir=workdir / "outbox", progress=False)  # fmt: skip
        chaos_thread.join(120)
        log(f"stream done: {report}")
        fleet.wait_stored(len(expected_ids), timeout_s=120)
        IngestPipeline(fleet.db, clock=None).pair({s.home_id for s in specs}, final=True)
        n_uses = fleet.count(select(func.count()).select_from(uses))
        in_engines = wait_count(lambda: engine_uses(fleet.db), n_uses, timeout_s=120)
        # every due round: the last round day's slots are past once service time is past 21:00
        end_of_rounds = wall_of(leader_kill_at + timedelta(hours=1, minutes=30))
        time.sleep(max(0.0, end_of_rounds - time.time()))
        planned = select(func.count()).select_from(label_requests).where(
            label_requests.c.state == "planned")  # fmt: skip
        deadline = time.monotonic() + 60
        while fleet.count(planned) and time.monotonic() < deadline:
            time.sleep(0.5)
        with fleet.db.connect() as conn:
            ids = conn.execute(select(events.c.event_id)).scalars().all()
            rounds = conn.execute(
                select(label_requests.c.home_id, label_requests.c.round, label_requests.c.state,
                       label_requests.c.request_id)
            ).all()  # fmt: skip
        paired_exactly, truth_uses = _pairing_exact(fleet.db, sim)
        fleet.stop_all()
    rounds_by_home: dict[str, set[int]] = {}
    for home_id, round_day, _, _ in rounds:
        rounds_by_home.setdefault(home_id, set()).add(round_day)
    sent_ids = {r.request_id for r in rounds if r.state != "planned"}
    states: dict[str, int] = {}
    for r in rounds:
        states[r.state] = states.get(r.state, 0) + 1
    return {
        "homes": n_homes,
        "events": len(expected_ids),
        "published": report.sent,
        "stored_rows": len(ids),
        "stored_distinct": len(set(ids)),
        "missing": len(expected_ids - set(ids)),
        "uses": n_uses,
        "uses_in_engines": in_engines,
        "due_rounds": [d for d in range(8, last_round_day + 1, 2)],
        "homes_with_every_due_round": sum(
            rounds_by_home.get(s.home_id, set()) >= set(range(8, last_round_day + 1, 2))
            for s in specs
        ),
        "requests": len(rounds),
        "requests_planned_not_sent": len(rounds) - len(sent_ids),
        "requests_by_state": states,
        "webhook_keys": len(sink.deliveries),
        "webhook_keys_not_sent_requests": len(set(sink.deliveries) - sent_ids),
        "sent_requests_without_webhook": len(sent_ids - set(sink.deliveries)),
        "webhook_duplicate_deliveries": sum(n - 1 for n in sink.deliveries.values()),
        # the dispatcher never pushes a request already expired (6 h answer margin = a few
        # wall seconds at this acceleration): which rounds lost pushes that way
        "unpushed_by_round": _count_by(
            r.round for r in rounds if r.request_id not in sink.deliveries
        ),
        "pairing_exact": f"{paired_exactly}/{truth_uses}",
        **chaos,
    }


def _pairing_exact(db: Engine, sim: Sequence[SimEvent]) -> tuple[int, int]:
    """(simulated uses stored with exactly their events, simulated uses); truth use ids are
    per home, so they are keyed by (home, use id)."""
    truth: dict[tuple[str, str], set[str]] = {}
    for s in sim:
        truth.setdefault((s.event.home_id, s.truth["use_id"]), set()).add(s.event.event_id)
    stored: dict[str, set[str]] = {}
    with db.connect() as conn:
        for use_id, event_id in conn.execute(select(use_events.c.use_id, use_events.c.event_id)):
            stored.setdefault(use_id, set()).add(event_id)
    found = {frozenset(ids) for ids in stored.values()}
    return sum(frozenset(ids) in found for ids in truth.values()), len(truth)


def _count_by(keys) -> dict:
    out: dict = {}
    for k in keys:
        out[k] = out.get(k, 0) + 1
    return dict(sorted(out.items()))
