"""The intake's bounds and whose event it is, through the real broker: QoS 0 refused and
counted, a full queue holding the broker back without losing a message, event ids unique per
home, the topic's home authoritative (also over a payload that names its home twice)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from svc_factories import make_event, payload, topic
from svc_mqtt import Collector, publish_all, running_intake

from atlas.homespec import parse_home_spec
from service.storage.homes import upsert_home
from service.storage.schema import dead_letters, events
from service.waiting import wait_until

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def two_homes(sqlite_engine, home_spec) -> tuple[str, str]:
    other = parse_home_spec(home_spec.to_dict() | {"home_id": f"{home_spec.home_id}-b"})
    with sqlite_engine.begin() as conn:
        upsert_home(conn, home_spec)
        upsert_home(conn, other)
    return home_spec.home_id, other.home_id


def _letters(engine) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(select(dead_letters.c.reason, dead_letters.c.home_id)).all()
    return [tuple(r) for r in rows]


def test_qos0_events_are_dropped_and_counted_and_qos1_ones_stored(
    sqlite_engine, two_homes, topic_prefix, uid
):
    from shared_services import SHARED_BROKER_URL

    home, _ = two_homes
    flood = [(topic(topic_prefix, home, "hot"), b"junk %d" % i) for i in range(2000)]
    flood += [(topic(topic_prefix, home, "hot"), payload(make_event(home, 1)))]
    goods = [(topic(topic_prefix, home, "hot"), payload(make_event(home, i))) for i in range(20)]
    before = _metric("atlas_intake_refused_total", reason="qos0")
    with running_intake(sqlite_engine, SHARED_BROKER_URL, topic_prefix, f"in-{uid}") as it:
        publish_all(SHARED_BROKER_URL, flood, f"pub0-{uid}", qos=0)
        publish_all(SHARED_BROKER_URL, goods, f"pub1-{uid}")
        assert wait_until(lambda: it.counters.stored == 20, 30), it.counters
        assert wait_until(lambda: it.counters.refused_qos0 == len(flood), 10), it.counters
    assert _metric("atlas_intake_refused_total", reason="qos0") - before == len(flood)
    assert _letters(sqlite_engine) == []  # a flood costs no row


def test_a_full_queue_holds_the_broker_back_and_loses_nothing(
    sqlite_engine, two_homes, topic_prefix, uid
):
    from shared_services import SHARED_BROKER_URL

    home, _ = two_homes
    goods = [(topic(topic_prefix, home, "hot"), payload(make_event(home, i))) for i in range(300)]
    before = _metric("atlas_intake_queue_full_total")
    with running_intake(
        sqlite_engine, SHARED_BROKER_URL, topic_prefix, f"in-{uid}", queue_max=5, batch_size=2
    ) as it:
        publish_all(SHARED_BROKER_URL, goods, f"pub-{uid}")
        assert wait_until(lambda: it.counters.stored == len(goods), 60), it.counters
        assert it.queue_capacity == 5
    assert _metric("atlas_intake_queue_full_total") > before  # the network thread waited


def test_event_ids_are_unique_per_home_and_a_repeat_is_counted(
    sqlite_engine, two_homes, topic_prefix, uid
):
    from shared_services import SHARED_BROKER_URL

    home, other = two_homes
    mine = make_event(home, 7)
    theirs = replace(mine, home_id=other)  # another gateway uses the same event id
    stream = [
        (topic(topic_prefix, home, "hot"), payload(mine)),
        (topic(topic_prefix, other, "hot"), payload(theirs)),
        (topic(topic_prefix, other, "hot"), payload(theirs)),  # the same home repeats it
    ]
    with running_intake(sqlite_engine, SHARED_BROKER_URL, topic_prefix, f"in-{uid}") as it:
        publish_all(SHARED_BROKER_URL, stream, f"pub-{uid}")
        assert wait_until(lambda: it.counters.received == len(stream), 30), it.counters
    with sqlite_engine.connect() as conn:
        stored = conn.execute(select(events.c.home_id, events.c.event_id)).all()
    assert sorted(stored) == sorted([(home, mine.event_id), (other, mine.event_id)])
    assert (it.counters.stored, it.counters.duplicates) == (2, 1)
    assert _letters(sqlite_engine) == []


def test_the_topics_home_is_authoritative(sqlite_engine, two_homes, topic_prefix, uid):
    from shared_services import SHARED_BROKER_URL

    home, other = two_homes
    good = json.loads(payload(make_event(home, 3)))
    body = json.dumps(good)
    twice = body.replace(f'"home_id": "{home}"', f'"home_id": "{home}", "home_id": "{other}"')
    escaped = body[:-1] + f', "home\\u005fid": "{other}"}}'
    on_mine = topic(topic_prefix, home, "hot")
    stream = [
        (on_mine, json.dumps(good | {"home_id": other}).encode()),  # speaks for the other home
        (on_mine, twice.encode()),  # names its home twice: a reader may take either
        (on_mine, escaped.encode()),
    ]
    errors_mine = Collector(SHARED_BROKER_URL, f"{topic_prefix}/homes/{home}/errors", f"e1-{uid}")
    errors_other = Collector(SHARED_BROKER_URL, f"{topic_prefix}/homes/{other}/errors", f"e2-{uid}")
    try:
        with running_intake(sqlite_engine, SHARED_BROKER_URL, topic_prefix, f"in-{uid}") as it:
            publish_all(SHARED_BROKER_URL, stream, f"pub-{uid}")
            assert wait_until(lambda: it.counters.received == len(stream), 30), it.counters
        assert wait_until(lambda: len(errors_mine.messages) == len(stream), 10)
    finally:
        errors_mine.close()
        errors_other.close()
    assert _letters(sqlite_engine) == [
        ("topic_mismatch", home),
        ("duplicate_key", home),
        ("duplicate_key", home),
    ]
    assert errors_other.messages == []
    assert "'home_id' appears twice" in json.loads(errors_mine.messages[1])["message"]
