"""Issue 7 acceptance, reduced size: three `atlas serve` workers on a fresh PostgreSQL database
and a private Mosquitto; one worker SIGKILLed mid-stream and restarted with its id, the
scheduler leader SIGKILLed before the last round. Full size (20,000 events, 50 homes):
``scripts/fleet_test.py``."""

from __future__ import annotations

import pytest

from service.bench.fleet import acceptance

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(400)]


def test_three_workers_survive_kills_store_classify_and_send_everything_once(tmp_path):
    r = acceptance(tmp_path, n_homes=8, events_per_home=400, days=3, stream_s=45.0, log=print)
    print(r)
    assert r["stored_rows"] == r["stored_distinct"] == r["events"] and r["missing"] == 0
    assert r["uses_in_engines"] == r["uses"] > 0  # every use classified by a worker's engine
    assert r["failover_s"] is not None and r["failover_s"] < 10
    assert r["leader_killed"] != r["worker_killed"]
    # every due round of every home drawn once (unique home/round/slot) and none left planned;
    # no request pushed twice, none pushed that was not drawn. Requests that expired before the
    # send (the 6 h answer margin is ~4 wall seconds at this acceleration) are not pushed by
    # design; their count is reported (`unpushed_by_round`), see docs/scaling.md.
    assert r["homes_with_every_due_round"] == r["homes"]
    assert r["requests"] > 0 and r["requests_planned_not_sent"] == 0
    assert r["webhook_keys_not_sent_requests"] == 0 and r["webhook_duplicate_deliveries"] == 0
    assert r["webhook_keys"] > 0
