"""Two intake processes' worth of MqttIntake on one shared subscription: every event stored
exactly once, and only the worker configured to pair ever pairs (the several-worker shape,
docs/scaling.md)."""

from __future__ import annotations

import time

import pytest
from shared_services import SHARED_BROKER_URL
from sqlalchemy import func, select
from svc_factories import make_event, payload, topic
from svc_mqtt import publish_all

from service.intake.mqtt import IntakeConfig, MqttIntake
from service.intake.pipeline import IngestPipeline
from service.storage.homes import upsert_home
from service.storage.schema import events
from service.waiting import wait_until

pytestmark = [pytest.mark.mqtt]


def test_shared_subscription_stores_each_event_once_and_one_worker_pairs(
    sqlite_engine, home_spec, topic_prefix, uid
):
    home = home_spec.home_id
    with sqlite_engine.begin() as conn:
        upsert_home(conn, home_spec)
    shared = f"$share/g-{uid}/{topic_prefix}/homes/+/sensors/+/events"
    workers = [
        MqttIntake(
            IngestPipeline(sqlite_engine),
            IntakeConfig(
                broker_url=SHARED_BROKER_URL,
                client_id=f"w{i}-{uid}",
                topic_filter=shared,
                publish_errors=False,
                pair=i == 0,
            ),
        )
        for i in range(2)
    ]
    for w in workers:
        w.start()
    try:
        assert all(w.connected.wait(10) for w in workers)
        time.sleep(0.3)  # the SUBACKs
        goods = [make_event(home, i) for i in range(40)]
        publish_all(
            SHARED_BROKER_URL,
            [(topic(topic_prefix, home, e.sensor_id), payload(e)) for e in goods],
            f"pub-{uid}",
        )
        assert wait_until(lambda: sum(w.counters.received for w in workers) >= len(goods), 30)
        assert all(w.counters.received > 0 for w in workers), [w.counters for w in workers]
        assert not workers[1].pairing_alive and not workers[1].homes_to_pair
    finally:
        for w in workers:
            w.stop()
    with sqlite_engine.connect() as conn:
        stored = conn.execute(
            select(func.count(), func.count(func.distinct(events.c.event_id))).where(
                events.c.home_id == home
            )
        ).one()
    assert tuple(stored) == (len(goods), len(goods))
    assert sum(w.counters.stored for w in workers) == len(goods)
