"""ContextIndex: decisions with the kept context (added per use or built at once) equal those
with the whole home's context, and every use whose decision an addition changes is among the
uses it names."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest

from atlas.pairing import pair_events
from rules import RuleClassifier, RuleConfig, build_views
from rules.conditions import build_context
from rules.context_index import ContextIndex
from simulator.generate import generate_run
from simulator.presets import load_preset


@pytest.fixture(scope="module", params=["two_bath_house", "three_bath_house"])
def home(request):
    spec = load_preset(request.param)
    events = [s.event for s in generate_run(spec, days=3, seed=11)]
    pairing = pair_events(events)
    # rings (nearly) never decide: every mixed draw is told by the toilet reference,
    # so the reference's moves change decisions and the index must name them
    config = replace(RuleConfig.from_home_spec(spec), ring_tolerance=1e-9)
    return build_views(pairing.uses, pairing.features), config


@pytest.mark.parametrize("seed", [0])
def test_index_names_every_changed_decision_and_decides_as_the_whole_home(home, seed):
    views, config = home
    rng = random.Random(seed)
    order = list(views)
    rng.shuffle(order)  # any arrival order
    rules = RuleClassifier(config)
    index = ContextIndex(config)
    present: dict[str, object] = {}
    before: dict[str, object] = {}
    flips_by_reference = 0
    for view in order:
        if present and rng.random() < 0.1:  # a re-paired use: same id, a later close
            old = present[rng.choice(sorted(present))]
            use = old.use
            view = replace(old, use=replace(use, t_close=(use.t_close or use.t) + timedelta(1)))
        touched = index.add(view)
        present[view.use.use_id] = view
        current = list(present.values())
        whole = {
            v.use.use_id: (d.category, d.candidates, d.confidence)
            for v, d in zip(current, rules.classify(current), strict=True)
        }
        kept = rules.classify(current, context=index.context(present))
        assert {
            v.use.use_id: (d.category, d.candidates, d.confidence)
            for v, d in zip(current, kept, strict=True)
        } == whole
        changed = {uid for uid, d in whole.items() if before.get(uid) != d}
        assert changed <= touched
        flips_by_reference += len(changed - {view.use.use_id})
        before = whole
    assert build_context(list(present.values()), config).toilet_drop_kpa == index.reference
    bulk = ContextIndex.of(present.values(), config)  # built at once, as after a restore
    assert bulk.reference == index.reference
    at_once = rules.classify(current, context=bulk.context(present))
    assert [(d.category, d.candidates) for d in at_once] == [
        (d.category, d.candidates) for d in rules.classify(current)
    ]
    assert flips_by_reference > 0  # the sequence did exercise context changes
