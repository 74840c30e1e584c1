"""Hostile and malformed payloads through the real broker: each is dead-lettered with a specific
reason, every good event interleaved with them is stored, and the intake keeps running."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from svc_factories import make_event, payload, topic
from svc_mqtt import Collector, publish_all, running_intake

from atlas.events import encode_event
from service.storage.homes import upsert_home
from service.storage.schema import dead_letters
from service.storage.stats import db_stats
from service.waiting import wait_until

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def bad_payloads(home: str, prefix: str) -> list[tuple[str, str, bytes]]:
    """(expected reason, topic, payload) for every kind of bad input."""
    t_hot = topic(prefix, home, "hot")
    ev = make_event(home, 900)
    good = encode_event(ev)
    as_json = encode_event(ev, encoding="json")

    def edit(**changes: object) -> bytes:
        return json.dumps(good | changes).encode()

    def digits(field: str, n: int) -> bytes:
        """``field`` an integer of ``n`` digits (json.dumps writes at most 4300)."""
        huge = "1" + "0" * (n - 1)
        return edit(**{field: 7}).replace(f'"{field}": 7'.encode(), f'"{field}": {huge}'.encode())

    future = (datetime.now(UTC) + timedelta(days=2)).isoformat().replace("+00:00", "Z")
    odd_bytes = base64.b64encode(b"\x01\x02\x03").decode()
    return [
        ("bad_json", t_hot, payload(ev)[:200]),  # truncated JSON
        ("bad_json", t_hot, b"\x00\xff\xfe garbage \x80"),  # binary, not UTF-8
        ("bad_json", t_hot, b""),  # empty
        ("wrong_type", t_hot, b"[1, 2, 3]"),  # not an object
        ("wrong_type", t_hot, b'"just a string"'),
        ("unknown_schema", t_hot, edit(schema="atlas.event/99")),
        ("missing_field", t_hot, json.dumps({k: v for k, v in good.items() if k != "t"}).encode()),
        ("wrong_type", t_hot, edit(sample_rate_hz="1000")),
        ("wrong_type", t_hot, edit(n_samples=True)),
        ("not_finite", t_hot, json.dumps(as_json | {"samples": [float("nan")] * 1750}).encode()),
        ("not_finite", t_hot, json.dumps(as_json | {"samples": [float("inf")] * 1750}).encode()),
        ("bad_base64", t_hot, edit(samples="!!!not base64@@@")),
        ("bad_base64", t_hot, edit(samples=odd_bytes, n_samples=1)),
        ("sample_count_mismatch", t_hot, edit(n_samples=1749)),
        ("too_large", t_hot, b"{" + b" " * (100 * 1024 * 1024) + b"}"),  # 100 MB
        ("unknown_home", topic(prefix, "nobody-home", "hot"), edit(home_id="nobody-home")),
        ("unknown_sensor", topic(prefix, home, "garden"), edit(sensor_id="garden")),
        ("bad_id", t_hot, edit(home_id="x'; DROP TABLE events;--")),
        ("bad_id", t_hot, edit(event_id="../../etc/passwd")),
        ("bad_id", t_hot, edit(sensor_id="<script>alert(1)</script>")),
        ("bad_time", t_hot, edit(t="yesterday at noon")),
        ("bad_time", t_hot, edit(t="2026-03-02T08:00:00")),  # no time zone
        ("future_time", t_hot, edit(t=future)),
        ("bad_scale", t_hot, edit(scale_kpa=float("inf"))),
        ("bad_offset", t_hot, edit(offset_kpa=float("inf"))),
        ("bad_offset", t_hot, edit(offset_kpa=float("nan"))),
        ("number_too_large", t_hot, digits("scale_kpa", 401)),  # was an OverflowError
        ("number_too_large", t_hot, digits("sample_rate_hz", 5000)),  # was a ValueError
        ("out_of_range", t_hot, edit(scale_kpa=10.0)),  # +-327 kPa counts x10: beyond 5000 kPa
        ("bad_line", t_hot, edit(line="warm")),
        ("unknown_encoding", t_hot, edit(encoding="f32le-b64")),
        ("bad_sample_rate", t_hot, edit(sample_rate_hz=50)),
        ("wrong_sample_rate", t_hot, edit(sample_rate_hz=2000, n_samples=1750)),
        ("wrong_line", t_hot, edit(line="cold")),
        ("topic_mismatch", topic(prefix, home, "cold"), payload(ev)),
        # 100 kB of nested brackets: json.loads raises RecursionError, reported as bad JSON
        ("bad_json", t_hot, b"[" * 100_000),
        # an identity key twice: JSON readers disagree on which one counts
        ("duplicate_key", t_hot, edit()[:-1] + b', "event_id": "another-id"}'),
        ("topic_mismatch", t_hot, edit(home_id="another-home")),
    ]


def test_bad_payloads_are_dead_lettered_and_good_ones_stored(
    sqlite_engine, home_spec, topic_prefix, uid
):
    from shared_services import SHARED_BROKER_URL

    home = home_spec.home_id
    with sqlite_engine.begin() as conn:
        upsert_home(conn, home_spec)
    bad = bad_payloads(home, topic_prefix)
    goods = [make_event(home, i) for i in range(len(bad) + 1)]
    stream = []
    for good, (_, bad_topic, body) in zip(goods, bad, strict=False):
        stream += [(topic(topic_prefix, home, "hot"), payload(good)), (bad_topic, body)]
    stream.append((topic(topic_prefix, home, "hot"), payload(goods[-1])))
    stream.append((topic(topic_prefix, home, "hot"), payload(goods[0])))  # a duplicate

    errors = Collector(SHARED_BROKER_URL, f"{topic_prefix}/homes/{home}/errors", f"err-{uid}")
    try:
        with running_intake(sqlite_engine, SHARED_BROKER_URL, topic_prefix, f"in-{uid}") as it:
            publish_all(SHARED_BROKER_URL, stream, f"pub-{uid}")
            assert wait_until(lambda: it.counters.received >= len(stream), 60), it.counters
            assert it.worker_alive
        assert wait_until(lambda: len(errors.messages) >= len(bad) - 1, 10)
    finally:
        errors.close()

    with sqlite_engine.connect() as conn:
        stats = db_stats(conn)
        letters = conn.execute(select(dead_letters).order_by(dead_letters.c.id)).all()
    assert stats["events"] == stats["distinct_event_ids"] == len(goods)
    assert Counter(d.reason for d in letters) == Counter(reason for reason, _, _ in bad)
    huge = next(d for d in letters if d.reason == "too_large")
    assert huge.payload_size == 100 * 1024 * 1024 + 2 and len(huge.payload) <= 64 * 1024
    # errors go to the registered home named by the payload or the topic; never to "nobody-home"
    published = [json.loads(m)["reason"] for m in errors.messages]
    assert "unknown_home" not in published and len(published) == len(bad) - 1
