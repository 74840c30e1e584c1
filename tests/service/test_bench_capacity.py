"""``atlas bench capacity``: the figures it reports describe the engine it trained."""

from __future__ import annotations

import json

from service.cli import main


def test_capacity_reports_each_checkpoint_and_deltas_smaller_than_full_snapshots(tmp_path):
    out = tmp_path / "capacity.json"
    args = ["bench", "capacity", "--preset", "apartment", "--days", "7", "9"]
    assert main([*args, "--uses", "3", "--engines", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    first, last = report["checkpoints"]
    assert (first["day"], last["day"]) == (7, 9) and last["uses"] > first["uses"]
    ratio = last["ingest_ms_median"] / first["ingest_ms_median"]
    assert report["ingest_ratio_last_to_first"] == ratio
    for row in report["checkpoints"]:
        assert 0 < row["delta_kb"] < row["snapshot_kb"]  # three uses, not the history
        assert row["memory_mb_per_engine"] > 0 and row["restore_ms"] > 0
        assert report["live_engines_in_budget"][str(row["day"])] > 0
