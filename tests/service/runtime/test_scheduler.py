"""Scheduler: catch-up after downtime, no duplicate round on re-run, quiet hours, job store."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest
from rt_helpers import clock_at, day_time, pipeline_at, store_days
from sqlalchemy import func, select

from atlas.timetable import TimetablePolicy
from service.push.dispatcher import Dispatcher
from service.scheduler.service import AtlasScheduler
from service.storage.schema import label_requests


def _count(db, home_id, state=None):
    q = select(func.count()).select_from(label_requests).where(label_requests.c.home_id == home_id)
    if state:
        q = q.where(label_requests.c.state == state)
    with db.connect() as conn:
        return conn.execute(q).scalar_one()


def _scheduler(db, clock, published):
    pipe = pipeline_at(db, clock)
    disp = Dispatcher(
        db,
        clock=clock.now,
        policy=TimetablePolicy(),
        topic_base="t",
        publish=lambda topic, payload: published.append((topic, payload)),
    )
    return pipe, AtlasScheduler(db, pipe, disp, clock, sweep_s=3600, retrain_debounce_s=0.1)


def _round_jobs(sched, home_id):
    return [j for j, _ in sched.jobs() if j.startswith(f"round:{home_id}:")]


def _wait(predicate, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def stored_home(engine, home_spec):
    installed, _ = store_days(engine, home_spec, days=9)
    return installed


def test_missed_round_runs_once_after_downtime_and_rerun_sends_nothing(
    engine, home_spec, stored_home
):
    # the service was down over day 8's round (last slot before 21:00); it comes back at 20:59
    clock = clock_at(day_time(stored_home, 8, 20, 59))
    published = []
    pipe, sched = _scheduler(engine, clock, published)
    pipe.process_home(home_spec.home_id)
    sched.start()
    try:

        def round_done():
            # the caught-up job left the store when it was submitted; its successor is stored
            # after every request was marked sent (one commit each: "some sent" would race)
            return (
                _round_jobs(sched, home_spec.home_id)
                and _count(engine, home_spec.home_id, "sent") > 0
                and _count(engine, home_spec.home_id, "planned") == 0
            )

        assert _wait(round_done)
        n_sent = _count(engine, home_spec.home_id, "sent")
        assert n_sent == _count(engine, home_spec.home_id) >= 2
        rounds = _round_jobs(sched, home_spec.home_id)
        assert len(rounds) == 1 and "T" in rounds[0]  # the successor (day 10) is scheduled
        due = stored_home.__class__.fromisoformat(rounds[0].split(":", 2)[2])
        assert due > clock.now()
        # a re-run of the same round (a crash before its successor was stored) adds nothing
        n_published = len(published)
        sched.do_round(home_spec.home_id, day_time(stored_home, 8, 20, 30))
        assert _count(engine, home_spec.home_id) == n_sent
        assert len(published) == n_published + 1  # state re-published, same requests
        assert published[-1][1]["requests"] == published[n_published - 1][1]["requests"]
    finally:
        sched.shutdown()
    # a restarted scheduler finds the stored jobs and does not run day 8 again
    _, again = _scheduler(engine, clock, published)
    again.start()
    try:
        time.sleep(0.5)
        assert _count(engine, home_spec.home_id) == n_sent
        assert any(j.startswith(f"daily:{home_spec.home_id}:") for j, _ in again.jobs())
    finally:
        again.shutdown()


def test_round_caught_up_in_quiet_hours_waits_for_morning(engine, home_spec, stored_home):
    clock = clock_at(day_time(stored_home, 8, 22, 30))  # 22:30: quiet (21:00-08:00)
    published = []
    pipe, sched = _scheduler(engine, clock, published)
    pipe.process_home(home_spec.home_id)
    sched.start()
    try:
        assert _wait(lambda: _count(engine, home_spec.home_id, "planned") > 0)
        assert _count(engine, home_spec.home_id, "sent") == 0
        assert _wait(lambda: any(j.startswith("send:") for j, _ in sched.jobs()))
        send = next(j for j, _ in sched.jobs() if j.startswith("send:"))
        at = datetime.fromisoformat(send.split(":", 2)[2])
        assert at.astimezone(ZoneInfo(home_spec.model.timezone)).time() == dtime(8, 0)
        assert published == []  # nothing pushed in quiet hours
    finally:
        sched.shutdown()


# a job runs in a pool thread and is pickled by reference: its state lives in this module
_BLOCKER: dict = {}


def test_a_daily_update_past_the_misfire_grace_is_not_added_again_each_sweep(
    engine, home_spec, stored_home, caplog
):
    # 10:00 on day 9: that day's 00:05 update lies within the 12 h catch-up window but beyond
    # a one-minute misfire grace, so APScheduler would drop it as missed at every sweep
    clock = clock_at(day_time(stored_home, 9, 10, 0))
    pipe = pipeline_at(engine, clock)
    disp = Dispatcher(
        engine,
        clock=clock.now,
        policy=TimetablePolicy(),
        topic_base="t",
        publish=lambda topic, payload: None,
    )
    sched = AtlasScheduler(engine, pipe, disp, clock, sweep_s=3600, misfire_grace_s=60)
    caplog.set_level("WARNING", logger="apscheduler")
    sched.start()
    try:
        for _ in range(3):
            sched.do_sweep()
            time.sleep(0.3)  # APScheduler's loop looks at what the sweep added
        (daily,) = [j for j, _ in sched.jobs() if j.startswith(f"daily:{home_spec.home_id}:")]
    finally:
        sched.shutdown()
    assert datetime.fromisoformat(daily.split(":", 2)[2]) > clock.now()
    assert [r.message for r in caplog.records if "was missed" in r.message] == []


def _blocking_job(successor_id: str) -> None:
    _BLOCKER["started"].set()
    _BLOCKER["release"].wait(20)
    run = datetime.now(UTC) + timedelta(days=1)
    _BLOCKER["sched"].add_once(successor_id, _noop_job, run_date=run)


def _noop_job() -> None:
    pass


def test_shutdown_waits_for_a_running_job_that_adds_its_successor(engine):
    """APScheduler's own shutdown holds its job-store lock while it waits for running jobs, so a
    job adding its successor (as every Atlas job does) deadlocked it; ours drains first."""
    clock = clock_at(datetime.now(UTC))
    _, sched = _scheduler(engine, clock, [])
    _BLOCKER.update(started=threading.Event(), release=threading.Event(), sched=sched)
    sched.start()
    stopper = threading.Thread(target=sched.shutdown, daemon=True)
    try:
        sched.add_once("blocker", _blocking_job, run_date=datetime.now(UTC), args=["successor"])
        assert _BLOCKER["started"].wait(10)
        stopper.start()
        time.sleep(0.3)  # shutdown is now waiting for the running job
        _BLOCKER["release"].set()
        stopper.join(15)
        assert not stopper.is_alive(), "shutdown deadlocked with the running job"
    finally:
        _BLOCKER["release"].set()
        if stopper.ident is None:  # failed before the shutdown was started
            sched.shutdown()
    # the successor the job added during shutdown was stored, not dropped
    _, again = _scheduler(engine, clock, [])
    again.start()
    try:
        assert "successor" in {j for j, _ in again.jobs()}
        assert "blocker" not in {j for j, _ in again.jobs()}
    finally:
        again.shutdown()
