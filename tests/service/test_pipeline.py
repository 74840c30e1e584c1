"""The shared intake path on both databases: store, deduplicate, dead-letter, pair idempotently."""

from __future__ import annotations

from datetime import UTC, datetime

from svc_factories import sim_messages

from service.intake.messages import InboundMessage
from service.intake.pipeline import IngestPipeline, topic_ids
from service.storage.homes import upsert_home
from service.storage.stats import db_stats


def test_pipeline_stores_pairs_and_replays_idempotently(engine, home_spec):
    with engine.begin() as conn:
        upsert_home(conn, home_spec)
    events, messages = sim_messages(home_spec, "atlas/v1", days=1, seed=5)
    now = datetime.now(UTC)
    inbound = [InboundMessage(topic, body, now) for topic, body, _ in messages]
    inbound.insert(10, InboundMessage(messages[0][0], b"{not json", now))
    pipeline = IngestPipeline(engine)
    for start in range(0, len(inbound), 40):
        outcome = pipeline.process(inbound[start : start + 40])
        pipeline.pair(outcome.homes)
    pipeline.pair({home_spec.home_id}, final=True)
    with engine.connect() as conn:
        first = db_stats(conn)
    replay = IngestPipeline(engine)  # a restarted process: fresh caches, same database
    outcome = replay.process(inbound)
    assert replay.pair({home_spec.home_id}, final=True) == 0
    assert (len(outcome.stored), outcome.duplicates) == (0, len(events))
    with engine.connect() as conn:
        second = db_stats(conn)
    assert first["events"] == first["distinct_event_ids"] == first["paired_events"] == len(events)
    assert first["dead_letters_by_reason"] == {"bad_json": 1}
    assert second["uses"] == first["uses"] and second["dead_letters"] == 2


def test_topic_ids_accept_any_prefix_and_refuse_other_shapes():
    assert topic_ids("x/y/homes/h1/sensors/hot/events") == ("h1", "hot")
    assert topic_ids("atlas/v1/homes/h1/errors") is None
    assert topic_ids("file:run.jsonl:3") is None
