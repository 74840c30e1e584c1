"""The several-worker acceptance run, reduced size: three `atlas serve` workers on a fresh
PostgreSQL database and a private Mosquitto; one worker SIGKILLed mid-stream and restarted with
its id, the scheduler leader SIGKILLed just before the day's rounds. Full size (20,000 events,
50 homes): ``scripts/fleet_test.py``."""

from __future__ import annotations

import pytest

from service.bench.fleet import acceptance, acceptance_failures

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(400)]


def test_three_workers_survive_kills_store_classify_and_send_everything_once(tmp_path):
    # one day (day 8, a round day) of 8 homes at 1,440x: 2 h of service time between the
    # leader kill (19:00) and quiet hours are 5 wall s, enough for the failover and 8 rounds
    r = acceptance(tmp_path, n_homes=8, n_events=700, speed=1440.0, log=print)
    print(r)
    assert acceptance_failures(r) == []
    assert r["due_rounds"] == [8] and r["leader_killed"] != r["worker_killed"]
    assert r["webhook_keys"] == r["requests"]
