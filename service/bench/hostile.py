"""Hostile input against a live ``atlas serve``: resident memory before and after each attack.

``atlas serve`` runs in its own process (as deployed), on SQLite in a temporary folder and a
private mosquitto (or ``--broker``), with one registered home and a homeowner token. Then, in
turn, with the process's resident set size (``VmRSS``) read from ``/proc`` after each:

1. ``--sse`` event-stream connection attempts (default 1,000), ``--sse-batch`` open at once
   with the homeowner's token: the caps let 8 through per token and answer the rest 429;
2. a QoS 0 flood of ``--flood`` junk messages (default 20,000) on the home's event topic,
   which the intake drops and counts (``atlas_intake_refused_total``; waited for in /metrics);
3. ``--bodies`` request bodies of ``--body-mb`` MB (default five of 200 MB) without a token,
   each declared by its ``Content-Length`` and streamed until the server closes the socket.

Beside the attacks, a gateway publishes ``--good`` real events of the home (simulated, QoS 1):
a share before the attacks, after the streams, interleaved with the flood and after the bodies.

Acceptance (docs/operations.md, hostile input): the service answers throughout, every good
event is stored, and its RSS ends within 50 MB of where it started. The provisional child
process is reported apart: the hostile input reaches only the parent.
"""

from __future__ import annotations

import argparse
import json
import socket
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from atlas.homespec import parse_home_spec
from service.bench._served import serve_process, workdir_and_broker
from service.mqttutil import parse_broker_url
from service.settings import hash_token
from service.storage.engine import make_engine, upgrade
from service.storage.homes import upsert_home
from service.storage.schema import events
from simulator.generate import generate_run
from simulator.presets import load_preset

#: Resident-memory growth the acceptance allows, MB.
ALLOWED_GROWTH_MB = 50.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sse", type=int, default=1000, help="event-stream connection attempts")
    parser.add_argument("--sse-batch", type=int, default=100, help="attempts open at once")
    parser.add_argument("--flood", type=int, default=20_000, help="QoS 0 junk messages")
    parser.add_argument("--bodies", type=int, default=5, help="oversized bodies without a token")
    parser.add_argument("--body-mb", type=int, default=200, help="size of each body, MB")
    parser.add_argument("--good", type=int, default=40, help="good events beside the attacks")
    parser.add_argument("--broker", default=None, help="mqtt://HOST:PORT (default: private)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep the database and logs here"
    )


def run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        workdir, broker_url = workdir_and_broker(stack, args.workdir, args.broker, "atlas-hostile-")
        tag = uuid.uuid4().hex[:8]
        home_id = f"hostile-{tag}"
        tokens = Tokens(owner=f"owner-{uuid.uuid4().hex}", admin=f"admin-{uuid.uuid4().hex}")
        db_url = f"sqlite:///{workdir}/atlas.db"
        db = make_engine(db_url)
        upgrade(db)
        with db.begin() as conn:
            preset = load_preset("two_bath_house").to_dict()
            upsert_home(conn, parse_home_spec(preset | {"home_id": home_id}))
        db.dispose()
        env = {
            "ATLAS_TOKENS__HOMEOWNER_SHA256": json.dumps({home_id: [hash_token(tokens.owner)]}),
            "ATLAS_TOKENS__ADMIN_SHA256": json.dumps([hash_token(tokens.admin)]),
            "ATLAS_EVENT_TOPIC": f"bench-{tag}/v1/homes/+/sensors/+/events",
        }
        pid, url = stack.enter_context(
            serve_process(workdir, db_url, broker_url, f"hostile-{tag}", env)
        )
        good = GoodGateway(broker_url, tag, _good_events(home_id, args.good))
        stack.callback(good.close)
        result = attack(pid, url, good, home_id, tokens, args)
        result |= _stored(db_url, good)
        result["within_limit"] &= result["good_lost"] == 0
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), "utf-8")
    return 0 if result["within_limit"] else 1


@dataclass(frozen=True)
class Tokens:
    owner: str  # the home's homeowner: opens the streams
    admin: str  # reads /metrics


class GoodGateway:
    """A home's gateway publishing real events at QoS 1 while the attacks run.

    The events are handed out in shares (:meth:`publish`), so each attack has good traffic
    beside it; :meth:`close` waits for the broker's acknowledgements.
    """

    def __init__(self, broker_url: str, tag: str, events: list[tuple[str, str, bytes]]) -> None:
        self.tag = tag
        self.pending = list(events)
        self.sent_ids: list[str] = []
        self.infos: list[mqtt.MQTTMessageInfo] = []
        self.closed = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"good-{tag}", protocol=mqtt.MQTTv5
        )
        self.client.connect(*parse_broker_url(broker_url))
        self.client.loop_start()

    def publish(self, n: int) -> None:
        """Publish the next ``n`` events (fewer when fewer are left)."""
        share, self.pending = self.pending[:n], self.pending[n:]
        for event_id, topic, payload in share:
            self.infos.append(self.client.publish(f"bench-{self.tag}/{topic}", payload, qos=1))
            self.sent_ids.append(event_id)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for info in self.infos:
            info.wait_for_publish(30)
        self.client.disconnect()
        self.client.loop_stop()


def attack(pid: int, url: str, good: GoodGateway, home_id: str, tokens: Tokens, args) -> dict:
    """The three attacks in turn, good events beside each; RSS (MB) of ``pid`` after each."""
    _warm_up(url, home_id, tokens.owner)
    share = max(1, len(good.pending) // 4)
    good.publish(share)
    rss = {"start": _rss_mb(pid)}
    sse = _sse_attempts(url, home_id, tokens.owner, args.sse, args.sse_batch)
    good.publish(share)
    rss["after_sse"] = _rss_mb(pid)
    refused_before = _refused_qos0(url, tokens.admin)
    sent = _qos0_flood(
        good, f"bench-{good.tag}/v1/homes/{home_id}/sensors/hot/events", args.flood, share
    )
    deadline = time.monotonic() + 60
    while _refused_qos0(url, tokens.admin) - refused_before < sent:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    refused = _refused_qos0(url, tokens.admin) - refused_before
    rss["after_qos0_flood"] = _rss_mb(pid)
    bodies = [_oversized_body(url, home_id, args.body_mb) for _ in range(args.bodies)]
    good.publish(len(good.pending))
    time.sleep(2.0)  # whatever the server freed is given back
    rss["end"] = _rss_mb(pid)
    growth = round(rss["end"]["serve"] - rss["start"]["serve"], 1)
    return {
        "sse_attempts": dict(Counter(str(s) for s in sse)),
        "qos0_sent": sent,
        "qos0_refused": refused,
        "bodies": bodies,
        "healthy": _status(f"{url}/healthz") == 200,
        "rss_mb": rss,
        "serve_growth_mb": growth,
        "within_limit": growth <= ALLOWED_GROWTH_MB and _status(f"{url}/healthz") == 200,
    }


def _status(url: str, **kwargs) -> int | None:
    try:
        return httpx.get(url, timeout=5.0, **kwargs).status_code
    except httpx.HTTPError:
        return None


def _warm_up(url: str, home_id: str, token: str) -> None:
    """Touch every path the attacks take once, so lazily built state is not counted."""
    headers = {"Authorization": f"Bearer {token}"}
    _status(f"{url}/v1/homes/{home_id}", headers=headers)
    _sse_attempts(url, home_id, token, 10, 10)
    _oversized_body(url, home_id, 1)
    time.sleep(1.0)


def _rss_mb(pid: int) -> dict[str, float]:
    """Resident MB of ``pid`` (``serve``) and of its child processes (``children``)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {
        "serve": _vm_rss_mb(pid),
        "children": round(sum(_vm_rss_mb(int(c)) for c in children), 1),
    }


def _vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _http_status(sock: socket.socket) -> int | None:
    """The status code of the response on ``sock`` (None: the server closed without one)."""
    sock.settimeout(10)
    head = b""
    try:
        while b"\r\n" not in head:
            chunk = sock.recv(1024)
            if not chunk:
                return None
            head += chunk
    except OSError:
        return None
    return int(head.split(b" ", 2)[1])


def _sse_attempts(url: str, home_id: str, token: str, n: int, batch: int) -> list[int | None]:
    """``n`` stream requests, ``batch`` open at once; the status each got."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"GET /v1/homes/{home_id}/stream HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    statuses: list[int | None] = []
    for start in range(0, n, batch):
        socks = [socket.create_connection((host, int(port))) for _ in range(min(batch, n - start))]
        try:
            for sock in socks:
                sock.sendall(request)
            statuses += [_http_status(sock) for sock in socks]
        finally:
            for sock in socks:
                sock.close()
    return statuses


def _qos0_flood(good: GoodGateway, topic: str, n: int, n_good: int) -> int:
    """Publish ``n`` junk messages at QoS 0 on the gateway's connection, ``n_good`` good events
    spread among them; returns how many junk messages were handed to the socket."""
    every = max(1, n // max(1, n_good))
    infos = []
    for i in range(n):
        infos.append(good.client.publish(topic, b"{junk %d}" % i + b" " * 1000, qos=0))
        if i % every == every - 1:
            good.publish(1)
    for info in infos:
        info.wait_for_publish(30)
    return sum(info.is_published() for info in infos)


def _good_events(home_id: str, n: int) -> list[tuple[str, str, bytes]]:
    """``(event_id, topic, payload)`` of the first ``n`` events of a simulated day of the home."""
    spec = parse_home_spec(load_preset("two_bath_house").to_dict() | {"home_id": home_id})
    run = generate_run(spec, days=max(1, n // 20 + 1), seed=1)[:n]
    return [
        (e.event.event_id, e.event.topic().removeprefix("atlas/"), json.dumps(e.payload()).encode())
        for e in run
    ]


def _stored(db_url: str, good: GoodGateway, wait_s: float = 60.0) -> dict:
    """How many of the good events published are in the database (waits up to ``wait_s``)."""
    good.close()
    db = make_engine(db_url)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            with db.connect() as conn:
                stored = set(
                    conn.scalars(
                        select(events.c.event_id).where(events.c.event_id.in_(good.sent_ids))
                    )
                )
            if len(stored) == len(good.sent_ids) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        db.dispose()
    return {"good_sent": len(good.sent_ids), "good_lost": len(good.sent_ids) - len(stored)}


def _oversized_body(url: str, home_id: str, mb: int) -> dict:
    """POST an answer of ``mb`` MB without a token, streaming until the server closes."""
    host, port = url.removeprefix("http://").split(":")
    size = mb * 1024 * 1024
    path = f"/v1/homes/{home_id}/label-requests/r-1/answer"
    chunk = b" " * (1024 * 1024)
    sent = 0
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n".encode()
        )
        sock.settimeout(10)
        try:
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server answered and closed: the rest is never read
            pass
        status = _http_status(sock)
    return {"status": status, "sent_mb": round(sent / 1024 / 1024, 1)}


def _refused_qos0(url: str, admin_token: str) -> float:
    """``atlas_intake_refused_total{reason="qos0"}`` of the server (0 before the first)."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    reply = httpx.get(f"{url}/metrics/", headers=headers, timeout=5.0)
    text = reply.raise_for_status().text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "atlas_intake_refused_total" and sample.labels == {"reason": "qos0"}:
                return sample.value
    return 0.0
