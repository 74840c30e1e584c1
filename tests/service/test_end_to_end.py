"""A simulated day streamed through the real broker arrives complete and intact, and is paired."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from prometheus_client import REGISTRY
from svc_factories import sim_messages
from svc_mqtt import running_intake

from atlas.events import decode_event
from atlas.pairing import pair_events
from service.storage.events import load_events
from service.storage.homes import upsert_home
from service.storage.stats import db_stats
from service.storage.uses import load_uses
from service.waiting import wait_until
from simulator.stream import stream_events

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def test_simulated_day_arrives_intact(sqlite_engine, home_spec, topic_prefix, uid, tmp_path):
    from shared_services import SHARED_BROKER_URL

    with sqlite_engine.begin() as conn:
        upsert_home(conn, home_spec)
    events, messages = sim_messages(home_spec, topic_prefix, days=1, seed=3)
    timed = "atlas_intake_commit_delay_seconds_count"
    before = REGISTRY.get_sample_value(timed)
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
    assert REGISTRY.get_sample_value(timed) - before == intake.counters.received  # each once

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


def test_last_use_before_a_quiet_spell_is_stored_without_the_next_event(
    sqlite_engine, home_spec, topic_prefix, uid, tmp_path
):
    """A live home goes quiet for hours after a use; its last use must not wait for the next
    event (the pairing settles it by the wall clock once its window's reach has passed)."""
    from shared_services import SHARED_BROKER_URL

    with sqlite_engine.begin() as conn:
        upsert_home(conn, home_spec)
    events, messages = sim_messages(home_spec, topic_prefix, days=1, seed=3)
    gaps = [(b.t - a.t).total_seconds() for a, b in itertools.pairwise(events)]
    cut = next(i + 1 for i, gap in enumerate(gaps) if gap > 600)  # everything before a quiet spell
    expected = pair_events(events[:cut])  # offline, data complete: the uses to expect
    assert not expected.pending
    with running_intake(sqlite_engine, SHARED_BROKER_URL, topic_prefix, f"in-{uid}") as intake:
        stream_events(
            messages[:cut],
            SHARED_BROKER_URL,
            speed=0,
            progress=False,
            outbox_dir=tmp_path / "outbox",
            client_id=f"pub-{uid}",
        )

        def stored() -> set[frozenset[str]]:
            with sqlite_engine.connect() as conn:
                return {frozenset(u.event_ids) for u in load_uses(conn, home_spec.home_id)}

        # no further event arrives and nothing calls a final pairing
        assert wait_until(lambda: len(stored()) == len(expected.uses), 15), intake.counters
    assert stored() == {frozenset(u.event_ids) for u in expected.uses}
