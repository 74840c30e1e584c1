"""The scheduler leader checks every home for leaks on one timetable: the first check when it
starts, the next one ``alerts.check_minutes`` later; a home whose water is running is checked
again at the moment it reaches the limit."""

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


def _due(sched: AtlasScheduler, prefix: str) -> list[datetime]:
    return [
        datetime.fromisoformat(j[len(prefix) :]) for j, _ in sched.jobs() if j.startswith(prefix)
    ]


def test_every_home_is_checked_now_and_again_a_period_later(engine, home_spec) -> None:
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
            t - started > timedelta(minutes=1) for t in _due(sched, "alerts:")
        ):
            time.sleep(0.05)
        (successor,) = _due(sched, "alerts:")
        sched.do_running(home_spec.home_id, clock.now())  # nothing running: no job added
        assert _due(sched, f"running:{home_spec.home_id}:") == []
    finally:
        sched.shutdown()
    assert timedelta(minutes=20) - timedelta(seconds=5) <= successor - started
    assert successor - started <= timedelta(minutes=21)
    assert published == []  # nothing found: no alert state published (start-up does that)
