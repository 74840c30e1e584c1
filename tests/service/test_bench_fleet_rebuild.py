"""Smoke test of ``atlas bench fleet-rebuild`` with tiny numbers: the JSON's fields, and a fleet
built from exactly the homes asked for (base homes plus copies, the rest opted out)."""

from __future__ import annotations

import argparse
import json

import pytest

from service.bench import fleet_rebuild


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_tiny_run_builds_from_that_many_homes(tmp_path):
    parser = argparse.ArgumentParser()
    fleet_rebuild.add_arguments(parser)
    path = tmp_path / "rebuild.json"
    argv = ["--homes", "3", "4", "--presets", "apartment", "--seeds", "1", "2", "--days", "2"]
    args = parser.parse_args([*argv, "--probe-writes", "20", "--json", str(path)])
    assert fleet_rebuild.run(args) == 0
    data = json.loads(path.read_text())
    assert (data["db"], data["base_homes"], data["skipped"]) == ("sqlite", 2, [])
    assert [r["homes"] for r in data["runs"]] == [3, 4]
    for run in data["runs"]:
        assert set(fleet_rebuild.FIELDS) <= set(run)
        assert run["n_homes_built"] == run["n_calibrated"] == run["homes"]
        assert run["wall_s"] > 0 and run["thread_cpu_s"] > 0 and run["peak_rss_mb"] > 0
        assert run["write_p50_ms_before"] > 0 and run["writes_during"] > 0
    assert [r["version"] for r in data["runs"]] == [1, 2]
