"""atlas.timetable: rounds every other day from day 8, never in quiet hours, DST included."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from atlas.timetable import (
    TimetablePolicy,
    awake_minutes,
    day_number,
    is_quiet,
    is_round_day,
    plan_day,
    request_count,
    request_expiry,
)

BERLIN = ZoneInfo("Europe/Berlin")
INSTALLED = datetime(2024, 3, 20, 15, 0, tzinfo=BERLIN)


def test_rounds_every_other_day_from_day_eight():
    p = TimetablePolicy()
    assert [d for d in range(1, 16) if is_round_day(d, p)] == [8, 10, 12, 14]


def test_day_number_counts_local_days():
    late = datetime(2024, 3, 20, 23, 30, tzinfo=BERLIN).astimezone(UTC)
    assert day_number(late, INSTALLED, BERLIN) == 1
    assert day_number(late + timedelta(hours=1), INSTALLED, BERLIN) == 2


def test_fewer_requests_when_model_is_good():
    p = TimetablePolicy()
    assert request_count("category", p) == 4 > request_count("valve", p) == 2


@pytest.mark.parametrize(
    ("quiet", "tz_name"),
    [
        ((time(21), time(8)), "Europe/Berlin"),
        ((time(22, 30), time(6, 15)), "America/New_York"),
        ((time(1, 30), time(3, 0)), "Europe/Berlin"),  # inside the DST gap
        ((time(9), time(17)), "Australia/Lord_Howe"),  # 30-minute DST shift
        ((time(0), time(23, 59)), "UTC"),
    ],
)
@pytest.mark.parametrize("level", ["category", "valve"])
def test_never_schedules_in_quiet_hours_across_dst(quiet, tz_name, level):
    tz = ZoneInfo(tz_name)
    p = TimetablePolicy(quiet_start=quiet[0], quiet_end=quiet[1])
    installed = datetime(2024, 3, 1, 12, tzinfo=tz)
    scheduled = 0
    for offset in range(0, 260):  # covers spring and autumn DST changes of both hemispheres
        now = installed + timedelta(days=offset)
        plan = plan_day(now, installed, tz, level, p)
        for t in plan.times:
            assert not is_quiet(t, tz, p), (t, quiet)
            assert t.astimezone(tz).date() == now.astimezone(tz).date()
        scheduled += len(plan.times)
    assert scheduled > 0


def test_quiet_hours_crossing_midnight():
    p = TimetablePolicy(quiet_start=time(21), quiet_end=time(8))
    at = lambda h, m=0: datetime(2024, 6, 1, h, m, tzinfo=BERLIN)  # noqa: E731
    assert is_quiet(at(23), BERLIN, p) and is_quiet(at(7, 59), BERLIN, p)
    assert not is_quiet(at(8), BERLIN, p) and not is_quiet(at(20, 59), BERLIN, p)


def test_dst_days_have_23_and_25_hours_of_minutes():
    p = TimetablePolicy(quiet_start=time(0), quiet_end=time(0))  # no quiet hours
    assert len(awake_minutes(date(2024, 3, 31), BERLIN, p)) == 23 * 60
    assert len(awake_minutes(date(2024, 10, 27), BERLIN, p)) == 25 * 60


def test_requests_spread_over_the_awake_day():
    plan = plan_day(datetime(2024, 3, 27, 9, tzinfo=BERLIN), INSTALLED, BERLIN, "category")
    assert plan.is_round and plan.n_requests == 4
    hours = [t.hour for t in plan.times]
    assert hours == sorted(hours) and hours[0] < 11 and hours[-1] >= 18


def test_request_expires_a_day_after_the_use():
    use = datetime(2024, 3, 27, 7, tzinfo=BERLIN)
    assert request_expiry(use) == use + timedelta(hours=24)


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_day(datetime(2024, 3, 27, 9), INSTALLED, BERLIN, "category")
