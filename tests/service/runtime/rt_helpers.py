"""Shared set-up for runtime tests: a home with simulated days stored and classified."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from atlas.homespec import HomeSpec
from service.clock import ScaledClock
from service.intake.messages import InboundMessage
from service.intake.pipeline import IngestPipeline
from service.runtime.pipeline import HomePipeline
from service.settings import Settings
from service.storage.homes import upsert_home
from simulator.generate import generate_run


def local_midnight(spec: HomeSpec, date_of: datetime) -> datetime:
    tz = ZoneInfo(spec.model.timezone)
    d = date_of.astimezone(tz).date()
    return datetime(d.year, d.month, d.day, tzinfo=tz)


def store_days(db: Engine, spec: HomeSpec, days: int, seed: int = 3) -> tuple[datetime, list]:
    """Register ``spec`` installed at local midnight of its first day and store ``days`` days."""
    sim = generate_run(spec, days=days, seed=seed)
    installed = local_midnight(spec, sim[0].event.t)
    with db.begin() as conn:
        upsert_home(conn, spec, now=installed)  # any zone: timestamps are stored as UTC
    intake = IngestPipeline(db, clock=None)
    msgs = [
        InboundMessage(s.event.topic(), json.dumps(s.payload()).encode(), s.event.t, 0, 0, 0)
        for s in sim
    ]
    for i in range(0, len(msgs), 300):
        intake.pair(intake.process(msgs[i : i + 300]).homes)
    intake.pair({spec.home_id}, final=True)
    return installed, sim


def clock_at(t: datetime, speed: float = 1.0) -> ScaledClock:
    """A clock whose service time is ``t`` now and runs ``speed`` times wall time."""
    return ScaledClock(t, time.time(), speed)


def pipeline_at(db: Engine, clock: ScaledClock) -> HomePipeline:
    return HomePipeline(db, clock=clock.now)


def day_time(installed: datetime, day: int, hour: int, minute: int = 0) -> datetime:
    """Local wall-clock ``hour:minute`` of calibration ``day`` (day 1 = installation day)."""
    return installed + timedelta(days=day - 1, hours=hour, minutes=minute)


def runtime_settings(uid: str) -> tuple[str, Settings]:
    """``(topic base, settings)`` of a runtime on the shared broker whose topics, client ids and
    Home Assistant prefix are this test's own (``uid``), so tests running at once never meet."""
    base = f"test-{uid}/v1"
    settings = Settings(
        db_url="sqlite:///unused.db",
        event_topic=f"{base}/homes/+/sensors/+/events",
        mqtt_client_prefix=f"t{uid}",
        ha_discovery_prefix=f"ha-{uid}",
        log_json=False,
    )
    return base, settings
