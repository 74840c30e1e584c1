"""simulator faults (a leaking toilet flapper, a hose left running) and true litres per use."""

from __future__ import annotations

import itertools
from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from atlas.alerts import FLAPPER, AlertSettings, ObservedUse, all_alerts
from atlas.pairing import pair_events
from simulator.generate import DEFAULT_START, generate_run, true_litres
from simulator.presets import load_preset
from simulator.usage import Faults, LeakingFlapper, LeftRunning, schedule

SPEC = load_preset("two_bath_house")
LEAK_START_S = 86400 + 3 * 3600  # 03:00 on day 2


def test_no_faults_leaves_the_household_schedule_unchanged():
    plain = schedule(SPEC, days=3, seed=5)
    assert schedule(SPEC, days=3, seed=5, faults=None) == plain
    assert schedule(SPEC, days=3, seed=5, faults=Faults()) == plain
    leaky = schedule(
        SPEC, days=3, seed=5, faults=Faults(flapper=LeakingFlapper(start_s=LEAK_START_S))
    )
    own = [u for u in leaky if u.activity != "phantom_refill"]
    strip = [(u.valve_id, u.start_s, u.duration_s, u.activity) for u in own]
    assert strip == [(u.valve_id, u.start_s, u.duration_s, u.activity) for u in plain]


def test_a_leaking_flapper_refills_briefly_and_regularly_between_flushes():
    leak = LeakingFlapper("bath1-toilet", LEAK_START_S, interval_min=25.0, refill_l=0.8)
    uses = schedule(SPEC, days=3, seed=5, faults=Faults(flapper=leak))
    refills = [u for u in uses if u.activity == "phantom_refill"]
    fills = [u for u in uses if u.valve_id == "bath1-toilet/fill" and u.activity == "flush"]
    assert len(refills) > 40  # ~2 days at one every 25 min, minus the flushes' restarts
    assert all(u.valve_id == "bath1-toilet/fill" and u.start_s >= LEAK_START_S for u in refills)
    assert all(2.0 < u.duration_s < 12.0 for u in refills)
    litres = [true_litres(u, SPEC.valve(u.valve_id)) for u in refills]
    assert float(np.median(litres)) == pytest.approx(0.8, rel=0.1)
    ends = sorted([(u.start_s, u.start_s + u.duration_s + u.close_s) for u in refills + fills])
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ends))  # one fill at a time
    gaps = np.diff([u.start_s for u in refills[:10]]) / 60
    assert float(np.median(gaps)) == pytest.approx(25.0, rel=0.15)  # every ~25 min ...
    assert np.all(gaps > 15)  # ... later when a flush refilled the tank meanwhile


def test_a_valve_left_running_is_one_long_use_and_nobody_else_uses_it():
    running = LeftRunning(LEAK_START_S + 8 * 3600, 4 * 3600.0)
    uses = schedule(SPEC, days=3, seed=5, faults=Faults(left_running=running))
    (left,) = [u for u in uses if u.activity == "left_running"]
    assert left.valve_id == "hose/cold" and left.duration_s == 4 * 3600.0
    during = [
        u
        for u in uses
        if u.valve_id == "hose/cold" and u is not left
        if u.start_s < running.start_s + running.duration_s
        and u.start_s + u.duration_s > running.start_s
    ]
    assert during == []
    with pytest.raises(ValueError):
        schedule(load_preset("apartment"), days=2, seed=1, faults=Faults(left_running=running))


def test_truth_reports_each_uses_litres():
    sims = generate_run(SPEC, days=1, seed=5)
    by_use = {}
    for s in sims:
        by_use.setdefault(s.truth["use_id"], set()).add(s.truth["litres"])
    assert all(len(v) == 1 for v in by_use.values())  # every event of a use says the same
    flushes = [s.truth["litres"] for s in sims if s.truth["activity"] == "flush"]
    assert 5.5 < float(np.median(flushes)) < 7.0  # a 6-litre tank plus the float's slow close
    showers = [s.truth["litres"] for s in sims if s.truth["activity"] == "shower"]
    assert all(20 < x < 150 for x in showers)


@pytest.mark.slow
def test_a_simulated_flapper_leak_raises_an_alert_within_a_day_and_a_normal_run_none():
    leak = LeakingFlapper(start_s=LEAK_START_S, interval_min=40.0, refill_l=0.7)
    settings = AlertSettings(timezone=SPEC.model.timezone)

    def alerts(faults):
        sims = generate_run(SPEC, days=4, seed=21, faults=faults)
        truth = {s.event.event_id: s.truth for s in sims}
        result = pair_events([s.event for s in sims])
        observed = [
            ObservedUse.from_use(
                u, truth[u.event_ids[0]]["category"], truth[u.event_ids[0]]["fixture"]
            )
            for u in result.uses
        ]
        return all_alerts(observed, settings)

    found = alerts(Faults(flapper=leak))
    start = DEFAULT_START.replace(tzinfo=ZoneInfo(SPEC.model.timezone))  # the run's local midnight
    flapper = [a for a in found if a.kind == FLAPPER]
    assert flapper, found
    delay = flapper[0].at - (start + timedelta(seconds=LEAK_START_S))
    assert timedelta(0) < delay < timedelta(hours=24)
    assert flapper[0].evidence["median_interval_min"] == pytest.approx(40.0, rel=0.3)
    normal = alerts(None)
    assert normal == []
