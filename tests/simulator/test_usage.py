"""simulator.usage: rates over a few simulated weeks match the end-use statistics."""

import itertools
from collections import Counter

import pytest

from simulator.presets import load_preset
from simulator.usage import schedule

DAYS = 21


@pytest.fixture(scope="module")
def weeks():
    spec = load_preset("two_bath_house")
    return spec, schedule(spec, days=DAYS, seed=3)


def _per_day(uses, activity):
    return sum(1 for u in uses if u.activity == activity) / DAYS


def test_toilet_flushes_per_person(weeks):
    spec, uses = weeks
    assert 4.3 <= _per_day(uses, "flush") / spec.model.residents <= 5.7


def test_showers_per_person(weeks):
    spec, uses = weeks
    showers = {u.start_s for u in uses if u.activity == "shower"}  # one use per shower
    assert 0.5 <= len(showers) / DAYS / spec.model.residents <= 0.9
    minutes = [u.duration_s / 60 for u in uses if u.activity == "shower"]
    assert 5.0 <= sum(minutes) / len(minutes) <= 10.0


def test_kitchen_faucet_per_household(weeks):
    _, uses = weeks
    starts = {round(u.start_s) for u in uses if u.activity == "kitchen"}
    assert 9.0 <= len(starts) / DAYS <= 15.0


def test_appliance_programmes(weeks):
    _, uses = weeks
    dishwasher_runs = _per_day(uses, "dishwasher") / 4
    assert 0.08 <= dishwasher_runs <= 0.35
    washer_starts = sorted(u.start_s for u in uses if u.activity == "washer")
    runs = 1 + sum(1 for a, b in itertools.pairwise(washer_starts) if b - a > 3 * 3600)
    assert 0.15 <= runs / DAYS <= 0.5


def test_uses_peak_in_the_morning_and_evening(weeks):
    _, uses = weeks
    hours = Counter(int(u.start_s % 86400 // 3600) for u in uses)
    assert hours[7] + hours[19] > 4 * (hours[2] + hours[3])


def test_a_valve_never_runs_twice_at_once(weeks):
    _, uses = weeks
    end = {}
    for use in sorted(uses, key=lambda u: u.start_s):
        assert use.start_s >= end.get(use.valve_id, -1.0)
        end[use.valve_id] = use.start_s + use.duration_s


def test_same_seed_same_schedule(weeks):
    spec, uses = weeks
    assert schedule(spec, days=DAYS, seed=3) == uses
    assert schedule(spec, days=DAYS, seed=4) != uses


def test_days_must_be_positive():
    with pytest.raises(ValueError, match="days=0"):
        schedule(load_preset("apartment"), days=0, seed=1)


def test_a_use_drafted_in_the_first_second_of_the_run_is_scheduled():
    """Seed 6 drafts a toilet flush within the run's first second: it raised KeyError when the
    valve had never run (``atlas bench latency`` with --homes 20 hit it)."""
    uses = schedule(load_preset("two_bath_house"), days=2, seed=6)
    first = min(uses, key=lambda u: u.start_s)
    assert 0.0 <= first.start_s < 1.0
