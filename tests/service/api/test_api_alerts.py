"""Leak alerts in the service: simulated faults go through the intake and pairing as live
events would, the scheduled check stores each alert once, the dispatcher pushes it (signed
webhook, MQTT state), and the homeowner acknowledges it over HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from api_factories import bearer, preset_spec
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from atlas.alerts import FLAPPER, RUNNING
from atlas.timetable import TimetablePolicy
from service.alerting import AlertCheck
from service.api.usage_report import use_litres
from service.intake.messages import InboundMessage
from service.intake.pipeline import IngestPipeline
from service.push.dispatcher import Dispatcher
from service.push.webhook import verify
from service.settings import AlertsSettings, HomePushSettings
from simulator.generate import SimEvent, generate_run
from simulator.usage import Faults, LeakingFlapper, LeftRunning

START = datetime(2026, 4, 6)  # local midnight (a Monday), clear of the seeded March uses
SECRET = "alert-secret-0123456789"


def _simulate(home_id: str, faults: Faults, days: int = 1) -> list[SimEvent]:
    spec = preset_spec("two_bath_house", home_id)
    return generate_run(spec, days=days, seed=4, start=START, faults=faults)


def _ingest(engine: Engine, sims: list[SimEvent], until: datetime) -> None:
    """Store and pair the events up to ``until`` as the intake does."""
    pipeline = IngestPipeline(engine)
    arrived = datetime.now(UTC) - timedelta(minutes=1)
    batch = [
        InboundMessage(s.event.topic(), json.dumps(s.payload()).encode(), arrived)
        for s in sims
        if s.event.t <= until
    ]
    for k in range(0, len(batch), 500):
        pipeline.process(batch[k : k + 500])
    pipeline.pair({sims[0].event.home_id})


@pytest.fixture
def check(engine: Engine) -> AlertCheck:
    return AlertCheck(engine, AlertsSettings(), use_litres)


class _Receiver:
    """A webhook endpoint that keeps every POST (headers and body) and answers 200."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    made = _Receiver()
    yield made
    made.server.shutdown()


def _dispatcher(
    engine: Engine, now: list[datetime], receiver: _Receiver, published: dict
) -> Dispatcher:
    cfg = HomePushSettings(webhook_url=receiver.url, webhook_secret=SECRET)
    return Dispatcher(
        engine,
        clock=lambda: now[0],
        topic_base="atlas/v1",
        publish=lambda topic, payload: published.__setitem__(topic, payload),
        # quiet all day: alerts go out anyway, label requests would not
        policy=TimetablePolicy(quiet_start=time(0), quiet_end=time(23, 59)),
        home_push=lambda home_id: cfg,
    )


def test_a_hose_left_running_alerts_when_it_reaches_the_setting_and_only_once(
    engine: Engine, homes: dict, check: AlertCheck
) -> None:
    home_id = homes["a"]["home_id"]
    faults = Faults(left_running=LeftRunning(start_s=10 * 3600, duration_s=3 * 3600))
    sims = _simulate(home_id, faults)
    hose = [s.event for s in sims if s.truth["activity"] == "left_running"]
    opened = hose[0].t

    _ingest(engine, sims, opened + timedelta(minutes=29))
    early = check.check(home_id, opened + timedelta(minutes=29))
    assert [a.kind for a in early.new] == []
    # the home is checked again when the running open reaches the setting
    assert early.deadlines == [opened + timedelta(minutes=30)]

    due = check.check(home_id, early.deadlines[0])
    (alert,) = [a for a in due.new if a.kind == RUNNING]
    assert alert.subject == f"u-{hose[0].event_id}"  # the id its use will have once it closes
    assert alert.at == opened + timedelta(minutes=30)
    assert "running for more than 30 min (no close yet)" in alert.message

    assert check.check(home_id, opened + timedelta(minutes=45)).new == []
    closed = hose[-1].t
    _ingest(engine, sims, closed + timedelta(minutes=5))
    after = check.check(home_id, closed + timedelta(minutes=5))
    assert [a for a in after.new if a.kind == RUNNING] == []  # the paired use: the same alert


def test_a_leaking_flapper_is_alerted_pushed_and_acknowledged(
    engine: Engine, homes: dict, check: AlertCheck, client: TestClient, receiver: _Receiver
) -> None:
    home_id, other = homes["a"]["home_id"], homes["b"]["home_id"]
    leak_start = 2 * 3600.0  # 02:00, the house asleep
    sims = _simulate(home_id, Faults(flapper=LeakingFlapper(start_s=leak_start)))
    tz = ZoneInfo(preset_spec("two_bath_house", home_id).model.timezone)
    began = START.replace(tzinfo=tz) + timedelta(seconds=leak_start)
    end = sims[-1].event.t
    _ingest(engine, sims, end)

    # checks every 15 minutes through the day, as the scheduler runs them
    raised, now = [], began
    while now <= end:
        raised += check.check(home_id, now).new
        now += timedelta(minutes=15)
    flapper = [a for a in raised if a.kind == FLAPPER]
    assert len(flapper) == 1, [a.message for a in raised]
    assert timedelta(hours=1) < flapper[0].at - began <= timedelta(hours=24)
    assert [a.kind for a in raised if a.kind != FLAPPER] == []  # nothing else in a normal day

    published: dict = {}
    clock = [end]
    dispatcher = _dispatcher(engine, clock, receiver, published)
    assert dispatcher.push_alerts(home_id) == 1
    ((headers, body),) = receiver.posts
    assert headers["Idempotency-Key"] == flapper[0].alert_id
    assert verify(SECRET, headers["X-Atlas-Timestamp"], body, headers["X-Atlas-Signature"])
    sent = json.loads(body)
    assert sent["schema"] == "atlas.alerts/1"
    assert sent["alerts"][0]["title"] == "A toilet may be leaking"
    assert dispatcher.push_alerts(home_id) == 0 and len(receiver.posts) == 1  # pushed once
    state = published[f"atlas/v1/homes/{home_id}/alerts"]
    assert [a["alert_id"] for a in state["alerts"]] == [flapper[0].alert_id]

    url = f"/v1/homes/{home_id}/alerts"
    listed = client.get(url, headers=bearer("owner_a")).json()
    assert [a["alert_id"] for a in listed["data"]] == [flapper[0].alert_id]
    assert listed["data"][0]["pushed_at"] is not None
    assert client.get(url, headers=bearer("owner_b")).status_code == 403
    assert client.get(f"/v1/homes/{other}/alerts", headers=bearer("owner_b")).json()["count"] == 0

    ack = f"{url}/{flapper[0].alert_id}/acknowledge"
    assert client.post(ack, headers=bearer("owner_b")).status_code == 403
    seen = client.post(ack, json={"acknowledged_by": "Sam"}, headers=bearer("owner_a"))
    assert seen.status_code == 200 and seen.json()["acknowledged_by"] == "Sam"
    again = client.post(ack, json={"acknowledged_by": "Alex"}, headers=bearer("owner_a"))
    assert again.json()["acknowledged_by"] == "Sam"  # the first acknowledgement stands
    assert client.get(url, headers=bearer("owner_a")).json()["count"] == 0
    every = client.get(url, params={"state": "all"}, headers=bearer("owner_a")).json()
    assert every["count"] == 1
    missing = f"{url}/al-{'0' * 24}/acknowledge"
    assert client.post(missing, headers=bearer("owner_a")).status_code == 404
    assert client.post(f"{url}/not-an-id/acknowledge", headers=bearer("owner_a")).status_code == 422
    assert dispatcher.publish_alerts(home_id)["alerts"] == []


def test_alerts_are_in_the_openapi_schema_with_their_errors(app) -> None:
    paths = app.openapi()["paths"]
    listing = paths["/v1/homes/{home_id}/alerts"]["get"]
    assert {"200", "401", "403", "404"} <= set(listing["responses"])
    ack = paths["/v1/homes/{home_id}/alerts/{alert_id}/acknowledge"]["post"]
    assert {"200", "401", "403", "404", "422"} <= set(ack["responses"])


def test_alert_kinds_not_watched_are_not_raised(engine: Engine, homes: dict) -> None:
    home_id = homes["a"]["home_id"]
    sims = _simulate(home_id, Faults(flapper=LeakingFlapper(start_s=2 * 3600.0)))
    _ingest(engine, sims, sims[-1].event.t)
    quiet = AlertCheck(engine, AlertsSettings(kinds=["running", "night"]), use_litres)
    assert quiet.check(home_id, sims[-1].event.t).new == []
