"""atlas.day_one: the day-one prior per layout class, level and day, and the shipped table."""

import math

import pytest

from atlas.day_one import DayOnePriors, MomentPrior, fit_moments, layout_key, load_day_one_priors
from simulator.presets import PRESETS, load_preset


def test_fit_moments_floors_the_spread_of_homes_that_happen_to_agree():
    agreeing = fit_moments([0.93, 0.93, 0.93], min_sd=0.02)
    assert agreeing.mean == pytest.approx(0.93)
    assert agreeing.strength == pytest.approx(0.93 * 0.07 / 0.02**2 - 1)
    spread = fit_moments([0.80, 0.90, 0.99])
    assert spread.strength < agreeing.strength


def test_fit_moments_skips_nan_and_needs_two_homes():
    assert fit_moments([0.9, math.nan, 0.95]).n_homes == 2
    with pytest.raises(ValueError, match="needs >= 2"):
        fit_moments([0.9, math.nan])


def test_discrepancy_widens_the_prior_and_keeps_the_mean():
    sim = MomentPrior(0.9, 1000.0, 8)  # simulated homes that agree closely
    exact, real = sim.beta(0.0), sim.beta(0.05)
    assert exact.a + exact.b == pytest.approx(1000.0)
    assert real.a / (real.a + real.b) == pytest.approx(0.9)
    # at most mean * (1 - mean) / sd**2 pseudo-labels, however alike the simulated homes are
    assert real.a + real.b < 0.9 * 0.1 / 0.05**2
    with pytest.raises(ValueError, match="discrepancy_sd"):
        sim.beta(-0.01)


def test_lookup_uses_the_last_fitted_day_and_nothing_before_the_first():
    table = DayOnePriors(
        {"toilet:1": {"category": {8: MomentPrior(0.8, 50, 5), 10: MomentPrior(0.9, 60, 5)}}}
    )
    assert table.moments("toilet:1", "category", 7) is None
    assert table.moments("toilet:1", "category", 9).mean == 0.8
    assert table.moments("toilet:1", "category", 30).mean == 0.9
    assert table.prior("toilet:2", "category", 10, 0.05) is None  # unknown layout
    assert table.prior("toilet:1", "valve", 10, 0.05) is None  # level not fitted


def test_table_round_trips_through_its_dict():
    table = DayOnePriors({"toilet:1": {"fixture": {8: MomentPrior(0.85, 40.0, 6)}}})
    again = DayOnePriors.from_dict(table.to_dict())
    assert again.moments("toilet:1", "fixture", 8) == MomentPrior(0.85, 40.0, 6)
    with pytest.raises(ValueError, match="format"):
        DayOnePriors.from_dict({"format": 0, "layouts": {}})


@pytest.mark.parametrize("preset", list(PRESETS))
def test_shipped_table_covers_every_preset_layout_from_day_8(preset):
    layout = layout_key(load_preset(preset).hierarchy.category_of_fixture)
    table = load_day_one_priors()
    for level in ("category", "fixture", "valve"):
        assert table.moments(layout, level, 7) is None
        m = table.moments(layout, level, 8)
        assert m is not None and m.n_homes >= 8
