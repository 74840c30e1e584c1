"""The scheduler checks every home for leaks on its own timetable: the first check when the
home is reconciled, the next one ``alerts.check_minutes`` later, each pushing what it found."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from rt_helpers import clock_at, day_time, pipeline_at, store_days

from atlas.timetable import TimetablePolicy
from service.alerting import AlertCheck
from service.api.usage_report import use_litres
from service.push.dispatcher import Dispatcher
from service.scheduler.service import AtlasScheduler
from service.settings import AlertsSettings


def _alert_jobs(sched: AtlasScheduler, home_id: str) -> list[datetime]:
    prefix = f"alerts:{home_id}:"
    return [
        datetime.fromisoformat(j[len(prefix) :]) for j, _ in sched.jobs() if j.startswith(prefix)
    ]


def test_each_home_is_checked_now_and_again_a_period_later(engine, home_spec) -> None:
    installed, _ = store_days(engine, home_spec, days=2)
    clock = clock_at(day_time(installed, 1, 14, 0))
    published: list[tuple[str, dict]] = []
    disp = Dispatcher(
        engine,
        clock=clock.now,
        policy=TimetablePolicy(),
        topic_base="t",
        publish=lambda topic, payload: published.append((topic, payload)),
    )
    check = AlertCheck(engine, AlertsSettings(check_minutes=20), use_litres)
    sched = AtlasScheduler(
        engine, pipeline_at(engine, clock), disp, clock, sweep_s=3600, alerts=check
    )
    started = clock.now()
    sched.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            t - started > timedelta(minutes=1) for t in _alert_jobs(sched, home_spec.home_id)
        ):
            time.sleep(0.05)
        (successor,) = _alert_jobs(sched, home_spec.home_id)
    finally:
        sched.shutdown()
    assert successor - started >= timedelta(minutes=20) - timedelta(seconds=5)
    assert successor - started <= timedelta(minutes=21)
    topics = [topic for topic, _ in published]
    assert f"t/homes/{home_spec.home_id}/alerts" in topics  # the retained state, empty
    assert published[-1][1]["alerts"] == []
