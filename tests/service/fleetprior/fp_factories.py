"""Fleets and calibrated homes for the fleet-in-the-service tests (imported by this unique name).

A calibrated home is written through the storage layer as the runtime leaves it: its events
and uses, and an engine snapshot in which every third use carries its true valve as a guided
label.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, update

from atlas.engine import CalibrationEngine
from atlas.fleet import FleetConfig, FleetPrior, LocalHome, build_fleet
from atlas.homespec import HomeSpec, parse_home_spec
from atlas.pairing import pair_events
from service.storage.enginestate import save_engine_state
from service.storage.events import EventRow, insert_events
from service.storage.homes import upsert_home
from service.storage.schema import homes
from service.storage.uses import insert_uses
from simulator.generate import generate_run
from simulator.presets import load_preset

#: Stand-ins trusted from few homes and picks, so that a small simulated fleet covers some
#: checklist items (the defaults need 8 of 8 right picks from 3 homes).
EASY_TRUST = FleetConfig(standin_min_homes=1, standin_min_precision=0.05, standin_confidence=0.5)


def spec_of(preset: str, home_id: str) -> HomeSpec:
    return parse_home_spec(load_preset(preset).to_dict() | {"home_id": home_id})


def _simulated(spec: HomeSpec, seed: int, days: int):
    sim = generate_run(spec, days=days, seed=seed)
    events = [s.event for s in sim]
    truth = {s.event.event_id: s.truth["valve"] for s in sim}
    tz = ZoneInfo(spec.model.timezone)
    installed = datetime.combine(events[0].t.astimezone(tz).date(), time(0), tz)
    return events, truth, installed


def _guided(uses, truth) -> list[tuple[str, str]]:
    """(use id, true valve) of every third use."""
    return [
        (u.use_id, Counter(truth[e] for e in u.event_ids).most_common(1)[0][0]) for u in uses[::3]
    ]


@cache
def small_fleet() -> FleetPrior:
    """A fleet of three simulated homes (one day each) whose stand-ins cover some items."""
    local = []
    for i, preset in enumerate(("apartment", "two_bath_house", "apartment")):
        spec = spec_of(preset, f"fleet-{i}")
        events, truth, installed = _simulated(spec, 100 + i, 1)
        uses = pair_events(events).uses
        engine = CalibrationEngine(spec, installed)
        engine.ingest(uses, events, installed + timedelta(days=1))
        for use_id, valve in _guided(uses, truth):
            engine.add_guided_label(use_id, valve, installed + timedelta(days=1))
        local.append(LocalHome(spec.home_id, spec, installed, uses, events, engine.labels))
    return build_fleet(local, EASY_TRUST)


def store_home(db: Engine, spec: HomeSpec, seed: int, *, days: int = 1):
    """Register ``spec`` installed at local midnight of its simulated run and store ``days``
    days of its events and uses; returns (install time, uses, events, event id -> valve)."""
    events, truth, installed = _simulated(spec, seed, days)
    uses = pair_events(events).uses
    done = installed + timedelta(days=days)
    with db.begin() as conn:
        upsert_home(conn, spec, installed)
        insert_events(conn, [EventRow(e) for e in events], done)
        insert_uses(conn, uses, done)
    return installed, uses, events, truth


def store_calibrated_home(db: Engine, spec: HomeSpec, seed: int, *, days: int = 1) -> datetime:
    """:func:`store_home` and an engine snapshot with guided labels; returns the install time."""
    installed, uses, events, truth = store_home(db, spec, seed, days=days)
    done = installed + timedelta(days=days)
    engine = CalibrationEngine(spec, installed)
    engine.ingest(uses, events, done)
    for use_id, valve in _guided(uses, truth):
        engine.add_guided_label(use_id, valve, done)
    with db.begin() as conn:
        save_engine_state(conn, spec.home_id, engine.snapshot(), {"announced": []}, done)
    return installed


def move_install(db: Engine, home_id: str, installed: datetime) -> None:
    """Pretend the home was registered at ``installed`` (its calibration's day 1)."""
    with db.begin() as conn:
        conn.execute(
            update(homes)
            .where(homes.c.home_id == home_id)
            .values(created_at=installed.astimezone(UTC))
        )
