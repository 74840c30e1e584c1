"""Sends planned label requests (never in quiet hours), expires old ones, pushes leak alerts
(at any hour), keeps the MQTT state of both.

Order of a send, per request: webhook / ntfy POST (idempotency key = request id), then the
``planned -> sent`` commit, then the retained MQTT state from the database. A crash after the
POST re-sends with the same key (the receiver dedupes); a crash after the commit leaves the
retained state to the next publish (every start re-publishes every home's state).

A request is marked sent only once every configured channel accepted it. Until then it stays
planned and is pushed again with backoff (service/push/retry.py) until it expires:
:meth:`Dispatcher.send_planned` returns when to call it again. Every attempt is counted in
``atlas_push_attempts_total{channel, outcome}``. Alerts go the same way, keyed by their alert
id, and stay unpushed until every channel took them (:meth:`Dispatcher.push_alerts`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine, select

from atlas.homespec import HomeSpec, parse_home_spec
from atlas.timetable import TimetablePolicy, is_quiet, next_awake
from service import metrics
from service.push.payload import ALERT_TITLES, alert_payload, state_payload
from service.push.retry import PushRetries
from service.push.text import describe_use
from service.push.webhook import post_ntfy, post_webhook
from service.storage.alerts import list_alerts, mark_pushed, unpushed
from service.storage.requestplans import expire_due, mark_sent, requests_in_state
from service.storage.schema import homes
from service.storage.uses import load_uses

_LOGGER = logging.getLogger(__name__)


class Dispatcher:
    """Pushes for all homes; ``publish(topic, payload_dict)`` is the MQTT side (retained)."""

    def __init__(
        self,
        db: Engine,
        *,
        clock: Callable[[], datetime],
        policy: TimetablePolicy,
        topic_base: str,
        publish: Callable[[str, dict | None], None],
        home_push: Callable[[str], object | None] = lambda home_id: None,
        public_url: str = "",
        timeout_s: float = 5.0,
        retries: PushRetries | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy
        self.topic_base = topic_base
        self.publish = publish
        self.home_push = home_push
        self.public_url = public_url
        self.timeout_s = timeout_s
        self.retries = retries or PushRetries()

    def state_topic(self, home_id: str) -> str:
        return f"{self.topic_base}/homes/{home_id}/label-requests"

    def answer_topic(self, home_id: str, request_id: str) -> str:
        return f"{self.state_topic(home_id)}/{request_id}/answer"

    def _spec(self, home_id: str) -> HomeSpec:
        with self.db.connect() as conn:
            spec = conn.execute(select(homes.c.spec).where(homes.c.home_id == home_id)).scalar()
        if spec is None:
            raise KeyError(f"home_id={home_id!r} is not registered")
        return parse_home_spec(spec)

    def send_planned(self, home_id: str) -> datetime | None:
        """Send what is planned; returns when to call again: the end of the quiet hours when
        now is quiet, else the next retry of a failed push (None: nothing to retry)."""
        spec = self._spec(home_id)
        tz = ZoneInfo(spec.model.timezone)
        now = self.clock()
        if is_quiet(now, tz, self.policy):
            return next_awake(now, tz, self.policy)
        with self.db.connect() as conn:
            planned = requests_in_state(conn, home_id, "planned")
            asked = {
                u.use_id: u for u in load_uses(conn, home_id, only=[r["use_id"] for r in planned])
            }
        sent = 0
        retry_at: datetime | None = None
        down: set[str] = set()  # channels that failed in this pass: not tried again in it
        for req in planned:
            rid, expires_at = req["request_id"], req["expires_at"]
            if expires_at is not None and expires_at <= now:
                self.retries.forget(rid)
                continue  # expire() closes it; never ask about something already forgotten
            if not self.retries.due(rid, now):
                retry_at = _earliest(retry_at, self.retries.next_at(rid))
                continue
            use = asked.get(req["use_id"])
            if use is not None:  # "Today" when planned may be "Yesterday" when it goes out
                req = req | {"prompt": describe_use(use.t_open, use.t_close, use.lines, now, tz)}
            if not self._push_http(spec, req, now, down):
                again = self.retries.fail(rid, now)
                if expires_at is None or again < expires_at:
                    retry_at = _earliest(retry_at, again)
                continue
            self.retries.forget(rid)
            with self.db.begin() as conn:
                if mark_sent(conn, rid, now, req["prompt"]):
                    sent += 1
        metrics.REQUESTS_SENT.inc(sent)
        self.publish_state(home_id, spec)
        return retry_at

    def _push_http(self, spec: HomeSpec, req: dict, now: datetime, down: set[str]) -> bool:
        """Push ``req`` on every configured channel that has not accepted it yet; True when
        all of them have. A channel in ``down`` is not tried (it just failed for another
        request: no point waiting for its timeout again)."""
        cfg = self.home_push(spec.home_id)
        if cfg is None:
            return True
        rid = req["request_id"]
        payload = state_payload(spec, [req], now, lambda r: self.answer_topic(spec.home_id, r))
        stamp = str(int(now.timestamp()))
        link = f"{self.public_url}/homes/{spec.home_id}" if self.public_url else ""
        return self._deliver(
            rid,
            {
                "webhook": lambda: post_webhook(
                    cfg.webhook_url, cfg.webhook_secret, payload, rid, stamp, self.timeout_s
                ),
                "ntfy": lambda: post_ntfy(
                    cfg.ntfy_url, "Which water use was this?", req["prompt"], link, self.timeout_s
                ),
            },
            cfg,
            down,
        )

    def _deliver(
        self, key: str, sends: dict[str, Callable[[], int]], cfg: object, down: set[str]
    ) -> bool:
        """Run each configured channel's send for ``key`` (a request or alert id) unless it
        accepted ``key`` before; True when every configured channel has accepted it."""
        delivered = True
        for channel, send in sends.items():
            if not getattr(cfg, f"{channel}_url") or channel in self.retries.accepted(key):
                continue
            if channel in down:
                delivered = False
                continue
            outcome, why = attempt(send)
            metrics.PUSH_ATTEMPTS.labels(channel, outcome).inc()
            if outcome == "ok":
                self.retries.accept(key, channel)
                continue
            _LOGGER.warning("%s push of %s failed: %s", channel, key, why)
            down.add(channel)
            delivered = False
        return delivered

    # ------------------------------------------------------------------ alerts

    def alerts_topic(self, home_id: str) -> str:
        return f"{self.topic_base}/homes/{home_id}/alerts"

    def has_unpushed_alerts(self, home_id: str) -> bool:
        """Whether an open alert of the home still waits for a channel to take it."""
        with self.db.connect() as conn:
            return bool(unpushed(conn, home_id))

    def push_alerts(self, home_id: str) -> int:
        """Push the home's open alerts no channel has taken yet, then publish the retained
        alerts state; returns how many were delivered everywhere.

        Unlike label requests, alerts ignore the quiet hours: water running at night is the
        case they are for. One that fails stays unpushed and goes out again at the home's next
        check, with the same idempotency key (the alert id).
        """
        spec = self._spec(home_id)
        now = self.clock()
        with self.db.connect() as conn:
            waiting = unpushed(conn, home_id)
        cfg = self.home_push(home_id)
        link = f"{self.public_url}/homes/{home_id}" if self.public_url else ""
        stamp = str(int(now.timestamp()))
        down: set[str] = set()
        delivered = 0
        for alert in waiting:
            body = alert_payload(spec, [alert], now)
            ok = cfg is None or self._deliver(
                alert.alert_id,
                {
                    "webhook": lambda a=alert, b=body: post_webhook(
                        cfg.webhook_url, cfg.webhook_secret, b, a.alert_id, stamp, self.timeout_s
                    ),
                    "ntfy": lambda a=alert: post_ntfy(
                        cfg.ntfy_url, ALERT_TITLES[a.kind], a.message, link, self.timeout_s
                    ),
                },
                cfg,
                down,
            )
            if ok:
                self.retries.forget(alert.alert_id)
                with self.db.begin() as conn:
                    mark_pushed(conn, alert.alert_id, now)
                delivered += 1
        metrics.ALERTS_PUSHED.inc(delivered)
        self.publish_alerts(home_id, spec)
        return delivered

    def publish_alerts(self, home_id: str, spec: HomeSpec | None = None) -> dict:
        """Publish the retained state of ``home_id``'s open (unacknowledged) alerts."""
        spec = spec or self._spec(home_id)
        with self.db.connect() as conn:
            open_ = list_alerts(conn, home_id, only_open=True)
        payload = alert_payload(spec, open_, self.clock())
        self.publish(self.alerts_topic(home_id), payload)
        return payload

    def expire(self, home_id: str) -> list[str]:
        """Expire past requests and re-publish the state; returns the expired ids."""
        with self.db.begin() as conn:
            gone = expire_due(conn, home_id, self.clock())
        for request_id in gone:
            self.retries.forget(request_id)
        if gone:
            metrics.REQUESTS_EXPIRED.inc(len(gone))
        self.publish_state(home_id)
        return gone

    def next_expiry(self, home_id: str) -> datetime | None:
        with self.db.connect() as conn:
            sent = requests_in_state(conn, home_id, "sent")
        times = [r["expires_at"] for r in sent if r["expires_at"] is not None]
        return min(times) if times else None

    def publish_state(self, home_id: str, spec: HomeSpec | None = None) -> dict:
        """Publish the retained state of ``home_id``'s open requests; returns the payload."""
        spec = spec or self._spec(home_id)
        now = self.clock()
        with self.db.connect() as conn:
            sent = requests_in_state(conn, home_id, "sent")
        open_ = [r for r in sent if r["expires_at"] is None or r["expires_at"] > now]
        payload = state_payload(spec, open_, now, lambda rid: self.answer_topic(home_id, rid))
        self.publish(self.state_topic(home_id), payload)
        return payload


def attempt(send: Callable[[], int]) -> tuple[str, str]:
    """Run one push: its outcome (``ok``, ``http_error`` for a status other than 2xx,
    ``timeout``, ``error``) and what went wrong in words for the log.

    The words are the status or the exception's type, never its text: that may carry the URL,
    and an ntfy topic URL is the secret that lets anyone post to the homeowner's phone.
    """
    try:
        status = send()
    except httpx.TimeoutException:
        return "timeout", "no answer within the timeout"
    except Exception as exc:  # refused, unreachable, TLS, ...: the next attempt may succeed
        return "error", type(exc).__name__
    return ("ok", "") if 200 <= status < 300 else ("http_error", f"HTTP {status}")


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None else b if a is None else min(a, b)
