"""Answers over MQTT through the running runtime, the retained request state, and wording."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from rt_helpers import clock_at, day_time, runtime_settings, store_days
from sqlalchemy import select

from service.push.text import describe_use
from service.runtime.service import AtlasRuntime
from service.storage.schema import label_requests, labels


def test_prompt_says_when_how_long_and_which_lines():
    t = datetime(2026, 3, 2, 13, 42, tzinfo=UTC)
    chicago = ZoneInfo("America/Chicago")
    end = t.replace(minute=45, second=10)
    assert describe_use(t, end, ("hot", "cold"), t, chicago) == (
        "Today at 07:42 water ran for 3 min 10 s on the hot and cold lines"
    )
    later = t.replace(day=3)
    assert describe_use(t, end, ("cold",), later, chicago).startswith("Yesterday at 07:42")


def _watch(*topics):
    got: dict[str, bytes] = {}
    ready = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_connect = lambda cl, *a: ([cl.subscribe(t, qos=1) for t in topics], ready.set())
    c.on_message = lambda cl, u, m: got.__setitem__(m.topic, m.payload)
    c.connect("127.0.0.1", 1883)
    c.loop_start()
    ready.wait(5)
    return c, got


def _wait(predicate, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)
    return predicate()


def test_answer_over_mqtt_is_recorded_acked_and_leaves_the_retained_state(
    sqlite_engine, home_spec, uid
):
    db = sqlite_engine
    installed, _ = store_days(db, home_spec, days=9)
    base, settings = runtime_settings(uid)
    rt = AtlasRuntime(settings, db, clock_at(day_time(installed, 8, 19, 30)))
    rt.pipeline.process_home(home_spec.home_id)
    watcher, got = _watch(f"{base}/#", f"ha-{uid}/#")
    rt.start()
    try:
        rt.pipeline.run_round(home_spec.home_id, day_time(installed, 8, 19, 22))
        rt.dispatcher.send_planned(home_spec.home_id)
        state_topic = f"{base}/homes/{home_spec.home_id}/label-requests"
        assert _wait(lambda: state_topic in got and json.loads(got[state_topic])["requests"])
        state = json.loads(got[state_topic])
        first = state["requests"][0]
        assert first["choices"][-1] == {"id": "not sure", "label": "Not sure"}
        assert "water" in first["prompt"] and first["expires_at"]
        choice = first["choices"][0]["id"]
        watcher.publish(first["answer_topic"], json.dumps({"choice": choice}), qos=1)
        assert _wait(lambda: f"{first['answer_topic']}/result" in got)
        assert json.loads(got[f"{first['answer_topic']}/result"])["ok"] is True
        with db.connect() as conn:
            label = conn.execute(
                select(labels.c.label).where(labels.c.request_id == first["request_id"])
            ).scalar_one()
            st = conn.execute(
                select(label_requests.c.state).where(
                    label_requests.c.request_id == first["request_id"]
                )
            ).scalar_one()
        assert (label, st) == (choice, "answered")
        ids = lambda: [r["request_id"] for r in json.loads(got[state_topic])["requests"]]  # noqa: E731
        assert _wait(lambda: first["request_id"] not in ids())
        # a different answer to the answered request is refused with a reason
        other = first["choices"][1]["id"]
        del got[f"{first['answer_topic']}/result"]
        watcher.publish(first["answer_topic"], json.dumps({"choice": other}), qos=1)
        assert _wait(lambda: f"{first['answer_topic']}/result" in got)
        assert json.loads(got[f"{first['answer_topic']}/result"])["error"] == "conflict"
        disc = f"ha-{uid}/sensor/atlas_{home_spec.home_id.replace('-', '_')}_level/config"
        assert _wait(lambda: disc in got)
        assert json.loads(got[disc])["device"]["manufacturer"] == "Atlas"
    finally:
        rt.stop()
        watcher.loop_stop()
        watcher.disconnect()
