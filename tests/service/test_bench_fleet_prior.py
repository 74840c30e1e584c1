"""atlas bench fleet-prior: re-deciding a replayed home's display from its recorded counts."""

import pytest

from atlas.day_one import layout_key
from service.bench.calibration import prepare_home, run_home
from service.bench.fleet_prior import leave_one_out, shared_counts
from simulator.homeowner import Homeowner
from simulator.presets import load_preset

LAYOUT = {"two_bath_house": layout_key(load_preset("two_bath_house").hierarchy.category_of_fixture)}


@pytest.fixture(scope="module")
def two_runs():
    return [
        run_home(prepare_home("two_bath_house", seed, 22), "margin", 22, Homeowner(seed=0))
        for seed in (1, 2)
    ]


@pytest.mark.slow
def test_replaying_the_engines_own_prior_reproduces_its_display(two_runs):
    """The day-one rows re-decide what the engine did, so the other rows compare like with like."""
    redecided = leave_one_out(two_runs, LAYOUT, discrepancy_sd=0.05)
    for run, days in zip(two_runs, redecided["day_one"], strict=True):
        assert [d["level"] for d in days] == [d["level"] for d in run["days"]]
        for mine, engines in zip(days, run["days"], strict=True):
            assert mine["lower"] == pytest.approx(engines["lower"])


@pytest.mark.slow
def test_a_home_shares_its_counts_at_the_end_of_weeks_two_and_three(two_runs):
    counts = shared_counts(two_runs[0]["days"])
    assert {c.week for c in counts} == {2, 3}  # 22 days: no week-4 end yet
    assert all(c.trials > 0 and 0 <= c.successes <= c.trials for c in counts)
