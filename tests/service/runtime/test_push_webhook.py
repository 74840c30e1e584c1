"""Webhook push: signed, idempotency key = request id, sent once per request, not when quiet."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from rt_helpers import clock_at, day_time, pipeline_at, store_days

from atlas.timetable import TimetablePolicy
from service.push.dispatcher import Dispatcher
from service.push.webhook import verify
from service.settings import HomePushSettings

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
                sqlite_engine, clock=clock.now, policy=TimetablePolicy(), topic_base="t",
                publish=lambda *a: None, home_push=lambda h: cfg,
            )  # fmt: skip
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
        assert not verify("wrong-secret-xxxxxxx", headers["X-Atlas-Timestamp"], body,
                          headers["X-Atlas-Signature"])  # fmt: skip
        payload = json.loads(body)
        assert headers["Idempotency-Key"] == payload["requests"][0]["request_id"]
        assert len({h["Idempotency-Key"] for h, _ in received}) == n
    finally:
        srv.shutdown()
