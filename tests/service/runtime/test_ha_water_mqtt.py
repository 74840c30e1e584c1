"""Home Assistant water over the real broker: once uses are classified, the running runtime
publishes a use event per recent use and a retained home state carrying the water totals, with
the water sensors' discovery beside it."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from rt_helpers import clock_at, day_time, runtime_settings, store_days
from sqlalchemy import func, select

from service.runtime.service import AtlasRuntime
from service.storage.schema import uses


class _Listener:
    """Every message on ``topics`` as ``(topic, payload, retained)``, in order of arrival."""

    def __init__(self, *topics: str) -> None:
        self.messages: list[tuple[str, dict | None, bool]] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *a: [c.subscribe(t, qos=1) for t in topics]
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append(
            (m.topic, json.loads(m.payload) if m.payload[:1] == b"{" else None, bool(m.retain))
        )
        self.client.connect("127.0.0.1", 1883)
        self.client.loop_start()
        assert subscribed.wait(5)

    def last(self, topic: str) -> dict | None:
        return next((p for t, p, _ in reversed(self.messages) if t == topic), None)

    def on(self, topic: str) -> list[dict]:
        return [p for t, p, _ in self.messages if t == topic]

    def wait(self, predicate, timeout_s: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not predicate():
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_retained_state_carries_water_totals_after_uses_are_classified(
    sqlite_engine, home_spec, uid
):
    db, home_id = sqlite_engine, home_spec.home_id
    installed, _ = store_days(db, home_spec, days=9)
    base, settings = runtime_settings(uid)
    prefix = settings.ha_discovery_prefix
    now = day_time(installed, 10, 0, 30)  # after the ninth day's uses
    rt = AtlasRuntime(settings, db, clock_at(now))
    watcher = _Listener(f"{base}/#", f"{prefix}/#")
    state_topic, uses_topic = f"{base}/homes/{home_id}/state", f"{base}/homes/{home_id}/uses"
    rt.start()
    try:
        assert rt.pipeline.process_home(home_id) > 0  # classifies the nine days' uses
        assert watcher.wait(lambda: watcher.on(uses_topic))
        rt.pipeline.daily_update(home_id, now)  # the status: the state is published with it
        assert watcher.wait(lambda: "water" in (watcher.last(state_topic) or {}))
        state = watcher.last(state_topic)
        water = state["water"]
        with db.connect() as conn:
            stored = conn.execute(
                select(func.count()).where(uses.c.home_id == home_id, uses.c.t < now)
            ).scalar_one()
        assert water["count"] == stored and water["unit"] == "L" and water["litres"] > 100
        categories = water["category"]
        assert {"unclassified", "low_confidence"} <= set(categories)
        assert sum(g["count"] for g in categories.values()) == stored
        assert abs(sum(g["litres"] for g in categories.values()) - water["litres"]) < 0.05
        named = [g for g, row in categories.items() if row["kind"] == "named" and row["litres"]]
        assert named, categories

        # the water sensors' discovery points at this state, each group it has
        obj = f"atlas_{home_id}".replace("-", "_")
        total = watcher.last(f"{prefix}/sensor/{obj}_water_total/config")
        assert total["device_class"] == "water" and total["state_topic"] == state_topic
        for group in categories:
            topic = f"{prefix}/sensor/{obj}_water_category_{group}/config"
            assert watcher.wait(lambda t=topic: watcher.last(t) is not None), topic
        event = watcher.last(f"{prefix}/event/{obj}_water_use/config")
        assert event["state_topic"] == uses_topic

        # one event per use of the last day, not retained, typed as the event entity knows
        events = watcher.on(uses_topic)
        assert 0 < len(events) <= 50
        assert all(e["event_type"] in event["event_types"] for e in events)
        assert all(e["use_id"] and "litres" in e for e in events)
        assert all(not retained for t, _, retained in watcher.messages if t == uses_topic)
        oldest = min(datetime.fromisoformat(e["start"]) for e in events if e["start"])
        assert oldest >= now - timedelta(days=1)  # older uses are history, not news
    finally:
        rt.stop()
        watcher.close()

    # retained: a client subscribing now gets the state with its water
    late = _Listener(state_topic)
    try:
        assert late.wait(lambda: late.on(state_topic), 10)
        assert late.messages[0][2] and late.last(state_topic)["water"]["count"] == stored
    finally:
        late.close()


def test_the_running_service_publishes_alerts_and_checks_the_homes(sqlite_engine, home_spec, uid):
    """At start every home's retained alerts state is published (empty: nothing found), and the
    scheduler leader holds the homes' next leak check."""
    db, home_id = sqlite_engine, home_spec.home_id
    installed, _ = store_days(db, home_spec, days=2)
    base, settings = runtime_settings(uid)
    rt = AtlasRuntime(settings, db, clock_at(day_time(installed, 2, 12, 0)))
    topic = f"{base}/homes/{home_id}/alerts"
    watcher = _Listener(topic)
    rt.start()
    try:
        assert watcher.wait(lambda: watcher.on(topic))
        assert watcher.last(topic)["schema"] == "atlas.alerts/1"
        assert watcher.last(topic)["alerts"] == []
        assert watcher.wait(lambda: any(j.startswith("alerts:") for j, _ in rt.scheduler.jobs()))
    finally:
        rt.stop()
        watcher.close()
