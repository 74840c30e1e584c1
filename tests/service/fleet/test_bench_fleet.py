"""Smoke test of ``atlas bench fleet``: 1 and 2 workers drain the same small backlog, every
event is stored and every use classified in both, and the CPU and database figures that
explain the ratio are there."""

from __future__ import annotations

import argparse
import json

import pytest

from service.bench import fleet as bench

pytestmark = [pytest.mark.postgres, pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(400)]


def test_one_and_two_workers_drain_store_and_classify_everything(tmp_path):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    out = tmp_path / "result.json"
    argv = ["--homes", "4", "--days", "1", "--workers", "2", "--json", str(out)]
    assert bench.run(parser.parse_args(argv)) == 0
    r = json.loads(out.read_text("utf-8"))
    assert [run["workers"] for run in r["runs"]] == [1, 2] and r["events"] > 200
    for run in r["runs"]:
        assert run["stored"] == run["events"] == r["events"]
        assert run["uses_in_engines"] == run["uses"] > 0
        assert 0 < run["pipeline_fill_s"] < run["end_to_end_s"]
        assert run["cpu"]["workers_cpu_s"] > 0 and run["cpu"]["window_s"] > 0
        assert run["cpu"]["machine_busy_cpu_s"] >= run["cpu"]["workers_cpu_s"]
        assert run["database"]["rows_inserted_per_event"] >= 1  # the event row at least
    assert len(r["scaling_end_to_end"]) == len(r["scaling_after_fill"]) == 1
    assert set(r["notes"]) >= {"scaling_end_to_end", "pipeline_fill_s", "cpu.others_cores"}
