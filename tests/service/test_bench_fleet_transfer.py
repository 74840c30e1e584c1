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
    assert {"new_home/none", "new_home/fleet", "home_1 (no fleet)"} <= set(summary)
    records = json.loads((tmp_path / "fleet_details.json").read_text())["records"]
    roles = [(r["role"], r["variant"], r["fleet_homes"]) for r in records]
    assert roles[:2] == [("fleet_home_1", "none", 0), ("fleet_home_2", "fleet", 1)]
    assert ("new_home", "fleet", 2) in roles and ("new_home", "none", 0) in roles
    for r in records:
        assert [w["week"] for w in r["weeks"]] == [1, 2]
        assert all(0.0 <= r["false_promotion"][lv] <= 1.0 for lv in LEVELS)
    # the same new home: the fleet run differs from the home-alone run (the fleet is used)
    new = {r["variant"]: r for r in records if r["role"] == "new_home"}
    assert [d["today"] for d in new["fleet"]["days"]] != [d["today"] for d in new["none"]["days"]]
    assert "| variant | goal |" in (tmp_path / "fleet.md").read_text()
