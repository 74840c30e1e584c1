"""Incremental ingest equals a from-scratch rebuild, after any sequence of ingests.

The engine computes only the rows a new use changes (its own, its neighbours' sequence and
hand-wash context, the fills of its appliance cycle, the uses the toilet reference moves) and
predicts only those. Random sequences here mix batch sizes, out-of-order completion,
re-paired uses (same id, new content), guided labels, retrains and a codebook fit; after
each step the rows and predictions must equal, bit for bit, :func:`build_matrix` over all
uses and the model's predictions of every row; and an engine restored from a full snapshot and the
deltas saved since (rebuilt and refitted from scratch) must hold the same state and predict
the same.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from engine_asserts import assert_same_state

from atlas.domain import LEVELS
from atlas.engine import CalibrationEngine, EngineConfig
from atlas.engine.featurize import build_matrix
from atlas.pairing import pair_events
from simulator.generate import generate_run
from simulator.presets import load_preset


@pytest.fixture(scope="module")
def home():
    """A two-bath house over 9 days (appliance cycles, toilets, mixers): the paired uses."""
    spec = load_preset("two_bath_house")
    sim = generate_run(spec, days=9, seed=5)
    events = [s.event for s in sim]
    truth = {s.event.event_id: s.truth["valve"] for s in sim}
    pairing = pair_events(events)
    tz = ZoneInfo(spec.model.timezone)
    installed = datetime.combine(min(e.t for e in events).astimezone(tz).date(), time(0), tz)
    uses = sorted(pairing.uses, key=lambda u: (u.t_close or u.t, u.use_id))
    return spec, events, pairing, uses, truth, installed


def _assert_rows_equal_full_build(engine: CalibrationEngine) -> None:
    log = engine.log
    full = build_matrix(
        engine.spec, list(log.sorted), log.features, log.lines, log.codes, engine.projection
    )
    assert tuple(engine.rows.use_ids) == full.use_ids
    assert tuple(engine.rows.rule_category) == full.rule_category
    np.testing.assert_array_equal(engine.rows.X, full.X)  # bit for bit


def _assert_predictions_equal_a_full_predict(engine: CalibrationEngine) -> None:
    log = engine.log
    X = build_matrix(
        engine.spec, list(log.sorted), log.features, log.lines, log.codes, engine.projection
    ).X
    clf = engine.classifier
    assert clf is not None
    proba = clf.predict_proba(X)
    for level in LEVELS:
        level_p, names = clf.predict_level_proba(X, level)
        expected = dict(
            zip(log_ids(engine), np.asarray(names)[level_p.argmax(axis=1)], strict=True)
        )
        assert engine.predictions(level) == expected
    mine = {c.use_id: c.confidence["valve"] for c in engine.classify()}
    np.testing.assert_array_equal([mine[u] for u in log_ids(engine)], proba.max(axis=1))


class _Saves:
    """What the service keeps of an engine: a full snapshot and the deltas saved since."""

    def __init__(self) -> None:
        self.base: dict | None = None
        self.deltas: list[dict] = []
        self.mark = None

    def save(self, engine: CalibrationEngine) -> None:
        try:
            if self.mark is None:
                raise ValueError("no base yet")
            self.deltas.append(engine.snapshot(since=self.mark))
        except ValueError:  # first save, or the codebook was refitted: a new base
            self.base, self.deltas = engine.snapshot(), []
        self.mark = engine.snapshot_mark()

    def restore(self, engine: CalibrationEngine) -> CalibrationEngine:
        return CalibrationEngine.restore(engine.spec, self.base, engine.config, deltas=self.deltas)


def _assert_restore_equals_engine(engine: CalibrationEngine, saves: _Saves) -> None:
    """Right after a retrain and a save, the engine restored from the full snapshot and the
    deltas (rebuilt and refitted) holds the same state and predicts the same."""
    engine.retrain(engine.installed_at)
    saves.save(engine)
    restored = saves.restore(engine)
    assert_same_state(restored.snapshot(), engine.snapshot())
    _assert_rows_equal_full_build(restored)
    for level in LEVELS:
        assert restored.predictions(level) == engine.predictions(level)


def log_ids(engine: CalibrationEngine) -> list[str]:
    return [u.use_id for u in engine.log.sorted]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_incremental_rows_and_predictions_equal_a_rebuild(home, seed):
    spec, events, pairing, uses, truth, installed = home
    rng = random.Random(seed)
    by_id = {e.event_id: e for e in events}
    engine = CalibrationEngine(spec, installed, EngineConfig(random_state=seed))
    pending = list(uses)
    ingested: list = []
    labelled: set[str] = set()
    fitted = False
    saves = _Saves()
    while pending:
        k = rng.choice([1, 1, 1, 2, 3, 8])
        batch, pending = pending[:k], pending[k:]
        if pending and rng.random() < 0.2:  # one completes later than it should
            late = batch.pop(rng.randrange(len(batch)))
            pending.insert(rng.randrange(min(4, len(pending)) + 1), late)
        if ingested and rng.random() < 0.15:  # re-paired: same id, a later close
            old = rng.choice(ingested[-30:])
            batch.append(replace(old, t_close=(old.t_close or old.t) + timedelta(seconds=3)))
        rng.shuffle(batch)
        if not batch:
            continue
        now = max(u.t_close or u.t for u in batch)
        engine.ingest(
            batch, [by_id[e] for u in batch for e in u.event_ids], now, features=pairing.features
        )
        ingested += batch
        if rng.random() < 0.3:
            first = next((u for u in ingested if u.use_id not in labelled), None)
            if first is not None:
                engine.add_guided_label(first.use_id, truth[first.event_ids[0]], now)
                labelled.add(first.use_id)
                engine.retrain(now)
        if not fitted and len(ingested) > len(uses) // 2:
            seen = dict.fromkeys(e for u in ingested for e in u.event_ids)
            engine.fit_codebook([by_id[e] for e in seen], now)
            fitted = True
        if rng.random() < 0.3:
            saves.save(engine)
        if rng.random() < 0.25 or not pending:
            _assert_rows_equal_full_build(engine)
            if engine.model_version > 0:
                _assert_predictions_equal_a_full_predict(engine)
    assert engine.model_version > 0 and engine.projection is not None
    assert len(saves.deltas) > 3  # the chain did hold deltas
    _assert_restore_equals_engine(engine, saves)


def test_a_use_given_twice_in_one_batch_is_ingested_once_as_its_last_version(home):
    spec, events, pairing, uses, _, installed = home
    by_id = {e.event_id: e for e in events}
    engine = CalibrationEngine(spec, installed, EngineConfig())
    first = uses[:20]
    engine.ingest(
        first, [by_id[e] for u in first for e in u.event_ids], installed, features=pairing.features
    )
    again = replace(first[-1], t_close=(first[-1].t_close or first[-1].t) + timedelta(seconds=2))
    batch = [first[-1], uses[20], again]
    engine.ingest(
        batch, [by_id[e] for u in batch for e in u.event_ids], installed, features=pairing.features
    )
    assert engine.log.get(again.use_id) == again and len(engine.rows.use_ids) == 21
    _assert_rows_equal_full_build(engine)
