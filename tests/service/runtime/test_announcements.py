"""Week-1 announcements reach the engine: the matched use gets a guided label in the database."""

from __future__ import annotations

from datetime import timedelta

from rt_helpers import clock_at, pipeline_at, store_days
from sqlalchemy import select

from service.storage.announcements import insert_announcement
from service.storage.schema import announcements, labels


def test_announced_use_gets_a_guided_label_once(engine, home_spec):
    _, sim = store_days(engine, home_spec, days=1)
    first_open = next(s for s in sim if s.truth["action"] == "open")
    valve = first_open.truth["valve"]
    at = first_open.event.t - timedelta(seconds=60)
    with engine.begin() as conn:
        assert insert_announcement(conn, home_spec.home_id, valve, at)
    pipe = pipeline_at(engine, clock_at(first_open.event.t + timedelta(minutes=1)))
    assert pipe.process_home(home_spec.home_id) > 0
    with engine.connect() as conn:
        guided = conn.execute(select(labels).where(labels.c.source == "guided")).all()
        matched = conn.execute(select(announcements.c.matched_use_id)).scalar_one()
    assert len(guided) == 1
    assert guided[0].label == valve and guided[0].use_id == matched
    # a restarted pipeline (fresh cache, snapshot meta) neither repeats nor loses it
    again = pipeline_at(engine, clock_at(first_open.event.t + timedelta(minutes=2)))
    again.process_home(home_spec.home_id)
    with engine.connect() as conn:
        assert len(conn.execute(select(labels).where(labels.c.source == "guided")).all()) == 1
