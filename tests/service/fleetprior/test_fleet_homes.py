"""Homes in the service with a fleet, on SQLite and PostgreSQL: a home installed while a fleet
exists starts with it; every worker, and a restarted one, restores its engine with that very
version; a newer version is taken at the home's codebook refit and at no other time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
from fp_factories import small_fleet, spec_of, store_home

from atlas.fleet import FleetPrior
from service.clock import ScaledClock
from service.runtime.fleetcache import FleetCache
from service.runtime.pipeline import HomePipeline
from service.settings import FleetSettings
from service.storage.fleets import load_fleet, save_fleet_version
from service.storage.homefleet import load_home_fleet

BUILT = datetime(2026, 2, 1, tzinfo=UTC)


def _arrays(state) -> list:
    """Every array of a ``to_dict`` in order, as (dtype, shape, bytes)."""
    if isinstance(state, np.ndarray):
        return [(state.dtype.str, state.shape, state.tobytes())]
    if isinstance(state, dict):
        return [a for v in state.values() for a in _arrays(v)]
    if isinstance(state, list):
        return [a for v in state for a in _arrays(v)]
    return []


def _uses(db, version: int, fleet: FleetPrior | None) -> bool:
    """Whether ``fleet`` (an engine's) is stored version ``version``, bit for bit, but for the
    accuracy prior, which the engines do not get (setting ``fleet.accuracy_prior`` off)."""
    with db.connect() as conn:
        stored = load_fleet(conn, version).to_dict()
    if fleet is None or fleet.accuracy is not None:
        return False
    return _arrays(fleet.to_dict()) == _arrays({**stored, "accuracy": None})


def _store_version(db) -> int:
    with db.begin() as conn:
        return save_fleet_version(conn, small_fleet(), built_at=BUILT, build_s=1.0, cpu_s=1.0)


def _pipeline(db, at: datetime) -> HomePipeline:
    """A worker (a new process: nothing cached) whose service time is ``at``."""
    return HomePipeline(db, clock=ScaledClock(at, time.time(), 1.0).now, fleets=FleetCache())


def test_workers_restore_the_fleet_a_home_has_and_take_a_newer_one_only_at_the_refit(engine, uid):
    assert _store_version(engine) == 1
    spec = spec_of("apartment", f"h-{uid}")
    installed, _, _, _ = store_home(engine, spec, seed=4)
    day2 = installed + timedelta(days=1)
    worker = _pipeline(engine, day2)
    assert worker.process_home(spec.home_id) > 0
    first = worker.engine_view(spec.home_id)
    assert _uses(engine, 1, first.fleet)
    assert first.fleet.config.use_accuracy is False  # setting fleet.accuracy_prior is off
    assert first.projection is first.fleet.projection  # codes from day 1: the fleet codebook
    # a newer fleet is built; another worker and a restarted one restore version 1
    assert _store_version(engine) == 2
    worker.daily_update(spec.home_id, day2)
    other, restarted = _pipeline(engine, day2), _pipeline(engine, day2)
    for pipe in (worker, other, restarted):
        assert _uses(engine, 1, pipe.engine_view(spec.home_id).fleet)
    ids = [u.use_id for u in first.log.sorted][:50]
    assert [c.predicted for c in restarted.engine_view(spec.home_id).classify(ids)] == [
        c.predicted for c in first.classify(ids)
    ]
    with engine.connect() as conn:
        assert load_home_fleet(conn, spec.home_id).version == 1
    # the codebook refit (end of day 7) takes the newest version, for every worker
    assert worker.refit_codebook(spec.home_id, installed + timedelta(days=8)) is not None
    for pipe in (worker, other):
        assert _uses(engine, 2, pipe.engine_view(spec.home_id).fleet)
    with engine.connect() as conn:
        home = load_home_fleet(conn, spec.home_id)
    assert (home.started_version, home.version) == (1, 2)


def test_a_home_installed_without_a_fleet_runs_without_one_until_its_refit(engine, uid):
    spec = spec_of("apartment", f"h-{uid}")
    installed, _, _, _ = store_home(engine, spec, seed=5)
    worker = _pipeline(engine, installed + timedelta(days=1))
    worker.process_home(spec.home_id)
    assert worker.engine_view(spec.home_id).fleet is None
    _store_version(engine)
    assert _pipeline(engine, installed).engine_view(spec.home_id).fleet is None
    worker.refit_codebook(spec.home_id, installed + timedelta(days=8))
    assert _uses(engine, 1, _pipeline(engine, installed).engine_view(spec.home_id).fleet)
    with engine.connect() as conn:
        home = load_home_fleet(conn, spec.home_id)
    assert (home.started_version, home.version, home.skipped) == (None, 1, ())


def test_the_accuracy_prior_reaches_engines_only_with_the_setting(engine):
    _store_version(engine)
    spec = spec_of("apartment", "any")
    with engine.connect() as conn:
        off = FleetCache().prior(conn, 1, spec)
        on = FleetCache(FleetSettings(accuracy_prior=True)).prior(conn, 1, spec)
    assert (off.accuracy, off.config.use_accuracy) == (None, False)
    assert on.accuracy is not None and on.config.use_accuracy
    assert on.layout == off.layout is not None  # addressed to the home (its layout class)
