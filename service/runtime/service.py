"""``AtlasRuntime``: intake + per-home pipeline + scheduler + MQTT link, started and stopped as one.

Several workers (PostgreSQL): every worker stores what the shared subscription gives it; each
home is paired and classified by its owner (service/runtime/ownership.py), and the scheduler
leader has the owners do the engine work of its jobs (service/scheduler/delegate.py).

Order matters on stop (SIGTERM): the intake stops first (its unacked messages stay in the
broker session, nothing uncommitted is acked), then the pairing and pipeline workers finish the
home they are on, the scheduler shuts down (running jobs finish; their work commits or not at
all), the leader lock is released, work done for another leader finishes, the membership lock
is released (the other workers take this worker's homes), and the database is disposed last.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, text

from atlas.engine import EngineConfig
from atlas.events import Event
from atlas.timetable import TimetablePolicy
from service import metrics
from service.alerting import AlertCheck
from service.answers_mqtt import handle_answer
from service.api.hooks import ApiHooks, EventHub
from service.api.usage_report import use_litres
from service.clock import Clock, clock_from_settings
from service.ha_discovery import HomeAssistant, availability_topic
from service.intake.mqtt import IntakeConfig, MqttIntake
from service.intake.pipeline import IngestPipeline
from service.intake.provisional_process import ProvisionalProcess
from service.intake.registry import HomeRegistry
from service.mqttutil import topic_prefix
from service.push.dispatcher import Dispatcher
from service.runtime.fleetcache import FleetCache
from service.runtime.mqttlink import MqttLink
from service.runtime.ownership import Ownership
from service.runtime.passes import ClassifyPasses
from service.runtime.pipeline import HomePipeline, Listener
from service.runtime.quiescence import RoutingLedger
from service.scheduler.delegate import Delegation
from service.scheduler.leader import LeaderElection
from service.scheduler.service import AtlasScheduler
from service.settings import Settings
from service.storage.homes import list_home_ids

_LOGGER = logging.getLogger(__name__)
SW_VERSION = "0.6"


#: Events at most this much older than the (re)start are live, not backlog: a gateway
#: publishes an event once its window is captured (1.75 s) and its outbox may lag a little.
LIVE_LAG = timedelta(seconds=10)


class _NothingWaits:
    """The intake's view of the pairer: no home waits to be re-paired by the wall clock.

    The intake's pairing thread re-pairs the homes its pairer says are due. Here the owner's
    pairing loop (:meth:`AtlasRuntime._pair_loop`) pairs and re-pairs, so the intake must not
    see those homes: routing them would return at once and the intake would spin on them.
    Decoded events go to ``offer`` (the owner's pairer, for the homes this worker owns).
    """

    def __init__(self, offer: Callable[[list[Event]], None]) -> None:
        self.offer_events = offer

    def due_homes(self) -> set[str]:
        return set()

    def next_due_s(self) -> float | None:
        return None


class _SettleQueue:
    """Homes waiting to be paired, each with the (monotonic) time it may be paired from.

    A home marked again while it waits keeps its first time, so a busy home is not put off
    forever; it is queued once more for its newest mark when it is taken (the events of that
    mark may not have settled yet).
    """

    def __init__(self) -> None:
        self._first: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def add(self, homes_: set[str], ready_at: float) -> None:
        for home_id in homes_:
            self._first.setdefault(home_id, ready_at)
            self._last[home_id] = max(self._last.get(home_id, ready_at), ready_at)

    def pop_ready(self, now: float) -> set[str]:
        """The homes whose time has come (each again later if marked again meanwhile)."""
        ready = {h for h, t in self._first.items() if t <= now}
        for home_id in ready:
            del self._first[home_id]
            last = self._last.pop(home_id)
            if last > now:
                self.add({home_id}, last)
        return ready

    def earliest(self) -> float | None:
        """The earliest time of a waiting home (None: none waits)."""
        return min(self._first.values(), default=None)

    def next_in(self, now: float) -> float | None:
        """Seconds until the next home's time (None: no home waits)."""
        earliest = self.earliest()
        return None if earliest is None else max(0.0, earliest - now)


class _RoutingIngest(IngestPipeline):
    """The intake's pipeline: stores as usual, then hands the homes it stored events for to
    ``route`` instead of pairing them; the runtime pairs the homes this worker owns (with
    :attr:`owner_pairer`) and notifies the owners of the others (service/runtime/ownership.py).
    """

    def __init__(
        self,
        db: Engine,
        route: Callable[[set[str], float], None],
        clock,
        owns: Callable[[str], bool],
        on_unsettled=None,
        on_stored=None,
        registry: HomeRegistry | None = None,
    ) -> None:
        # the owner's classifier takes the stored uses' decoded events and features
        super().__init__(
            db,
            registry,
            clock=clock,
            on_unsettled=on_unsettled,
            hand_over=4096,
            on_stored=on_stored,
        )
        self._route = route
        self._stored_at: dict[str, float] = {}  # home -> wall time its newest events committed
        self.ledger = RoutingLedger()  # committed, not routed yet (AtlasRuntime.idle)
        self.owner_pairer = self.pairer
        self.pairer = _NothingWaits(self._offer)  # what MqttIntake's pairing loop polls
        self._owns = owns

    def _offer(self, decoded: list[Event]) -> None:
        self.owner_pairer.offer_events([e for e in decoded if self._owns(e.home_id)])

    def process(self, batch):
        outcome = super().process(batch)
        committed = time.time()
        self._stored_at.update(dict.fromkeys(outcome.homes, committed))
        self.ledger.committed(outcome.homes)
        metrics.EVENTS_IN.inc(len(outcome.stored))
        metrics.EVENT_DUPLICATES.inc(outcome.duplicates)
        metrics.DEAD_LETTERS.inc(len(outcome.dead))
        return outcome

    def pair(self, homes_: set[str], *, final: bool = False) -> int:
        """Route, do not pair: the owner pairs (0 uses here; the runtime counts them)."""
        taken = self.ledger.routing(homes_)
        now = time.time()
        self._route(set(homes_), max((self._stored_at.get(h, now) for h in homes_), default=now))
        self.ledger.routed(taken)
        return 0


class _Publish(Listener):
    def __init__(self, runtime: AtlasRuntime) -> None:
        self.rt = runtime

    def classified(self, home_id: str, rows: list[dict]) -> None:
        for row in rows:
            self.rt.hub.publish(home_id, "classification", row)
        self.rt.publish_uses(home_id, [r["use_id"] for r in rows if not r["provisional"]])

    def status_changed(self, home_id: str, status: dict, level_changed: bool) -> None:
        try:  # the water sensors follow the display level and its lumps
            self.rt.publish_discovery(home_id)
        except Exception:  # published again at the next daily update, start or HA restart
            _LOGGER.exception("publishing the discovery of %s failed", home_id)
        self.rt.publish_home_state(home_id, status, recount=True)
        if level_changed:
            self.rt.hub.publish(
                home_id, "level", {"level": status["level"], "reason": status["reason"]}
            )

    def requests_planned(self, home_id: str) -> None:
        self.rt.hub.publish(home_id, "label_request", {"home_id": home_id})

    def preview_changed(self, home_id: str) -> None:
        if self.rt.provisional is not None:
            self.rt.provisional.model_changed(home_id)


def engine_config_from(settings: Settings, timetable: TimetablePolicy) -> EngineConfig:
    """The calibration engine's settings: the strategy and the display's decision rule from
    ``settings``, and the timetable the dispatcher enforces."""
    return EngineConfig(
        strategy=settings.calibration_strategy,
        timetable=timetable,
        confidence=settings.estimate_confidence,
        day_one_prior=settings.day_one_prior,
        day_one_discrepancy_sd=settings.day_one_discrepancy_sd,
    )


class AtlasRuntime:
    """Everything ``atlas serve`` runs besides the HTTP server (see the module docstring)."""

    def __init__(self, settings: Settings, db: Engine, clock: Clock | None = None) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock or clock_from_settings(
            settings.sim_start, settings.sim_wall_start, settings.sim_speed
        )
        self.hub = EventHub()
        self.base = topic_prefix(settings.event_topic)
        tt = settings.timetable
        self.policy = TimetablePolicy(
            quiet_start=datetime.strptime(tt.quiet_start, "%H:%M").time(),
            quiet_end=datetime.strptime(tt.quiet_end, "%H:%M").time(),
            memory_h=tt.memory_hours,
        )
        # the engine plans rounds and expiry with the same timetable the dispatcher enforces
        engine_config = engine_config_from(settings, self.policy)
        self.pipeline = HomePipeline(
            db,
            clock=self.clock.now,
            listener=_Publish(self),
            config_for=lambda spec: engine_config,
            fleets=FleetCache(settings.fleet),
            paired_events=lambda home, ids: self.ingest.owner_pairer.take_paired(home, ids),
        )
        self.link = MqttLink(
            settings.broker_url,
            settings.runtime_client_id,
            [
                f"{self.base}/homes/+/label-requests/+/answer",
                f"{settings.ha_discovery_prefix}/status",
            ],
            self._on_link_message,
            availability_topic(self.base),
        )
        self.ha = HomeAssistant(db, settings.ha_discovery_prefix, self.base, SW_VERSION)
        self.dispatcher = Dispatcher(
            db,
            clock=self.clock.now,
            policy=self.policy,
            topic_base=self.base,
            publish=self.link.publish_json,
            home_push=settings.push.get,
            public_url=settings.public_url,
        )
        # which worker pairs and classifies which home (one owner per home; docs/scaling.md)
        self.ownership = Ownership(
            db,
            settings.worker_id,
            refresh_s=settings.ownership_refresh_s,
            on_work=self._want_pairing,
            on_forget=self._forget,
        )
        self.scheduler = AtlasScheduler(
            db,
            self.pipeline,
            self.dispatcher,
            self.clock,
            misfire_grace_s=settings.misfire_grace_s,
            sweep_s=settings.scheduler_sweep_s,
            retrain_debounce_s=settings.retrain_debounce_s,
            route=self.route,
            # several workers: job threads mostly wait for the homes' owners to do the work
            threads=8 if self.ownership.shared else 2,
            alerts=AlertCheck(db, settings.alerts, use_litres),
        )
        self.delegation = Delegation(self.ownership, self.scheduler.home_work)
        self.scheduler.work = self.delegation.run
        self.leader = LeaderElection(db, self.scheduler.start, self.scheduler.shutdown)
        # uses paired but not settled yet get a provisional classification (docs/service.md):
        # paired in memory, in a child process, as the intake commits them when this worker
        # receives every event of its homes (and the settings want it), else by the owner's
        # stored pairing (service/intake/provisional_process.py)
        self.provisional = (
            None
            if self.ownership.shared or not settings.provisional_process
            else ProvisionalProcess(
                self.pipeline.preview_model,
                self.pipeline.cached_preview,
                self.pipeline.listener.classified,
                share_features=lambda h, f: self.ingest.owner_pairer.offer_features(h, f),
                log_level=settings.log_level,
                log_json=settings.log_json,
            )
        )
        self.ingest = _RoutingIngest(
            db,
            self.route,
            self.clock.now,
            self.ownership.owns,
            on_unsettled=self.pipeline.preview if self.provisional is None else None,
            on_stored=None if self.provisional is None else self.provisional.add,
            registry=HomeRegistry(db, max_homes=settings.registry_cache_homes),
        )
        self.intake = MqttIntake(
            self.ingest,
            IntakeConfig(
                broker_url=settings.broker_url,
                client_id=settings.mqtt_client_id,
                topic_filter=settings.event_topic,
                # a stepped clock's driver publishes an event once the last one is handled:
                # waiting for more to fill the batch would find none
                batch_wait_s=0.0 if self.clock.stepped else IntakeConfig.batch_wait_s,
                dead_letters=settings.dead_letter_retention,
                queue_max=settings.intake_queue_max,
            ),
        )
        self.uses_paired = 0
        # the earliest queue time of the homes the pair loop is pairing now (None: idle)
        self._pairing_since: float | None = None
        self._to_pair = _SettleQueue()
        self._pair_cv = threading.Condition()
        self.passes = ClassifyPasses(self.clock, settings.classify_every_s)
        self._stop = threading.Event()
        self._pairer = threading.Thread(
            target=self._pair_loop, name="atlas-owner-pairing", daemon=True
        )
        self._worker = threading.Thread(
            target=self._pipeline_loop, name="atlas-pipeline", daemon=True
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.link.start()
        self.ownership.start()
        # route from the first message on (a message routed before is caught up anyway)
        self.ownership.ready.wait(10)
        self._worker.start()
        self._pairer.start()
        if self.provisional is not None:
            self.provisional.start()
        self.intake.start()
        self._await_backlog()
        self.leader.start()
        if self.link.connected.wait(10):
            self.publish_all()
        _LOGGER.info("runtime started (worker %d)", self.settings.worker_id)

    def _await_backlog(self, quiet_s: float = 0.3, max_s: float = 15.0) -> None:
        """Catch up with the data before catching up with the schedule.

        After downtime the broker delivers the events published meanwhile right after the
        intake connects; a round caught up before they are stored and paired finds no uses (the
        restart test's day-8 round drew nothing). So the scheduler starts once the backlog is
        stored and paired (at most ``max_s`` after connecting): once an event from after the
        start has been stored (the broker delivers a session's queued messages before new ones)
        and every home with events stored before it has been paired; or, when no live data
        comes (a quiet night), once nothing has arrived for ``quiet_s`` and all is paired.

        WHY event time: live data right behind the backlog leaves no quiet gap. At the restart
        test's 14,400x, 1 s of quiet was four simulated hours: the scheduler started at a
        midday lull and drew a round whose uses had expired.
        """
        if not self.intake.connected.wait(10):
            return
        live_from = self.clock.now() - LIVE_LAG
        c = self.intake.counters
        deadline = time.monotonic() + max_s
        seen, since = -1, time.monotonic()
        backlog_paired_by: float | None = None  # once live data came: the backlog's last pairing
        while time.monotonic() < deadline:
            newest = self.intake.paired_through  # their homes are queued to be paired
            if backlog_paired_by is None and newest is not None and newest >= live_from:
                backlog_paired_by = time.monotonic() + self._settle_s()
            if backlog_paired_by is not None and self._paired_up_to(backlog_paired_by):
                _LOGGER.info("caught up: live data from %s on, the backlog is paired", newest)
                return
            now_seen = c.received + self.uses_paired
            if now_seen != seen:
                seen, since = now_seen, time.monotonic()
            elif time.monotonic() - since >= quiet_s and self._paired_up_to(float("inf")):
                _LOGGER.info("caught up: nothing arrived for %.1f s, all is paired", quiet_s)
                return
            time.sleep(0.05)
        _LOGGER.warning("the backlog took over %.0f s; the scheduler starts anyway", max_s)

    def stop(self) -> None:
        self.intake.stop()
        if self.provisional is not None:
            self.provisional.stop()
        self._stop.set()
        with self._pair_cv:
            self._pair_cv.notify()
        self.passes.wake()
        self._pairer.join(30)
        self._worker.join(30)
        try:
            self.pipeline.flush(0)  # not needed for correctness: spares a re-ingest at start
        except Exception:
            _LOGGER.exception("saving the engines' snapshots at shutdown failed")
        self.leader.stop()  # jobs waiting for other workers still hear them (ownership runs)
        self.scheduler.shutdown()
        self.delegation.shutdown()  # work done for the leader finishes and is reported
        self.ownership.stop()  # closing its connection hands this worker's homes to the others
        self.link.stop()
        _LOGGER.info("runtime stopped")

    @property
    def messages_taken(self) -> int:
        """Event messages the intake has taken in (committed or dead-lettered) and acked."""
        return self.intake.counters.received

    def idle(self) -> bool:
        """Whether everything due for this worker is done: every batch committed was routed
        and paired, every classifier pass due by the service clock ran, and no scheduler job
        runs or is due.

        A stepped clock's driver advances service time only then (after comparing what it
        published with :attr:`messages_taken`), to :meth:`next_due` at the latest. The stages
        are read in the order work flows through them, and each hands work on before letting
        go of it, so work that moves on between two reads is seen at the later one. Only the
        scheduler's leader is ever idle.
        """
        if self.ingest.ledger.pending():
            return False
        with self._pair_cv:
            if self._to_pair.earliest() is not None or self._pairing_since is not None:
                return False
        if self.passes.busy():
            return False
        return self.scheduler.idle()

    def next_due(self) -> datetime | None:
        """The next service instant at which this worker acts by itself: a scheduler job or
        the classifier's next pass (None: nothing planned)."""
        due = [t for t in (self.passes.next_due(), self.scheduler.next_due()) if t is not None]
        return min(due, default=None)

    def wake(self) -> None:
        """Do what is due now: a stepped clock has moved (a running clock needs no call)."""
        self.scheduler.wakeup()
        self.passes.wake()

    def readiness(self) -> dict[str, bool]:
        try:
            with self.db.connect() as conn:
                conn.execute(text("SELECT 1"))
            database = True
        except Exception:
            database = False
        return {
            "database": database,
            "broker": self.intake.connected.is_set() and self.link.connected.is_set(),
            # the leader runs the scheduler; a standby is ready too (it takes over on failure)
            "scheduler": self.scheduler.running or not self.leader.is_leader,
        }

    def hooks(self) -> ApiHooks:
        return ApiHooks(
            readiness=self.readiness,
            on_answer=self._on_answer,
            on_announcement=lambda home_id, valve_id, t: self.route({home_id}),
            on_home_changed=self._on_home_changed,
            on_alert_acknowledged=self.dispatcher.publish_alerts,
            hub=self.hub,
        )

    # ------------------------------------------------------------------ callbacks

    def _on_answer(self, home_id: str, request_id: str) -> None:
        metrics.REQUESTS_ANSWERED.labels("http").inc()
        self.scheduler.schedule_retrain(home_id)
        self.dispatcher.publish_state(home_id)

    def _on_home_changed(self, home_id: str) -> None:
        self.pipeline.forget(home_id)
        try:  # the other workers cached the old spec too
            self.ownership.notify("forget", {home_id})
        except Exception:
            _LOGGER.exception("could not tell the other workers that %s changed", home_id)
        if self.scheduler.running:
            self.scheduler.reconcile(home_id)
        self.publish_discovery(home_id)

    def _on_link_message(self, topic: str, payload: bytes) -> None:
        if topic == f"{self.settings.ha_discovery_prefix}/status":
            if payload.strip() == b"online":
                self.publish_all()
            return
        outcome = handle_answer(self.db, topic, payload, self.clock.now())
        if outcome is None:
            return
        self.link.publish_json(
            f"{topic}/result", {"ok": outcome.ok, **outcome.detail}, retain=False
        )
        if outcome.ok:
            self.scheduler.schedule_retrain(outcome.home_id)
            self.dispatcher.publish_state(outcome.home_id)

    # ------------------------------------------------------------------ per-home work

    def route(self, homes_: set[str], stored_at: float | None = None) -> None:
        """Homes with new events (or announcements): pair and classify the ones this worker
        owns, tell the owners of the others (service/runtime/ownership.py). ``stored_at``: the
        wall time by which their new events were committed (None: now)."""
        mine = {h for h in homes_ if self.ownership.owns(h)}
        if mine:
            self._want_pairing(mine, stored_at)
        if len(mine) < len(homes_):
            try:
                self.ownership.notify("work", set(homes_) - mine, at=stored_at)
            except Exception:  # the scheduler's sweep re-announces every home
                _LOGGER.exception("could not notify the owners of %s", sorted(set(homes_) - mine))

    def _want_pairing(self, homes_: set[str], stored_at: float | None = None) -> None:
        """Pair ``homes_`` once the events that made them dirty have settled: the arrival
        settle after ``stored_at`` (wall time; None: now), by which they were committed, so
        they arrived no later. A drained backlog, routed seconds after it was stored, is
        paired at once."""
        now = time.time()
        stored = now if stored_at is None else min(stored_at, now)
        wait = stored + self._settle_s() - now
        ready_at = time.monotonic() + max(0.0, wait)
        with self._pair_cv:
            self._to_pair.add(homes_, ready_at)
            self._pair_cv.notify()

    def _settle_s(self) -> float:
        """Wall seconds from a commit until its homes are paired."""
        settle = self.ingest.owner_pairer.arrival_settle_s
        if self.provisional is not None:  # service time: an accelerated demo pairs at once
            settle = max(settle, self.clock.wall_seconds(self.settings.store_after_s))
        return settle

    def _forget(self, homes_: set[str]) -> None:
        for home_id in homes_:
            self.pipeline.forget(home_id)

    def _pair_loop(self) -> None:
        """Pair the owned homes with new events, then hand them to the classification loop.

        The same loop as the intake's own (service/intake/mqtt.py), over the homes this worker
        owns: homes whose waiting uses settle by the wall clock are due again. A due home this
        worker no longer owns is paired once more all the same (the advisory lock makes that
        safe), which ends its wait here. A home is paired once the events that made it dirty
        arrived the arrival settle ago (another worker may still be committing an older event):
        per home, so that a stream of notifications is not paired one settle-long pass after
        another (half of a 2-worker drain went into those waits).
        """
        pairer = self.ingest.owner_pairer
        # a stepped clock does not move while the service waits, so a wait in wall time would
        # store a use at a moment that depends on the machine: its uses settle by event time
        settle_by_wall = not self.clock.stepped
        while True:
            with self._pair_cv:
                while not self._stop.is_set():
                    now = time.monotonic()
                    if settle_by_wall:
                        self._to_pair.add(pairer.due_homes(), now)
                    wait = self._to_pair.next_in(now)
                    if wait == 0.0:  # a home is ready: scan the queue again only then
                        self._pairing_since = self._to_pair.earliest()
                        homes_ = self._to_pair.pop_ready(now)
                        break
                    waits = [w for w in (wait, pairer.next_due_s()) if w is not None]
                    self._pair_cv.wait(min([0.5, *waits]) + 0.001)
                else:
                    return
            due = pairer.due_homes()
            for home_id in sorted(homes_):
                if home_id not in due and not self.ownership.owns(home_id):
                    continue
                try:
                    self.uses_paired += pairer.pair_home(home_id)
                except Exception:  # the events are stored; the next pass or the sweep re-pairs
                    _LOGGER.exception("pairing failed for home %s", home_id)
                self.passes.mark_dirty({home_id})  # classified in the pipeline's next pass
            with self._pair_cv:
                self._pairing_since = None

    def _paired_up_to(self, cutoff: float) -> bool:
        """Every home queued to be paired by ``cutoff`` (monotonic) has been paired, and no
        use waits to settle by then: the uses of the events stored before are stored."""
        settles_in = self.ingest.owner_pairer.next_due_s()
        with self._pair_cv:
            queued = self._to_pair.earliest()
            busy = self._pairing_since
        if settles_in is not None and time.monotonic() + settles_in <= cutoff:
            return False
        return all(t is None or t > cutoff for t in (queued, busy))

    def _pipeline_loop(self) -> None:
        """Classify the dirty homes in the passes :attr:`passes` paces (service/runtime/
        passes.py). Idle, the loop still wakes every 0.5 s to save snapshots."""
        while True:
            homes_ = self.passes.take_pass(self._stop)
            if not homes_ and self._stop.is_set():
                return
            try:
                self._classify(homes_)
            finally:
                self.passes.pass_done()

    def _classify(self, homes_: set[str]) -> None:
        """One pass of :meth:`_pipeline_loop`."""
        try:
            self.pipeline.flush()  # snapshots left unsaved by ingests (runtime/pipeline.py)
        except Exception:
            _LOGGER.exception("saving the engines' snapshots failed")
        owned = [h for h in sorted(homes_) if self.ownership.owns(h)]
        try:
            reads = self.pipeline.read_pass(owned) if owned else None
        except Exception:  # each home then reads its own
            _LOGGER.exception("reading the pass's answers and new uses failed")
            reads = None
        for home_id in owned:
            if not self.ownership.owns(home_id):  # moved meanwhile: the new owner does it
                continue
            try:
                self.pipeline.process_home(home_id, reads)
            except Exception:  # the scheduler's sweep retries; the uses are in the database
                _LOGGER.exception("classifying new uses of %s failed", home_id)

    # ------------------------------------------------------------------ MQTT state

    def publish_home_state(self, home_id: str, status: dict, *, recount: bool = False) -> None:
        """The retained state with the water totals (``recount``: count all uses again)."""
        topic, payload = self.ha.state(home_id, status, self.clock.now(), recount=recount)
        self.link.publish_json(topic, payload)

    def publish_uses(self, home_id: str, use_ids: list[str]) -> None:
        """A use event per newly classified use, then the state with their litres."""
        if not use_ids:
            return
        try:
            for topic, payload in self.ha.use_events(home_id, use_ids, self.clock.now()):
                self.link.publish_json(topic, payload, retain=False)
            status = self.ha.stored_status(home_id)
            if status is not None:
                self.publish_home_state(home_id, status)
        except Exception:  # the uses are classified and stored; the next state catches up
            _LOGGER.exception("publishing the new uses of %s failed", home_id)

    def publish_discovery(self, home_id: str) -> None:
        for topic, payload in self.ha.discovery(home_id):
            self.link.publish_json(topic, payload)

    def publish_all(self) -> None:
        """Discovery, state and open requests of every home (start-up, HA restart)."""
        with self.db.connect() as conn:
            ids = list_home_ids(conn)
        for home_id in ids:
            try:
                self.publish_discovery(home_id)
                status = self.ha.stored_status(home_id)
                if status is not None:
                    self.publish_home_state(home_id, status)
                self.dispatcher.publish_state(home_id)
                self.dispatcher.publish_alerts(home_id)
            except Exception:
                _LOGGER.exception("publishing the state of %s failed", home_id)
