"""The virtual clock: service time moves only when advanced, so a slow job takes none of it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from atlas.timetable import TimetablePolicy
from service.clock import VirtualClock
from service.push.dispatcher import Dispatcher
from service.runtime.pipeline import HomePipeline
from service.scheduler.service import AtlasScheduler
from service.waiting import wait_until

START = datetime(2026, 3, 9, 19, 22, tzinfo=ZoneInfo("America/Chicago"))

# a job runs in a pool thread and is pickled by reference: its state lives in this module
_JOBS: dict = {}


def _timed_job(name: str, wall_s: float) -> None:
    clock = _JOBS["clock"]
    started = clock.now()
    time.sleep(wall_s)
    _JOBS["ran"].append((name, started, clock.now()))


@pytest.fixture
def virtual_scheduler(sqlite_engine):
    clock = VirtualClock(START)
    dispatcher = Dispatcher(
        sqlite_engine,
        clock=clock.now,
        policy=TimetablePolicy(),
        topic_base="t",
        publish=lambda topic, payload: None,
    )
    sched = AtlasScheduler(
        sqlite_engine, HomePipeline(sqlite_engine, clock=clock.now), dispatcher, clock
    )
    _JOBS.update(clock=clock, ran=[])
    sched.start()
    yield clock, sched
    sched.shutdown()


def test_virtual_time_moves_only_when_advanced():
    clock = VirtualClock(START)
    time.sleep(0.01)
    assert clock.now() == START and clock.now().tzinfo == UTC
    later = START + timedelta(hours=5)
    clock.advance_to(later)
    assert clock.now() == later
    with pytest.raises(ValueError, match="should not be before"):
        clock.advance_to(START)
    assert clock.from_wall(clock.to_wall(later)) == later
    assert clock.wall_seconds(3600.0) == 0.0  # a pause in service time is no pause


def test_a_job_runs_once_the_virtual_clock_reaches_it(virtual_scheduler):
    clock, sched = virtual_scheduler
    due = START + timedelta(hours=1)
    sched.add_once("later", _timed_job, run_date=clock.to_wall(due), args=["later", 0.0])
    sched.wakeup()
    time.sleep(0.3)  # wall time passes; service time does not
    assert _JOBS["ran"] == [] and sched.idle() and sched.next_due() == due
    clock.advance_to(due)
    sched.wakeup()
    assert wait_until(lambda: bool(_JOBS["ran"]) and sched.idle(), 10)
    assert _JOBS["ran"] == [("later", due, due)]


def test_a_job_taking_wall_seconds_takes_no_service_time(virtual_scheduler):
    """Under the scaled clock a round that took a wall second sent its requests 3.3 simulated
    hours late, at night; here the clock waits for the scheduler to be idle."""
    clock, sched = virtual_scheduler
    due = START + timedelta(minutes=5)
    for name, wall_s in (("slow", 1.0), ("next", 0.0)):  # due together: one after the other
        sched.add_once(name, _timed_job, run_date=clock.to_wall(due), args=[name, wall_s])
    clock.advance_to(due)
    sched.wakeup()
    time.sleep(0.3)
    assert not sched.idle()  # the slow job runs: a driver would not advance the clock
    assert wait_until(sched.idle, 10)
    assert _JOBS["ran"] == [("slow", due, due), ("next", due, due)]
