"""atlas.strategies.candidates.answerable: recent, complete, not overlapping, not asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from atlas.strategies.candidates import answerable
from atlas.uses import UseStatus, WaterUse

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


def use(uid, start_min, dur_min=1.0, status=UseStatus.PAIRED, lines=("cold",)):
    t = T0 + timedelta(minutes=start_min)
    return WaterUse(uid, "h", lines, t, t + timedelta(minutes=dur_min), status)


NOW = T0 + timedelta(hours=30)


def test_keeps_recent_complete_isolated_unasked_uses():
    uses = [use("old", 0), use("ok", 10 * 60), use("ok2", 20 * 60)]
    assert answerable(uses, NOW).tolist() == [1, 2]


def test_overlapping_uses_are_both_excluded_even_on_other_lines():
    uses = [use("a", 600, 10), use("b", 605, 1, lines=("hot",)), use("c", 700)]
    assert answerable(uses, NOW).tolist() == [2]


def test_long_use_overlapping_a_later_one_is_excluded():
    uses = [use("long", 600, 60), use("mid", 610), use("late", 650)]
    assert answerable(uses, NOW).tolist() == []


def test_asked_status_future_and_age_filters():
    uses = [
        use("asked", 600),
        use("open", 700, status=UseStatus.OPEN_ENDED),
        use("running", 30 * 60 - 1, dur_min=5),  # ends after now
        use("fine", 800),
    ]
    assert answerable(uses, NOW, asked={"asked"}).tolist() == [3]
    assert answerable(uses, NOW, asked={"asked"}, require_paired=False).tolist() == [1, 3]
    assert answerable(uses, NOW, max_age=timedelta(hours=2)).tolist() == []


def test_max_age_must_be_positive():
    with pytest.raises(ValueError, match="max_age"):
        answerable([], NOW, max_age=timedelta(0))
