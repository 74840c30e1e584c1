"""atlas bench decision-rules: re-deciding a replay with the default rule gives back the replay."""

from __future__ import annotations

import pytest

from atlas.day_one import load_day_one_priors
from atlas.domain import LEVELS
from atlas.engine import EngineConfig
from service.bench import decision_rules
from service.bench.calibration import prepare_home, replay
from simulator.homeowner import Homeowner


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_default_rule_reproduces_the_replay():
    config = EngineConfig()
    (default,) = [
        r
        for r in decision_rules.RULES
        if r.confidence == config.confidence
        and r.discrepancy_sd == config.day_one_discrepancy_sd
        and r.prior_check == config.prior_check
        and not r.true_answers
        and r.policy == config.level_policy
    ]
    home = prepare_home("two_bath_house", 1, 14)
    days, engine = replay(home, "atlas", 14, Homeowner(seed=0), config=config)
    table = load_day_one_priors()
    again = decision_rules.rerun(days, engine.labels, home, default, table, engine.layout)
    assert [d["level"] for d in again] == [d["level"] for d in days]
    lower = [[d["lower"][lv] for lv in LEVELS] for d in days]
    assert [[d["lower"][lv] for lv in LEVELS] for d in again] == lower
    truthful = next(r for r in decision_rules.RULES if r.true_answers)
    scored = decision_rules.scored_labels(engine.labels, truthful, home)
    answered = decision_rules.scored_labels(engine.labels, default, home)
    assert [s.use_id for s in scored] == [a.use_id for a in answered] != []
    h = home.spec.hierarchy
    assert all(s.true[s.level] == h.label_at(home.truth[s.use_id], s.level) for s in scored)
