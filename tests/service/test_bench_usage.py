"""``atlas bench usage --quick``: weekly litres near the truth, leaks found, no false alerts."""

from __future__ import annotations

import argparse
import json

import pytest

from service.bench import usage


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_run_measures_litres_and_alerts(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    usage.add_arguments(parser)
    path = tmp_path / "usage.json"
    args = parser.parse_args(["--quick", "--json", str(path), "--no-progress"])
    assert usage.run(args) == 0
    assert "| bucket/true |" in capsys.readouterr().out
    data = json.loads(path.read_text())
    assert data["presets"] == ["two_bath_house"] and data["seeds"] == [1]

    volume = data["volume"]
    assert {"spec/true", "bucket/true", "spec_x2/true", "bucket_x2/true"} <= set(volume)
    for key in ("spec/true", "bucket/true"):
        errors = volume[key]["mean_abs_err"]
        assert errors["total"] < 0.10  # the week's litres
        assert errors["category"] < 0.15  # a quick run: one home, one week
        assert errors["fixture"] < 0.20
    # a spec far off reads ~29% low; the kitchen bucket removes much of it
    off = volume["spec_x2/true"]["mean_abs_err"]["total"]
    assert off > 0.2
    assert volume["bucket_x2/true"]["mean_abs_err"]["total"] < 0.7 * off

    (home,) = data["homes"]["volume"]
    week = home["weeks"][0]["models"]["bucket/true"]
    assert week["total"]["true"] > 1000  # three residents, a week: ~150-300 L a day
    assert {row["group"] for row in week["category"]} >= {"toilet", "shower", "kitchen_faucet"}

    alerts = data["alerts"]["true"]
    assert alerts["flapper"]["homes"] == alerts["flapper"]["detected"] == 1
    assert alerts["flapper"]["delay_h_max"] < 24.0
    assert alerts["running"]["detected"] == 1
    assert alerts["running"]["delay_h_max"] <= data["settings"]["max_run_min"] / 60 + 1e-6
    assert alerts["false_alerts"] == {"running": 0, "flapper": 0, "night": 0}
    assert data["targets"]["flapper_within_24h"] and data["targets"]["running_within_threshold"]
