"""``atlas demo --homes N``: homes installed one after another through the live service, the
last once a fleet of the others is built, then run again alone (a short run, slow marker)."""

from __future__ import annotations

import shutil

import pytest

from service.demo_fleet import install_days, labels_to_targets, run_fleet_demo
from service.settings import FleetSettings


def test_the_last_home_waits_for_the_first_rebuild_that_counts_every_other_home() -> None:
    # ten homes a day apart; the last is calibrated on day 37, the leader rebuilds on days
    # 0, 7, ..., 42: the eleventh home is installed on day 43, with a fleet of all ten
    assert install_days(11, 1, FleetSettings()) == [*range(10), 43]
    assert install_days(3, 5, FleetSettings(calibrated_days=7, rebuild_days=7)) == [0, 5, 15]
    with pytest.raises(ValueError, match="at least 2 homes"):
        install_days(1, 1, FleetSettings())
    with pytest.raises(ValueError, match="rebuild_days"):
        install_days(3, 1, FleetSettings(rebuild_days=0))


def _day(day: int, labels: int, guided: int, category: float, fixture: float, valve: float):
    levels = {"category": category, "fixture": fixture, "valve": valve}
    return {
        "day": day,
        "labels": labels,
        "guided_labels": guided,
        "levels": {lv: {"true_accuracy": acc} for lv, acc in levels.items()},
    }


def test_labels_to_targets_counts_guided_and_answered_labels_from_day_8() -> None:
    rows = [
        _day(7, 0, 12, 0.95, 0.95, 0.95),  # week 1 is not scored
        _day(8, 3, 12, 0.94, 0.90, 0.80),  # valve short of 0.81
        _day(9, 5, 12, 0.94, 0.90, 0.82),
        _day(10, 8, 12, 0.99, 0.99, 0.99),
    ]
    assert labels_to_targets(rows) == {"day": 9, "labels": 17}
    never = [_day(8, 3, 12, 0.94, 0.88, 0.9)]
    assert labels_to_targets(never) == {"day": None, "labels": None, "final_labels": 15}


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("mosquitto", path="/usr/sbin:/usr/bin") is None,
    reason="needs the mosquitto binary",
)
def test_homes_are_installed_in_turn_and_the_last_is_also_run_alone(tmp_path) -> None:
    lines: list[str] = []
    fleet = FleetSettings(calibrated_days=1, rebuild_days=1, min_homes=1)
    summary = run_fleet_demo(n_homes=2, days=2, fleet=fleet, workdir=tmp_path, out=lines.append)
    installed = [line.strip() for line in lines if "installed home-" in line]
    assert installed[0].startswith("2026-03-02: installed home-01 (two_bath_house, seed 1)")
    # home 1 is calibrated (for this fleet) on day 1, rebuilt then; home 2 comes the day after
    assert installed[1].startswith("2026-03-04: installed home-02 (apartment, seed 2)")
    assert summary["first"]["home_id"] == "home-01" and summary["last"]["home_id"] == "home-02"
    assert [w["week"] for w in summary["last"]["weeks"]] == [1]
    alone = summary["last_without_fleet"]
    assert (alone["preset"], alone["seed"]) == ("apartment", 2)
    assert [w["week"] for w in alone["weeks"]] == [1]
    assert summary["last"]["fleet"]["opt_out"] is False
    assert any("the same last home without a fleet" in line for line in lines)
