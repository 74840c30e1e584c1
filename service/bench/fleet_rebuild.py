"""What rebuilding the fleet costs (:func:`service.fleetbuild.rebuild_fleet`) at ``--homes``
contributing homes, and whether it holds up other work on the same database.

The homes are **copies**. A few base homes (``--presets`` x ``--seeds``) are simulated for
``--days`` days and stored as a calibrated home of the service is: the home, its events
(waveforms) and uses, and an engine snapshot that has ingested every use, with every third use
carrying its true valve as a guided label (a stand-in for the labels a calibration gathers;
replaying real calibrations takes ~40 s a home). Each further home is a copy of one base home
under a new id: its spec with the new ``home_id``, its events' rows and its engine snapshot's
rows copied in SQL (its uses' rows are not copied: their ids are unique across homes, and the
rebuild reads a home's uses from its snapshot). Every home is installed on its simulation's
first day and the rebuild runs 30 days after the last install, so all count as calibrated
(``fleet.calibrated_days=28``). The homes beyond a run's ``--homes`` are opted out, so one
database serves every size.

Why copies are a fair load: what the rebuild does per home (read its snapshot and waveforms,
fit its own codebook on its waves, encode every wave under the fleet codebook, count its
labels) costs the same whether or not another home holds the same data, so its time grows with
the number of homes and their data volume (``--days``), not their diversity. Two parts do
depend on diversity: the clustering of every home's atoms into the fleet codebook (k-medoids on
the pooled atoms: duplicated atoms converge at least as fast as diverse ones) and the category
model's fit; both are small next to the per-home work here (see docs/fleet.md).

Blocking: while the rebuild runs in a thread, a probe writes one event of a freshly registered
home per transaction (as intake does), every ``--probe-ms`` milliseconds, and its latencies are
compared with the same loop's before the rebuild (ratios within this process; the rebuild and
intake share a process in the service, so the GIL's share shows too).

Memory: the rebuild holds every contributing home's waveforms at once. A size whose waveforms
alone would take more than half the available memory is skipped and reported, not run.

``--db`` should name an empty database: the bench refuses one holding homes that would join
the rebuild, and opts its own homes out when done (so a rerun finds none).

    atlas bench fleet-rebuild                                  # --homes 100 1000, SQLite
    atlas bench fleet-rebuild --homes 100 --days 2 --db postgresql+psycopg://postgres@127.0.0.1:5432/atlas_frb
    atlas bench fleet-rebuild --homes 4 --presets apartment --seeds 1 --days 2 --json /tmp/f.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Engine, func, insert, literal, select

from atlas.engine import CalibrationEngine
from atlas.homespec import HomeSpec, parse_home_spec
from atlas.pairing import pair_events
from service.fleetbuild import rebuild_fleet
from service.settings import FleetSettings
from service.storage.engine import make_engine, upgrade
from service.storage.enginestate import save_engine_state
from service.storage.events import EventRow, insert_events
from service.storage.homefleet import contributing_homes, set_opt_out
from service.storage.homes import upsert_home
from service.storage.schema import events, fleet_versions
from service.storage.uses import insert_uses
from simulator.generate import generate_run
from simulator.presets import load_preset

SETTINGS = FleetSettings(min_homes=3, calibrated_days=28)
FIELDS = ("homes", "wall_s", "thread_cpu_s", "process_cpu_s", "peak_rss_mb", "write_ratio")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--homes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument(
        "--presets", nargs="+", default=["apartment", "two_bath_house", "three_bath_house"]
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--days", type=int, default=28, help="days of data per home")
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary directory)")
    parser.add_argument("--probe-ms", type=float, default=20.0, help="pause between probe writes")
    parser.add_argument("--probe-writes", type=int, default=200, help="probe writes before")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")


@dataclass(frozen=True)
class _Base:
    spec: HomeSpec
    installed: datetime
    done: datetime
    state: dict  # the engine snapshot

    @property
    def home_id(self) -> str:
        return self.spec.home_id


def _store_base_home(db: Engine, spec: HomeSpec, seed: int, days: int) -> _Base:
    """Simulate, store and calibrate one base home (see the module docstring)."""
    sim = generate_run(spec, days=days, seed=seed)
    evs = [s.event for s in sim]
    truth = {s.event.event_id: s.truth["valve"] for s in sim}
    first = evs[0].t.astimezone(ZoneInfo(spec.model.timezone))
    installed = datetime(first.year, first.month, first.day, tzinfo=first.tzinfo)
    done = installed + timedelta(days=days)
    uses = pair_events(evs).uses
    engine = CalibrationEngine(spec, installed)
    engine.ingest(uses, evs, done)
    for use in uses[::3]:
        valve = Counter(truth[e] for e in use.event_ids).most_common(1)[0][0]
        engine.add_guided_label(use.use_id, valve, done)
    state = engine.snapshot()
    with db.begin() as conn:
        upsert_home(conn, spec, installed)
        insert_events(conn, [EventRow(e) for e in evs], done)
        insert_uses(conn, uses, done)
        save_engine_state(conn, spec.home_id, state, {"announced": []}, done)
    return _Base(spec, installed, done, state)


def _copy_home(db: Engine, source: _Base, spec: HomeSpec) -> None:
    """Register ``spec`` as a copy of ``source``: its events' rows copied in SQL, its engine
    snapshot saved again under the new id (the snapshot names its home)."""
    with db.begin() as conn:
        upsert_home(conn, spec, source.installed)
        cols = [c for c in events.c if c.name != "home_id"]
        conn.execute(
            insert(events).from_select(
                ["home_id", *(c.name for c in cols)],
                select(literal(spec.home_id), *cols).where(events.c.home_id == source.home_id),
            )
        )
        state = {**source.state, "home_id": spec.home_id}
        save_engine_state(conn, spec.home_id, state, {"announced": []}, source.done)


def _waveform_bytes(db: Engine, home_ids: list[str]) -> float:
    """Mean float32 bytes of a home's waveforms (what the rebuild holds in memory per home)."""
    with db.connect() as conn:
        n = conn.execute(
            select(func.sum(events.c.n_samples)).where(events.c.home_id.in_(home_ids))
        ).scalar_one()
    return 4.0 * float(n) / len(home_ids)


def _available_bytes() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float("inf")


class _Probe:
    """One event of the probe home inserted per transaction; latencies in seconds."""

    def __init__(self, db: Engine, spec: HomeSpec, received: datetime) -> None:
        self.db, self.received = db, received
        sim = generate_run(spec, days=1, seed=0)
        self.template = [s.event for s in sim]
        self.n = 0

    def write(self) -> float:
        base = self.template[self.n % len(self.template)]
        event = replace(base, event_id=f"{base.event_id}-p{self.n}")
        self.n += 1
        start = time.perf_counter()
        with self.db.begin() as conn:
            insert_events(conn, [EventRow(event)], self.received)
        return time.perf_counter() - start

    def loop(self, pause_s: float, until) -> list[float]:
        out = []
        while not until(len(out)):
            out.append(self.write())
            time.sleep(pause_s)
        return out


def _ms(values: list[float], q: float) -> float:
    return float(np.quantile(values, q) * 1e3) if values else float("nan")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _measure(db: Engine, now: datetime, n_homes: int, probe: _Probe, args) -> dict:
    pause = args.probe_ms / 1e3
    before = probe.loop(pause, lambda k: k >= args.probe_writes)
    outcome: list = []
    rss_before = _rss_mb()
    cpu = time.process_time()
    thread = threading.Thread(target=lambda: outcome.append(rebuild_fleet(db, SETTINGS, now)))
    thread.start()
    during = probe.loop(pause, lambda k: not thread.is_alive())
    thread.join()
    process_cpu = time.process_time() - cpu
    (done,) = outcome
    with db.connect() as conn:
        stored = None
        if done.version is not None:
            query = select(fleet_versions.c.n_homes).where(fleet_versions.c.version == done.version)
            stored = conn.execute(query).scalar_one()
    p50_before, p50_during = _ms(before, 0.5), _ms(during, 0.5)
    return {
        "homes": n_homes,
        "version": done.version,
        "reason": done.reason,
        "n_homes_built": stored,
        "n_calibrated": done.n_calibrated,
        "wall_s": done.build_s,
        "thread_cpu_s": done.cpu_s,
        "process_cpu_s": process_cpu,
        "peak_rss_mb": _rss_mb(),
        "rss_before_mb": rss_before,
        "write_p50_ms_before": p50_before,
        "write_p90_ms_before": _ms(before, 0.9),
        "write_max_ms_before": _ms(before, 1.0),
        "write_p50_ms_during": p50_during,
        "write_p90_ms_during": _ms(during, 0.9),
        "write_max_ms_during": _ms(during, 1.0),
        "writes_during": len(during),
        "write_ratio": p50_during / p50_before,
    }


def _others(db: Engine) -> list[str]:
    """Homes of the database that a rebuild would read besides the bench's."""
    with db.connect() as conn:
        return contributing_homes(conn, datetime.now(UTC) + timedelta(days=36500))


def _opt_out_all(db: Engine, home_ids: list[str], now: datetime) -> None:
    """Leave a reused ``--db`` with none of this run's homes contributing."""
    with db.begin() as conn:
        for home_id in home_ids:
            set_opt_out(conn, home_id, True, now)


def run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        url = args.db
        if url is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="atlas-fleetrb-"))
            url = f"sqlite:///{workdir}/atlas.db"
        db = make_engine(url)
        stack.callback(db.dispose)
        upgrade(db)
        if others := _others(db):
            print(f"{url}: {len(others)} homes would join the rebuild; use an empty database")
            return 2
        tag = f"frb{int(time.time()) % 100000:05d}-"
        t0 = time.perf_counter()
        base: list[_Base] = []
        for preset in args.presets:
            for seed in args.seeds:
                data = load_preset(preset).to_dict() | {"home_id": f"{tag}{len(base):05d}"}
                spec = parse_home_spec(data)
                base.append(_store_base_home(db, spec, seed, args.days))
        base_s = time.perf_counter() - t0
        per_home = _waveform_bytes(db, [b.home_id for b in base])
        budget = 0.5 * _available_bytes()
        sizes = sorted(set(args.homes))
        runnable = [n for n in sizes if n * per_home <= budget]
        t0 = time.perf_counter()
        for i in range(len(base), max(runnable, default=0)):
            source = base[i % len(base)]
            copy = parse_home_spec(source.spec.to_dict() | {"home_id": f"{tag}{i:05d}"})
            _copy_home(db, source, copy)
        copy_s = time.perf_counter() - t0
        now = max(b.installed for b in base) + timedelta(days=30)
        probe_spec = parse_home_spec(load_preset("apartment").to_dict() | {"home_id": f"{tag}p"})
        with db.begin() as conn:  # installed at the rebuild: not calibrated, never read
            upsert_home(conn, probe_spec, now)
        probe = _Probe(db, probe_spec, now)
        rows, skipped = [], []
        ids = [f"{tag}{i:05d}" for i in range(max(runnable, default=0))]
        for n in sizes:
            if n not in runnable:
                need = n * per_home / 2**30
                skipped.append({"homes": n, "reason": f"waveforms alone need {need:.1f} GiB"})
                continue
            with db.begin() as conn:
                for i, home_id in enumerate(ids):
                    set_opt_out(conn, home_id, i >= n, now)
            rows.append(_measure(db, now, n, probe, args))
            print(_row(rows[-1]), file=sys.stderr)
        _opt_out_all(db, ids or [b.home_id for b in base], now)
        report = {
            "db": db.dialect.name,
            "days": args.days,
            "base_homes": len(base),
            "base_store_s": base_s,
            "copy_s": copy_s,
            "waveform_mb_per_home": per_home / 1e6,
            "available_mb": _available_bytes() / 1e6,
            "runs": rows,
            "skipped": skipped,
        }
    print(_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _row(r: dict) -> str:
    seconds = " ".join(f"{r[k]:>8.1f}" for k in ("wall_s", "thread_cpu_s", "process_cpu_s"))
    writes = " ".join(
        f"{r[k]:>9.2f}"
        for k in ("write_p50_ms_before", "write_p50_ms_during", "write_p90_ms_during")
    )
    return (
        f"{r['homes']:>6} {seconds} {r['peak_rss_mb']:>9.0f} {writes}"
        f" {r['write_ratio']:>6.2f}  {r['n_homes_built']}"
    )


def _table(report: dict) -> str:
    head = (
        f"fleet rebuild on {report['db']}: {report['base_homes']} base homes of "
        f"{report['days']} days ({report['waveform_mb_per_home']:.1f} MB of waveforms each),"
        f" the rest copies\n"
        f"{'homes':>6} {'wall s':>8} {'cpu s':>8} {'proc s':>8} {'peak MB':>9}"
        f" {'w50 pre':>9} {'w50 dur':>9} {'w90 dur':>9} {'ratio':>6}  built"
    )
    lines = [head, *(_row(r) for r in report["runs"])]
    lines += [f"{s['homes']:>6} skipped: {s['reason']}" for s in report["skipped"]]
    return "\n".join(lines)
