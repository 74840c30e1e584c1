"""A simulated day streamed through the real broker arrives complete and intact, and is paired."""

from __future__ import annotations

import numpy as np
import pytest
from svc_factories import sim_messages
from svc_mqtt import running_intake, wait_until

from atlas.events import decode_event
from service.storage.events import load_events
from service.storage.homes import upsert_home
from service.storage.stats import db_stats
from simulator.stream import stream_events

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def test_simulated_day_arrives_intact(sqlite_engine, home_spec, topic_prefix, uid, tmp_path):
    from shared_services import SHARED_BROKER_URL

    with sqlite_engine.begin() as conn:
        upsert_home(conn, home_spec)
    events, messages = sim_messages(home_spec, topic_prefix, days=1, seed=3)
    with running_intake(sqlite_engine, SHARED_BROKER_URL, topic_prefix, f"in-{uid}") as intake:
        report = stream_events(
            messages,
            SHARED_BROKER_URL,
            speed=0,
            progress=False,
            outbox_dir=tmp_path / "outbox",
            client_id=f"pub-{uid}",
        )
        assert report.sent == report.acknowledged == len(events) and report.pending == 0
        assert wait_until(lambda: intake.counters.stored >= len(events), 30), intake.counters
    intake.pipeline.pair({home_spec.home_id}, final=True)

    with sqlite_engine.connect() as conn:
        stored = {e.event_id: e for e in load_events(conn, [e.event_id for e in events])}
        stats = db_stats(conn)
    assert stats["events"] == stats["distinct_event_ids"] == len(events)
    assert stats["dead_letters"] == 0
    for _, body, _ in messages:  # intact: exactly what was published (times in ms, int16 counts)
        sent = decode_event(body)
        got = stored[sent.event_id]
        assert (got.t, got.line, got.sensor_id) == (sent.t, sent.line, sent.sensor_id)
        np.testing.assert_array_equal(got.samples, sent.samples)
    assert stats["paired_events"] == len(events)  # every event ended in some use
