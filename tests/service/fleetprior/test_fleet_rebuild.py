"""Rebuilding the fleet from the deployment's homes, on SQLite and PostgreSQL: only calibrated
homes that did not opt out are read, and an opted-out home's data change no bit of it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from fp_factories import move_install, spec_of, store_calibrated_home
from sqlalchemy import select

from atlas.timetable import TimetablePolicy
from service.clock import ScaledClock
from service.fleetbuild import rebuild_fleet
from service.push.dispatcher import Dispatcher
from service.runtime.fleetcache import FleetCache
from service.runtime.pipeline import HomePipeline
from service.scheduler.service import AtlasScheduler
from service.settings import FleetSettings
from service.storage.fleets import list_fleet_versions
from service.storage.homefleet import set_opt_out
from service.storage.homes import upsert_home
from service.storage.schema import fleet_versions

SETTINGS = FleetSettings(min_homes=3, calibrated_days=28)


def _blob(db, version: int) -> bytes:
    with db.connect() as conn:
        query = select(fleet_versions.c.blob).where(fleet_versions.c.version == version)
        return conn.execute(query).scalar_one()


def _contributors(db, uid: str) -> datetime:
    """Three calibrated homes, and one installed two days before the returned rebuild time."""
    for i, preset in enumerate(("apartment", "two_bath_house", "apartment")):
        installed = store_calibrated_home(db, spec_of(preset, f"c{i}-{uid}"), seed=10 + i)
    now = installed + timedelta(days=30)
    store_calibrated_home(db, spec_of("apartment", f"new-{uid}"), seed=20)
    move_install(db, f"new-{uid}", now - timedelta(days=2))
    return now


def test_an_opted_out_home_changes_no_bit_and_only_calibrated_homes_count(engine, uid):
    opted = spec_of("two_bath_house", f"out-{uid}")
    with engine.begin() as conn:  # registered and opted out before it has any data
        upsert_home(conn, opted, datetime(2026, 3, 1, tzinfo=UTC))
        set_opt_out(conn, opted.home_id, True, datetime(2026, 3, 1, tzinfo=UTC))
    now = _contributors(engine, uid)
    without = rebuild_fleet(engine, SETTINGS, now)
    assert (without.version, without.n_homes, without.n_calibrated) == (1, 3, 3)
    store_calibrated_home(engine, opted, seed=30)  # its data now present, still opted out
    with_data = rebuild_fleet(engine, SETTINGS, now)
    assert (with_data.version, with_data.n_homes) == (2, 3)
    assert _blob(engine, 2) == _blob(engine, 1)
    with engine.begin() as conn:
        set_opt_out(conn, opted.home_id, False, now)
    opted_in = rebuild_fleet(engine, SETTINGS, now)
    assert (opted_in.version, opted_in.n_homes) == (3, 4)
    assert _blob(engine, 3) != _blob(engine, 1)  # the same home's data do count once allowed


def test_too_few_calibrated_homes_build_no_version(engine, uid):
    now = _contributors(engine, uid)
    done = rebuild_fleet(engine, SETTINGS.model_copy(update={"min_homes": 4}), now)
    assert done.version is None and "min_homes=4" in done.reason
    with engine.connect() as conn:
        assert list_fleet_versions(conn) == []


def test_the_leader_rebuilds_on_schedule_and_schedules_the_next(sqlite_engine, uid):
    now = _contributors(sqlite_engine, uid)
    clock = ScaledClock(now, time.time(), 1.0)
    fleets = FleetCache(FleetSettings(rebuild_days=7, min_homes=3))
    pipe = HomePipeline(sqlite_engine, clock=clock.now, fleets=fleets)
    dispatcher = Dispatcher(
        sqlite_engine,
        clock=clock.now,
        policy=TimetablePolicy(),
        topic_base="t",
        publish=lambda topic, payload: None,
    )
    sched = AtlasScheduler(sqlite_engine, pipe, dispatcher, clock, sweep_s=3600)
    next_week = f"fleet:{(now + timedelta(days=7)).astimezone(UTC):%Y-%m-%dT%H:%M}"  # due now
    sched.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _fleet_jobs(sched, next_week):
            time.sleep(0.1)
        assert _fleet_jobs(sched, next_week)
    finally:
        sched.shutdown()
    with sqlite_engine.connect() as conn:
        (built,) = list_fleet_versions(conn)
    assert built.n_homes == 3


def _fleet_jobs(sched, prefix: str) -> list[str]:
    return [j for j, _ in sched.jobs() if j.startswith(prefix)]
