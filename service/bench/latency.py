"""Classification latency: MQTT publish of a use's last event -> its classification over HTTP.

The full service runs in this process (intake, pipeline, scheduler, API under uvicorn, real time)
against a private mosquitto (or ``--broker``) and SQLite in a temporary folder (or ``--db``). A
simulated ``two_bath_house``'s events are re-timed to arrive at ``--rate`` events/s (order on
each line kept, so pairing pairs the same events; times are "now", so the intake's
future-timestamp check sees real times) and published at QoS 1. The classification of each use
is read from the API's Server-Sent Events stream (``GET /v1/homes/{id}/stream``), pushed right
after the classification is committed, so it is readable over HTTP at that instant. Latency of a
use = SSE arrival - publish of the use's last event. Uses whose stored id does not match the
simulator's use (pairing differed) are left out and counted. Issue 6 target: p99 < 100 ms at
200 events/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from service.broker import PrivateBroker
from service.demo import InProcessService, SimulatedHome, demo_settings
from service.mqttutil import parse_broker_url
from service.runtime.clock import ScaledClock
from service.storage.engine import make_engine, upgrade
from service.storage.homes import upsert_home
from service.storage.schema import uses


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--events", type=int, default=3000, help="events to publish")
    parser.add_argument(
        "--warmup-s", type=float, default=2.0, help="uses before this are not scored"
    )
    parser.add_argument(
        "--day", type=int, default=10, help="the home's calibration day (1: week-1 rules only)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--broker", default=None, help="mqtt://HOST:PORT (default: private)")
    parser.add_argument("--db", default=None, help="database URL (default: temporary SQLite)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")


def _retimed(home: SimulatedHome, n: int, rate: float, t0: datetime):
    """``(event_id, topic, payload, offset_s, sim_use_id)`` at ``rate``/s from ``t0``, in order."""
    out = []
    for i, s in enumerate(home.sim[:n]):
        payload = s.payload() | {"t": (t0 + timedelta(seconds=i / rate)).isoformat()}
        payload["t"] = payload["t"].replace("+00:00", "Z")
        out.append((s.event.event_id, s.event.topic(), json.dumps(payload).encode(), i / rate,
                    s.truth["use_id"]))  # fmt: skip
    return out


class _SseReader(threading.Thread):
    """Records the arrival time of each ``classification`` event by use id."""

    def __init__(self, url: str) -> None:
        super().__init__(name="sse", daemon=True)
        self.url = url
        self.arrived: dict[str, float] = {}  # perf_counter
        self.arrived_wall: dict[str, float] = {}  # Unix time, to compare with stored times
        self.ready = threading.Event()
        self.client = httpx.Client(timeout=None)

    def close(self) -> None:
        """Drop the stream (an open SSE response would hold up the server's shutdown)."""
        self.client.close()

    def run(self) -> None:
        with suppress(httpx.HTTPError):  # closed by :meth:`close`
            self._read()

    def _read(self) -> None:
        with self.client.stream("GET", self.url) as r:
            kind = None
            for line in r.iter_lines():
                now = time.perf_counter()
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    if kind == "hello":
                        self.ready.set()
                    elif kind == "classification":
                        use_id = json.loads(line.split(":", 1)[1])["use_id"]
                        self.arrived.setdefault(use_id, now)
                        self.arrived_wall.setdefault(use_id, time.time())


def run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atlas-lat-")))
        broker_url = args.broker or stack.enter_context(PrivateBroker(workdir / "broker")).url
        home = SimulatedHome.generate("two_bath_house", max(2, args.events // 90), args.seed,
                                      home_id=f"lat-{uuid.uuid4().hex[:8]}")  # fmt: skip
        db = make_engine(args.db or f"sqlite:///{workdir}/atlas.db")
        stack.callback(db.dispose)
        upgrade(db)
        now = datetime.now(UTC)
        with db.begin() as conn:  # installed (day - 1) days ago: the engine is on day ``day``
            upsert_home(conn, home.spec, now=now - timedelta(days=args.day - 1))
        clock = ScaledClock(now, time.time(), 1.0)
        service = InProcessService(demo_settings(workdir, broker_url, clock), db, clock)
        service.start()
        stack.callback(service.stop)
        sse = _SseReader(f"{service.url}/v1/homes/{home.spec.home_id}/stream")
        sse.start()
        stack.callback(sse.close)  # before the service stops (callbacks run last-in first-out)
        sse.ready.wait(10)
        events = _retimed(home, args.events, args.rate, datetime.now(UTC) + timedelta(seconds=1))
        published = _publish(broker_url, events, args.rate)
        time.sleep(10.0)  # the last uses: pairing (deferred up to 5 s under load), classification
        last_pub: dict[str, float] = {}
        first_event: dict[str, str] = {}
        for (event_id, _, _, _, sim_use), t_pub in zip(events, published, strict=True):
            last_pub[sim_use] = max(last_pub.get(sim_use, 0.0), t_pub)
            first_event.setdefault(sim_use, event_id)
        start = published[0] + args.warmup_s
        lat = [
            sse.arrived[f"u-{first_event[u]}"] - t
            for u, t in last_pub.items()
            if t >= start and f"u-{first_event[u]}" in sse.arrived
        ]
        unmatched = sum(1 for u in last_pub if f"u-{first_event[u]}" not in sse.arrived)
        # the service's own part: the use stored by pairing -> its classification over HTTP
        with db.connect() as conn:
            stored = dict(conn.execute(
                select(uses.c.use_id, uses.c.created_at).where(uses.c.home_id == home.spec.home_id)
            ).all())  # fmt: skip
        own = [sse.arrived_wall[u] - stored[u].timestamp() for u in sse.arrived_wall if u in stored]
    ms = np.asarray(lat) * 1000.0
    own_ms = np.asarray(own) * 1000.0
    elapsed = published[-1] - published[0]
    result = {
        "rate_target": args.rate,
        "rate_achieved": round((len(published) - 1) / elapsed, 1) if elapsed > 0 else None,
        "events": len(published),
        "calibration_day": args.day,
        "uses_scored": int(ms.size),
        "uses_unmatched": unmatched,
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if ms.size else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 1) if ms.size else None,
        "max_ms": round(float(ms.max()), 1) if ms.size else None,
        "stored_to_http_p50_ms": round(float(np.percentile(own_ms, 50)), 1)
        if own_ms.size
        else None,
        "stored_to_http_p99_ms": round(float(np.percentile(own_ms, 99)), 1)
        if own_ms.size
        else None,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), "utf-8")
    return 0


def _publish(broker_url: str, events, rate: float) -> list[float]:
    """Publish at ``rate``/s (QoS 1); returns each message's ``perf_counter`` publish time."""
    host, port = parse_broker_url(broker_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"lat-gw-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)  # fmt: skip
    client.max_inflight_messages_set(1000)
    client.connect(host, port)
    client.loop_start()
    times = []
    t0 = time.perf_counter()
    infos = []
    for _, topic, payload, offset, _ in events:
        delay = t0 + offset - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        times.append(time.perf_counter())
        infos.append(client.publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()
    return times
