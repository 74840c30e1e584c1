"""``atlas bench hostile`` on a small scale: every attack answered, every good event stored."""

from __future__ import annotations

import json

import pytest

from service.cli import main

pytestmark = [pytest.mark.slow]


@pytest.mark.timeout(180)
def test_a_short_hostile_run_reports_each_attack(tmp_path) -> None:
    out = tmp_path / "hostile.json"
    args = ["bench", "hostile", "--sse", "30", "--sse-batch", "15", "--flood", "300"]
    args += ["--good", "12"]
    args += ["--bodies", "2", "--body-mb", "8", "--json", str(out), "--workdir", str(tmp_path)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["sse_attempts"] == {"200": 16, "429": 14}  # 8 per token at a time
    assert result["qos0_refused"] == result["qos0_sent"] == 300
    assert [b["status"] for b in result["bodies"]] == [413, 413]
    assert all(b["sent_mb"] < 8 for b in result["bodies"])  # refused before it was all sent
    assert result["good_sent"] == 12 and result["good_lost"] == 0  # a share beside each attack
    assert result["healthy"] and result["within_limit"]
