"""Smoke test of ``atlas bench intake``: the multi-process and --wall paths run and account for
every event (the bench itself raises unless the database holds each event exactly once)."""

from __future__ import annotations

import argparse
import json

import pytest

from service.bench import intake as bench

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def test_two_workers_and_wall_probes_drain_every_event(tmp_path):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    out = tmp_path / "result.json"
    argv = ["--events", "60", "--workers", "2", "--wall", "--repeat", "2", "--json", str(out)]
    assert bench.run(parser.parse_args(argv)) == 0
    result = json.loads(out.read_text("utf-8"))
    assert result["events"] == 60 and result["intake_processes"] == 2
    for key in ("ratio", "cpu_ratio", "bare_json_ratio", "bare_decode_ratio"):
        assert result[key] > 0
    assert result["intake_cpu_us_per_event"] > result["bare_cpu_us_per_msg"] > 0
    assert len(result["rounds"]) == 2  # bare and intake alternated twice, each on its own copy
