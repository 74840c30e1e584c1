"""The leader's scheduler with the engine work elsewhere: successors and send retries from the
work's result, a running round never re-created by a sweep, and engines loaded only for
answers not seen yet."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from fleet_helpers import until
from sqlalchemy import update

from atlas.timetable import TimetablePolicy
from service.clock import ScaledClock
from service.push.dispatcher import Dispatcher
from service.runtime.pipeline import HomePipeline
from service.scheduler.service import AtlasScheduler
from service.storage.homes import upsert_home
from service.storage.requestplans import insert_planned
from service.storage.schema import label_requests


def _scheduler(db, home_spec, now: datetime) -> AtlasScheduler:
    with db.begin() as conn:
        upsert_home(conn, home_spec, now=now - timedelta(days=7, hours=19))  # day 8, ~19:00
    clock = ScaledClock(now, time.time(), 1.0)
    pipe = HomePipeline(db, clock=clock.now)
    disp = Dispatcher(
        db,
        clock=clock.now,
        policy=TimetablePolicy(),
        topic_base="t",
        publish=lambda topic, payload: None,
    )
    return AtlasScheduler(db, pipe, disp, clock, sweep_s=3600, route=lambda homes: None)


def _round_jobs(sched: AtlasScheduler, home_id: str) -> list[str]:
    return [j for j, _ in sched.jobs() if j.startswith(f"round:{home_id}:")]


def test_a_round_running_elsewhere_is_not_recreated_and_its_successor_comes_from_the_owner(
    sqlite_engine, home_spec
):
    now = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    sched = _scheduler(sqlite_engine, home_spec, now)
    home = home_spec.home_id
    due, successor = now - timedelta(minutes=30), now + timedelta(days=2)
    morning = now + timedelta(hours=10)  # the owner's send fell in quiet hours
    calls: list[tuple] = []
    started, release = threading.Event(), threading.Event()

    def owner_does_it(kind: str, home_id: str, when: datetime | None) -> dict:
        calls.append((kind, home_id, when))
        started.set()
        release.wait(30)
        return {"next_round": successor.isoformat(), "retry_at": morning.isoformat()}

    sched.work = owner_does_it
    sched.start()
    try:
        for job_id in _round_jobs(sched, home):  # the one reconcile made at start
            assert sched.remove_job(job_id)
        sched.schedule_round_at(home, due)  # half an hour late: runs at once
        assert started.wait(30)
        sched.do_sweep()  # meanwhile: the running round has left the job store
        assert _round_jobs(sched, home) == []
        release.set()
        assert until(lambda: _round_jobs(sched, home) == [f"round:{home}:{successor.isoformat()}"])
        assert calls == [("round", home, due)]
        assert f"send:{home}:{morning.isoformat()}" in {j for j, _ in sched.jobs()}
    finally:
        release.set()
        sched.shutdown()


def test_home_work_reports_the_successors_due_times(sqlite_engine, home_spec):
    now = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    sched = _scheduler(sqlite_engine, home_spec, now)
    out = sched.home_work("daily", home_spec.home_id, now)
    assert isinstance(out["codebook_due"], bool)
    assert now < datetime.fromisoformat(out["next_daily"]) <= now + timedelta(days=1)
    out = sched.home_work("round", home_spec.home_id, now)
    assert datetime.fromisoformat(out["next_round"]) > now


def test_the_sweep_loads_an_engine_only_for_an_answer_it_has_not_seen(sqlite_engine, home_spec):
    now = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    sched = _scheduler(sqlite_engine, home_spec, now)
    home = home_spec.home_id
    views: list[str] = []
    state = {"r-1": "open"}

    def engine_view(home_id: str):
        views.append(home_id)
        return SimpleNamespace(
            requests=[SimpleNamespace(request_id=k, state=v) for k, v in state.items()]
        )

    sched.pipeline.engine_view = engine_view
    assert not sched.unapplied_answers(home) and views == []  # no answer: no engine
    row = {
        "request_id": "r-1",
        "round": 8,
        "slot": 0,
        "use_id": None,
        "choices": ["a"],
        "prompt": "?",
        "expires_at": None,
        "inclusion_prob": 1.0,
        "is_audit": False,
        "predicted": None,
    }
    with sqlite_engine.begin() as conn:
        insert_planned(conn, home, [row], now)
        conn.execute(update(label_requests).values(state="declined", closed_at=now))
    assert sched.unapplied_answers(home) and views == [home]  # answered, still open: retrain
    state["r-1"] = "declined"
    assert not sched.unapplied_answers(home) and len(views) == 2  # applied now: seen
    assert not sched.unapplied_answers(home) and len(views) == 2  # nothing new: no engine
