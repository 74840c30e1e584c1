"""No loss under crash (short version; the 10,000-event run is scripts/crash_test.py)."""

from __future__ import annotations

import pytest

from service.bench.crash import run_crash_test

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def test_every_event_stored_once_across_intake_kills_and_a_broker_restart(tmp_path):
    result = run_crash_test(
        tmp_path,
        n_events=500,
        duration_s=5.0,
        kills=2,
        broker_restarts=1,
        seed=7,
        log=lambda _: None,
    )
    assert result["missing"] == 0 and result["unexpected"] == 0, result
    assert result["stored_rows"] == result["distinct_event_ids"] == 500, result
    assert result["dead_letters"] == 0, result
