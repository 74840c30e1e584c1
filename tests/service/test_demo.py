"""``atlas demo --days 9``: the whole service end to end, one label-request round (slow)."""

from __future__ import annotations

import json
import shutil

import pytest

from service.cli import main

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("mosquitto", path="/usr/sbin:/usr/bin") is None,
                    reason="needs the mosquitto binary")  # fmt: skip
def test_short_demo_writes_the_weekly_summary(tmp_path):
    out = tmp_path / "summary.json"
    # diligent: the default homeowner may ignore or answer too late every request of one round
    args = ["--days", "9", "--diligent-homeowner", "--json", str(out), "--workdir", str(tmp_path)]
    code = main(["demo", *args])
    summary = json.loads(out.read_text())
    ev = summary["events"]
    assert code == 0
    assert ev["published"] == ev["acknowledged"] == ev["simulated"] == ev["stored"]
    assert ev["distinct_event_ids"] == ev["stored"] and ev["dead_letters"] == 0
    assert [w["week"] for w in summary["weeks"]] == [1, 2]
    # day 8's round was sent and the homeowner answered it over HTTP
    assert sum(summary["requests"].values()) >= 2
    owner = summary["homeowner"]
    assert owner["answered"] + owner["not_sure"] >= 1
    # every answer that names a label became one; "not sure" declines the request instead
    assert summary["weeks"][1]["labels"] == owner["answered"]
    assert summary["requests"].get("declined", 0) == owner["not_sure"]
    # week-1 checklist announcements became guided labels
    assert summary["homeowner"]["announced"] > 0 and summary["weeks"][0]["guided_labels"] > 0
    for week in summary["weeks"]:
        assert week["level"] in ("rules", "category", "fixture", "valve")
        truth = week["levels"]["category"]["true_accuracy"]
        assert truth is not None and 0.5 < truth <= 1.0
