"""Smoke test of ``atlas bench calibration --quick``: the contract JSON and sane ranges."""

from __future__ import annotations

import argparse
import json

import pytest

from atlas.domain import LEVELS
from service.bench import calibration


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_run_writes_the_contract_json(tmp_path):
    parser = argparse.ArgumentParser()
    calibration.add_arguments(parser)
    path = tmp_path / "cal.json"
    args = parser.parse_args(
        [
            "--quick",
            "--strategies",
            "random",
            "atlas",
            "--out",
            str(tmp_path),
            "--json",
            str(path),
            "--no-progress",
        ]
    )
    assert calibration.run(args) == 0
    data = json.loads(path.read_text())
    assert set(data) == {"strategies"}
    assert set(data["strategies"]) == {"random", "atlas"}
    for result in data["strategies"].values():
        assert set(result) == {"weeks", "false_promotion", "promotion", "coverage"}
        for level in ("category", "fixture", "valve"):
            promotion = result["promotion"][level]
            for key in ("shown_by_day", "oracle_by_day"):
                assert set(promotion[key]) == {"8", "15", "22", "29"}
                assert all(0.0 <= v <= 1.0 for v in promotion[key].values())
            assert promotion["shown_by_day"]["8"] == 0.0  # week 1 shows the rules only
        assert [w["week"] for w in result["weeks"]] == [1, 2, 3, 4]
        labels = [w["labels"] for w in result["weeks"]]
        assert 8 <= labels[0] <= 20  # the guided checklist of the seed protocol
        assert labels == sorted(labels) and labels[-1] <= labels[0] + 4 * 11
        for w in result["weeks"]:
            assert set(w) == {"week", "labels", "true", "estimated", "level"}
            assert w["level"] in ("category", "fixture", "valve")
            for key in ("true", "estimated"):
                assert set(w[key]) == set(LEVELS)
                assert all(0.0 <= w[key][lv] <= 1.0 for lv in LEVELS)
            assert w["true"]["category"] >= w["true"]["valve"]  # coarser is never harder
        assert result["weeks"][-1]["true"]["category"] > 0.5
        assert all(0.0 <= result["false_promotion"][lv] <= 1.0 for lv in LEVELS)
    for level in LEVELS:
        assert (tmp_path / f"learning_{level}.png").stat().st_size > 0
        assert (tmp_path / f"promotion_{level}.png").stat().st_size > 0
    report = (tmp_path / "calibration.md").read_text()
    assert "| week | labels |" in report and "Uses one can be asked about" in report
    details = json.loads((tmp_path / "calibration_details.json").read_text())
    for day in details["strategies"]["random"]["homes"][0]["days"][7:]:
        # the askable uses and the others split the trailing window (a use still running at
        # the day's end is in neither: it counts as wrong in the window's accuracy)
        split = day["askable"]
        assert 0.0 < split["share"] < 1.0
        for lv in LEVELS:
            parts = (
                split["share"] * split["askable"][lv] + (1 - split["share"]) * split["other"][lv]
            )
            assert day["window"][lv] - 1e-9 <= parts <= day["window"][lv] + 0.02


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_stress_flags_reach_the_simulated_homeowner(tmp_path):
    """--p-no-answer 1: nobody answers, so no sampled label ever arrives after week 1."""
    parser = argparse.ArgumentParser()
    calibration.add_arguments(parser)
    common = ["--presets", "apartment", "--seed", "1", "--days", "12", "--strategies", "random"]
    common += ["--no-progress", "--variation", "1.3"]
    silent = parser.parse_args([*common, "--p-no-answer", "1", "--out", str(tmp_path / "s")])
    assert calibration.run(silent) == 0
    details = json.loads((tmp_path / "s" / "calibration_details.json").read_text())
    (home,) = details["strategies"]["random"]["homes"]
    assert all(d["labels_by_source"].get("active", 0) == 0 for d in home["days"])
    assert "variation 1.3" in (tmp_path / "s" / "calibration.md").read_text()
