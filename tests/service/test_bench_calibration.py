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
        assert set(result) == {"weeks", "false_promotion"}
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
    assert "| week | labels |" in (tmp_path / "calibration.md").read_text()
