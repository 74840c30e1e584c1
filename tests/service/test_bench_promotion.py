"""service.bench._promotion: the lag between what the truth allows and what the display shows."""

import math

from atlas.levels import level_allowed_by
from service.bench._promotion import home_promotion, promotion_summary

GOOD = {"category": 0.95, "fixture": 0.90, "valve": 0.85}  # allows every level
CAT_ONLY = {"category": 0.90, "fixture": 0.80, "valve": 0.78}


def _days(windows: dict[int, dict], levels: dict[int, str], last: int = 28) -> list[dict]:
    """Daily rows: the window and level in force from each listed day on."""
    rows, window, level = [], CAT_ONLY, "rule_categories"
    for day in range(1, last + 1):
        window, level = windows.get(day, window), levels.get(day, level)
        rows.append({"day": day, "window": window, "level": level})
    return rows


def test_lag_counts_from_the_first_day_the_truth_allows_the_level():
    days = _days({10: GOOD}, {8: "category", 13: "fixture", 20: "valve"})
    p = home_promotion(days)
    assert p["category"] == {"oracle_day": 8, "shown_day": 8, "lag_days": 0}
    assert p["fixture"] == {"oracle_day": 10, "shown_day": 13, "lag_days": 3}
    assert p["valve"]["lag_days"] == 10


def test_a_level_never_shown_counts_as_shown_the_day_after_the_last():
    p = home_promotion(_days({8: GOOD}, {8: "category"}))
    assert p["valve"] == {"oracle_day": 8, "shown_day": 29, "lag_days": 21}


def test_no_oracle_day_means_no_lag_and_week_one_never_counts():
    p = home_promotion(_days({1: GOOD, 8: CAT_ONLY}, {}))
    assert p["fixture"]["lag_days"] is None  # the truth allowed it only in week 1
    assert level_allowed_by(GOOD, day=7) == "rule_categories"
    assert level_allowed_by(CAT_ONLY, day=8) == "category"
    assert level_allowed_by({"category": math.nan, "fixture": 0.9, "valve": 0.9}, day=9) == (
        "rule_categories"
    )


def test_summary_reads_the_decision_in_force_at_the_start_of_each_report_day():
    late = _days({8: GOOD}, {8: "category", 15: "fixture"})  # fixture decided end of day 15
    early = _days({8: GOOD}, {8: "fixture"})
    s = promotion_summary([late, early])
    assert s["fixture"]["median_lag_days"] == 3.5  # lags 7 and 0
    assert s["fixture"]["shown_by_day"] == {"8": 0.0, "15": 0.5, "22": 1.0, "29": 1.0}
    assert s["fixture"]["oracle_by_day"]["15"] == 1.0
    assert s["valve"]["shown_by_day"]["29"] == 0.0
