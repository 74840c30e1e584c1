"""Ingesting uses saves the engine's snapshot at most every ``snapshot_every_s``; a worker that
restarts from an older snapshot ingests the later uses again without duplicating a row."""

from __future__ import annotations

import json
from collections import Counter

from rt_helpers import clock_at, local_midnight
from sqlalchemy import func, select

from service.intake.messages import InboundMessage
from service.intake.pipeline import IngestPipeline
from service.runtime.pipeline import HomePipeline
from service.storage.enginestate import latest_engine_version
from service.storage.homes import upsert_home
from service.storage.schema import classifications, uses
from simulator.generate import generate_run


def _store(db, intake: IngestPipeline, sim, home_id: str, *, final: bool = False) -> None:
    msgs = [
        InboundMessage(s.event.topic(), json.dumps(s.payload()).encode(), s.event.t, 0, 0, 0)
        for s in sim
    ]
    intake.pair(intake.process(msgs).homes)
    if final:
        intake.pair({home_id}, final=True)


def _counts(db, home_id: str) -> tuple[int, Counter]:
    with db.connect() as conn:
        n_uses = conn.execute(
            select(func.count()).select_from(uses).where(uses.c.home_id == home_id)
        ).scalar_one()
        per_use = Counter(
            conn.execute(
                select(classifications.c.use_id).where(
                    classifications.c.home_id == home_id, classifications.c.level == "category"
                )
            ).scalars()
        )
    return n_uses, per_use


def test_uses_only_ingests_wait_for_the_cadence_and_a_restart_ingests_them_again(engine, home_spec):
    sim = generate_run(home_spec, days=1, seed=5)
    installed = local_midnight(home_spec, sim[0].event.t)
    with engine.begin() as conn:
        upsert_home(conn, home_spec, now=installed)
    intake = IngestPipeline(engine, clock=None)
    home = home_spec.home_id
    half = len(sim) // 2
    clock = clock_at(sim[-1].event.t)

    _store(engine, intake, sim[:half], home)
    pipe = HomePipeline(engine, clock=clock.now, snapshot_every_s=3600)
    assert pipe.process_home(home) > 0
    with engine.connect() as conn:
        first = latest_engine_version(conn, home)
    assert first > 0  # the first ingest of a home saves at once

    _store(engine, intake, sim[half:], home, final=True)
    assert pipe.process_home(home) > 0
    with engine.connect() as conn:
        assert latest_engine_version(conn, home) == first  # uses only: not saved yet
    n_uses, per_use = _counts(engine, home)
    assert len(pipe.engine_view(home).classify()) == n_uses  # ... but every use is ingested
    assert per_use and set(per_use.values()) == {1}  # and its rows stored (rules: week 1)

    restarted = HomePipeline(engine, clock=clock.now, snapshot_every_s=3600)
    assert restarted.process_home(home) > 0  # the snapshot lacks them: ingested again
    assert len(restarted.engine_view(home).classify()) == n_uses
    assert _counts(engine, home) == (n_uses, per_use)  # no row written twice
    assert restarted.process_home(home) == 0

    assert pipe.flush(0) == 1  # shutdown: the unsaved uses are saved now
    with engine.connect() as conn:
        assert latest_engine_version(conn, home) == first + 1
    assert pipe.flush(0) == 0
