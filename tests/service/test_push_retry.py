"""Failed pushes are retried with backoff until the request expires, marked sent only once
delivered, counted per attempt, and their URLs never logged."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from atlas.timetable import TimetablePolicy
from atlas.uses import UseStatus, WaterUse
from service.push.dispatcher import Dispatcher
from service.push.retry import Backoff, PushRetries
from service.settings import HomePushSettings
from service.storage.homes import upsert_home
from service.storage.labelrequests import plan_request
from service.storage.requestplans import requests_in_state
from service.storage.schema import label_requests
from service.storage.uses import insert_uses

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SECRET_TOPIC = "smith-house-secret-topic-4f7c"


class _Endpoint:
    """An HTTP endpoint answering each POST with the next of ``statuses`` (the last one
    repeats); ``None`` never answers."""

    def __init__(self, statuses: list[int | None]) -> None:
        self.paths: list[str] = []
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.paths.append(self.path)
                status = statuses[min(len(endpoint.paths), len(statuses)) - 1]
                if status is None:
                    endpoint.release.wait(10)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def endpoints() -> Iterator[list[_Endpoint]]:
    made: list[_Endpoint] = []
    yield made
    for e in made:
        e.close()


def _planned(engine, spec, expires_in: timedelta) -> str:
    """One planned request about one use of ``spec``'s home; returns its id."""
    use = WaterUse(
        use_id=f"u-{spec.home_id}",
        home_id=spec.home_id,
        lines=("cold",),
        t_open=T0 - timedelta(minutes=5),
        t_close=T0 - timedelta(minutes=4),
        status=UseStatus.PAIRED,
        drop_kpa={"cold": 18.0},
    )
    request_id = f"{spec.home_id}-d008-0"
    with engine.begin() as conn:
        upsert_home(conn, spec, now=T0)
        insert_uses(conn, [use], now=T0)
        plan_request(
            conn,
            request_id=request_id,
            home_id=spec.home_id,
            round_=8,
            slot=0,
            use_id=use.use_id,
            choices=[spec.fixtures[0].id, "not sure"],
            prompt="What was it?",
            now=T0,
        )
        conn.execute(
            update(label_requests)
            .where(label_requests.c.request_id == request_id)
            .values(expires_at=T0 + expires_in)
        )
    return request_id


def _dispatcher(
    engine, cfg: HomePushSettings, now: list[datetime], timeout_s: float = 5.0
) -> Dispatcher:
    """``timeout_s``: long enough for an endpoint that answers to be heard on a loaded machine
    (with 0.3 s, once in a full-suite run, the first attempt ended before the test server had
    taken the request); 0.3 s only where the endpoint never answers."""
    return Dispatcher(
        engine,
        clock=lambda: now[0],
        topic_base="t",
        publish=lambda *a: None,
        policy=TimetablePolicy(quiet_start=time(0), quiet_end=time(0)),  # never quiet
        home_push=lambda home_id: cfg,
        timeout_s=timeout_s,
        retries=PushRetries(Backoff(first_s=60, factor=2, max_s=3600)),
    )


def _state(engine, home_id: str) -> dict[str, list[str]]:
    with engine.connect() as conn:
        return {
            s: [r["request_id"] for r in requests_in_state(conn, home_id, s)]
            for s in ("planned", "sent", "expired")
        }


def _attempts(channel: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "atlas_push_attempts_total", {"channel": channel, "outcome": outcome}
    )
    return value or 0.0


def test_push_that_fails_twice_is_retried_and_sent_on_success(
    sqlite_engine, home_spec, endpoints
) -> None:
    hook = _Endpoint([503, 503, 204])
    endpoints.append(hook)
    cfg = HomePushSettings(webhook_url=f"{hook.url}/hook", webhook_secret="s" * 16)
    rid = _planned(sqlite_engine, home_spec, expires_in=timedelta(hours=24))
    now = [T0]
    disp = _dispatcher(sqlite_engine, cfg, now)
    failed, ok = _attempts("webhook", "http_error"), _attempts("webhook", "ok")

    assert disp.send_planned(home_spec.home_id) == T0 + timedelta(seconds=60)
    assert disp.send_planned(home_spec.home_id) == T0 + timedelta(seconds=60)  # not due yet
    assert len(hook.paths) == 1 and _state(sqlite_engine, home_spec.home_id)["planned"] == [rid]
    now[0] = T0 + timedelta(seconds=60)
    assert disp.send_planned(home_spec.home_id) == T0 + timedelta(seconds=180)
    now[0] = T0 + timedelta(seconds=180)
    assert disp.send_planned(home_spec.home_id) is None
    assert len(hook.paths) == 3 and _state(sqlite_engine, home_spec.home_id)["sent"] == [rid]
    assert (_attempts("webhook", "http_error") - failed, _attempts("webhook", "ok") - ok) == (2, 1)


def test_push_that_never_answers_is_retried_until_the_request_expires(
    sqlite_engine, home_spec, endpoints, caplog
) -> None:
    caplog.set_level(logging.INFO)
    silent = _Endpoint([None])
    endpoints.append(silent)
    cfg = HomePushSettings(ntfy_url=f"{silent.url}/{SECRET_TOPIC}")
    rid = _planned(sqlite_engine, home_spec, expires_in=timedelta(minutes=10))
    now = [T0]
    disp = _dispatcher(sqlite_engine, cfg, now, timeout_s=0.3)
    timeouts = _attempts("ntfy", "timeout")

    tried_at = []
    retry_at: datetime | None = T0
    while retry_at is not None:  # what the scheduler does with the returned time
        now[0] = retry_at
        tried_at.append((retry_at - T0).total_seconds())
        retry_at = disp.send_planned(home_spec.home_id)
    assert tried_at == [0, 60, 180, 420]  # the next, at 900 s, is after the expiry (600 s)
    assert _attempts("ntfy", "timeout") - timeouts == 4
    assert _state(sqlite_engine, home_spec.home_id)["planned"] == [rid]
    now[0] = T0 + timedelta(minutes=11)
    assert disp.expire(home_spec.home_id) == [rid]
    assert disp.retries.next_at(rid) is None
    assert SECRET_TOPIC not in caplog.text and "ntfy push of" in caplog.text


def test_a_channel_that_accepted_is_not_pushed_again_nor_its_url_logged(
    sqlite_engine, home_spec, endpoints, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    hook, ntfy = _Endpoint([204]), _Endpoint([500, 200])
    endpoints.extend([hook, ntfy])
    cfg = HomePushSettings(
        webhook_url=f"{hook.url}/hook",
        webhook_secret="s" * 16,
        ntfy_url=f"{ntfy.url}/{SECRET_TOPIC}",
    )
    rid = _planned(sqlite_engine, home_spec, expires_in=timedelta(hours=24))
    now = [T0]
    disp = _dispatcher(sqlite_engine, cfg, now)
    now[0] = disp.send_planned(home_spec.home_id)
    assert disp.send_planned(home_spec.home_id) is None
    assert (len(hook.paths), len(ntfy.paths)) == (1, 2)
    assert _state(sqlite_engine, home_spec.home_id)["sent"] == [rid]
    assert SECRET_TOPIC not in caplog.text and "ntfy push of" in caplog.text


def test_backoff_doubles_up_to_its_maximum() -> None:
    delays = [Backoff(60, 2, 300).delay(n).total_seconds() for n in (1, 2, 3, 4, 10)]
    assert delays == [60, 120, 240, 300, 300]
