"""atlas.alerts: running water, a leaking toilet flapper and water at night, on synthetic uses."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from atlas.alerts import (
    FLAPPER,
    NIGHT,
    RUNNING,
    AlertSettings,
    ObservedUse,
    all_alerts,
    flapper_alerts,
    is_repeat,
    night_alerts,
    running_alerts,
)

TZ = "America/Chicago"
SETTINGS = AlertSettings(timezone=TZ)
DAY0 = datetime(2026, 3, 2, tzinfo=ZoneInfo(TZ))  # local midnight, a Monday


def _use(
    uid, start_s, duration_s, category="kitchen_faucet", fixture=None, lines=("cold",), litres=None
):
    t_open = DAY0 + timedelta(seconds=start_s)
    t_close = None if duration_s is None else t_open + timedelta(seconds=duration_s)
    return ObservedUse(uid, t_open, t_close, lines, category, fixture, litres)


def _ordinary_days(days: int, start_day: int = 0) -> list[ObservedUse]:
    """A household's days: flushes (45 s fills) and taps between 6:00 and 23:00, irregular."""
    uses = []
    for day in range(start_day, start_day + days):
        base = day * 86400
        for k, hour in enumerate((6.2, 6.9, 7.4, 9.8, 12.3, 13.1, 17.6, 18.2, 19.9, 21.7, 22.4)):
            t = base + hour * 3600 + 97 * ((k * 7 + day * 3) % 11)
            uses.append(_use(f"f{day}-{k}", t, 45.0, "toilet", "bath1-toilet", litres=6.2))
            uses.append(_use(f"k{day}-{k}", t + 900, 25.0 + k, litres=2.5))
        uses.append(
            _use(f"s{day}", base + 7.0 * 3600, 480.0, "shower", lines=("hot", "cold"), litres=60.0)
        )
    return uses


def test_water_running_past_the_setting_alerts_when_the_setting_has_passed():
    hose = _use("hose", 10 * 3600, 3 * 3600, "outdoor_hose")
    watering = _use("water", 18 * 3600, 20 * 60, "outdoor_hose")
    alerts = running_alerts([hose, watering], SETTINGS)
    assert [a.use_ids for a in alerts] == [("hose",)]
    (alert,) = alerts
    assert alert.kind == RUNNING
    assert alert.at == DAY0 + timedelta(hours=10, minutes=30)
    assert alert.at.utcoffset() == timedelta(hours=-6)  # home-local
    assert alert.evidence["duration_min"] == 180.0
    longer = AlertSettings(timezone=TZ, max_run_min_by_category={"outdoor_hose": 240.0})
    assert running_alerts([hose, watering], longer) == []


def test_an_open_still_running_alerts_only_once_it_has_run_the_setting():
    tap = _use("tap", 8 * 3600, None)
    assert running_alerts([tap], SETTINGS, now=DAY0 + timedelta(hours=8, minutes=29)) == []
    (alert,) = running_alerts([tap], SETTINGS, now=DAY0 + timedelta(hours=8, minutes=31))
    assert alert.at == DAY0 + timedelta(hours=8, minutes=30)
    assert alert.message.endswith("(no close yet)")


def test_an_unclosed_open_next_to_an_orphan_close_is_a_pairing_slip():
    """Pairing mis-read a close: the open never closes and a close without its open follows
    within minutes. That is not water left running."""
    opened = _use("open", 8 * 3600, None)
    orphan = ObservedUse("orphan", None, DAY0 + timedelta(hours=8, minutes=3), ("cold",), None)
    assert running_alerts([opened, orphan], SETTINGS) == []
    # a close on the other line says nothing about this one
    other_line = ObservedUse("orphan", None, orphan.t_close, ("hot",), None)
    assert len(running_alerts([opened, other_line], SETTINGS)) == 1


def _flapper_refills(start_s: float, interval_s: float, n: int, jitter_s: float = 40.0):
    return [
        _use(
            f"r{i}",
            start_s + (i + 1) * interval_s + jitter_s * (-1) ** i,
            6.0,
            "toilet",
            "bath1-toilet",
            litres=0.8,
        )
        for i in range(n)
    ]


def test_a_leaking_flapper_alerts_within_hours_and_a_normal_week_does_not():
    week = _ordinary_days(7)
    assert flapper_alerts(week, SETTINGS) == []
    assert all_alerts(week, SETTINGS) == []
    leak_start = 7 * 86400 + 0.5 * 3600  # 00:30 on day 8, the house asleep
    refills = _flapper_refills(leak_start, 20 * 60, 12)
    alerts = flapper_alerts(_ordinary_days(8) + refills, SETTINGS)
    assert [a.kind for a in alerts] == [FLAPPER]
    (alert,) = alerts
    delay = alert.at - (DAY0 + timedelta(seconds=leak_start))
    assert timedelta(0) < delay <= timedelta(hours=2)
    assert alert.evidence["median_interval_min"] == pytest.approx(20.0, abs=1.5)
    assert alert.evidence["toilet"] == "bath1-toilet"
    assert alert.evidence["median_refill_litres"] == 0.8


def test_a_sliding_window_raises_each_anomaly_once_and_a_lasting_leak_daily():
    """A live service re-runs the detectors as uses arrive: what it already raised is a repeat.
    A flapper still leaking a day after its alert is news again; a running use never is."""
    refills = _flapper_refills(0.5 * 3600, 20 * 60, 12) + _flapper_refills(25 * 3600, 20 * 60, 12)
    first, second = flapper_alerts(refills, SETTINGS)
    raised = [(first.kind, first.subject, first.at)]
    assert first.subject == second.subject == "bath1-toilet"
    assert is_repeat(first, raised, SETTINGS)
    assert not is_repeat(second, raised, SETTINGS)  # a day later: the leak goes on
    # the same refills found again from a later start of the window: a repeat
    (again,) = flapper_alerts(refills[2:12], SETTINGS)
    assert again.at != first.at and is_repeat(again, raised, SETTINGS)

    tap = _use("tap", 8 * 3600, None)
    (early,) = running_alerts([tap], SETTINGS, now=DAY0 + timedelta(hours=9))
    (late,) = running_alerts([tap], SETTINGS, now=DAY0 + timedelta(hours=12))
    assert early.subject == "tap"
    assert is_repeat(late, [(RUNNING, "tap", early.at - timedelta(days=3))], SETTINGS)
    assert not is_repeat(late, [(FLAPPER, "tap", early.at)], SETTINGS)


def test_refills_at_irregular_times_or_of_flush_length_do_not_alert():
    irregular = [
        _use(f"r{i}", 3600 * h, 6.0, "toilet", "bath1-toilet")
        for i, h in enumerate((1.0, 1.2, 2.6, 2.9, 4.8, 5.0, 7.7))
    ]
    assert flapper_alerts(irregular, SETTINGS) == []
    flushes = [_use(f"f{i}", 3600 + i * 1200, 45.0, "toilet", "bath1-toilet") for i in range(8)]
    assert flapper_alerts(flushes, SETTINGS) == []


def test_water_at_night_alerts_in_a_quiet_home_only():
    quiet = _ordinary_days(10)
    assert night_alerts(quiet, SETTINGS, since=DAY0) == []
    night = 10 * 86400 + 2 * 3600  # 02:00 on day 11
    hose_at_night = [
        _use(f"n{i}", night + i * 600, 300.0, "outdoor_hose", litres=15.0) for i in range(2)
    ]
    (alert,) = night_alerts(quiet + hose_at_night, SETTINGS, since=DAY0)
    assert alert.kind == NIGHT
    assert alert.at == DAY0 + timedelta(seconds=night + 900)  # when the night passed 20 L
    assert alert.evidence["quiet_nights"] == alert.evidence["of_nights"] == 10
    # a home up every night at 2:00 is not quiet: the same night is ordinary there
    busy = quiet + [
        _use(f"b{d}", d * 86400 + 2 * 3600, 600.0, "shower", litres=70.0) for d in range(10)
    ]
    assert night_alerts(busy + hose_at_night, SETTINGS, since=DAY0) == []
    # too little history: nothing
    short = [*_ordinary_days(3), _use("n", 3 * 86400 + 7200, 600.0, "outdoor_hose", litres=120.0)]
    assert night_alerts(short, SETTINGS, since=DAY0) == []


def test_settings_are_checked():
    with pytest.raises(ValueError):
        AlertSettings(night_start_h=5.0, night_end_h=1.0)
    with pytest.raises(ValueError):
        AlertSettings(refill_min_count=1)
    with pytest.raises(ValueError):
        AlertSettings(max_run_min=0.0)
