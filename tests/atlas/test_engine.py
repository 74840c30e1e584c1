"""CalibrationEngine: pre-answer scoring, quiet hours, no duplicate requests, snapshots."""

from __future__ import annotations

import pickle
from collections import Counter
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from engine_asserts import assert_same_state

from atlas.engine import NOT_SURE, CalibrationEngine, EngineConfig
from atlas.engine.featurize import build_matrix
from atlas.pairing import pair_events
from atlas.timetable import TimetablePolicy, is_quiet
from simulator.generate import generate_run
from simulator.presets import load_preset

DAYS = 12


@pytest.fixture(scope="module")
def replay():
    """An apartment over 12 days: spec, events, paired uses, true valve per use, install time."""
    spec = load_preset("apartment")
    sim = generate_run(spec, days=DAYS, seed=3)
    events = [s.event for s in sim]
    truth = {s.event.event_id: s.truth for s in sim}
    pairing = pair_events(events)
    tz = ZoneInfo(spec.model.timezone)
    installed = datetime.combine(min(e.t for e in events).astimezone(tz).date(), time(0), tz)
    valve = {
        u.use_id: Counter(truth[e]["valve"] for e in u.event_ids).most_common(1)[0][0]
        for u in pairing.uses
    }
    return spec, events, pairing, valve, installed


def _engine(replay, until_day: int, **config) -> CalibrationEngine:
    """Ingest every use that ended before the end of ``until_day``, with a few guided labels."""
    spec, events, pairing, valve, installed = replay
    end = installed + timedelta(days=until_day)
    engine = CalibrationEngine(spec, installed, EngineConfig(random_state=1, **config))
    uses = [u for u in pairing.uses if (u.t_close or u.t) < end]
    by_id = {e.event_id: e for e in events}
    engine.ingest(
        uses, [by_id[e] for u in uses for e in u.event_ids], end, features=pairing.features
    )
    seen: set[str] = set()
    for u in uses:  # one guided label per valve, the first use of each
        if valve[u.use_id] not in seen and u.t < installed + timedelta(days=7):
            seen.add(valve[u.use_id])
            engine.add_guided_label(u.use_id, valve[u.use_id], u.t)
    engine.fit_codebook([by_id[e] for u in uses for e in u.event_ids], end)
    return engine


def _round_time(engine: CalibrationEngine, day: int) -> datetime:
    t = engine.round_time(engine.installed_at + timedelta(days=day - 1, hours=12))
    assert t is not None
    return t


def test_label_is_scored_against_the_pre_answer_prediction(replay):
    engine = _engine(replay, until_day=8)
    plan = engine.plan_round(_round_time(engine, 8))
    assert plan.requests
    req = plan.requests[0]
    before = engine.classify([req.use_id])[0]
    version = engine.model_version
    wrong = next(c for c in req.choices if c not in (before.predicted["valve"], NOT_SURE))
    wrong = wrong if wrong in engine.spec.hierarchy.valve_ids else req.choices[1]
    rec = engine.record_answer(req.request_id, wrong, req.created_at + timedelta(minutes=5))
    assert rec is not None and rec.scored is not None
    assert rec.scored.predicted == before.predicted
    assert rec.scored.model_version == version
    assert rec.scored.inclusion_prob == req.inclusion_prob
    assert not rec.scored.correct(rec.level)  # the answer differs from the prior prediction
    engine.daily_update(req.created_at + timedelta(hours=2))
    assert engine.model_version == version + 1  # learned from only after scoring


def test_answer_is_idempotent_and_validated(replay):
    engine = _engine(replay, until_day=8)
    req = engine.plan_round(_round_time(engine, 8)).requests[0]
    with pytest.raises(ValueError, match="not one of request"):
        engine.record_answer(req.request_id, "no-such-valve", req.created_at)
    first = engine.record_answer(req.request_id, req.choices[0], req.created_at)
    again = engine.record_answer(req.request_id, req.choices[1], req.created_at)
    assert again is first
    late = engine.plan_round(_round_time(engine, 8)).requests[-1]
    assert (
        engine.record_answer(late.request_id, late.choices[0], late.expires_at + timedelta(1))
        is None
    )
    assert {r.request_id: r.state for r in engine.requests}[late.request_id] == "expired"


@pytest.mark.parametrize("hour", [0, 5, 7, 21, 23])
def test_no_requests_in_quiet_hours(replay, hour):
    engine = _engine(replay, until_day=8)
    local = engine.installed_at + timedelta(days=7, hours=hour, minutes=30)
    assert is_quiet(local, engine.tz, engine.config.timetable)
    assert engine.plan_round(local).requests == ()


def test_requests_follow_configured_quiet_hours(replay):
    policy = TimetablePolicy(quiet_start=time(12, 0), quiet_end=time(20, 0))
    engine = _engine(replay, until_day=8, timetable=policy)
    t = _round_time(engine, 8)
    plan = engine.plan_round(t)
    assert plan.requests
    assert all(not is_quiet(r.created_at, engine.tz, policy) for r in plan.requests)


def test_no_duplicate_requests_for_a_use(replay):
    engine = _engine(replay, until_day=DAYS)
    requests = []
    for day in (8, 10, 12):
        t = _round_time(engine, day)
        plan = engine.plan_round(t)
        assert engine.plan_round(t).requests == plan.requests  # idempotent per day
        requests += plan.requests
    assert len(requests) >= 6
    use_ids = [r.use_id for r in requests]
    assert len(set(use_ids)) == len(use_ids)
    assert not set(use_ids) & {lab.use_id for lab in engine.labels if lab.source == "guided"}
    assert all(r.choices[-1] == NOT_SURE for r in requests)
    assert sum(r.is_audit for r in requests) == 3  # one audit item per round


def test_round_sent_late_draws_only_uses_still_answerable_when_sent(replay):
    due = _round_time(_engine(replay, until_day=8), 8)
    morning = due + timedelta(hours=13)
    plan = _engine(replay, until_day=8).plan_round(due, send_at=morning)
    assert plan.requests
    min_answer = timedelta(hours=EngineConfig().min_answer_h)
    assert all(r.expires_at - morning >= min_answer for r in plan.requests)
    gone = _engine(replay, until_day=8).plan_round(due, send_at=due + timedelta(days=2))
    assert gone.requests == () and "expires before" in gone.reason


def test_snapshot_round_trip(replay):
    engine = _engine(replay, until_day=8)
    req = engine.plan_round(_round_time(engine, 8)).requests[0]
    engine.record_answer(req.request_id, req.choices[0], req.created_at)
    engine.daily_update(req.created_at + timedelta(hours=3))
    req2 = engine.requests[1]
    engine.record_answer(req2.request_id, req2.choices[0], req2.created_at)  # not trained on yet
    state = engine.snapshot()
    restored = CalibrationEngine.restore(engine.spec, state, engine.config)
    assert_same_state(restored.snapshot(), state)
    assert restored.classify() == engine.classify()
    assert restored.model_version == engine.model_version
    with pytest.raises(ValueError, match="format"):
        CalibrationEngine.restore(engine.spec, {**state, "format": "other/1"})


def test_fixture_level_shows_confused_fixtures_as_their_lump(replay):
    engine = _engine(replay, until_day=8)
    predicted = Counter(c.predicted["fixture"] for c in engine.classify())
    pair = [f for f, _ in predicted.most_common(2)]
    state = engine.snapshot() | {
        "level_state": {"level": "fixture", "failures": 0},
        "lumps": [pair],
    }
    lumped = CalibrationEngine.restore(engine.spec, state, engine.config)
    assert lumped.lumps == (tuple(pair),)
    for c in lumped.classify():
        fixture = c.predicted["fixture"]
        expected = f"lump:{pair[0]}+{pair[1]}" if fixture in pair else fixture
        assert (c.display_level, c.display_label) == ("fixture", expected)
    at_valve = CalibrationEngine.restore(
        engine.spec, state | {"level_state": {"level": "valve", "failures": 0}}, engine.config
    )  # a certified valve is shown as the valve, lumps or not
    assert all(c.display_label == c.predicted["valve"] for c in at_valve.classify())


def test_matrix_rows_computed_alone_equal_the_full_matrix_rows(replay):
    """The preview computes only its new uses' rows; they must be the full matrix's rows."""
    engine = _engine(replay, until_day=8)  # with a codebook: code columns included
    state = engine.snapshot()
    log = engine.log
    uses = list(log.sorted)
    args = (engine.spec, uses, log.features, log.lines, log.codes, engine.projection)
    full = build_matrix(*args)
    picked = [len(uses) - 1, 0, *range(5, len(uses), 37)]
    part = build_matrix(*args, rows=picked)
    assert part.use_ids == tuple(full.use_ids[i] for i in picked)
    assert part.rule_category == tuple(full.rule_category[i] for i in picked)
    assert part.physics_columns == full.physics_columns
    np.testing.assert_allclose(part.X, full.X[picked], rtol=0, atol=1e-12)
    assert engine.snapshot()["uses"] == state["uses"]


def test_preview_classifies_a_new_use_as_ingesting_it_would(replay):
    """The provisional classification (before the use is stored) matches the stored one."""
    _, events, pairing, _, installed = replay
    engine = _engine(replay, until_day=8)
    end = installed + timedelta(days=8)
    later = [u for u in pairing.uses if end <= (u.t_close or u.t) < end + timedelta(days=1)]
    by_id = {e.event_id: e for e in events}
    assert len(later) >= 10
    for use in later[:10]:
        evs = [by_id[e] for e in use.event_ids]
        before = engine.snapshot()["uses"]
        (preview,) = engine.preview_model().classify([use], evs)  # features computed here
        assert engine.snapshot()["uses"] == before  # the engine is not changed
        (stored,) = engine.ingest([use], evs, use.t_close or use.t, features=pairing.features)
        assert preview.predicted == stored.predicted and preview.predicted
        assert (preview.rule_category, preview.display_label) == (
            stored.rule_category,
            stored.display_label,
        )
        for level, p in stored.confidence.items():
            assert preview.confidence[level] == pytest.approx(p, abs=1e-9)


def test_preview_context_updates_rebuild_the_engines_next_models(replay):
    """The provisional process gets a new model's context only; what it rebuilds (on its own
    unpickled copy) is the engine's model, and a retrain is sent whole."""
    _, events, pairing, valve, installed = replay
    engine = _engine(replay, until_day=8)
    end = installed + timedelta(days=8)
    later = [u for u in pairing.uses if end <= (u.t_close or u.t) < end + timedelta(days=1)]
    by_id = {e.event_id: e for e in events}
    sent = engine.preview_model()
    child = pickle.loads(pickle.dumps(sent))
    for use in later[:12]:
        engine.ingest(
            [use],
            [by_id[e] for e in use.event_ids],
            use.t_close or use.t,
            features=pairing.features,
        )
        newer = engine.preview_model()
        update = sent.context_update(newer)
        assert update is not None and [u.use_id for u in update.uses] == [use.use_id]
        child = child.with_context(pickle.loads(pickle.dumps(update)))
        assert [u.use_id for u in child.context] == [u.use_id for u in newer.context]
        assert child.context[0].t >= newer.context[-1].t - timedelta(days=1)  # old ones dropped
        for name in ("features", "lines", "codes"):
            mine, theirs = getattr(child, name), getattr(newer, name)
            assert mine.keys() == theirs.keys()
            assert all(np.array_equal(np.asarray(mine[k]), np.asarray(theirs[k])) for k in mine)
        sent = newer
    nxt = later[12]
    evs = [by_id[e] for e in nxt.event_ids]
    assert child.classify([nxt], evs) == sent.classify([nxt], evs)
    version = engine.model_version
    engine.add_guided_label(later[0].use_id, valve[later[0].use_id], later[0].t)
    engine.daily_update(nxt.t + timedelta(hours=1))  # a new label: a new classifier
    assert engine.model_version > version
    assert sent.context_update(engine.preview_model()) is None


def test_day_one_prior_is_used_by_layout_and_day_and_only_when_set():
    from atlas.day_one import DayOnePriors, MomentPrior, layout_key

    spec = load_preset("apartment")
    layout = layout_key(spec.hierarchy.category_of_fixture)
    table = DayOnePriors({layout: {"category": {8: MomentPrior(0.9, 100.0, 10)}}})
    installed = datetime(2026, 1, 5, tzinfo=ZoneInfo(spec.model.timezone))
    config = EngineConfig(day_one_prior=True, day_one_discrepancy_sd=0.05)
    on = CalibrationEngine(spec, installed, config, day_one=table)
    prior = on.accuracy_prior("category", 9)
    assert prior == table.prior(layout, "category", 9, 0.05)
    assert on.accuracy_prior("category", 7) is None  # week 1 is the rules' week
    assert on.accuracy_prior("valve", 9) is None  # the table has no valve prior
    off = CalibrationEngine(spec, installed, EngineConfig(day_one_prior=False), day_one=table)
    assert off.accuracy_prior("category", 9) is None
    est = on.estimates(day=9)["category"]  # no label yet: the prior alone
    assert est.prior == prior and est.point == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("name", "value"), [("day_one_discrepancy_sd", -0.1), ("prior_check", 1.0)]
)
def test_prior_settings_are_checked(name, value):
    with pytest.raises(ValueError, match=name):
        EngineConfig(**{name: value})


def test_a_whole_window_codebook_restores_to_the_same_predictions(replay):
    """The shift-invariant codebook (codebook_mode) survives a snapshot like the default."""
    engine = _engine(replay, until_day=8, codebook_mode="whole_window")
    assert engine.projection.codebook.pyramid == (1,)
    restored = CalibrationEngine.restore(engine.spec, engine.snapshot(), engine.config)
    assert restored.projection.codebook.version_ == engine.projection.codebook.version_
    assert restored.predictions("valve") == engine.predictions("valve")
    with pytest.raises(ValueError, match="codebook_mode"):
        EngineConfig(codebook_mode="spectral")
