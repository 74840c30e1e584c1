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
from datetime import time as dtime
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from atlas.homespec import HomeSpec, parse_home_spec
from service.broker import PrivateBroker, free_port
from service.storage.engine import make_engine, upgrade
from service.storage.homes import upsert_home
from service.storage.schema import (
    alerts,
    classifications,
    events,
    label_requests,
    model_snapshots,
    use_events,
    uses,
)
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
    parser.add_argument("--repeat", type=int, default=1, help="1-and-W pairs to measure")
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


def make_homes(n_homes: int, days: int, seed: int) -> tuple[list[HomeSpec], list[SimEvent]]:
    """``n_homes`` presets (apartment / two_bath_house alternating) with their own seeds; events
    from ``DATA_START`` (calibration day 8), sorted by time across homes."""
    presets = [load_preset("apartment"), load_preset("two_bath_house")]
    specs, sim = [], []
    for i in range(n_homes):
        base = presets[i % 2]
        spec = parse_home_spec(base.to_dict() | {"home_id": f"fleet-{i:04d}"})
        specs.append(spec)
        sim.extend(generate_run(spec, days=days, seed=seed * 1000 + i, start=DATA_START))
    sim.sort(key=lambda s: s.event.t)
    return specs, sim


def register(db: Engine, specs: Sequence[HomeSpec]) -> None:
    """Migrate and register the homes, installed a week before the data starts."""
    upgrade(db)
    with db.begin() as conn:
        for spec in specs:
            installed = (DATA_START - timedelta(days=7)).replace(tzinfo=_tz(spec)).astimezone(UTC)
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
        cmd = [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--config",
            str(self.config),
            "--worker-id",
            str(self.worker_id),
        ]
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
        return wait_count(
            lambda: self.count(select(func.count()).select_from(events)), n, timeout_s
        )


def wait_count(read: Callable[[], int], target: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    value = read()
    while value < target and time.monotonic() < deadline:
        time.sleep(0.25)
        value = read()
    return value


# ---------------------------------------------------------------------- the benchmark


def _ticks_s(fields: list[str], first: int, last: int) -> float:
    return sum(int(f) for f in fields[first : last + 1]) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is fields[0]
    return _ticks_s(fields, 11, 12)  # utime, stime (fields 14 and 15 of proc(5))


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy so far, all cores (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = [f for i, f in enumerate(fields[:8]) if i not in (3, 4)]  # all but idle, iowait
    return _ticks_s(busy, 0, len(busy) - 1)


class CpuMeter:
    """CPU used during a measurement by the workers, by this database's PostgreSQL backends,
    and by the whole machine (other processes included), so a run on a shared machine says so.
    """

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.t0 = time.monotonic()
        self.machine0 = machine_busy_s()
        self.workers0 = {w.worker_id: self._worker_cpu(w) for w in fleet.workers}
        self.pg0 = {pid: process_cpu_s(pid) for pid in self._backends()}
        self.broker0 = self._broker_cpu()
        self.bench0 = process_cpu_s(os.getpid())

    def _broker_cpu(self) -> float:
        process = self.fleet.broker.process
        return 0.0 if process is None else process_cpu_s(process.pid)

    def _worker_cpu(self, worker: Worker) -> float:
        return 0.0 if worker.process is None else process_cpu_s(worker.process.pid)

    def _backends(self) -> list[int]:
        with self.fleet.db.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    )
                ).scalars()
            )

    def read(self) -> dict:
        """Figures since construction (backends that closed meanwhile are not counted)."""
        window = time.monotonic() - self.t0
        workers = sum(
            self._worker_cpu(w) - self.workers0.get(w.worker_id, 0.0) for w in self.fleet.workers
        )
        pg = sum(process_cpu_s(pid) - self.pg0.get(pid, 0.0) for pid in self._backends())
        broker = self._broker_cpu() - self.broker0
        bench = process_cpu_s(os.getpid()) - self.bench0  # the publisher and these queries
        machine = machine_busy_s() - self.machine0
        ours = workers + pg + broker + bench
        return {
            "window_s": round(window, 2),
            "workers_cpu_s": round(workers, 2),
            "postgres_cpu_s": round(pg, 2),
            "broker_cpu_s": round(broker, 2),
            "bench_cpu_s": round(bench, 2),
            "machine_busy_cpu_s": round(machine, 2),
            # busy CPU of processes that are not this run's: other users of a shared machine
            "others_cores": round(max(0.0, machine - ours) / window, 2),
            "idle_cores": round(max(0.0, (os.cpu_count() or 1) - machine / window), 2),
        }


_DB_STATS = text(
    "SELECT tup_inserted, tup_updated, tup_deleted, xact_commit, "
    "pg_database_size(current_database()) FROM pg_stat_database "
    "WHERE datname = current_database()"
)


def database_writes(db: Engine, before: tuple, events_n: int) -> dict:
    """Rows written, commits and database growth per event since ``before`` (a
    ``_DB_STATS`` row); PostgreSQL's own counters, flushed by each backend at most every 1 s."""
    with db.connect() as conn:
        after = conn.execute(_DB_STATS).one()
    names = ("rows_inserted", "rows_updated", "rows_deleted", "commits", "bytes")
    return {
        f"{n}_per_event": round((a - b) / events_n, 2)
        for n, a, b in zip(names, after, before, strict=True)
    }


def drain_clock(specs: Sequence[HomeSpec], days: int) -> dict:
    """Service time for a drain: real speed, from 14:00 (home-local) of the day after the
    data. No scheduled job falls in the run or is caught up at its start (the daily update
    was 14 h ago, the last round slot 18 h ago, both beyond the 12 h catch-up), so the
    figures measure intake, pairing and classification only, whatever the wall time of day
    (on the wall clock, catch-up codebook refits of some homes ran in some runs and not in
    others)."""
    local = DATA_START + timedelta(days=days, hours=14)
    start = min(local.replace(tzinfo=_tz(s)) for s in specs)
    return {"sim_start": start.isoformat(), "sim_wall_start": time.time(), "sim_speed": 1.0}


def drain(workdir: Path, n_workers: int, specs, messages, days: int, log=print) -> dict:
    """Queue ``messages`` for ``n_workers`` stopped workers, start them, measure the drain."""
    from simulator.stream import stream_events

    settings = {"scheduler_sweep_s": 5.0} | drain_clock(specs, days)
    with Fleet(workdir, n_workers, settings=settings) as fleet:
        register(fleet.db, specs)
        cpu0 = os.times()
        fleet.start_workers()
        meter = CpuMeter(fleet)
        with fleet.db.connect() as conn:
            db0 = tuple(conn.execute(_DB_STATS).one())
        report = stream_events(messages, fleet.broker.url, speed=0.0, progress=False)
        if report.acknowledged < len(messages):
            raise RuntimeError(f"broker acknowledged {report.acknowledged}/{len(messages)}")
        stored = fleet.wait_stored(len(messages), timeout_s=900)
        # classification: every stored use is in its home's engine (snapshot meta n_uses);
        # pairing leaves the newest uses of each home waiting for later events, as live
        deadline = time.monotonic() + 600
        cpu: dict | None = None
        while time.monotonic() < deadline:
            n_uses = fleet.count(select(func.count()).select_from(uses))
            if engine_uses(fleet.db) == n_uses:
                cpu = meter.read()  # as of the work done, not of the check below
                time.sleep(3.0)  # settled: nothing new paired meanwhile
                if fleet.count(select(func.count()).select_from(uses)) == n_uses:
                    break
            time.sleep(0.2)
        cpu = cpu or meter.read()
        shift = datetime.fromisoformat(settings["sim_start"]) - datetime.fromtimestamp(
            settings["sim_wall_start"], UTC
        )
        result = _drain_figures(fleet.db, shift)
        result |= {"workers": n_workers, "events": len(messages), "stored": stored}
        result |= {
            "cpu": cpu,
            "workers_cpu_ms_per_event": round(1000 * cpu["workers_cpu_s"] / len(messages), 3),
        }
        result["database"] = database_writes(fleet.db, db0, len(messages))
        fleet.stop_all()  # reaped: their CPU time is counted below
        result["children_cpu_s"] = round(
            os.times().children_user
            + os.times().children_system
            - cpu0.children_user
            - cpu0.children_system,
            1,
        )
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
            select(model_snapshots.c.meta)
            .join(
                newest,
                (newest.c.home_id == model_snapshots.c.home_id)
                & (newest.c.v == model_snapshots.c.version),
            )
            .where(model_snapshots.c.kind == "engine")
        ).scalars()
        return sum(int(m["n_uses"]) for m in metas)


def _drain_figures(db: Engine, shift: timedelta) -> dict:
    """``shift``: service time minus wall time. Arrivals (``received_at``) are wall time, what
    the workers write (classifications, snapshots) is service time."""
    with db.connect() as conn:
        first, last = conn.execute(
            select(func.min(events.c.received_at), func.max(events.c.received_at))
        ).one()
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
    first = first + shift
    latencies = sorted((c - a - shift).total_seconds() for c, a in rows)
    intake_s = (last - first + shift).total_seconds()
    total_s = (done - first).total_seconds()
    fill_s = (min(c for c, _ in rows) - first).total_seconds()
    return {
        "intake_events_per_s": round(n_events / intake_s, 1),
        "end_to_end_events_per_s": round(n_events / total_s, 1),
        "end_to_end_s": round(total_s, 2),
        "pipeline_fill_s": round(fill_s, 2),
        "after_fill_events_per_s": round(n_events / (total_s - fill_s), 1),
        "uses": n_uses,
        "uses_in_engines": engine_uses(db),
        "uses_with_classification_rows": len(rows),
        "latency_p50_s": round(latencies[len(latencies) // 2], 2),
        "latency_p99_s": round(latencies[int(0.99 * (len(latencies) - 1))], 2),
    }


#: Printed with the figures, so that the output explains itself.
NOTES = {
    "scaling_end_to_end": "W-worker end-to-end events/s over 1-worker events/s, per repeat "
    "(1 and W workers alternate on the same events)",
    "end_to_end": "first event received -> last engine snapshot (intake + pairing + "
    "classification) while the workers drain a backlog",
    "pipeline_fill_s": "first event received -> first use classified: storing the backlog "
    "first, then the 1 s arrival settle; more workers do not shorten it, so a short backlog "
    "caps scaling_end_to_end (compare scaling_after_fill, or use more --days)",
    "cpu.workers_cpu_s": "CPU of the atlas workers in the measured window",
    "cpu.postgres_cpu_s": "CPU of this run's PostgreSQL backends in the window",
    "cpu.broker_cpu_s / bench_cpu_s": "the run's Mosquitto, and this process (publisher)",
    "cpu.others_cores": "cores busy with processes that are not this run's (other users): "
    "above ~0.2 the machine was shared and the W-worker figure is depressed",
    "cpu.idle_cores": "cores left idle: near 0 in the W-worker run means CPU was the limit",
    "database": "PostgreSQL's counters for the run's database (pg_stat_database) and its size "
    "growth, per event stored; includes the scheduler's job store and the engine snapshots",
}


def run(args: argparse.Namespace) -> int:
    specs, sim = make_homes(args.homes, args.days, args.seed)
    messages = messages_of(sim, sim[0].event.t)
    print(
        f"{len(specs)} homes, {len(messages)} events; workers 1 and {args.workers}, "
        f"{args.repeat} repeat(s)",
        file=sys.stderr,
    )
    load_before = os.getloadavg()
    runs, scaling, after_fill, intake = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="atlas-fleet-") as tmp:
        for k in range(args.repeat):
            pair = [
                drain(
                    Path(tmp) / f"r{k}w{n}",
                    n,
                    specs,
                    messages,
                    args.days,
                    log=lambda s: print(s, file=sys.stderr),
                )
                for n in sorted({1, args.workers})
            ]
            runs += pair
            base, top = pair[0], pair[-1]
            scaling.append(
                round(top["end_to_end_events_per_s"] / base["end_to_end_events_per_s"], 2)
            )
            intake.append(round(top["intake_events_per_s"] / base["intake_events_per_s"], 2))
            after_fill.append(
                round(top["after_fill_events_per_s"] / base["after_fill_events_per_s"], 2)
            )
    summary = {
        "homes": args.homes,
        "events": len(messages),
        "workers": args.workers,
        "seed": args.seed,
        "machine": {
            "cores": os.cpu_count(),
            "load_avg_1m_before": round(load_before[0], 2),
            "load_avg_1m_after": round(os.getloadavg()[0], 2),
        },
        "shared_machine": any(r["cpu"]["others_cores"] > 0.2 for r in runs),
        "runs": runs,
        "scaling_end_to_end": scaling,
        "scaling_after_fill": after_fill,
        "scaling_intake": intake,
        "notes": NOTES,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2), "utf-8")
    return 0


# ---------------------------------------------------------------------- the acceptance run


class WebhookSink:
    """A local HTTP receiver recording each webhook delivery's wall time per ``Idempotency-Key``
    (the request id): a real receiver dedupes on that key (docs/service.md)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.deliveries: dict[str, list[float]] = {}
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key", "")
                sink.deliveries.setdefault(key, []).append(time.time())
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


#: Service seconds per wall second of the full-size acceptance run. Every wall-clock latency of
#: the fleet is this many times longer in service time, and the timetable leaves 1 h 38 min
#: between a round's slot (19:22 with four requests) and quiet hours (21:00); a round sent later
#: waits for 08:00 and loses the requests that expire overnight. Measured here (2 cores shared
#: with other users): the rounds of one time zone's 25 homes, drawn while the killed leader
#: fails over and restarts, were done 7.8 and 8.9 wall s after their slot in two runs at 720x
#: (the second run lost 10 requests). 98 min are 12.25 wall s at 480x. At 2,880x (the old run)
#: they were 2 wall s and most requests expired unsent.
ACCEPTANCE_SPEED = 480.0

#: Local time the scheduler leader is killed on a round day: 22 min before the last slot, so the
#: rounds of that time zone fall due during the failover and the new leader must catch them up.
LEADER_KILL_LOCAL = dtime(19, 0)
QUIET_START_LOCAL = dtime(21, 0)


def acceptance(
    workdir: Path,
    *,
    n_homes: int,
    n_events: int,
    speed: float = ACCEPTANCE_SPEED,
    n_workers: int = 3,
    seed: int = 1,
    log: Callable[[str], None] = print,
) -> dict:
    """The several-worker acceptance run; returns the figures :func:`acceptance_failures` checks.

    ``n_homes`` simulated homes publish their first ``n_events`` events (by time, so every home
    stops at the same instant) at ``speed`` to ``n_workers`` ``atlas serve`` processes behind
    one shared subscription. At 40 % of the stream a non-leader worker is SIGKILLed and
    restarted 2 s later with the same id. At :data:`LEADER_KILL_LOCAL` of the last round day
    (the last one still within the data when there is one) the scheduler leader is SIGKILLed
    and restarted as a standby. At the end of the data the test process pairs with "end of
    data" (as ``atlas demo`` does), waits for the workers to classify every use, and lets
    service time run to quiet hours of the last round day, so that every round is due.
    """
    import threading

    from service.intake.pipeline import IngestPipeline
    from simulator.stream import stream_events

    days = 1 + n_events // (n_homes * 85)  # the presets make 90-110 events a day
    specs, sim = make_homes(n_homes, days, seed)
    if len(sim) < n_events:
        raise ValueError(f"{n_homes} homes made {len(sim)} < n_events={n_events} in {days} days")
    sim = sim[:n_events]
    sim_start = sim[0].event.t - timedelta(minutes=5)
    plan = _round_plan(specs, sim[-1].event.t)
    messages = messages_of(sim, sim_start)
    expected_ids = {s.event.event_id for s in sim}
    with WebhookSink() as sink, ExitStack() as stack:
        wall_start = time.time() + 20.0 + 4.0 * n_workers  # after the workers are up
        settings = {
            "sim_start": sim_start.isoformat(),
            "sim_wall_start": wall_start,
            "sim_speed": speed,
            "scheduler_sweep_s": 2.0,
            "retrain_debounce_s": 1.0,
        }
        push = {
            s.home_id: {"webhook_url": sink.url, "webhook_secret": "fleet-test-secret-0123"}
            for s in specs
        }
        fleet = stack.enter_context(Fleet(workdir, n_workers, settings=settings, push=push))
        register(fleet.db, specs)
        fleet.start_workers()
        stream_s = (sim[-1].event.t - sim_start).total_seconds() / speed
        log(
            f"{n_workers} workers ready; {len(messages)} events of {n_homes} homes at "
            f"{speed:,.0f}x ({stream_s:.0f} s); due rounds {plan['due_rounds']}; leader "
            f"killed at {plan['leader_kill_at']:%Y-%m-%d %H:%M %Z}"
        )
        time.sleep(max(0.0, wall_start - time.time()))

        def wall_of(t: datetime) -> float:
            return wall_start + (t - sim_start).total_seconds() / speed

        chaos: dict = {}
        chaos_thread = threading.Thread(
            target=_chaos,
            daemon=True,
            args=(fleet, wall_start + 0.4 * stream_s, wall_of(plan["leader_kill_at"]), chaos, log),
        )
        chaos_thread.start()
        report = stream_events(
            messages, fleet.broker.url, speed=speed, outbox_dir=workdir / "outbox", progress=False
        )
        log(f"stream done: {report}")
        fleet.wait_stored(len(expected_ids), timeout_s=120)
        IngestPipeline(fleet.db, clock=None).pair({s.home_id for s in specs}, final=True)
        n_uses = fleet.count(select(func.count()).select_from(uses))
        in_engines = wait_count(lambda: engine_uses(fleet.db), n_uses, timeout_s=120)
        chaos_thread.join(max(0.0, wall_of(plan["leader_kill_at"]) - time.time()) + 60)
        # every due round: its slot is past once service time is past quiet start
        time.sleep(max(0.0, wall_of(plan["run_end"]) - time.time()))
        planned = (
            select(func.count())
            .select_from(label_requests)
            .where(label_requests.c.state == "planned")
        )
        wait_count(lambda: -fleet.count(planned), 0, timeout_s=60)
        with fleet.db.connect() as conn:
            ids = conn.execute(select(events.c.event_id)).scalars().all()
            requests = conn.execute(
                select(
                    label_requests.c.home_id,
                    label_requests.c.round,
                    label_requests.c.state,
                    label_requests.c.request_id,
                    label_requests.c.sent_at,
                )
            ).all()
            raised = dict(
                conn.execute(select(alerts.c.kind, func.count()).group_by(alerts.c.kind)).all()
            )
        paired_exactly, truth_uses = _pairing_exact(fleet.db, sim)
        fleet.stop_all()
    return {
        "homes": n_homes,
        "events": len(expected_ids),
        "speed": speed,
        "stream_s": round(stream_s, 1),
        "published": report.sent,
        "stored_rows": len(ids),
        "stored_distinct": len(set(ids)),
        "missing": len(expected_ids - set(ids)),
        "uses": n_uses,
        "uses_in_engines": in_engines,
        "pairing_exact": f"{paired_exactly}/{truth_uses}",
        "due_rounds": plan["due_rounds"],
        "leader_kill_at": plan["leader_kill_at"].isoformat(),
        **_round_figures(specs, plan["due_rounds"], requests, sink, chaos.get("kills", [])),
        "alerts_by_kind": dict(sorted(raised.items())),
        **{k: v for k, v in chaos.items() if k != "kills"},
    }


def _round_plan(specs: Sequence[HomeSpec], data_end: datetime) -> dict:
    """Due round days (8, 10, ... up to the data's last day), when to kill the leader and
    when service time has passed quiet start of the last round day in every time zone."""
    tzs = {_tz(s) for s in specs}
    last_day = 8 + min((data_end.astimezone(tz).date() - DATA_START.date()).days for tz in tzs)
    due = list(range(8, last_day + 1, 2))
    if not due:
        raise ValueError(f"the data ends on day {last_day}, before the first round (day 8)")

    def local(day: int, at: dtime) -> datetime:
        date = (DATA_START + timedelta(days=day - 8)).date()
        return min(datetime.combine(date, at, tz) for tz in tzs)  # the earliest time zone

    kill_day = next((d for d in reversed(due) if local(d, LEADER_KILL_LOCAL) < data_end), due[-1])
    quiet = max(
        datetime.combine(local(due[-1], QUIET_START_LOCAL).date(), QUIET_START_LOCAL, tz)
        for tz in tzs
    )
    return {
        "due_rounds": due,
        "leader_kill_at": local(kill_day, LEADER_KILL_LOCAL),
        "run_end": max(data_end, quiet) + timedelta(minutes=10),
    }


def _chaos(fleet: Fleet, worker_kill_wall: float, leader_kill_wall: float, out: dict, log) -> None:
    """SIGKILL a non-leader worker and restart it with its id, then SIGKILL the leader."""
    time.sleep(max(0.0, worker_kill_wall - time.time()))
    leader = fleet.leader()
    victim = next(w for w in fleet.workers if w is not leader)
    victim.kill()
    out["kills"] = [time.time()]
    out["worker_killed"] = victim.worker_id
    log(f"worker {victim.worker_id} SIGKILLed")
    time.sleep(2.0)
    victim.start()
    time.sleep(max(0.0, leader_kill_wall - time.time()))
    leader = fleet.leader()
    leader.kill()
    out["kills"].append(time.time())
    killed_at = time.monotonic()
    log(f"scheduler leader (worker {leader.worker_id}) SIGKILLed")
    out["failover_s"] = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(w.is_leader() for w in fleet.workers if w is not leader):
            out["failover_s"] = round(time.monotonic() - killed_at, 2)
            break
        time.sleep(0.05)
    out["leader_killed"] = leader.worker_id
    log(f"new leader after {out['failover_s']} s")
    leader.start()


def _round_figures(specs, due_rounds, requests, sink: WebhookSink, kills: list[float]) -> dict:
    """Rounds drawn, requests sent (``sent_at``, set once by the dispatcher), webhooks;
    ``kills``: wall times of the SIGKILLs."""
    by_home: dict[str, set[int]] = {}
    for r in requests:
        by_home.setdefault(r.home_id, set()).add(r.round)
    drawn = {r.request_id for r in requests}
    sent = {r.request_id for r in requests if r.sent_at is not None}
    # leak alerts go to the same webhook, keyed by their alert id (docs/usage.md)
    alert_keys = {k for k in sink.deliveries if k.startswith("al-")}
    keys = set(sink.deliveries) - alert_keys
    # a POST whose "sent" commit a SIGKILLed worker never made is posted again, with the same
    # key, by the next one (docs/service.md): the only redelivery the design allows
    across_kill = [
        t
        for t in sink.deliveries.values()
        if len(t) > 1 and any(min(t) < k < max(t) for k in kills)
    ]
    redeliveries = sum(len(t) - 1 for t in sink.deliveries.values())
    return {
        "homes_with_every_due_round": sum(
            by_home.get(s.home_id, set()) >= set(due_rounds) for s in specs
        ),
        "requests": len(drawn),
        "requests_by_state": _count_by(r.state for r in requests),
        "requests_never_sent": len(drawn - sent),
        "unsent_by_round": _count_by(r.round for r in requests if r.request_id not in sent),
        "webhook_keys": len(keys),
        "webhook_keys_not_sent": len(keys - sent),
        "alert_pushes": len(alert_keys),
        "sent_without_webhook": len(sent - keys),
        "webhook_redeliveries": redeliveries,
        "webhook_redeliveries_not_across_a_kill": redeliveries
        - sum(len(t) - 1 for t in across_kill),
    }


def acceptance_failures(r: dict) -> list[str]:
    """The acceptance checks that ``r`` (from :func:`acceptance`) fails; empty: all pass."""
    checks = {
        "every event stored exactly once": r["stored_rows"] == r["stored_distinct"] == r["events"]
        and r["missing"] == 0,
        "every use classified": r["uses_in_engines"] == r["uses"] > 0,
        "every due round drawn for every home": r["homes_with_every_due_round"] == r["homes"],
        "every drawn request sent": r["requests"] > 0 and r["requests_never_sent"] == 0,
        "every sent request pushed, nothing else": r["sent_without_webhook"] == 0
        and r["webhook_keys_not_sent"] == 0,
        "no push repeated except across a kill": r["webhook_redeliveries_not_across_a_kill"] == 0,
        "a new leader within 10 s": r.get("failover_s") is not None and r["failover_s"] < 10,
        "a worker and then the leader killed": r.get("worker_killed") is not None
        and r.get("leader_killed") is not None,
    }
    return [name for name, ok in checks.items() if not ok]


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
