"""``atlas demo``: a simulated home calibrating end to end through the real service, in minutes.

What runs (all on this machine): a broker (a private ``mosquitto`` on a free port with the
data-keeping config, with ``--secure`` the shipped ``deploy/`` config (below), or ``--broker
URL``), SQLite in a temporary folder, the full service in this process (intake, per-home
pipeline, scheduler, MQTT link and the HTTP API under uvicorn on a free port), a gateway
publishing a simulated ``two_bath_house`` (QoS 1), and a simulated homeowner who does the week-1
checklist through ``POST /v1/homes/{id}/announcements`` and answers label requests through the
HTTP API like a person (some ignored, some late, some wrong; :mod:`simulator.homeowner`).

All of them run on one :class:`~service.clock.VirtualClock`, a discrete-event clock that
:class:`VirtualTimeDriver` advances from one due instant to the next (an event to publish, a
homeowner's action, a scheduler job or classifier pass) only once the service has finished what
was due: stored and paired every event, run every due job and pass. So a round that takes a wall
second still sends its requests at the round's minute, a request expires only because the
homeowner did not answer in time, and the same seeds print the same table on any machine.

At the end it prints the Table 8-2-style summary: per week (per day with ``--verbose``), labels,
the level shown beside the level the truth allows, and per level the estimate with its lower
bound next to the TRUE accuracy (against the simulator's ground truth); events published vs
stored; label requests by state.

``--secure`` runs the private broker with the deployment's own ``deploy/mosquitto.conf`` and
``deploy/atlas.acl`` (:class:`~service.broker.SecureBroker`: only ports and paths replaced, a CA
and certificates drawn for the run, the logins made by ``atlas broker users``' code), and every
client logs in as it would in a deployment: the service on Atlas's listener (TLS, client
certificate, the service account's password), the gateway as ``HOME/sensors`` on the device
listener (TLS, password), and a homeowner's phone as ``HOME/label-requests`` reading the
retained list of its open requests (the simulated homeowner still answers over HTTP). The
passwords stay in files the broker URLs name; the table is the same as without ``--secure``.

The pieces (:class:`InProcessService`, :class:`HttpHomeowner`, :func:`summary_rows`) are also
what the end-to-end restart test drives, there on a :class:`~service.clock.ScaledClock`.
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
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import Engine

from atlas.events import EVENT_TOPIC
from atlas.homespec import HomeSpec, parse_home_spec
from service.broker import PrivateBroker, SecureBroker, free_port
from service.broker_logins import device_username
from service.clock import Clock, VirtualClock
from service.demo_summary import event_counts, print_summary, summary_rows
from service.mqttconn import BrokerEndpoint, new_client
from service.settings import Settings
from service.storage.engine import make_engine, upgrade
from service.storage.homes import upsert_home
from service.waiting import wait_until
from simulator.generate import SimEvent, generate_run
from simulator.homeowner import NOT_SURE, Homeowner
from simulator.presets import load_preset

if TYPE_CHECKING:
    from service.runtime.service import AtlasRuntime

_LOGGER = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- the simulated home


@dataclass(frozen=True)
class SimulatedHome:
    """A home spec, its simulated events and the truth the summary scores against."""

    spec: HomeSpec
    sim: list[SimEvent]
    installed: datetime  # local midnight of day 1: the service's install time and sim start
    days: int

    @classmethod
    def generate(
        cls,
        preset: str,
        days: int,
        seed: int,
        home_id: str | None = None,
        start: datetime | None = None,
    ):
        """``start``: the local midnight of installation (naive; default: the simulator's)."""
        spec = load_preset(preset)
        if home_id is not None:
            spec = parse_home_spec(spec.to_dict() | {"home_id": home_id})
        sim = generate_run(spec, days=days, seed=seed, start=start)
        tz = ZoneInfo(spec.model.timezone)
        d = sim[0].event.t.astimezone(tz).date()
        return cls(spec, sim, datetime(d.year, d.month, d.day, tzinfo=tz), days)

    @property
    def end(self) -> datetime:
        return self.midnight_after(self.days)

    def midnight_after(self, day: int) -> datetime:
        """The local midnight that ends calibration ``day`` (day 1: the installation day)."""
        d = self.installed.date() + timedelta(days=day)
        return datetime(d.year, d.month, d.day, tzinfo=self.installed.tzinfo)

    def truth_of_event(self) -> dict[str, dict]:
        return {s.event.event_id: s.truth for s in self.sim}

    def publications(self, topic_base: str = "atlas/v1") -> list[tuple[datetime, str, bytes]]:
        """``(event time, topic, payload)`` of every event, in time order."""
        default_base = EVENT_TOPIC.split("/homes/", 1)[0]
        return [
            (
                s.event.t,
                topic_base + s.event.topic()[len(default_base) :],
                json.dumps(s.payload()).encode(),
            )
            for s in self.sim
        ]

    def messages(self, topic_base: str = "atlas/v1") -> list[tuple[str, bytes, float]]:
        """``(topic, payload, seconds since install)`` (:func:`simulator.stream.stream_events`)."""
        return [
            (topic, payload, (t - self.installed).total_seconds())
            for t, topic, payload in self.publications(topic_base)
        ]


def register(db: Engine, home: SimulatedHome) -> None:
    """Register the home as installed at its day-1 midnight (the engine's calibration day 1)."""
    with db.begin() as conn:
        upsert_home(conn, home.spec, now=home.installed)


# ---------------------------------------------------------------------------- the service


class InProcessService:
    """``atlas serve`` in this process: runtime + API under uvicorn in a thread; restartable."""

    def __init__(self, settings: Settings, db: Engine, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.runtime: AtlasRuntime | None = None

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
    *,
    topic_base: str = "atlas/v1",
    client_prefix: str | None = None,
    db_url: str | None = None,
    port: int | None = None,
    **overrides,
) -> Settings:
    """Settings of the in-process service (``overrides``: any other setting)."""
    return Settings(
        **{
            "environment": "development",
            "db_url": db_url or f"sqlite:///{workdir}/atlas.db",
            "broker_url": broker_url,
            "event_topic": f"{topic_base}/homes/+/sensors/+/events",
            "mqtt_client_prefix": client_prefix or f"demo-{uuid.uuid4().hex[:8]}",
            "http_port": port or free_port(),
            "log_json": False,
            # the stored pairing gives the provisional classifications: a child process would
            # classify beside the work the driver waits for, on CPU the table never shows
            "provisional_process": False,
            # fewer, larger classifier passes (the longest pause the settings allow): each pass
            # rebuilds the home's whole matrix, most of the demo's time
            "classify_every_s": 60.0,
        }
        | overrides
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
    Always: it reads the open requests (:meth:`look`) and answers each per :class:`Homeowner`
    (ignored, late, wrong, not sure) at the service time the model says (:meth:`act`).

    Stepped by :class:`VirtualTimeDriver`, or on a thread of its own (:meth:`start`) that polls
    a running clock.
    """

    def __init__(
        self,
        api_url: str,
        home: SimulatedHome,
        clock: Clock,
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
        if self._thread.ident is not None:
            self._thread.join(10)
        self.http.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # the service restarting (refused, 503): try again shortly
                _LOGGER.info("homeowner: %r", exc)
                self._stop.wait(0.2)
            self._stop.wait(0.05)

    def step(self) -> None:
        self.look()
        self.act(self.clock.now())

    def look(self) -> None:
        """Read the open requests; plan the answer to each new one."""
        r = self.http.get(f"{self.base}/label-requests", params={"state": "open"})
        new = [q for q in r.raise_for_status().json()["data"] if q["request_id"] not in self._seen]
        for req in sorted(new, key=lambda q: (q["sent_at"] or q["created_at"], q["request_id"])):
            self._seen.add(req["request_id"])
            self._schedule_answer(req)

    def next_due(self) -> datetime | None:
        """When the next announcement or answer is due (None: nothing planned)."""
        return self._due[0].at if self._due else None

    def act(self, now: datetime) -> None:
        """Post the announcements and answers due by ``now``."""
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


# ---------------------------------------------------------------------------- the run


def _need_mosquitto() -> None:
    """Without the binary there is no broker this demo can use."""
    if shutil.which("mosquitto") is None and shutil.which("mosquitto", path="/usr/sbin") is None:
        raise RuntimeError(
            "the mosquitto binary is not installed (Debian: apt install mosquitto). The service "
            "speaks MQTT 5 with persistent sessions, which the pure-Python brokers available "
            "(amqtt: MQTT 3.1.1 only) cannot serve; pass --broker mqtt://HOST:PORT to use "
            "another MQTT 5 broker."
        )


def start_broker(stack: ExitStack, workdir: Path, out: Callable[[str], None]) -> str:
    """A private anonymous mosquitto with the data-keeping config; returns its URL."""
    _need_mosquitto()
    broker = stack.enter_context(PrivateBroker(workdir / "broker"))
    out(f"started a private mosquitto at {broker.url} (config {workdir}/broker/mosquitto.conf)")
    return broker.url


@dataclass(frozen=True)
class DemoBroker:
    """The broker URL of each demo client: one for all, or (``--secure``) one login each."""

    service: str
    gateway: str
    homeowner_device: str | None = None  # a phone reading its requests over MQTT (--secure)


def start_secure_broker(
    stack: ExitStack, workdir: Path, home_id: str, out: Callable[[str], None]
) -> DemoBroker:
    """A private mosquitto with the shipped deploy/ config and the logins of ``home_id``."""
    _need_mosquitto()
    broker = stack.enter_context(SecureBroker(workdir / "broker", [home_id]))
    urls = DemoBroker(
        service=broker.service_url,
        gateway=broker.device_url(home_id, "gateway"),
        homeowner_device=broker.device_url(home_id, "homeowner"),
    )
    out(
        f"started a private mosquitto with the shipped {broker.deploy_dir}/mosquitto.conf and "
        f"atlas.acl (config {broker.config_file})"
    )
    for who, url in (
        ("service", urls.service),
        ("gateway", urls.gateway),
        ("homeowner device", urls.homeowner_device),
    ):
        endpoint = BrokerEndpoint.from_url(url)
        how = "TLS + client certificate + password" if endpoint.cert_file else "TLS + password"
        out(f"  {who:<16} {endpoint.masked()}  ({how})")
    out(
        f"  logins made by `atlas broker users` in {workdir}/broker/atlas.passwd, each password "
        f"in a file of {workdir}/broker/secrets/ (never printed)"
    )
    return urls


class _DemoClient:
    """A paho client of the demo, connected (or refused) when the constructor returns."""

    def __init__(self, broker_url: str, client_id: str, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self.broker = BrokerEndpoint.from_url(broker_url)
        self.client = new_client(self.broker, client_id)
        self._connack: list[ReasonCode] = []
        self._answered = threading.Event()
        self.client.on_connect = self._on_connect

    def _connect(self, role: str) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        self._answered.wait(self.timeout_s)
        if not self._connack or self._connack[0].is_failure:
            self.close()
            why = (
                f"refused: {self._connack[0]}"
                if self._connack
                else f"none within {self.timeout_s} s"
            )
            raise ConnectionError(f"no {role} connection to {self.broker.masked()} ({why})")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connack.append(reason_code)
        self._answered.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class HomeownerDevice(_DemoClient):
    """A homeowner's phone on MQTT: subscribes to the retained list of its home's open label
    requests (``<base>/homes/HOME/label-requests``, what its login may read) and keeps the
    latest. It only reads: the simulated homeowner answers over HTTP."""

    def __init__(self, broker_url: str, home_id: str, topic_base: str = "atlas/v1") -> None:
        super().__init__(broker_url, f"demo-phone-{uuid.uuid4().hex[:8]}")
        self.topic = f"{topic_base}/homes/{home_id}/label-requests"
        self.updates = 0
        self.latest: dict | None = None
        self.most_open = 0  # the longest list of open requests received
        self.client.on_message = self._on_message
        self._connect("homeowner device")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe(self.topic, qos=1)
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self.topic and message.payload:
            self.latest = json.loads(message.payload)
            self.most_open = max(self.most_open, len(self.latest.get("requests", [])))
            self.updates += 1


class Gateway(_DemoClient):
    """A home's gateway publishing one event at a time at QoS 1, each until its PUBACK.

    :func:`simulator.stream.stream_events` paces a whole stream by the wall clock; here the
    driver decides when each event is due, so the gateway only publishes. The broker URL
    carries its login and TLS (service/mqttconn.py).
    """

    def __init__(self, broker_url: str, client_id: str, timeout_s: float = 30.0) -> None:
        super().__init__(broker_url, client_id, timeout_s)
        self.published = 0
        self.acknowledged = 0
        self._refused: set[int] = set()  # mids whose PUBACK refused the message
        self.client.on_publish = self._on_publish
        self._connect("gateway")

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if reason_code.is_failure:  # e.g. "Not authorized": the login may not use that topic
            self._refused.add(mid)

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        self.published += 1
        info.wait_for_publish(self.timeout_s)
        if not info.is_published():
            raise RuntimeError(f"the broker did not acknowledge an event within {self.timeout_s} s")
        if info.mid in self._refused:
            raise RuntimeError(f"{self.broker.masked()} refused an event on {topic!r}")
        self.acknowledged += 1


class VirtualTimeDriver:
    """Plays a run on a :class:`VirtualClock`: advance to the next due instant, deliver what is
    due there, wait until the service is idle, repeat.

    Due instants: the next event to publish, the homeowner's next action and the runtime's
    (:meth:`AtlasRuntime.next_due`: its next scheduler job or classifier pass). At an instant,
    the events come first (each stored and paired), then what the runtime has due (after a job,
    the homeowner reads the open requests), then the homeowner's announcements and answers.
    After each, the driver waits until the service is idle: it has taken in every event
    published and :meth:`AtlasRuntime.idle` holds. The clock does not move before.
    """

    def __init__(
        self,
        clock: VirtualClock,
        runtime: AtlasRuntime,
        gateway: Gateway,
        homeowner: HttpHomeowner,
        publications: list[tuple[datetime, str, bytes]],
        *,
        settle_timeout_s: float = 120.0,
    ) -> None:
        self.clock = clock
        self.runtime = runtime
        self.gateway = gateway
        self.homeowner = homeowner
        self.publications = publications
        self.settle_timeout_s = settle_timeout_s
        self._next = 0  # index of the next publication

    def run_until(
        self, end: datetime, before_advance: Callable[[datetime], None] = lambda t: None
    ) -> None:
        """Deliver everything due up to ``end``; ``before_advance(t)`` runs (the service idle)
        before each move of the clock to ``t``."""
        self.settle()
        while (t := self.next_due()) is not None and t <= end:
            self._advance(t, before_advance)
            self._deliver(t)
        self._advance(end, before_advance)

    def next_due(self) -> datetime | None:
        """The next instant at which something is due (never before now)."""
        times = [t for t in (self.homeowner.next_due(), self.runtime.next_due()) if t is not None]
        if self._next < len(self.publications):
            times.append(self.publications[self._next][0])
        return max(min(times), self.clock.now()) if times else None

    def _advance(self, t: datetime, before_advance: Callable[[datetime], None]) -> None:
        if t > self.clock.now():
            before_advance(t)
            self.clock.advance_to(t)

    def _deliver(self, t: datetime) -> None:
        while self._next < len(self.publications) and self.publications[self._next][0] <= t:
            _, topic, payload = self.publications[self._next]
            self.gateway.publish(topic, payload)
            self._next += 1
            self.settle()
        due = self.runtime.next_due()
        if due is not None and due <= t:
            job = self.runtime.scheduler.next_due()
            self.runtime.wake()
            self.settle()
            if job is not None and job <= t:  # only jobs send and expire requests
                self.homeowner.look()
        owner = self.homeowner.next_due()
        if owner is not None and owner <= t:
            self.homeowner.act(t)
            self.settle()

    def settle(self) -> None:
        """Wait until the service is idle (see the class docstring)."""

        def idle() -> bool:
            return self.runtime.messages_taken >= self.gateway.published and self.runtime.idle()

        if not wait_until(idle, self.settle_timeout_s, poll_s=0.0005, max_poll_s=0.002):
            raise RuntimeError(
                f"the service did not finish what was due at {self.clock.now().isoformat()} "
                f"within {self.settle_timeout_s} s of wall time"
            )


class _DayLines:
    """Prints a line per simulated day as the clock leaves it (the service idle, so the counts
    are the same on every run)."""

    def __init__(self, db: Engine, home: SimulatedHome, homeowner: HttpHomeowner, out) -> None:
        self.db = db
        self.home = home
        self.homeowner = homeowner
        self.out = out
        self.day = 1

    def __call__(self, t: datetime) -> None:
        while self.day <= self.home.days and t >= self.home.midnight_after(self.day):
            c = event_counts(self.db, self.home.spec.home_id)
            self.out(
                f"  day {self.day:>2}: {c['stored']:>5} events stored, requests {c['requests']}, "
                f"homeowner answered {self.homeowner.counters.answered}, "
                f"announced {self.homeowner.counters.announced}"
            )
            self.day += 1


def run_demo(
    *,
    days: int = 28,
    seed: int = 1,
    homeowner_seed: int = 7,
    diligent_homeowner: bool = False,
    preset: str = "two_bath_house",
    broker_url: str | None = None,
    secure: bool = False,
    workdir: Path | None = None,
    verbose: bool = False,
    keep_running: bool = False,
    start: datetime | None = None,
    home_id: str | None = None,
    out: Callable[[str], None] = print,
) -> dict:
    """Run the demo (see the module docstring); returns the summary, also printed.

    ``start`` (a naive local midnight) and ``home_id`` replace the simulator's defaults (the
    fleet demo runs its last home again alone with them).

    ``diligent_homeowner``: answer every request within minutes (still sometimes wrong or
    not sure). The default homeowner ignores a fifth and answers almost a third hours late,
    so one short round may end with no label at all. ``verbose``: a row per day as well.
    ``secure``: the private broker runs the shipped deploy/ config, each client with its login
    (see the module docstring); not with ``broker_url``.
    """
    if secure and broker_url:
        raise ValueError("secure starts its own broker: give it no broker_url")
    started = time.monotonic()
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atlas-demo-")))
        workdir.mkdir(parents=True, exist_ok=True)
        home = SimulatedHome.generate(preset, days, seed, home_id=home_id, start=start)
        if secure:
            broker = start_secure_broker(stack, workdir, home.spec.home_id, out)
        else:
            url = broker_url or start_broker(stack, workdir, out)
            broker = DemoBroker(service=url, gateway=url)
        out(f"simulated {days} days of {preset!r}: {len(home.sim)} events")
        db = make_engine(f"sqlite:///{workdir}/atlas.db")
        stack.callback(db.dispose)
        upgrade(db)
        register(db, home)
        clock = VirtualClock(home.installed)
        service = InProcessService(demo_settings(workdir, broker.service), db, clock)
        service.start()
        stack.callback(service.stop)
        out(f"service up: {service.url} (database {workdir}/atlas.db)")
        model = Homeowner(seed=homeowner_seed)
        if diligent_homeowner:
            model = Homeowner(p_no_answer=0.0, p_late=0.0, seed=homeowner_seed)
        homeowner = HttpHomeowner(service.url, home, clock, model=model)
        stack.callback(homeowner.stop)
        # on the device listener the broker replaces the client id with the login's username
        gateway = Gateway(broker.gateway, f"demo-gateway-{uuid.uuid4().hex[:8]}")
        stack.callback(gateway.close)
        device = None
        if broker.homeowner_device is not None:
            device = HomeownerDevice(broker.homeowner_device, home.spec.home_id)
            stack.callback(device.close)
        publications = home.publications()
        driver = VirtualTimeDriver(clock, service.runtime, gateway, homeowner, publications)
        out(f"homeowner: {homeowner.plan_checklist()} week-1 checklist announcements planned")
        # past the last midnight (the daily update at 00:05 reports the last day) and the last
        # event (a use that began before midnight may end after it)
        until = max(home.end + timedelta(minutes=10), publications[-1][0])
        driver.run_until(until, _DayLines(db, home, homeowner, out))
        counts = event_counts(db, home.spec.home_id)
        with httpx.Client(base_url=service.url, timeout=10) as api:
            summary = {
                "home_id": home.spec.home_id,
                "days": days,
                "events": {
                    "simulated": len(home.sim),
                    "published": gateway.published,
                    "acknowledged": gateway.acknowledged,
                }
                | {k: v for k, v in counts.items() if k != "requests"},
                "requests": counts["requests"],
                "homeowner": vars(homeowner.counters),
                "weeks": summary_rows(db, api, home, 7),
                "dashboard_url": f"{service.url}/homes/{home.spec.home_id}/dashboard",
            }
            if verbose:
                summary["per_day"] = summary_rows(db, api, home, 1)
        if device is not None:
            # the retained list comes on SUBSCRIBE; later ones each time the open requests change
            wait_until(lambda: device.updates > 0, 10)
            summary["homeowner_device"] = {
                "login": device_username(home.spec.home_id, "homeowner"),
                "updates": device.updates,
                "most_open_requests": device.most_open,
            }
        print_summary(summary, out)
        if device is not None:
            d = summary["homeowner_device"]
            out(
                f"homeowner device ({d['login']}, over MQTT): {d['updates']} update(s) of its "
                f"open-request list, at most {d['most_open_requests']} open at once"
            )
        out(f"\n{days} days played in {time.monotonic() - started:.0f} s of wall time")
        if keep_running:  # without it the service stops here: a link would lead nowhere
            out(f"dashboard: {summary['dashboard_url']}")
            out("serving until Ctrl-C (--keep-running)")
            with suppress(KeyboardInterrupt):
                threading.Event().wait()
    return summary


# ---------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=28, help="simulated days (default 28)")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed")
    parser.add_argument("--homeowner-seed", type=int, default=7)
    parser.add_argument(
        "--diligent-homeowner",
        action="store_true",
        help="the homeowner answers every request within minutes (default: a fifth ignored, "
        "almost a third answered hours late)",
    )
    parser.add_argument(
        "--verbose",
        dest="per_day",
        action="store_true",
        help="print the summary table per day as well as per week",
    )
    brokers = parser.add_mutually_exclusive_group()
    brokers.add_argument("--broker", default=None, help="use this MQTT 5 broker, not a private one")
    brokers.add_argument(
        "--secure",
        action="store_true",
        help="run the private broker with the shipped deploy/mosquitto.conf and deploy/atlas.acl "
        "(a CA and certificates drawn for the run, the logins made as `atlas broker users` "
        "makes them): the service connects to Atlas's listener (TLS + client certificate + "
        "password), the gateway as HOME/sensors and a homeowner's phone as HOME/label-requests "
        "to the device listener (TLS + password). Same table as without it; no password is "
        "printed or logged",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep the database here")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="keep the service (and the dashboard) up after the summary until Ctrl-C",
    )
    several = parser.add_argument_group(
        "several homes: the Nth home starts from the fleet of the earlier ones (docs/fleet.md)"
    )
    several.add_argument(
        "--homes",
        type=int,
        default=1,
        help="homes installed one after another through the service (default 1); the last is "
        "installed once a fleet of all the others is built, then run again alone without it",
    )
    several.add_argument(
        "--last-preset",
        default="apartment",
        help="the last home's layout (default apartment; the others cycle two_bath_house, "
        "three_bath_house)",
    )
    several.add_argument(
        "--install-every",
        type=int,
        default=1,
        help="days between the installations of the fleet's homes (default 1)",
    )


def quiet_service_logs() -> None:
    """Only warnings from the service and its libraries: the demo's own lines are the output."""
    for noisy in ("service", "apscheduler", "uvicorn", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    """``atlas demo``; exit status 0 when every published event was stored exactly once."""
    quiet_service_logs()
    if args.days < 1:
        raise ValueError(f"--days={args.days} should be at least 1")
    summary = run_demo(
        days=args.days,
        seed=args.seed,
        homeowner_seed=args.homeowner_seed,
        diligent_homeowner=args.diligent_homeowner,
        broker_url=args.broker,
        secure=args.secure,
        workdir=args.workdir,
        verbose=args.per_day,
        keep_running=args.keep_running,
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2), "utf-8")
    ev = summary["events"]
    return 0 if ev["stored"] == ev["distinct_event_ids"] == ev["simulated"] else 1
