"""A classifier pass reads every home's answers, announcements and new use ids in one query
each, and classifies exactly what per-home reads classify."""

from __future__ import annotations

import json
from contextlib import contextmanager

from rt_helpers import clock_at, local_midnight
from sqlalchemy import event

from atlas.homespec import parse_home_spec
from service.intake.messages import InboundMessage
from service.intake.pipeline import IngestPipeline
from service.runtime.pipeline import HomePipeline
from service.storage.homes import upsert_home
from simulator.generate import generate_run

HOMES = 4


@contextmanager
def _statements(db):
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(db, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db, "before_cursor_execute", record)


def _store(db, intake, sim, ids, home_spec) -> None:
    for home_id in ids:
        msgs = [
            InboundMessage(
                s.event.topic().replace(home_spec.home_id, home_id),
                json.dumps(s.payload() | {"home_id": home_id}).encode(),
                s.event.t,
                0,
                0,
                0,
            )
            for s in sim
        ]
        intake.pair(intake.process(msgs).homes, final=True)


def test_a_pass_reads_answers_and_announcements_once_for_all_its_homes(engine, home_spec, uid):
    sim = generate_run(home_spec, days=1, seed=5)
    installed = local_midnight(home_spec, sim[0].event.t)
    ids, spec = [f"{uid}-{k}" for k in range(HOMES)], home_spec.to_dict()
    for home_id in ids:
        with engine.begin() as conn:
            upsert_home(conn, parse_home_spec(spec | {"home_id": home_id}), now=installed)
    intake, clock = IngestPipeline(engine, clock=None), clock_at(sim[-1].event.t)
    half = len(sim) // 2
    _store(engine, intake, sim[:half], ids, home_spec)
    batched = HomePipeline(engine, clock=clock.now)
    for home_id in ids:  # first pass: every home loads its whole history
        assert batched.process_home(home_id) > 0
    _store(engine, intake, sim[half:], ids, home_spec)
    with _statements(engine) as seen:
        reads = batched.read_pass(ids)
        assert all(batched.process_home(h, reads) > 0 for h in ids)  # the new uses, found
        reads = batched.read_pass(ids)
        assert all(batched.process_home(h, reads) == 0 for h in ids)  # nothing new
    answers = [s for s in seen if "FROM label_requests" in s]
    announcements = [s for s in seen if "FROM announcements" in s]
    assert len(answers) == len(announcements) == 2  # one per pass, not one per home

    alone = HomePipeline(engine, clock=clock.now)
    with _statements(engine) as seen:
        for home_id in ids:
            alone.process_home(home_id)
    assert len([s for s in seen if "FROM announcements" in s]) == HOMES
    for home_id in ids:  # the same uses, classified the same way
        mine = batched.engine_view(home_id).classify()
        theirs = alone.engine_view(home_id).classify()
        assert mine == theirs
