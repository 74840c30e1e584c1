"""The nightly refit is written to the database: in week 1 a use is classified by the model
trained on every guided label up to that night, not only by the model of the night before it."""

from __future__ import annotations

from datetime import timedelta

from rt_helpers import clock_at, day_time, pipeline_at, store_days
from sqlalchemy import func, select

from service.storage.announcements import insert_announcement
from service.storage.schema import classifications, uses


def test_daily_update_that_refits_the_model_reclassifies_the_uses(engine, home_spec):
    installed, sim = store_days(engine, home_spec, days=1)
    first_open = next(s for s in sim if s.truth["action"] == "open")
    at = first_open.event.t - timedelta(seconds=60)
    with engine.begin() as conn:
        assert insert_announcement(conn, home_spec.home_id, first_open.truth["valve"], at)
    due = day_time(installed, 2, 0, 5)
    pipe = pipeline_at(engine, clock_at(due + timedelta(hours=3)))  # the job ran late
    pipe.process_home(home_spec.home_id)  # one guided label; no model before the night
    status = pipe.daily_update(home_spec.home_id, due)
    assert status["model_version"] == "m1"
    with engine.connect() as conn:
        n_uses = conn.execute(select(func.count()).select_from(uses)).scalar_one()
        rows = conn.execute(
            select(classifications.c.created_at).where(
                classifications.c.model_version == "m1", classifications.c.level == "valve"
            )
        ).all()
    assert len(rows) == n_uses > 0  # every use of day 1, also those before any model
    assert {r.created_at for r in rows} == {due}  # as of the update, not of the late job
