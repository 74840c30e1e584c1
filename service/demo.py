"""``atlas demo``: a simulated home calibrating end to end through the real service, in minutes.

What runs (all on this machine): a broker (a private ``mosquitto`` on a free port with the
data-keeping config, or ``--broker URL``), SQLite in a temporary folder, the full service in this
process (intake, per-home pipeline, scheduler, MQTT link and the HTTP API under uvicorn on a free
port) on a simulated clock running ``--speed`` times wall time, the simulator publishing a
``two_bath_house`` at that speed (QoS 1, outbox), and a simulated homeowner who does the week-1
checklist through ``POST /v1/homes/{id}/announcements`` and answers label requests through the
HTTP API like a person (some ignored, some late, some wrong; :mod:`simulator.homeowner`). At the
end it prints the Table 8-2-style summary: per week, labels, estimated accuracy with its lower
bound and the TRUE accuracy per level (against the simulator's ground truth), the level shown;
events published vs stored.

The pieces (:class:`InProcessService`, :class:`HttpHomeowner`, :func:`weekly_summary`) are also
what the end-to-end restart test drives.
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from sqlalchemy import Engine, func, select

from atlas.events import EVENT_TOPIC
from atlas.homespec import HomeSpec, parse_home_spec
from service.broker import PrivateBroker, free_port
from service.runtime.clock import ScaledClock
from service.settings import Settings
from service.storage.engine import make_engine, upgrade
from service.storage.homes import upsert_home
from service.storage.schema import (
    classifications,
    events,
    label_requests,
    labels,
    use_events,
    uses,
)
from service.storage.stats import db_stats
from service.waiting import wait_until
from simulator.generate import SimEvent, generate_run
from simulator.homeowner import NOT_SURE, Homeowner
from simulator.presets import load_preset
from simulator.stream import StreamReport, stream_events

_LOGGER = logging.getLogger(__name__)
LEVELS = ("category", "fixture", "valve")
#: Default speed: 28 simulated days in about 3.5 minutes of wall time.
DEFAULT_SPEED = 12_000.0


# ---------------------------------------------------------------------------- the simulated home


@dataclass(frozen=True)
class SimulatedHome:
    """A home spec, its simulated events and the truth the summary scores against."""

    spec: HomeSpec
    sim: list[SimEvent]
    installed: datetime  # local midnight of day 1: the service's install time and sim start
    days: int

    @classmethod
    def generate(cls, preset: str, days: int, seed: int, home_id: str | None = None):
        spec = load_preset(preset)
        if home_id is not None:
            spec = parse_home_spec(spec.to_dict() | {"home_id": home_id})
        sim = generate_run(spec, days=days, seed=seed)
        tz = ZoneInfo(spec.model.timezone)
        d = sim[0].event.t.astimezone(tz).date()
        return cls(spec, sim, datetime(d.year, d.month, d.day, tzinfo=tz), days)

    @property
    def end(self) -> datetime:
        d = self.installed.date() + timedelta(days=self.days)
        return datetime(d.year, d.month, d.day, tzinfo=self.installed.tzinfo)

    def truth_of_event(self) -> dict[str, dict]:
        return {s.event.event_id: s.truth for s in self.sim}

    def messages(self, topic_base: str = "atlas/v1") -> list[tuple[str, bytes, float]]:
        """``(topic, payload, seconds since install)`` for :func:`stream_events`."""
        default_base = EVENT_TOPIC.split("/homes/", 1)[0]
        out = []
        for s in self.sim:
            topic = topic_base + s.event.topic()[len(default_base) :]
            offset = (s.event.t - self.installed).total_seconds()
            out.append((topic, json.dumps(s.payload()).encode(), offset))
        return out


def pairing_accuracy(engine: Engine, sim: list[SimEvent]) -> tuple[int, int]:
    """(simulated uses stored with exactly their events, simulated uses): truth is ``use_id``."""
    truth: dict[str, set[str]] = defaultdict(set)
    for s in sim:
        truth[s.truth["use_id"]].add(s.event.event_id)
    stored: dict[str, set[str]] = defaultdict(set)
    with engine.connect() as conn:
        for use_id, event_id in conn.execute(select(use_events.c.use_id, use_events.c.event_id)):
            stored[use_id].add(event_id)
    found = {frozenset(ids) for ids in stored.values()}
    return sum(frozenset(ids) in found for ids in truth.values()), len(truth)


def register(db: Engine, home: SimulatedHome) -> None:
    """Register the home as installed at its day-1 midnight (the engine's calibration day 1)."""
    with db.begin() as conn:
        upsert_home(conn, home.spec, now=home.installed)


# ---------------------------------------------------------------------------- the service


class InProcessService:
    """``atlas serve`` in this process: runtime + API under uvicorn in a thread; restartable."""

    def __init__(self, settings: Settings, db: Engine, clock: ScaledClock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.runtime = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    def start(self, timeout_s: float = 30.0) -> None:
        # imported here: the runtime pulls in scikit-learn (seconds), which `atlas --help` and
        # the other commands that build the demo's parser should not pay for
        from service.runtime.serve import build_app

        app, self.runtime = build_app(self.settings, db=self.db, clock=self.clock)
        config = uvicorn.Config(
            app,
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,  # an open SSE stream (a dashboard) must not hold it up
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="atlas-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the service did not start on {self.url}")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 60.0) -> None:
        """Graceful stop: uvicorn stops serving, the lifespan stops the runtime."""
        if self._server is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise RuntimeError(f"the service did not stop within {timeout_s} s")
        self._server = self._thread = None


def demo_settings(
    workdir: Path,
    broker_url: str,
    clock: ScaledClock,
    *,
    topic_base: str = "atlas/v1",
    client_prefix: str | None = None,
    db_url: str | None = None,
    port: int | None = None,
) -> Settings:
    """Settings of the in-process service; the API reads the same simulated clock from them."""
    return Settings(
        environment="development",
        db_url=db_url or f"sqlite:///{workdir}/atlas.db",
        broker_url=broker_url,
        event_topic=f"{topic_base}/homes/+/sensors/+/events",
        mqtt_client_prefix=client_prefix or f"demo-{uuid.uuid4().hex[:8]}",
        http_port=port or free_port(),
        log_json=False,
        sim_start=clock.sim_start.isoformat(),
        sim_wall_start=clock.wall_start,
        sim_speed=clock.speed,
        # wall seconds: at thousands of times real time a minute of wall time is days
        scheduler_sweep_s=2.0,
        retrain_debounce_s=0.3,
        # the stored pairing gives the provisional classifications: a child process's start
        # (seconds of CPU) and hand-over would be hours of simulated time here
        provisional_process=False,
    )


# ---------------------------------------------------------------------------- the homeowner


@dataclass
class HomeownerCounters:
    announced: int = 0
    announcement_refused: int = 0
    requests_seen: int = 0
    ignored: int = 0
    answered: int = 0  # answers recorded that name a label
    not_sure: int = 0  # "not sure" recorded: the request is declined, no label
    late: int = 0  # the request had expired when the answer came (410)
    refused: int = 0  # any other non-2xx answer


@dataclass(order=True)
class _Due:
    at: datetime
    kind: str = field(compare=False)
    data: dict = field(compare=False)


class HttpHomeowner:
    """The simulated homeowner using the real HTTP API (open, demo: no token needed).

    Week 1: for each checklist item (``GET .../checklist``) it announces the next simulated
    uses of that fixture a minute before they start (the simulator does not run fixtures on
    demand, so "I'm about to do it" is said before a use the simulation had planned anyway).
    Always: it polls the open requests and answers each per :class:`Homeowner` (ignored, late,
    wrong, not sure), at the service time the model says.
    """

    def __init__(
        self,
        api_url: str,
        home: SimulatedHome,
        clock: ScaledClock,
        *,
        seed: int = 7,
        model: Homeowner | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """``model`` replaces the default :class:`Homeowner` (e.g. one who always answers)."""
        self.home = home
        self.clock = clock
        self.model = model or Homeowner(seed=seed)
        self.http = httpx.Client(base_url=api_url, headers=headers or {}, timeout=10.0)
        self.base = f"/v1/homes/{home.spec.home_id}"
        self.truth = home.truth_of_event()
        self.categories = {k: str(v) for k, v in home.spec.hierarchy.category_of_fixture.items()}
        self.counters = HomeownerCounters()
        self.answers: dict[str, str] = {}  # request id -> choice posted and recorded
        self._seen: set[str] = set()
        self._due: list[_Due] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="homeowner", daemon=True)

    # -- week 1 checklist

    def plan_checklist(self) -> int:
        """Schedule the announcements of the week-1 checklist; returns how many."""
        items = self.http.get(f"{self.base}/checklist").raise_for_status().json()["items"]
        week1_end = self.home.installed + timedelta(days=7)
        starts: dict[str, tuple[datetime, datetime, str]] = {}  # sim use -> (open, close, valve)
        for s in self.home.sim:
            t = s.truth
            first = starts.setdefault(t["use_id"], (s.event.t, s.event.t, t["valve"]))
            starts[t["use_id"]] = (first[0], max(first[1], s.event.t), first[2])
        uses_by_time = sorted(starts.values())
        taken: set[datetime] = set()
        n = 0
        for item in items:
            wanted = set(item["valve_ids"])
            picks = [
                (t_open, valve)
                for t_open, _t_close, valve in uses_by_time
                if valve in wanted and t_open < week1_end and t_open not in taken
            ][: item["count"]]
            for t_open, _valve in picks:
                taken.add(t_open)
                at = t_open - timedelta(minutes=1)
                post = t_open - timedelta(minutes=30)  # the API accepts t within 1 h of now
                heapq.heappush(
                    self._due,
                    _Due(post, "announce", {"valve_id": item["announce_id"], "t": at.isoformat()}),
                )
                n += 1
        return n

    # -- the loop

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # the service restarting (refused, 503): try again shortly
                _LOGGER.info("homeowner: %r", exc)
                self._stop.wait(0.2)
            self._stop.wait(0.05)

    def step(self) -> None:
        now = self.clock.now()
        r = self.http.get(f"{self.base}/label-requests", params={"state": "open"})
        for req in r.raise_for_status().json()["data"]:
            if req["request_id"] not in self._seen:
                self._seen.add(req["request_id"])
                self._schedule_answer(req)
        while self._due and self._due[0].at <= now:
            due = heapq.heappop(self._due)
            if due.kind == "announce":
                r = self.http.post(f"{self.base}/announcements", json=due.data)
                if r.status_code in (200, 201):
                    self.counters.announced += 1
                else:
                    self.counters.announcement_refused += 1
                    _LOGGER.warning("announcement refused: %s %s", r.status_code, r.text[:200])
            else:
                self._post_answer(due.data["request_id"], due.data["choice"])

    def _schedule_answer(self, req: dict) -> None:
        self.counters.requests_seen += 1
        use_id = req["use_id"] or ""
        truth = self.truth.get(use_id.removeprefix("u-"))
        choices = [c["value"] for c in req["choices"]]
        if truth is None or not choices:
            self.counters.ignored += 1
            return
        ans = self.model.answer(truth, choices, self.categories)
        if not ans.answered:
            self.counters.ignored += 1
            return
        sent = datetime.fromisoformat(req["sent_at"] or req["created_at"])
        at = sent + timedelta(seconds=ans.delay_s)
        data = {"request_id": req["request_id"], "choice": ans.choice}
        heapq.heappush(self._due, _Due(at, "answer", data))

    def _post_answer(self, request_id: str, choice: str) -> None:
        r = self.http.post(
            f"{self.base}/label-requests/{request_id}/answer",
            json={"choice": choice, "answered_by": "simulated homeowner"},
        )
        if r.status_code in (200, 201):
            if choice == NOT_SURE:
                self.counters.not_sure += 1
            else:
                self.counters.answered += 1
            self.answers[request_id] = choice
        elif r.status_code == 410:
            self.counters.late += 1
        else:
            self.counters.refused += 1
            _LOGGER.warning("answer refused: %s %s", r.status_code, r.text[:200])


# ---------------------------------------------------------------------------- the summary


def _true_label(truth: dict, level: str) -> str:
    return str(truth[{"valve": "valve", "fixture": "fixture", "category": "category"}[level]])


def weekly_summary(db: Engine, api: httpx.Client, home: SimulatedHome) -> list[dict]:
    """Per week: labels, display level, estimate/bound (HTTP) and true accuracy (DB vs truth)."""
    home_id = home.spec.home_id
    acc = api.get(f"/v1/homes/{home_id}/accuracy", params={"limit": 10000}).raise_for_status()
    rows = acc.json()["data"]
    timeline = acc.json()["timeline"]
    truth = home.truth_of_event()
    with db.connect() as conn:
        use_t = {
            r.use_id: r._mapping["t"]
            for r in conn.execute(select(uses.c.use_id, uses.c.t).where(uses.c.home_id == home_id))
        }
        cls_rows = conn.execute(
            select(
                classifications.c.use_id,
                classifications.c.level,
                classifications.c.label,
                classifications.c.created_at,
            )
            .where(classifications.c.home_id == home_id)
            .order_by(classifications.c.created_at, classifications.c.id)
        ).all()
        label_rows = conn.execute(
            select(labels.c.source, labels.c.answered_at).where(labels.c.home_id == home_id)
        ).all()
    weeks = []
    n_weeks = -(-home.days // 7)
    for w in range(1, n_weeks + 1):
        end = min(home.installed + timedelta(days=7 * w), home.end)
        start = home.installed + timedelta(days=7 * (w - 1))
        seen_by = end + timedelta(hours=1)  # the daily update at 00:05 reports the day that ended
        week_uses = [u for u, t in use_t.items() if start <= t < end and u[2:] in truth]
        latest: dict[tuple[str, str], str] = {}
        for r in cls_rows:
            if r.created_at <= seen_by and r.use_id in use_t and start <= use_t[r.use_id] < end:
                latest[(r.use_id, r.level)] = r.label
        levels = {}
        for level in LEVELS:
            est = [
                x for x in rows if x["level"] == level and datetime.fromisoformat(x["t"]) <= seen_by
            ]
            # every use of the week, as the calibration bench scores it: a use the service has
            # not classified at this level (no model yet) counts as not correct
            scored = [(uid, latest.get((uid, level))) for uid in week_uses]
            correct = sum(label == _true_label(truth[uid[2:]], level) for uid, label in scored)
            last = est[-1] if est and est[-1]["n_labels"] > 0 else None  # no labels: no estimate
            levels[level] = {
                "estimate": None if last is None else round(last["estimate"], 3),
                "lower_bound": None if last is None else round(last["lower_bound"], 3),
                "n_labels": 0 if last is None else last["n_labels"],
                "true_accuracy": round(correct / len(scored), 3) if scored else None,
                "n_uses": len(scored),
            }
        shown = [c["level"] for c in timeline if datetime.fromisoformat(c["t"]) <= seen_by]
        weeks.append(
            {
                "week": w,
                "end": end.isoformat(),
                "labels": sum(1 for s, t in label_rows if s != "guided" and t <= seen_by),
                "guided_labels": sum(1 for s, t in label_rows if s == "guided" and t <= seen_by),
                "level": shown[-1] if shown else "rules",
                "levels": levels,
            }
        )
    return weeks


def event_counts(db: Engine, home_id: str) -> dict:
    with db.connect() as conn:
        stored = conn.execute(
            select(func.count(), func.count(func.distinct(events.c.event_id))).where(
                events.c.home_id == home_id
            )
        ).one()
        states = dict(
            conn.execute(
                select(label_requests.c.state, func.count())
                .where(label_requests.c.home_id == home_id)
                .group_by(label_requests.c.state)
            ).all()
        )
        stats = db_stats(conn)
    return {
        "stored": stored[0],
        "distinct_event_ids": stored[1],
        "dead_letters": stats["dead_letters"],
        "requests": states,
    }


def print_table(summary: dict, out: Callable[[str], None]) -> None:
    out("\nweek  labels  guided  shown     " + "  ".join(f"{lv:>22}" for lv in LEVELS))
    out(
        "                                 "
        + "  ".join(f"{'est (lower) / true':>22}" for _ in LEVELS)
    )
    for w in summary["weeks"]:
        cells = []
        for lv in LEVELS:
            c = w["levels"][lv]
            est = (
                "  -  "
                if c["estimate"] is None
                else f"{c['estimate']:.2f} ({c['lower_bound']:.2f})"
            )
            true = "-" if c["true_accuracy"] is None else f"{c['true_accuracy']:.2f}"
            cells.append(f"{est + ' / ' + true:>22}")
        out(
            f"{w['week']:>4}  {w['labels']:>6}  {w['guided_labels']:>6}  {w['level']:<8}  "
            + "  ".join(cells)
        )
    ev = summary["events"]
    out(
        f"\nevents: simulated {ev['simulated']}, published {ev['published']}, acknowledged "
        f"{ev['acknowledged']}, stored {ev['stored']} ({ev['distinct_event_ids']} distinct ids), "
        f"dead letters {ev['dead_letters']}"
    )
    out(f"label requests by state: {summary['requests']}; homeowner: {summary['homeowner']}")


# ---------------------------------------------------------------------------- the run


def start_broker(stack: ExitStack, workdir: Path, out: Callable[[str], None]) -> str:
    """A private mosquitto; without the binary there is no broker this demo can use."""
    if shutil.which("mosquitto") is None and shutil.which("mosquitto", path="/usr/sbin") is None:
        raise RuntimeError(
            "the mosquitto binary is not installed (Debian: apt install mosquitto). The service "
            "speaks MQTT 5 with persistent sessions, which the pure-Python brokers available "
            "(amqtt: MQTT 3.1.1 only) cannot serve; pass --broker mqtt://HOST:PORT to use "
            "another MQTT 5 broker."
        )
    broker = stack.enter_context(PrivateBroker(workdir / "broker"))
    out(f"started a private mosquitto at {broker.url} (config {workdir}/broker/mosquitto.conf)")
    return broker.url


def run_demo(
    *,
    days: int = 28,
    speed: float = DEFAULT_SPEED,
    seed: int = 1,
    homeowner_seed: int = 7,
    diligent_homeowner: bool = False,
    preset: str = "two_bath_house",
    broker_url: str | None = None,
    workdir: Path | None = None,
    keep_running: bool = False,
    out: Callable[[str], None] = print,
) -> dict:
    """Run the demo (see the module docstring); returns the summary, also printed.

    ``diligent_homeowner``: answer every request within minutes (still sometimes wrong or
    not sure). The default homeowner ignores a fifth and answers almost a third hours late,
    so one short round may end with no label at all.
    """
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atlas-demo-")))
        workdir.mkdir(parents=True, exist_ok=True)
        broker_url = broker_url or start_broker(stack, workdir, out)
        home = SimulatedHome.generate(preset, days, seed)
        messages = home.messages()
        out(
            f"simulated {days} days of {preset!r}: {len(home.sim)} events; "
            f"playing at {speed:,.0f}x (~{messages[-1][2] / speed:.0f} s of streaming)"
        )
        db = make_engine(f"sqlite:///{workdir}/atlas.db")
        stack.callback(db.dispose)
        upgrade(db)
        register(db, home)
        # the runtime's imports (scikit-learn) take seconds: done before the clock starts, or
        # the first simulated hours pass before the service and the homeowner are up (the
        # checklist's first announcements were then refused as more than an hour old)
        from service.runtime.serve import build_app  # noqa: F401

        clock = ScaledClock(home.installed, time.time() + 3.0, speed)
        settings = demo_settings(workdir, broker_url, clock)
        service = InProcessService(settings, db, clock)
        service.start()
        stack.callback(service.stop)
        out(f"service up: {service.url} (database {workdir}/atlas.db)")
        model = Homeowner(seed=homeowner_seed)
        if diligent_homeowner:
            model = Homeowner(p_no_answer=0.0, p_late=0.0, seed=homeowner_seed)
        homeowner = HttpHomeowner(service.url, home, clock, model=model)
        out(f"homeowner: {homeowner.plan_checklist()} week-1 checklist announcements planned")
        homeowner.start()
        stack.callback(homeowner.stop)
        report = _stream(messages, broker_url, clock, workdir, db, home, homeowner, out)
        wait_until(
            lambda: (
                event_counts(db, home.spec.home_id)["distinct_event_ids"] >= report.acknowledged
            ),
            60,
            poll_s=0.2,
        )
        # let the clock pass the last midnight: the daily update reports the last day
        last_daily = home.end + timedelta(minutes=10)
        wait_until(
            lambda: clock.now() >= last_daily,
            clock.wall_seconds((last_daily - clock.now()).total_seconds()) + 5,
            poll_s=0.2,
        )
        with httpx.Client(base_url=service.url, timeout=10) as api:
            wait_until(lambda: _has_daily_after(api, home, home.end), 30, poll_s=0.2)
            summary = {
                "home_id": home.spec.home_id,
                "days": days,
                "speed": speed,
                "events": {
                    "simulated": len(home.sim),
                    "published": report.sent,
                    "acknowledged": report.acknowledged,
                }
                | {k: v for k, v in event_counts(db, home.spec.home_id).items() if k != "requests"},
                "requests": event_counts(db, home.spec.home_id)["requests"],
                "homeowner": vars(homeowner.counters),
                "weeks": weekly_summary(db, api, home),
                "dashboard_url": f"{service.url}/homes/{home.spec.home_id}/dashboard",
            }
        homeowner.stop()
        print_table(summary, out)
        out(f"\ndashboard: {summary['dashboard_url']}")
        if keep_running:
            out("serving until Ctrl-C (--keep-running)")
            with suppress(KeyboardInterrupt):
                threading.Event().wait()
    return summary


def _has_daily_after(api: httpx.Client, home: SimulatedHome, t: datetime) -> bool:
    r = api.get(f"/v1/homes/{home.spec.home_id}/accuracy", params={"limit": 3})
    return r.status_code == 200 and any(
        datetime.fromisoformat(x["t"]) >= t for x in r.json()["data"]
    )


def _stream(messages, broker_url, clock, workdir, db, home, homeowner, out) -> StreamReport:
    """Publish on the simulated clock (in a thread) and print progress once per simulated day."""
    result: dict[str, StreamReport] = {}

    def play() -> None:
        time.sleep(max(0.0, clock.wall_start - time.time()))
        result["report"] = stream_events(
            messages,
            broker_url,
            speed=clock.speed,
            outbox_dir=workdir / "outbox",
            progress=False,
            client_id=f"demo-gateway-{uuid.uuid4().hex[:8]}",
        )

    player = threading.Thread(target=play, name="gateway", daemon=True)
    player.start()
    day_printed = 0
    while player.is_alive():
        player.join(0.5)
        day = home_day(home, clock.now())
        if day > day_printed and day <= home.days:
            day_printed = day
            c = event_counts(db, home.spec.home_id)
            out(
                f"  day {day:>2}: {c['stored']:>5} events stored, requests {c['requests']}, "
                f"homeowner answered {homeowner.counters.answered}, "
                f"announced {homeowner.counters.announced}"
            )
    if "report" not in result:
        raise RuntimeError("the simulated gateway failed; see the log above")
    return result["report"]


def home_day(home: SimulatedHome, t: datetime) -> int:
    local = t.astimezone(home.installed.tzinfo).date()
    return (local - home.installed.date()).days + 1


# ---------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=28, help="simulated days (default 28)")
    parser.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help=f"simulated seconds per wall second (default {DEFAULT_SPEED:,.0f}: 28 days in "
        "about 3.5 minutes)",
    )
    parser.add_argument("--seed", type=int, default=1, help="simulation seed")
    parser.add_argument("--homeowner-seed", type=int, default=7)
    parser.add_argument(
        "--diligent-homeowner",
        action="store_true",
        help="the homeowner answers every request within minutes (default: a fifth ignored, "
        "almost a third answered hours late)",
    )
    parser.add_argument("--broker", default=None, help="use this MQTT 5 broker, not a private one")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the database here")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="keep the service (and the dashboard) up after the summary until Ctrl-C",
    )


def run(args: argparse.Namespace) -> int:
    """``atlas demo``; exit status 0 when every published event was stored exactly once."""
    for noisy in ("service", "apscheduler", "uvicorn", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.days < 1:
        raise ValueError(f"--days={args.days} should be at least 1")
    summary = run_demo(
        days=args.days,
        speed=args.speed,
        seed=args.seed,
        homeowner_seed=args.homeowner_seed,
        diligent_homeowner=args.diligent_homeowner,
        broker_url=args.broker,
        workdir=args.workdir,
        keep_running=args.keep_running,
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2), "utf-8")
    ev = summary["events"]
    return 0 if ev["stored"] == ev["distinct_event_ids"] == ev["simulated"] else 1
