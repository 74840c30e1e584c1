"""End to end through the shared Mosquitto and the real HTTP server, with a restart (slow).

A simulated home streams 10 days at 14,400x; the homeowner answers over HTTP; the service is
stopped on the evening of day 7 and comes back on day 8 in quiet hours, after that day's round
was due (so it is caught up at start-up and sent the next morning). Afterwards:
every event is stored exactly once, every answer the homeowner got a 2xx for is a label, every
round that fell due (days 8, 9, 10; day 8's caught up after the restart) has its requests, and
the dashboard endpoints report the home.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import httpx
import pytest
from shared_services import SHARED_BROKER_URL
from sqlalchemy import func, select

from service.clock import ScaledClock
from service.demo import HttpHomeowner, InProcessService, SimulatedHome, demo_settings, register
from service.demo_summary import event_counts
from service.storage.engine import make_engine, upgrade
from service.storage.schema import label_requests, labels
from service.waiting import wait_until
from simulator.homeowner import Homeowner
from simulator.stream import stream_events

pytestmark = pytest.mark.slow
DAYS = 10
SPEED = 14_400.0  # a simulated hour in 0.25 s: 10 days in 60 s


def _rounds(db, home_id: str) -> dict[int, int]:
    with db.connect() as conn:
        return dict(
            conn.execute(
                select(label_requests.c.round, func.count())
                .where(label_requests.c.home_id == home_id)
                .group_by(label_requests.c.round)
            ).all()
        )


def test_restart_loses_no_event_label_or_round(tmp_path, uid, topic_prefix):
    home = SimulatedHome.generate("two_bath_house", DAYS, seed=5, home_id=f"e2e-{uid}")
    db = make_engine(f"sqlite:///{tmp_path}/atlas.db")
    upgrade(db)
    register(db, home)
    clock = ScaledClock(home.installed, time.time() + 2.0, SPEED)
    settings = demo_settings(
        tmp_path,
        SHARED_BROKER_URL,
        topic_base=topic_prefix,
        client_prefix=f"e2e-{uid}",
        # wall seconds: at 14,400x a minute of wall time is ten days
        scheduler_sweep_s=2.0,
        retrain_debounce_s=0.3,
    )
    service = InProcessService(settings, db, clock)
    service.start()
    # a homeowner who answers every request at once: this test is about the restart, and a
    # default homeowner (20% never answer, 30% late) may answer none of the few requests
    prompt = Homeowner(seed=3, p_no_answer=0.0, p_late=0.0, p_not_sure=0.0)
    homeowner = HttpHomeowner(service.url, home, clock, model=prompt)
    homeowner.start()
    report = {}
    messages = home.messages(topic_prefix)

    def play() -> None:
        time.sleep(max(0.0, clock.wall_start - time.time()))
        report["r"] = stream_events(
            messages,
            SHARED_BROKER_URL,
            speed=SPEED,
            outbox_dir=tmp_path / "outbox",
            progress=False,
            client_id=f"e2e-gw-{uid}",
        )

    player = threading.Thread(target=play, daemon=True)
    player.start()
    try:
        day8 = home.installed + timedelta(days=7)  # local midnight starting day 8
        assert wait_until(lambda: clock.now() >= day8 - timedelta(hours=4), 120)
        service.stop()  # day 7, 20:00: the rounds start on day 8 (its last slot before 21:00)
        stopped_at = clock.now()
        assert wait_until(lambda: clock.now() >= day8 + timedelta(hours=22), 30)  # quiet hours
        service.start()  # same client ids: the broker kept the events published meanwhile
        player.join(120)
        assert "r" in report
        n_messages = len(messages)
        assert wait_until(lambda: event_counts(db, home.spec.home_id)["stored"] >= n_messages, 60)
        end = home.end + timedelta(minutes=15)
        assert wait_until(lambda: clock.now() >= end, 60)
        # on a loaded machine a job runs a few wall seconds late: hours of simulated time
        assert wait_until(lambda: {8, 10} <= set(_rounds(db, home.spec.home_id)), 30)
        time.sleep(1.0)  # answers due by the end get posted
        homeowner.stop()
        counts = event_counts(db, home.spec.home_id)
        rounds = _rounds(db, home.spec.home_id)
        with db.connect() as conn:
            slots = conn.execute(
                select(label_requests.c.round, label_requests.c.slot).where(
                    label_requests.c.home_id == home.spec.home_id
                )
            ).all()
            stored_answers = dict(
                conn.execute(
                    select(labels.c.request_id, labels.c.label).where(
                        labels.c.home_id == home.spec.home_id, labels.c.request_id.is_not(None)
                    )
                ).all()
            )
        with httpx.Client(base_url=service.url, timeout=10) as api:
            state = api.get(f"/v1/homes/{home.spec.home_id}").raise_for_status().json()
            accuracy = api.get(f"/v1/homes/{home.spec.home_id}/accuracy").raise_for_status()
            recent = api.get(f"/v1/homes/{home.spec.home_id}/uses", params={"limit": 5})
    finally:
        homeowner.stop()
        service.stop()
        db.dispose()
    assert stopped_at < day8 + timedelta(hours=8)  # the service really was down at round time
    # no event lost or doubled across the restart
    assert counts["stored"] == counts["distinct_event_ids"] == len(home.sim)
    assert counts["dead_letters"] == 0
    # every round that fell due has its requests, each (round, slot) once
    assert set(rounds) == {8, 10}  # rounds every second day from day 8 (TimetablePolicy)
    assert len(slots) == len(set(slots))
    # every answer the API accepted is a stored label
    assert homeowner.counters.answered > 0
    for request_id, choice in homeowner.answers.items():
        assert request_id in stored_answers or choice == "not sure", request_id
    # the dashboard reports the home
    assert state["calibration_day"] >= DAYS
    assert state["display_level"] in ("rules", "category", "fixture", "valve")
    assert state["label_budget"]["labels_active"] + state["label_budget"]["labels_audit"] == len(
        [c for c in homeowner.answers.values() if c != "not sure"]
    )
    assert accuracy.json()["count"] > 0
    assert recent.status_code == 200 and recent.json()["data"]
