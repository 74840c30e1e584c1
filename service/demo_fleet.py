"""``atlas demo --homes N``: the Nth home starts from what the earlier homes learned.

N-1 simulated homes (presets cycling over ``fleet_presets``, seeds ``seed``, ``seed + 1``, ...)
are installed ``install_every`` days apart through the live service (``POST /v1/homes``, as an
installer registers a home), each publishing ``days`` days of events and answering its own
questions; the scheduler leader rebuilds the fleet every ``fleet.rebuild_days`` from the homes
calibrated by then (docs/fleet.md, "In the service"). The last home, of ``last_preset`` (a
layout most of the fleet does not have), is installed the day after the first rebuild that
includes every earlier home, so it starts from a fleet of all of them: a shorter checklist, the
fleet's codebook and category evidence. Then the same last home (same seeds, same install date)
runs alone in a fresh service, without a fleet, and the two are compared: labels asked (guided
examples and answered questions) until the trailing-7-day true accuracy first meets the week-4
targets, as ``atlas bench fleet-transfer`` counts them.

Everything runs on one :class:`~service.clock.VirtualClock` driven by
:class:`~service.demo.VirtualTimeDriver`, so the same seeds print the same tables.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select

from service.clock import VirtualClock
from service.demo import (
    Gateway,
    HttpHomeowner,
    InProcessService,
    SimulatedHome,
    VirtualTimeDriver,
    demo_settings,
    quiet_service_logs,
    run_demo,
    start_broker,
)
from service.demo_summary import format_table, summary_rows
from service.settings import FleetSettings
from service.storage.engine import make_engine, upgrade
from service.storage.schema import fleet_versions
from service.storage.schema import labels as label_rows
from service.storage.stats import db_stats
from simulator.homeowner import Homeowner

#: The week-4 targets of the seed protocol (``atlas bench fleet-transfer``'s ``week4_targets``).
WEEK4_TARGETS = {"category": 0.93, "fixture": 0.89, "valve": 0.81}
#: No goal is counted before day 8: the model has had a week of data by then.
FIRST_SCORED_DAY = 8


def install_days(n_homes: int, install_every: int, fleet: FleetSettings) -> list[int]:
    """Days after the first installation at which each home is installed: the fleet homes
    ``install_every`` apart, the last one the day after the first fleet rebuild (the leader
    rebuilds at start-up and every ``rebuild_days``) that counts every fleet home as calibrated
    (installed ``calibrated_days`` before it)."""
    if n_homes < 2:
        raise ValueError(f"n_homes={n_homes}: a fleet demo needs at least 2 homes")
    if fleet.rebuild_days <= 0:
        raise ValueError("fleet.rebuild_days must be > 0: the fleet is rebuilt by the scheduler")
    fleet_days = [i * install_every for i in range(n_homes - 1)]
    ready = fleet_days[-1] + fleet.calibrated_days
    rebuild = math.ceil(ready / fleet.rebuild_days) * fleet.rebuild_days
    return [*fleet_days, rebuild + 1]


@dataclass(frozen=True)
class DemoHome:
    """One home of the demo: its simulation and its homeowner's seed."""

    home: SimulatedHome
    preset: str
    seed: int
    homeowner_seed: int


class Installers:
    """The installers and homeowners of every home, as one actor of the driver: a home is
    registered over the HTTP API at its install time (its homeowner then plans the checklist the
    service serves it, shorter with a fleet), and each homeowner answers its own questions."""

    def __init__(
        self,
        api_url: str,
        homes: list[DemoHome],
        clock: VirtualClock,
        out: Callable[[str], None],
    ) -> None:
        self.api_url = api_url
        self.waiting = sorted(homes, key=lambda h: h.home.installed)
        self.clock = clock
        self.out = out
        self.homeowners: dict[str, HttpHomeowner] = {}
        self.http = httpx.Client(base_url=api_url, timeout=30.0)

    def close(self) -> None:
        for owner in self.homeowners.values():
            owner.stop()
        self.http.close()

    def next_due(self) -> datetime | None:
        times = [h.home.installed for h in self.waiting[:1]]
        times += [t for o in self.homeowners.values() if (t := o.next_due()) is not None]
        return min(times) if times else None

    def look(self) -> None:
        for owner in self.homeowners.values():
            owner.look()

    def act(self, now: datetime) -> None:
        while self.waiting and self.waiting[0].home.installed <= now:
            self._install(self.waiting.pop(0))
        for owner in self.homeowners.values():
            owner.act(now)

    def _install(self, demo_home: DemoHome) -> None:
        spec = demo_home.home.spec
        self.http.post("/v1/homes", json=spec.to_dict()).raise_for_status()
        home = self.http.get(f"/v1/homes/{spec.home_id}").raise_for_status().json()
        owner = HttpHomeowner(
            self.api_url,
            demo_home.home,
            self.clock,
            model=Homeowner(seed=demo_home.homeowner_seed),
        )
        self.homeowners[spec.home_id] = owner
        planned = owner.plan_checklist()
        fleet = home.get("fleet") or {}
        started = fleet.get("started_version")
        self.out(
            f"  {demo_home.home.installed.date()}: installed {spec.home_id} "
            f"({demo_home.preset}, seed {demo_home.seed}), "
            + (f"fleet version {started}, " if started is not None else "no fleet, ")
            + f"{planned} checklist announcements"
        )


class WeekLines:
    """Prints a line per simulated week as the clock leaves it (the service idle, so the counts
    are the same on every run): progress over the demo's weeks of silence in between."""

    def __init__(self, db: Engine, start: datetime, out: Callable[[str], None]) -> None:
        self.db = db
        self.start = start
        self.out = out
        self.week = 1

    def __call__(self, t: datetime) -> None:
        while t >= self.start + timedelta(days=7 * self.week):
            with self.db.connect() as conn:
                stats = db_stats(conn)
                labels = conn.execute(select(func.count()).select_from(label_rows)).scalar_one()
                fleet = conn.execute(select(func.max(fleet_versions.c.version))).scalar()
            self.out(
                f"  week {self.week:>2}: {stats['homes']} homes, {stats['events']} events "
                f"stored, {labels} labels, fleet version {fleet or 'none yet'}"
            )
            self.week += 1


def labels_to_targets(per_day: list[dict]) -> dict:
    """Labels asked (guided and answered) by the first day from day 8 whose trailing-7-day true
    accuracy meets every week-4 target; None with the final count when no day does."""
    for row in per_day:
        accuracy = {lv: row["levels"][lv]["true_accuracy"] for lv in WEEK4_TARGETS}
        if row["day"] >= FIRST_SCORED_DAY and all(
            accuracy[lv] is not None and accuracy[lv] >= goal for lv, goal in WEEK4_TARGETS.items()
        ):
            return {"day": row["day"], "labels": row["labels"] + row["guided_labels"]}
    last = per_day[-1]
    return {"day": None, "labels": None, "final_labels": last["labels"] + last["guided_labels"]}


def plan_homes(
    n_homes: int,
    *,
    days: int,
    seed: int,
    homeowner_seed: int,
    fleet_presets: tuple[str, ...],
    last_preset: str,
    install_every: int,
    fleet: FleetSettings,
    first_install: datetime,
) -> list[DemoHome]:
    """The homes of the demo, in install order (see the module docstring)."""
    planned = []
    for i, offset in enumerate(install_days(n_homes, install_every, fleet)):
        preset = last_preset if i == n_homes - 1 else fleet_presets[i % len(fleet_presets)]
        start = first_install + timedelta(days=offset)
        home = SimulatedHome.generate(
            preset, days, seed + i, home_id=f"home-{i + 1:02d}", start=start
        )
        planned.append(DemoHome(home, preset, seed + i, homeowner_seed + i))
    return planned


def run_fleet_demo(
    *,
    n_homes: int = 11,
    days: int = 28,
    seed: int = 1,
    homeowner_seed: int = 7,
    fleet_presets: tuple[str, ...] = ("two_bath_house", "three_bath_house"),
    last_preset: str = "apartment",
    install_every: int = 1,
    fleet: FleetSettings | None = None,
    workdir: Path | None = None,
    out: Callable[[str], None] = print,
) -> dict:
    """Run the fleet demo (module docstring); returns the summary, also printed."""
    fleet = fleet or FleetSettings()
    started = time.monotonic()
    homes = plan_homes(
        n_homes,
        days=days,
        seed=seed,
        homeowner_seed=homeowner_seed,
        fleet_presets=fleet_presets,
        last_preset=last_preset,
        install_every=install_every,
        fleet=fleet,
        first_install=datetime(2026, 3, 2),
    )
    last = homes[-1]
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atlas-fleet-")))
        workdir.mkdir(parents=True, exist_ok=True)
        url = start_broker(stack, workdir, out)
        db = make_engine(f"sqlite:///{workdir}/fleet.db")
        stack.callback(db.dispose)
        upgrade(db)
        clock = VirtualClock(homes[0].home.installed)
        settings = demo_settings(workdir, url, db_url=f"sqlite:///{workdir}/fleet.db", fleet=fleet)
        service = InProcessService(settings, db, clock)
        service.start()
        stack.callback(service.stop)
        out(f"service up: {service.url}; {n_homes} homes, {days} simulated days each")
        installers = Installers(service.url, homes, clock, out)
        stack.callback(installers.close)
        gateway = Gateway(url, f"demo-gateway-{uuid.uuid4().hex[:8]}")
        stack.callback(gateway.close)
        publications = sorted((p for h in homes for p in h.home.publications()), key=lambda p: p[0])
        driver = VirtualTimeDriver(clock, service.runtime, gateway, installers, publications)
        until = max(last.home.end + timedelta(minutes=10), publications[-1][0])
        driver.run_until(until, WeekLines(db, clock.now(), out))
        with httpx.Client(base_url=service.url, timeout=30) as api:
            records = {h.home.spec.home_id: _record(db, api, h) for h in (homes[0], homes[-1])}
    out(f"fleet run: {time.monotonic() - started:.0f} s of wall time")
    alone = run_demo(
        days=days,
        seed=last.seed,
        homeowner_seed=last.homeowner_seed,
        preset=last_preset,
        start=last.home.installed.replace(tzinfo=None),
        home_id=last.home.spec.home_id,
        verbose=True,
        out=lambda line: None,
    )
    summary = {
        "n_homes": n_homes,
        "days": days,
        "first": records[homes[0].home.spec.home_id],
        "last": records[last.home.spec.home_id],
        "last_without_fleet": {
            "home_id": last.home.spec.home_id,
            "preset": last_preset,
            "seed": last.seed,
            "weeks": alone["weeks"],
            "to_week4_targets": labels_to_targets(alone["per_day"]),
        },
    }
    _print(summary, out)
    out(f"\n{n_homes} homes played in {time.monotonic() - started:.0f} s of wall time")
    return summary


def _record(db, api: httpx.Client, demo_home: DemoHome) -> dict:
    home_id = demo_home.home.spec.home_id
    fleet = api.get(f"/v1/homes/{home_id}").raise_for_status().json().get("fleet") or {}
    return {
        "home_id": home_id,
        "preset": demo_home.preset,
        "seed": demo_home.seed,
        "installed": demo_home.home.installed.isoformat(),
        "fleet": fleet,
        "weeks": summary_rows(db, api, demo_home.home, 7),
        "to_week4_targets": labels_to_targets(summary_rows(db, api, demo_home.home, 1)),
    }


def _targets_text(found: dict) -> str:
    if found["labels"] is None:
        return f"not reached ({found['final_labels']} labels by the end)"
    return f"{found['labels']} labels (day {found['day']})"


def _print(summary: dict, out: Callable[[str], None]) -> None:
    for key, title in (
        ("first", "first home"),
        ("last", "last home, with the fleet"),
        ("last_without_fleet", "the same last home without a fleet"),
    ):
        record = summary[key]
        out(f"\n{title}: {record['home_id']} ({record['preset']}, seed {record['seed']})")
        for line in format_table(record["weeks"], "week"):
            out(line)
        out(f"week-4 targets reached after {_targets_text(record['to_week4_targets'])}")
    with_fleet = summary["last"]["to_week4_targets"]["labels"]
    without = summary["last_without_fleet"]["to_week4_targets"]["labels"]
    if with_fleet is not None and without:
        saved = 1 - with_fleet / without
        out(f"\nthe last home asked {saved:.0%} fewer questions with the fleet")


def run(args: argparse.Namespace) -> int:
    """``atlas demo --homes N``; exit status 0 when both runs of the last home completed."""
    unused = [
        flag
        for flag, value in (
            ("--secure", args.secure),
            ("--broker", args.broker),
            ("--keep-running", args.keep_running),
            ("--verbose", args.per_day),
            ("--diligent-homeowner", args.diligent_homeowner),
        )
        if value
    ]
    if unused:
        raise ValueError(f"{', '.join(unused)}: not used with --homes (the fleet demo)")
    if args.days < 8:
        raise ValueError(f"--days={args.days}: the fleet demo needs at least 8 days per home")
    quiet_service_logs()
    summary = run_fleet_demo(
        n_homes=args.homes,
        days=args.days,
        seed=args.seed,
        homeowner_seed=args.homeowner_seed,
        last_preset=args.last_preset,
        install_every=args.install_every,
        workdir=args.workdir,
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2), "utf-8")
    return 0
