"""``AtlasRuntime``: intake + per-home pipeline + scheduler + MQTT link, started and stopped as one.

Order matters on stop (SIGTERM): the intake stops first (its unacked messages stay in the
broker session, nothing uncommitted is acked), then the pipeline worker finishes the home it is
on, the scheduler shuts down (running jobs finish; their work commits or not at all), the
leader lock is released, and the database is disposed last.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from sqlalchemy import Engine, select, text

from atlas.engine import EngineConfig
from atlas.timetable import TimetablePolicy
from service import metrics
from service.answers_mqtt import handle_answer
from service.api.hooks import ApiHooks, EventHub
from service.ha_discovery import availability_topic, discovery_messages, state_message
from service.intake.mqtt import IntakeConfig, MqttIntake
from service.intake.pipeline import IngestPipeline
from service.mqttutil import topic_prefix
from service.push.dispatcher import Dispatcher
from service.runtime.clock import Clock, clock_from_settings
from service.runtime.mqttlink import MqttLink
from service.runtime.pipeline import HomePipeline, Listener
from service.scheduler.leader import LeaderElection
from service.scheduler.service import AtlasScheduler
from service.settings import Settings
from service.storage.homes import list_home_ids
from service.storage.homestatus import load_home_status
from service.storage.schema import homes

_LOGGER = logging.getLogger(__name__)
SW_VERSION = "0.6"


class _NotifyingIngest(IngestPipeline):
    """The intake's pipeline, telling the runtime which homes got new uses after pairing."""

    def __init__(self, db: Engine, on_uses, clock) -> None:
        super().__init__(db, clock=clock)
        self._on_uses = on_uses

    def process(self, batch):
        outcome = super().process(batch)
        metrics.EVENTS_IN.inc(len(outcome.stored))
        metrics.EVENT_DUPLICATES.inc(outcome.duplicates)
        metrics.DEAD_LETTERS.inc(len(outcome.dead))
        return outcome

    def pair(self, homes_: set[str], *, final: bool = False) -> int:
        n = super().pair(homes_, final=final)
        self._on_uses(homes_)
        return n


class _Publish(Listener):
    def __init__(self, runtime: AtlasRuntime) -> None:
        self.rt = runtime

    def classified(self, home_id: str, rows: list[dict]) -> None:
        for row in rows:
            self.rt.hub.publish(home_id, "classification", row)

    def status_changed(self, home_id: str, status: dict, level_changed: bool) -> None:
        self.rt.publish_home_state(home_id, status)
        if level_changed:
            self.rt.hub.publish(home_id, "level", {"level": status["level"],
                                                  "reason": status["reason"]})  # fmt: skip

    def requests_planned(self, home_id: str) -> None:
        self.rt.hub.publish(home_id, "label_request", {"home_id": home_id})


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
        engine_config = EngineConfig(strategy=settings.calibration_strategy, timetable=self.policy)
        self.pipeline = HomePipeline(
            db, clock=self.clock.now, listener=_Publish(self),
            config_for=lambda spec: engine_config,
        )  # fmt: skip
        self.link = MqttLink(
            settings.broker_url,
            settings.runtime_client_id,
            [f"{self.base}/homes/+/label-requests/+/answer",
             f"{settings.ha_discovery_prefix}/status"],
            self._on_link_message,
            availability_topic(self.base),
        )  # fmt: skip
        self.dispatcher = Dispatcher(
            db, clock=self.clock.now, policy=self.policy, topic_base=self.base,
            publish=self.link.publish_json, home_push=settings.push.get,
            public_url=settings.public_url,
        )  # fmt: skip
        self.scheduler = AtlasScheduler(
            db, self.pipeline, self.dispatcher, self.clock,
            misfire_grace_s=settings.misfire_grace_s, sweep_s=settings.scheduler_sweep_s,
            retrain_debounce_s=settings.retrain_debounce_s,
        )  # fmt: skip
        self.leader = LeaderElection(db, self.scheduler.start, self.scheduler.shutdown)
        self.intake = MqttIntake(
            _NotifyingIngest(db, self._mark_dirty, self.clock.now),
            IntakeConfig(broker_url=settings.broker_url, client_id=settings.mqtt_client_id,
                         topic_filter=settings.event_topic),
        )  # fmt: skip
        self._dirty: set[str] = set()
        self._dirty_cv = threading.Condition()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._pipeline_loop, name="atlas-pipeline",
                                        daemon=True)  # fmt: skip

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.link.start()
        self._worker.start()
        self.intake.start()
        self._await_backlog()
        self.leader.start()
        if self.link.connected.wait(10):
            self.publish_all()
        _LOGGER.info("runtime started (worker %d)", self.settings.worker_id)

    def _await_backlog(self, quiet_s: float = 1.0, max_s: float = 15.0) -> None:
        """Catch up with the data before catching up with the schedule.

        After downtime the broker delivers the events published meanwhile right after the
        intake connects; a round caught up before they are stored and paired finds no uses (the
        restart test's day-8 round drew nothing). So the scheduler starts once the intake has
        received and paired nothing new for ``quiet_s`` (at most ``max_s`` after connecting).
        """
        if not self.intake.connected.wait(10):
            return
        c = self.intake.counters
        deadline = time.monotonic() + max_s
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now_seen = c.received + c.uses
            if now_seen != seen:
                seen, since = now_seen, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        self.intake.stop()
        self._stop.set()
        with self._dirty_cv:
            self._dirty_cv.notify()
        self._worker.join(30)
        self.leader.stop()
        self.scheduler.shutdown()
        self.link.stop()
        _LOGGER.info("runtime stopped")

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
            on_announcement=lambda home_id, valve_id, t: self._mark_dirty({home_id}),
            on_home_changed=self._on_home_changed,
            hub=self.hub,
        )

    # ------------------------------------------------------------------ callbacks

    def _on_answer(self, home_id: str, request_id: str) -> None:
        metrics.REQUESTS_ANSWERED.labels("http").inc()
        self.scheduler.schedule_retrain(home_id)
        self.dispatcher.publish_state(home_id)

    def _on_home_changed(self, home_id: str) -> None:
        self.pipeline.forget(home_id)
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
        self.link.publish_json(f"{topic}/result", {"ok": outcome.ok, **outcome.detail},
                               retain=False)  # fmt: skip
        if outcome.ok:
            self.scheduler.schedule_retrain(outcome.home_id)
            self.dispatcher.publish_state(outcome.home_id)

    def _mark_dirty(self, homes_: set[str]) -> None:
        with self._dirty_cv:
            self._dirty |= set(homes_)
            self._dirty_cv.notify()

    def _pipeline_loop(self) -> None:
        while True:
            with self._dirty_cv:
                while not self._dirty and not self._stop.is_set():
                    self._dirty_cv.wait(0.5)
                homes_, self._dirty = self._dirty, set()
            if not homes_ and self._stop.is_set():
                return
            for home_id in sorted(homes_):
                try:
                    self.pipeline.process_home(home_id)
                except Exception:  # the scheduler's sweep retries; the uses are in the database
                    _LOGGER.exception("classifying new uses of %s failed", home_id)

    # ------------------------------------------------------------------ MQTT state

    def publish_home_state(self, home_id: str, status: dict) -> None:
        self.link.publish_json(f"{self.base}/homes/{home_id}/state", state_message(home_id, status))

    def publish_discovery(self, home_id: str) -> None:
        with self.db.connect() as conn:
            name = conn.execute(select(homes.c.name).where(homes.c.home_id == home_id)).scalar()
        for topic, payload in discovery_messages(
            self.settings.ha_discovery_prefix, self.base, home_id, name or home_id, SW_VERSION
        ):
            self.link.publish_json(topic, payload)

    def publish_all(self) -> None:
        """Discovery, state and open requests of every home (start-up, HA restart)."""
        with self.db.connect() as conn:
            ids = list_home_ids(conn)
            statuses = {h: load_home_status(conn, h) for h in ids}
        for home_id in ids:
            try:
                self.publish_discovery(home_id)
                if statuses[home_id] is not None:
                    self.publish_home_state(home_id, statuses[home_id])
                self.dispatcher.publish_state(home_id)
            except Exception:
                _LOGGER.exception("publishing the state of %s failed", home_id)
