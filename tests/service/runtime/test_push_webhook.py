"""Webhook push: signed, idempotency key = request id, sent once per request, not when quiet."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

from rt_helpers import clock_at, day_time, pipeline_at, store_days

from atlas.engine import EngineConfig
from atlas.timetable import TimetablePolicy
from service.push.dispatcher import Dispatcher
from service.push.webhook import verify
from service.settings import HomePushSettings
from service.storage.requestplans import requests_in_state

SECRET = "s3cret-of-sixteen-chars"


def _server():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, received


def test_webhook_is_signed_once_per_request_and_never_in_quiet_hours(sqlite_engine, home_spec):
    installed, _ = store_days(sqlite_engine, home_spec, days=9)
    srv, received = _server()
    cfg = HomePushSettings(
        webhook_url=f"http://127.0.0.1:{srv.server_port}/hook", webhook_secret=SECRET
    )
    try:
        for hour, expect_sent in ((22, False), (9, True)):
            day = 8 if hour == 22 else 9
            clock = clock_at(day_time(installed, day, hour, 30))
            pipe = pipeline_at(sqlite_engine, clock)
            pipe.process_home(home_spec.home_id)
            pipe.run_round(home_spec.home_id, day_time(installed, 8, 19, 22))
            disp = Dispatcher(
                sqlite_engine,
                clock=clock.now,
                policy=TimetablePolicy(),
                topic_base="t",
                publish=lambda *a: None,
                home_push=lambda h: cfg,
            )
            retry = disp.send_planned(home_spec.home_id)
            assert (retry is None) == expect_sent
            if not expect_sent:
                assert received == []
        n = len(received)
        assert n >= 2
        disp.send_planned(home_spec.home_id)  # a repeated send pushes nothing new
        assert len(received) == n
        headers, body = received[0]
        assert verify(SECRET, headers["X-Atlas-Timestamp"], body, headers["X-Atlas-Signature"])
        assert not verify(
            "wrong-secret-xxxxxxx", headers["X-Atlas-Timestamp"], body, headers["X-Atlas-Signature"]
        )
        payload = json.loads(body)
        assert headers["Idempotency-Key"] == payload["requests"][0]["request_id"]
        assert len({h["Idempotency-Key"] for h, _ in received}) == n
    finally:
        srv.shutdown()


def test_round_run_late_asks_only_what_is_answerable_when_sent(sqlite_engine, home_spec):
    """A round due at 19:22 that runs at 22:30 (downtime) goes out at 08:00 the next day."""
    installed, _ = store_days(sqlite_engine, home_spec, days=9)
    pipe = pipeline_at(sqlite_engine, clock_at(day_time(installed, 8, 22, 30)))
    pipe.process_home(home_spec.home_id)
    planned = pipe.run_round(home_spec.home_id, day_time(installed, 8, 19, 22)).plan.requests
    assert planned
    min_answer = timedelta(hours=EngineConfig().min_answer_h)
    assert all(r.expires_at >= day_time(installed, 9, 8, 0) + min_answer for r in planned)


def test_request_sent_the_next_morning_says_yesterday(sqlite_engine, home_spec):
    """Planned on time, but the round's work ran into quiet hours: the prompt is re-dated."""
    installed, _ = store_days(sqlite_engine, home_spec, days=9)
    due = day_time(installed, 8, 19, 22)
    pipe = pipeline_at(sqlite_engine, clock_at(due))
    pipe.process_home(home_spec.home_id)
    assert pipe.run_round(home_spec.home_id, due).plan.requests
    with sqlite_engine.connect() as conn:
        planned = requests_in_state(conn, home_spec.home_id, "planned")
    assert planned and all(r["prompt"].startswith("Today at ") for r in planned)
    srv, received = _server()
    cfg = HomePushSettings(
        webhook_url=f"http://127.0.0.1:{srv.server_port}/hook", webhook_secret=SECRET
    )
    try:
        disp = Dispatcher(
            sqlite_engine,
            clock=clock_at(day_time(installed, 9, 8, 1)).now,
            policy=TimetablePolicy(),
            topic_base="t",
            publish=lambda *a: None,
            home_push=lambda h: cfg,
        )
        assert disp.send_planned(home_spec.home_id) is None
    finally:
        srv.shutdown()
    pushed = [r["prompt"] for _, body in received for r in json.loads(body)["requests"]]
    with sqlite_engine.connect() as conn:
        stored = [r["prompt"] for r in requests_in_state(conn, home_spec.home_id, "sent")]
    live = [r for r in planned if r["expires_at"] > day_time(installed, 9, 8, 1)]
    assert live and len(pushed) == len(live) and sorted(pushed) == sorted(stored)
    assert all(p.startswith("Yesterday at ") for p in pushed), pushed
