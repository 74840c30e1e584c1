"""atlas.levels: goals, week-1 restriction, hysteresis and lumped fixtures."""

import itertools

import numpy as np
import pytest

from atlas.domain import Category, Fixture, Handle
from atlas.estimate import AccuracyEstimate
from atlas.levels import (
    RULE_CONFIDENT,
    LevelPolicy,
    LevelState,
    confusion_from_probabilities,
    decide_level,
    level_allowed_by,
    lump_fixtures,
    lump_label,
)


def _est(level: str, lower: float, point: float | None = None) -> AccuracyEstimate:
    return AccuracyEstimate(level, point or min(1.0, lower + 0.1), lower, 30, 10, 20.0, "ipw", 0.95)


def _estimates(category: float, fixture: float, valve: float) -> dict[str, AccuracyEstimate]:
    return {
        "category": _est("category", category),
        "fixture": _est("fixture", fixture),
        "valve": _est("valve", valve),
    }


def test_week_one_shows_only_rule_confident_categories():
    d = decide_level(_estimates(0.99, 0.99, 0.99), LevelState(), day=5)
    assert d.level == "rule_categories"
    assert d.shown_categories == RULE_CONFIDENT
    assert "week 1" in d.reason


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((0.80, 0.99, 0.99), "rule_categories"),
        ((0.86, 0.90, 0.90), "category"),  # fixture needs category >= 0.87 too
        ((0.88, 0.83, 0.50), "fixture"),
        ((0.93, 0.88, 0.81), "valve"),
        ((0.91, 0.88, 0.81), "fixture"),  # valve needs category >= 0.92
    ],
)
def test_level_needs_goals_at_all_coarser_levels(values, expected):
    assert decide_level(_estimates(*values), LevelState(), day=8).level == expected


def test_reason_names_estimate_bound_and_labels():
    d = decide_level(_estimates(0.88, 0.83, 0.5), LevelState(), day=9)
    assert "fixture lower 83.0% >= goal 82%" in d.reason
    assert "30 labels" in d.reason and "ipw" in d.reason


def test_point_policy_compares_point_estimates():
    est = {"category": _est("category", 0.5, point=0.9)}
    assert decide_level(est, LevelState(), day=8).level == "rule_categories"
    assert decide_level(est, LevelState(), day=8, policy=LevelPolicy(use="point")).level == (
        "category"
    )


def _level_changes(policy: LevelPolicy) -> tuple[int, list[str]]:
    rng = np.random.default_rng(0)
    state, levels = LevelState(), []
    for day in range(8, 60):
        noisy = 0.82 + rng.normal(0, 0.012)  # fixture bound jittering around its goal
        d = decide_level(_estimates(0.90, noisy, 0.5), state, day=day, policy=policy)
        state = d.state
        levels.append(d.level)
    return sum(a != b for a, b in itertools.pairwise(levels)), levels


def test_does_not_flap_on_noisy_estimate():
    changes, levels = _level_changes(LevelPolicy())
    assert "fixture" in levels
    assert changes <= 1


def test_without_hysteresis_the_same_sequence_flaps():
    """Guards the test above: the noise is enough to flap a policy without margin."""
    changes, _ = _level_changes(LevelPolicy(margin=0.0, demote_after=1))
    assert changes > 5


def test_demotes_after_consecutive_failures():
    state = LevelState("fixture", 0)
    bad = _estimates(0.90, 0.70, 0.5)
    first = decide_level(bad, state, day=12)
    assert first.level == "fixture" and first.state.failures == 1
    second = decide_level(bad, first.state, day=14)
    assert second.level == "category"
    assert "demoted fixture -> category" in second.reason


def test_one_good_evaluation_resets_failure_count():
    state = LevelState("fixture", 1)
    d = decide_level(_estimates(0.90, 0.81, 0.5), state, day=12)  # within margin
    assert (d.level, d.state.failures) == ("fixture", 0)


def test_bad_policy_parameters_are_named():
    with pytest.raises(ValueError, match="use='mean'"):
        LevelPolicy(use="mean")
    with pytest.raises(ValueError, match="day=0"):
        decide_level({}, LevelState(), day=0)


def _fixture(fid: str, category: Category, location: str = "upstairs") -> Fixture:
    return Fixture(fid, fid.title(), category, Handle.FILL_VALVE, location)


def test_confused_toilets_are_lumped_but_not_across_categories():
    fixtures = [
        _fixture("wc1", Category.TOILET),
        _fixture("wc2", Category.TOILET),
        _fixture("shower", Category.SHOWER),
    ]
    confusion = np.array([[0.6, 0.4, 0.0], [0.3, 0.7, 0.0], [0.0, 0.3, 0.7]])
    lumps = lump_fixtures(confusion, fixtures)
    assert [tuple(f.id for f in lump) for lump in lumps] == [("wc1", "wc2"), ("shower",)]
    assert lump_label(lumps[0]) == "one of the two upstairs toilets"
    assert lump_label(lumps[1]) == "Shower"


def test_confusion_from_probabilities_rows_sum_to_one():
    proba = np.array([[0.5, 0.5, 0.0], [0.6, 0.4, 0.0], [0.0, 0.1, 0.9]])
    c = confusion_from_probabilities(proba)
    np.testing.assert_allclose(c.sum(axis=1), 1.0)
    assert c[1, 0] > 0.5  # fixture 1's uses are mostly predicted as fixture 0


def test_lump_label_without_shared_location_lists_names():
    lump = (_fixture("wc1", Category.TOILET, "upstairs"), _fixture("wc2", Category.TOILET, "hall"))
    assert lump_label(lump) == "one of: Wc1, Wc2"


@pytest.mark.parametrize(
    ("accuracy", "day", "allowed"),
    [
        ({"category": 0.99, "fixture": 0.99, "valve": 0.99}, 7, "rule_categories"),  # week 1
        ({"category": 0.84, "fixture": 0.99, "valve": 0.99}, 8, "rule_categories"),
        ({"category": 0.86, "fixture": 0.81, "valve": 0.99}, 8, "category"),
        ({"category": 0.88, "fixture": 0.83, "valve": 0.79}, 8, "fixture"),
        # valve needs fixture 0.87 and category 0.92 too, not only its own 0.80
        ({"category": 0.91, "fixture": 0.90, "valve": 0.90}, 8, "fixture"),
        ({"category": 0.93, "fixture": 0.88, "valve": 0.81}, 8, "valve"),
        ({"category": None, "fixture": 0.99, "valve": 0.99}, 8, "rule_categories"),
    ],
)
def test_the_truth_allows_the_finest_level_whose_goals_hold_down_the_ladder(accuracy, day, allowed):
    assert level_allowed_by(accuracy, day=day) == allowed
