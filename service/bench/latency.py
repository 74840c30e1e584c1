"""Classification latency: MQTT publish of a use's last event -> its classification over HTTP.

``atlas serve`` runs in its own process (as deployed: intake, pipeline, scheduler, API, real
time), against a private mosquitto (or ``--broker``) and SQLite in a temporary folder (or
``--db``). ``--homes`` simulated ``two_bath_house`` homes' events are re-timed to arrive at
``--rate`` events/s in all (:func:`compress_idle_gaps`: each home keeps its own gaps and has its
idle time cut short; times are "now", so the intake's future-timestamp check sees real times)
and published at QoS 1 from this process. The classification of each use is read from the
API's Server-Sent Events stream (``GET /v1/homes/{id}/stream``). Each use gets two
``classification`` events: a provisional one as soon as it is paired (``provisional: true``,
from :mod:`atlas.engine.preview`) and the stored one once the use has settled (its last event's
window plus a guard, service/intake/pairing_step.py) and the engine has ingested it. Latency of
a use = SSE arrival - publish of the use's last event, reported for the first classification
and for the stored one, with how often the two agree. Uses whose stored id does not match the
simulator's use (pairing differed) are left out and counted. The target: p99 < 100 ms at 200
events/s.

Pairing cannot always complete a use with its last event: when another valve of the home moves
within a wave's window, the step sizes are clear only once that event's wave has arrived
(docs/pairing.md), and in a real home that can be seconds or minutes later. The same in-memory
pairing the service runs (:class:`service.intake.provisional.ProvisionalPairer`) is replayed
here on the published stream to find, per use, the publish of the event with which it becomes
pairable; ``after_pairable_*`` is the latency counted from there: what the service adds.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import threading
import time
import uuid
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from atlas.events import decode_event
from service.bench._served import serve_process, workdir_and_broker
from service.demo import SimulatedHome
from service.gcpauses import PauseTimer, freeze_startup
from service.intake.provisional import ProvisionalPairer
from service.mqttutil import parse_broker_url
from service.storage.engine import make_engine, upgrade
from service.storage.events import utc
from service.storage.homes import upsert_home
from service.storage.schema import uses

#: ``--seed N`` simulates homes ``N * HOME_SEEDS_PER_SEED + k``: different seeds, different homes.
HOME_SEEDS_PER_SEED = 100_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--events", type=int, default=3000, help="events to publish")
    parser.add_argument(
        "--homes",
        type=int,
        default=100,
        help="simulated homes sharing the rate (fewer homes: shorter idle gaps in each)",
    )
    parser.add_argument(
        "--warmup-s", type=float, default=2.0, help="uses before this are not scored"
    )
    parser.add_argument(
        "--day", type=int, default=10, help="the homes' calibration day (1: week-1 rules only)"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="picks the homes and their arrival offsets"
    )
    parser.add_argument("--broker", default=None, help="mqtt://HOST:PORT (default: private)")
    parser.add_argument("--db", default=None, help="database URL (default: temporary SQLite)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument(
        "--per-use",
        type=Path,
        default=None,
        help="write each use's latencies here (CSV: use, publish s, pairable, first, stored ms)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep the database and logs here"
    )


#: Idle gaps of a home are not cut below this: longer than a wave's window (1.75 s in the
#: simulator), so a home's next wave never starts inside a wave unless it did in the simulation
#: and the re-timed homes pair as simulated (tests/service/test_bench_latency.py).
MIN_IDLE_GAP_S = 2.0


def compress_idle_gaps(
    timelines: list[np.ndarray], n: int, rate: float, seed: int
) -> tuple[list[tuple[int, int, float]], float]:
    """Re-time the homes' events so that the first ``n`` of them arrive at ``rate`` per second.

    Each home keeps its own simulated gaps up to a cap and has longer ones (idle time) cut to
    the cap; homes start at random points of the first cap. The cap is the one that gives
    ``rate``: fewer homes need shorter idle gaps. Gaps shorter than the cap are kept exactly,
    so what overlaps in the simulation overlaps here, and with a cap of at least
    :data:`MIN_IDLE_GAP_S` no other waves of a home overlap. (Idle gaps are still shorter than
    the pairing's 15-minute quiet reading, so a slow close's size may come from the next event
    more often than live.) Packing the merged stream evenly instead put unrelated events of a
    home 5 ms apart: pairing took them for one mixing valve and 9% of the uses came out
    different from the simulation's.

    Parameters
    ----------
    timelines : list of ndarray
        Per home, its events' times in seconds, ascending.
    n : int
        How many events to take (the earliest after re-timing).
    rate : float
        Events per second wanted over the ``n`` events.
    seed : int
        Seeds the homes' starting points.

    Returns
    -------
    events : list of (home index, event index, offset s)
        In time order; offsets count from the first event.
    cap_s : float
        The idle-gap cap that gave ``rate``.
    """
    starts = np.random.default_rng(seed).uniform(0.0, 1.0, len(timelines))
    home = np.concatenate([np.full(len(t), k) for k, t in enumerate(timelines)])
    index = np.concatenate([np.arange(len(t)) for t in timelines])
    gaps = [np.diff(t) for t in timelines]

    def first_n(cap: float) -> tuple[np.ndarray, np.ndarray]:
        offsets = np.concatenate(
            [
                starts[k] * cap + np.concatenate(([0.0], np.cumsum(np.minimum(g, cap))))
                for k, g in enumerate(gaps)
            ]
        )
        order = np.lexsort((index, home, offsets))[:n]
        return order, offsets[order]

    def rate_at(cap: float) -> float:
        times = first_n(cap)[1]
        span = times[-1] - times[0]
        return (times.size - 1) / span if span > 0 else float("inf")

    lo, hi = 1e-4, 86_400.0  # the rate falls as the cap grows: bisect on a log scale
    for _ in range(60):
        mid = float(np.sqrt(lo * hi))
        lo, hi = (mid, hi) if rate_at(mid) > rate else (lo, mid)
    order, times = first_n(hi)
    events = [
        (int(home[j]), int(index[j]), float(t - times[0]))
        for j, t in zip(order, times, strict=True)
    ]
    return events, hi


def retimed_events(homes: list[SimulatedHome], n: int, rate: float, seed: int, t0: datetime):
    """``(event_id, topic, payload, offset_s, sim_use_id)`` of the first ``n`` events at
    ``rate``/s from ``t0`` (:func:`compress_idle_gaps`), and the idle-gap cap used."""
    timelines = [np.array([s.event.t.timestamp() for s in home.sim]) for home in homes]
    chosen, cap = compress_idle_gaps(timelines, n, rate, seed)
    out = []
    for k, i, offset in chosen:
        s = homes[k].sim[i]
        t = (t0 + timedelta(seconds=offset)).isoformat().replace("+00:00", "Z")
        use = f"{s.event.home_id}/{s.truth['use_id']}"  # the simulator numbers uses per home
        out.append(
            (
                s.event.event_id,
                s.event.topic(),
                json.dumps(s.payload() | {"t": t}).encode(),
                offset,
                use,
            )
        )
    return out, cap


class _SseReader(threading.Thread):
    """Records the arrival time and labels of each ``classification`` event by use id."""

    def __init__(self, url: str) -> None:
        super().__init__(name="sse", daemon=True)
        self.url = url
        self.arrived: dict[str, float] = {}  # first classification, perf_counter
        self.final: dict[str, float] = {}  # the stored classification, perf_counter
        self.final_wall: dict[str, float] = {}  # Unix time, to compare with stored times
        self.labels: dict[tuple[str, bool], tuple] = {}  # (use, provisional) -> what was shown
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
                        row = json.loads(line.split(":", 1)[1])
                        use_id, provisional = row["use_id"], row.get("provisional", False)
                        self.arrived.setdefault(use_id, now)
                        shown = (row["display_label"], tuple(sorted(row["predicted"].items())))
                        self.labels.setdefault((use_id, provisional), shown)
                        if not provisional:
                            self.final.setdefault(use_id, now)
                            self.final_wall.setdefault(use_id, time.time())


def run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        workdir, broker_url = workdir_and_broker(stack, args.workdir, args.broker, "atlas-lat-")
        tag = uuid.uuid4().hex[:8]
        per_home = max(2, args.events // (90 * args.homes) + 1)
        # disjoint homes per seed (seed + k shared all but one home between seeds 1 and 2)
        homes = [
            SimulatedHome.generate(
                "two_bath_house",
                per_home,
                args.seed * HOME_SEEDS_PER_SEED + k,
                home_id=f"lat-{tag}-{k}",
            )
            for k in range(args.homes)
        ]
        db_url = args.db or f"sqlite:///{workdir}/atlas.db"
        db = make_engine(db_url)
        stack.callback(db.dispose)
        upgrade(db)
        now = datetime.now(UTC)
        with db.begin() as conn:  # installed (day - 1) days ago: the engine is on day ``day``
            for home in homes:
                upsert_home(conn, home.spec, now=now - timedelta(days=args.day - 1))
        # one stream per home, all read with the bench's one client: the per-token cap must
        # admit them (the default of 8 answered the 9th home with 429)
        streams = {"ATLAS_SSE_MAX_STREAMS_PER_TOKEN": str(max(8, args.homes))}
        _, url = stack.enter_context(
            serve_process(workdir, db_url, broker_url, f"lat-{tag}", streams)
        )
        readers = [_SseReader(f"{url}/v1/homes/{h.spec.home_id}/stream") for h in homes]
        for reader in readers:
            reader.start()
            stack.callback(reader.close)
            reader.ready.wait(10)
        events, cap = retimed_events(
            homes, args.events, args.rate, args.seed, datetime.now(UTC) + timedelta(seconds=1)
        )
        if cap < MIN_IDLE_GAP_S:
            print(
                f"warning: {args.rate:g} events/s from {len(homes)} homes cuts their idle gaps "
                f"to {cap:.2f} s, below {MIN_IDLE_GAP_S} s: unrelated waves of a home overlap "
                f"and pairing differs from the simulation's; use --homes "
                f"{int(np.ceil(len(homes) * MIN_IDLE_GAP_S / cap))} or more",
                file=sys.stderr,
            )
        print(
            f"publishing {len(events)} events of {len(homes)} homes at {args.rate:g}/s (idle "
            f"gaps cut to {cap:.2f} s) to the service at {url} ...",
            file=sys.stderr,
        )
        # The arrival times are taken here: a collection of this process delays them. A full
        # collection over the simulated homes took 186 ms 10 s into a run (seed 1) and was its
        # after-pairable p99. Frozen, the homes are not scanned again; what is left is reported.
        freeze_startup()
        own: list[float] = []
        timer = PauseTimer(lambda generation, seconds: own.append(seconds))
        timer.install()
        try:
            published = _publish(broker_url, events, args.rate)
            time.sleep(10.0)  # the last uses settle (~2 s) and are classified
        finally:
            timer.uninstall()
        sse = _merge(readers)
        families = _metric_families(url)
        pauses = _gc_pauses(families)
        pauses["bench"] = _pause_summary(own)
        last_pub: dict[str, float] = {}
        first_event: dict[str, str] = {}
        for (event_id, _, _, _, sim_use), t_pub in zip(events, published, strict=True):
            last_pub[sim_use] = max(last_pub.get(sim_use, 0.0), t_pub)
            first_event.setdefault(sim_use, event_id)
        start = published[0] + args.warmup_s
        scored = {f"u-{first_event[u]}": t for u, t in last_pub.items() if t >= start}
        lat = [sse.arrived[u] - t for u, t in scored.items() if u in sse.arrived]
        # the part of it the data sets: when overlapping uses make pairing wait for the home's
        # next event, no service can classify the use before that event is published
        pairable = _pairable_at(events, published)
        after = [
            sse.arrived[u] - max(t, pairable.get(u, t))
            for u, t in scored.items()
            if u in sse.arrived
        ]
        if args.per_use:
            _write_per_use(args.per_use, scored, pairable, sse, published[0])
        lat_final = [sse.final[u] - t for u, t in scored.items() if u in sse.final]
        unmatched = sum(1 for u in last_pub if f"u-{first_event[u]}" not in sse.arrived)
        both = [u for u in scored if (u, True) in sse.labels and (u, False) in sse.labels]
        agree = sum(sse.labels[(u, True)] == sse.labels[(u, False)] for u in both)
        # the service's own part: the use stored by pairing -> its classification over HTTP
        with db.connect() as conn:
            stored = dict(conn.execute(select(uses.c.use_id, uses.c.created_at)).all())
        own = [
            sse.final_wall[u] - utc(stored[u]).timestamp() for u in sse.final_wall if u in stored
        ]
    ms = np.asarray(lat) * 1000.0
    after_ms = np.asarray(after) * 1000.0
    waited = np.asarray(lat) - np.asarray(after) > 0.0005
    final_ms = np.asarray(lat_final) * 1000.0
    own_ms = np.asarray(own) * 1000.0
    elapsed = published[-1] - published[0]
    result = {
        "rate_target": args.rate,
        "rate_achieved": round((len(published) - 1) / elapsed, 1) if elapsed > 0 else None,
        "events": len(published),
        "homes": args.homes,
        "idle_gap_cap_s": round(cap, 3),
        "calibration_day": args.day,
        "uses_scored": int(ms.size),
        "uses_unmatched": unmatched,
        "p50_ms": _pct(ms, 50),
        "p99_ms": _pct(ms, 99),
        "max_ms": round(float(ms.max()), 1) if ms.size else None,
        "uses_waiting_for_a_later_event": int(waited.sum()),
        "after_pairable_p50_ms": _pct(after_ms, 50),
        "after_pairable_p99_ms": _pct(after_ms, 99),
        "stored_p50_ms": _pct(final_ms, 50),
        "stored_p99_ms": _pct(final_ms, 99),
        "provisional_then_stored": len(both),
        "provisional_agrees_with_stored": round(agree / len(both), 4) if both else None,
        "stored_to_http_p50_ms": _pct(own_ms, 50),
        "stored_to_http_p99_ms": _pct(own_ms, 99),
        "service_stages": stage_latencies(families),
        "gc_pauses": pauses,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), "utf-8")
    return 0


def _pairable_at(events, published: list[float]) -> dict[str, float]:
    """Per use (``u-<first event>``): the publish time of the event with which the service's
    in-memory pairing (:class:`service.intake.provisional.ProvisionalPairer`, run here on the
    same stream) first reports it complete."""
    found: dict[str, float] = {}
    now = [0.0]
    pairer = ProvisionalPairer(
        lambda home, uses, evs, feats: found.update(dict.fromkeys((u.use_id for u in uses), now[0]))
    )
    for (_, _, payload, _, _), t in zip(events, published, strict=True):
        event = decode_event(payload)
        now[0] = t
        pairer.pair(event.home_id, [event])
    return found


def _write_per_use(
    path: Path, scored: dict[str, float], pairable: dict[str, float], sse: _Arrivals, t0: float
) -> None:
    def ms(t: float | None, since: float) -> str:
        return "" if t is None else f"{(t - since) * 1000:.1f}"

    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["use_id", "published_s", "pairable_ms", "first_ms", "stored_ms"])
        for use_id, t in sorted(scored.items(), key=lambda kv: kv[1]):
            ready = max(t, pairable.get(use_id, t))
            out.writerow(
                [
                    use_id,
                    f"{t - t0:.3f}",
                    ms(ready, t),
                    ms(sse.arrived.get(use_id), t),
                    ms(sse.final.get(use_id), t),
                ]
            )


def _metric_families(url: str) -> list:
    """The service's ``/metrics``, parsed (empty if it cannot be read: the latencies are the
    result, and are not lost for this)."""
    try:
        page = httpx.get(f"{url}/metrics", timeout=10, follow_redirects=True)
        page.raise_for_status()
    except httpx.HTTPError as exc:
        print(f"warning: no service metrics ({exc})", file=sys.stderr)
        return []
    return list(text_string_to_metric_families(page.text))


#: The service's stage histograms (service/metrics.py) and what they time.
STAGES = {
    "atlas_intake_commit_delay_seconds": "intake: message received -> batch committed",
    "atlas_provisional_delay_seconds": "provisional: last event committed -> rows published "
    "(with the waits for a later event)",
}


def stage_latencies(families: list) -> dict[str, dict]:
    """Per stage: how many were timed, the mean, and the bucket bounds that hold the median and
    the 99th percentile (a histogram gives no finer quantile), all in ms. The whole run counts,
    warm-up included."""
    out: dict[str, dict] = {}
    for family in families:
        if family.name not in STAGES:
            continue
        buckets = sorted(
            (float(s.labels["le"]), s.value) for s in family.samples if s.name.endswith("_bucket")
        )
        total = next((s.value for s in family.samples if s.name.endswith("_sum")), 0.0)
        count = buckets[-1][1] if buckets else 0.0
        out[family.name.removesuffix("_seconds")] = {
            "what": STAGES[family.name],
            "timed": int(count),
            "mean_ms": round(total / count * 1000, 1) if count else None,
            "p50_at_most_ms": _bucket_bound(buckets, 0.5),
            "p99_at_most_ms": _bucket_bound(buckets, 0.99),
        }
    return out


def _bucket_bound(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The upper bound (ms) of the first cumulative bucket holding a fraction ``q`` of all."""
    count = buckets[-1][1] if buckets else 0.0
    return next((le * 1000 for le, n in buckets if count and n >= q * count), None)


def _gc_pauses(families: list) -> dict[str, dict[str, float]]:
    """Per process of the service: collector pauses since it started, how many took over 50 ms,
    and their total seconds (``atlas_gc_pause_seconds`` in ``/metrics``)."""
    out: dict[str, dict[str, float]] = {}
    within: dict[str, int] = {}  # pauses of at most 50 ms, per process
    for family in families:
        if family.name != "atlas_gc_pause_seconds":
            continue
        for sample in family.samples:
            process = sample.labels["process"]
            entry = out.setdefault(process, {"pauses": 0, "over_50ms": 0, "seconds": 0.0})
            if sample.name.endswith("_count"):
                entry["pauses"] += int(sample.value)
            elif sample.name.endswith("_sum"):
                entry["seconds"] = round(entry["seconds"] + sample.value, 3)
            elif sample.labels.get("le") == "0.05":
                within[process] = within.get(process, 0) + int(sample.value)
    for process, entry in out.items():
        entry["over_50ms"] = entry["pauses"] - within.get(process, 0)
    return out


def _pause_summary(seconds: list[float]) -> dict[str, float]:
    """This process's pauses while it published and read, in :func:`_gc_pauses`'s form."""
    return {
        "pauses": len(seconds),
        "over_50ms": sum(s > 0.05 for s in seconds),
        "seconds": round(sum(seconds), 3),
    }


@dataclass
class _Arrivals:
    arrived: dict[str, float] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    final_wall: dict[str, float] = field(default_factory=dict)
    labels: dict[tuple[str, bool], tuple] = field(default_factory=dict)


def _merge(readers: list[_SseReader]) -> _Arrivals:
    out = _Arrivals()
    for r in readers:
        out.arrived |= r.arrived
        out.final |= r.final
        out.final_wall |= r.final_wall
        out.labels |= r.labels
    return out


def _pct(ms: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(ms, q)), 1) if ms.size else None


def _publish(broker_url: str, events, rate: float) -> list[float]:
    """Publish at ``rate``/s (QoS 1); returns each message's ``perf_counter`` publish time.

    The network loop runs on this thread, not paho's: with ``loop_start`` a ``publish`` only
    queues the message for paho's thread, which writes it once it gets this process's
    interpreter lock (shared with a hundred SSE readers), so the time taken here came before
    the message left. Without that thread, ``publish`` writes to the socket before it returns.
    """
    host, port = parse_broker_url(broker_url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"lat-gw-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    client.max_inflight_messages_set(1000)
    client.connect(host, port)
    deadline = time.monotonic() + 10
    while not client.is_connected():  # the CONNACK
        if time.monotonic() > deadline:
            raise RuntimeError(f"no CONNACK from the broker at {broker_url}")
        client.loop(timeout=0.05)
    times = []
    t0 = time.perf_counter()
    infos = []
    for _, topic, payload, offset, _ in events:
        while (delay := t0 + offset - time.perf_counter()) > 0:
            client.loop(timeout=delay)  # reads the PUBACKs while it waits
        times.append(time.perf_counter())
        infos.append(client.publish(topic, payload, qos=1))
    deadline = time.monotonic() + 30
    while not all(info.is_published() for info in infos) and time.monotonic() < deadline:
        client.loop(timeout=0.05)
    client.disconnect()
    return times
