"""``atlas demo``: the whole service end to end on the virtual clock, day 8's round (slow)."""

from __future__ import annotations

import shutil

import pytest

from service.demo import run_demo

needs_mosquitto = pytest.mark.skipif(
    shutil.which("mosquitto", path="/usr/sbin:/usr/bin") is None,
    reason="needs the mosquitto binary",
)
#: What differs between two runs on purpose: ports, folders, wall time.
_RUN_SPECIFIC = ("started a private mosquitto", "service up:", "dashboard:", "days played in")


def _printed(tmp_path, name: str) -> tuple[dict, list[str]]:
    lines: list[str] = []
    # diligent: the default homeowner may ignore or answer too late every request of one round
    summary = run_demo(
        days=8, diligent_homeowner=True, verbose=True, workdir=tmp_path / name, out=lines.append
    )
    return summary, [line for line in lines if not any(s in line for s in _RUN_SPECIFIC)]


@pytest.mark.slow
@needs_mosquitto
def test_two_runs_print_the_same_table_and_the_round_is_answered(tmp_path):
    summary, printed = _printed(tmp_path, "first")
    _, again = _printed(tmp_path, "again")
    assert printed == again  # same seeds, same table, whatever the machine's speed
    ev = summary["events"]
    assert ev["published"] == ev["acknowledged"] == ev["simulated"] == ev["stored"]
    assert ev["distinct_event_ids"] == ev["stored"] and ev["dead_letters"] == 0
    assert [w["week"] for w in summary["weeks"]] == [1, 2]
    assert [d["day"] for d in summary["per_day"]] == list(range(1, 9))
    # day 8's round was sent at its minute and the homeowner answered every request over HTTP
    assert sum(summary["requests"].values()) >= 2
    assert set(summary["requests"]) <= {"answered", "declined"}
    owner = summary["homeowner"]
    assert owner["answered"] + owner["not_sure"] >= 1 and owner["late"] == 0
    # every answer that names a label became one; "not sure" declines the request instead
    assert summary["weeks"][1]["labels"] == owner["answered"]
    assert summary["requests"].get("declined", 0) == owner["not_sure"]
    # week-1 checklist announcements became guided labels
    assert owner["announced"] > 0 and summary["weeks"][0]["guided_labels"] > 0
    for row in summary["weeks"] + summary["per_day"]:
        assert row["level"] in ("rules", "category", "fixture", "valve")
        truth = row["levels"]["category"]["true_accuracy"]
        assert truth is not None and 0.5 < truth <= 1.0
    assert [d["truth_allows"] for d in summary["per_day"][:6]] == ["rules"] * 6  # week 1
