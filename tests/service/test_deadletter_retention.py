"""Dead letters are kept by count and age: the storage purge, and the intake applying it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from shared_services import SHARED_BROKER_URL
from sqlalchemy import select
from svc_factories import topic
from svc_mqtt import publish_all

from service.intake.mqtt import IntakeConfig, MqttIntake
from service.intake.pipeline import IngestPipeline
from service.storage.deadletters import (
    DeadLetter,
    DeadLetterRetention,
    insert_dead_letters,
    purge_dead_letters,
)
from service.storage.schema import dead_letters
from service.waiting import wait_until

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _topics(engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(select(dead_letters.c.topic).order_by(dead_letters.c.id))
        return list(rows.scalars())


@pytest.mark.parametrize(
    ("max_rows", "max_age_h", "kept"),
    [(100, 1000, 10), (4, 1000, 4), (100, 5.5, 5), (3, 5.5, 3)],
)
def test_purge_keeps_the_newest_rows_within_the_age(engine, max_rows, max_age_h, kept) -> None:
    letters = [
        DeadLetter(f"t/{i}", b"{", "bad_json", "m", None, NOW - timedelta(hours=10 - i))
        for i in range(10)
    ]
    with engine.begin() as conn:
        insert_dead_letters(conn, letters)
        removed = purge_dead_letters(
            conn, DeadLetterRetention(max_rows, timedelta(hours=max_age_h)), NOW
        )
    assert removed == 10 - kept
    assert _topics(engine) == [f"t/{i}" for i in range(10 - kept, 10)]


@pytest.mark.mqtt
@pytest.mark.timeout(60)
def test_the_intake_applies_the_retention(sqlite_engine, topic_prefix, uid) -> None:
    config = IntakeConfig(
        broker_url=SHARED_BROKER_URL,
        client_id=f"in-{uid}",
        topic_filter=f"{topic_prefix}/homes/+/sensors/+/events",
        dead_letters=DeadLetterRetention(max_rows=3),
        purge_every_s=0.1,
        pair=False,
    )
    intake = MqttIntake(IngestPipeline(sqlite_engine), config)
    intake.start()
    try:
        assert intake.connected.wait(10)
        time.sleep(0.3)  # the SUBACK
        bad = [(topic(topic_prefix, "h-x", "hot"), b"not json %d" % i) for i in range(12)]
        publish_all(SHARED_BROKER_URL, bad, f"pub-{uid}")
        assert wait_until(lambda: intake.counters.dead_letters == 12, 20)
        assert wait_until(lambda: len(_topics(sqlite_engine)) == 3, 5)
    finally:
        intake.stop()
