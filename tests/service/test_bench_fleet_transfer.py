"""Smoke test of ``atlas bench fleet-transfer --quick`` (2 fleet homes, 1 new home, 14 days)."""

from __future__ import annotations

import argparse
import json

import pytest

from atlas.domain import LEVELS
from service.bench import fleet_transfer


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_quick_run_reports_with_and_without_fleet(tmp_path):
    parser = argparse.ArgumentParser()
    fleet_transfer.add_arguments(parser)
    path = tmp_path / "fleet.json"
    args = parser.parse_args(
        ["--quick", "--out", str(tmp_path), "--json", str(path), "--no-progress"]
    )
    assert fleet_transfer.run(args) == 0
    summary = json.loads(path.read_text())
    assert {"new_home/none", "new_home/fleet", "new_home/fleet_checklist"} <= set(summary)
    assert "home_1 (no fleet)" in summary
    lag = summary["new_home/fleet"]["promotion"]["category"]
    assert set(lag) == {"median_lag_days", "homes_with_oracle", "shown_by_day", "oracle_by_day"}
    assert (tmp_path / "promotion_valve.png").stat().st_size > 0
    records = json.loads((tmp_path / "fleet_details.json").read_text())["records"]
    roles = [(r["role"], r["variant"], r["fleet_homes"]) for r in records]
    assert roles[:2] == [("fleet_home_1", "none", 0), ("fleet_home_2", "fleet", 1)]
    assert ("new_home", "fleet", 2) in roles and ("new_home", "none", 0) in roles
    for r in records:
        assert [w["week"] for w in r["weeks"]] == [1, 2]
        assert all(0.0 <= r["false_promotion"][lv] <= 1.0 for lv in LEVELS)
        for lv in LEVELS:
            assert 0 <= r["coverage"][lv]["covered"] <= r["coverage"][lv]["days"] <= 7
        goals = {name for name, _ in fleet_transfer.GOALS}
        assert set(r["to_goal"]) == goals | {"shown>=category", "shown>=fixture", "shown>=valve"}
    # the same new home: the fleet run differs from the home-alone run (the fleet is used)
    new = {r["variant"]: r for r in records if r["role"] == "new_home"}
    assert [d["today"] for d in new["fleet"]["days"]] != [d["today"] for d in new["none"]["days"]]
    # the shortened checklist never asks for more than the full one
    assert new["fleet_checklist"]["guided_asked"] <= new["none"]["guided_asked"]
    assert "| variant vs baseline | goal |" in (tmp_path / "fleet.md").read_text()
    assert "fleet_checklist vs none" in summary["paired_savings"]


def test_with_checklist_keeps_the_first_announcements_of_the_kept_items():
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from atlas.checklist import Announcement, build_checklist
    from service.bench.calibration import ReplayHome
    from simulator.presets import load_preset

    spec = load_preset("apartment")
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    announced = [
        Announcement(fixture, name, t0 + timedelta(hours=i))
        for i, (fixture, name) in enumerate(
            [("toilet", "fill"), ("kitchen-sink", "hot"), ("toilet", "fill"), ("shower", None)]
        )
    ]
    home = ReplayHome("apartment", 1, spec, t0, [], [], [], {}, {}, announced)
    items = {i.item_id: i for i in build_checklist(spec.fixtures)}
    kept = fleet_transfer.with_checklist(home, [replace(items["toilet"], count=1)])
    assert kept.announcements == [announced[0]]
    both = fleet_transfer.with_checklist(home, [items["toilet"], items["kitchen-sink/hot"]])
    assert both.announcements == announced[:3]
    with pytest.raises(ValueError, match="not in the home's full checklist"):
        fleet_transfer.with_checklist(home, [replace(items["toilet"], count=3)])
