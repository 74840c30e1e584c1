"""Home Assistant water sensors and use events (service/ha_discovery.py): every discovery
payload checked against Home Assistant's documented MQTT options, and the litres in the
retained state checked against ``GET /v1/homes/{id}/usage`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from api_factories import T0, bearer
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from test_api_usage import (
    USES,
    local_time,
    set_level,
    usage_home,  # noqa: F401 (a fixture: see water_home)
)

from atlas.uses import UseStatus, WaterUse
from service.ha_discovery import (
    HomeAssistant,
    availability_topic,
    discovery_messages,
    state_message,
    uses_topic,
)
from service.storage.classifications import insert_classifications
from service.storage.uses import insert_uses

PREFIX, BASE = "ha-test", "test/v1"
#: After every use of ``usage_home``: home A's seeded uses (from T0, 2 March) and the usage
#: endpoint tests' April uses (a shower, two flushes, a low-confidence and an unclassified use,
#: an open-ended washer).
NOW = datetime(2026, 4, 20, tzinfo=UTC)

# ---------------------------------------------------------------- Home Assistant's options
# https://www.home-assistant.io/integrations/sensor.mqtt/ and /integrations/event.mqtt/
# (configuration variables), /integrations/sensor/ (device classes, units, state classes).
_COMMON = {
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "default_entity_id",
    "device",
    "enabled_by_default",
    "encoding",
    "entity_category",
    "entity_picture",
    "icon",
    "json_attributes_template",
    "json_attributes_topic",
    "name",
    "object_id",
    "payload_available",
    "payload_not_available",
    "platform",
    "qos",
    "state_topic",
    "unique_id",
    "value_template",
}
OPTIONS = {
    "sensor": _COMMON
    | {
        "device_class",
        "expire_after",
        "force_update",
        "last_reset_value_template",
        "options",
        "state_class",
        "suggested_display_precision",
        "unit_of_measurement",
    },
    "event": _COMMON | {"device_class", "event_types"},
}
REQUIRED = {"sensor": {"state_topic"}, "event": {"state_topic", "event_types"}}
DEVICE_OPTIONS = {
    "configuration_url",
    "connections",
    "hw_version",
    "identifiers",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "serial_number",
    "suggested_area",
    "sw_version",
    "via_device",
}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
#: SensorDeviceClass.WATER: its units (UnitOfVolume) and state classes.
WATER_UNITS = {"L", "m³", "gal", "ft³", "CCF"}
WATER_STATE_CLASSES = {"total", "total_increasing"}
EVENT_DEVICE_CLASSES = {"button", "doorbell", "motion"}
#: <discovery_prefix>/<component>/[<node_id>/]<object_id>/config
CONFIG_TOPIC = re.compile(r"^ha-test/(sensor|event)/(?:[A-Za-z0-9_-]+/)?[A-Za-z0-9_-]+/config$")


def ha_errors(topic: str, payload: dict) -> list[str]:
    """What Home Assistant would refuse (or mis-read) in one discovery config."""
    m = CONFIG_TOPIC.match(topic)
    if m is None:
        return [f"{topic}: not a discovery config topic"]
    platform, errors = m.group(1), []
    errors += [f"unknown option {k}" for k in sorted(set(payload) - OPTIONS[platform])]
    errors += [f"missing {k}" for k in sorted(REQUIRED[platform] - set(payload))]
    device = payload.get("device", {})
    errors += [f"unknown device option {k}" for k in sorted(set(device) - DEVICE_OPTIONS)]
    if not device.get("identifiers"):
        errors.append("a device needs identifiers")
    if not payload.get("unique_id"):
        errors.append("no unique_id: the entity could not be edited nor its device kept")
    for key in ("value_template", "json_attributes_template"):
        if key in payload and not re.fullmatch(r"\{\{.*\}\}", payload[key]):
            errors.append(f"{key} is not a template")
    if "json_attributes_template" in payload and "json_attributes_topic" not in payload:
        errors.append("json_attributes_template without json_attributes_topic")
    if platform == "sensor":
        state_class = payload.get("state_class")
        if state_class is not None and state_class not in STATE_CLASSES:
            errors.append(f"state_class {state_class}")
        if payload.get("device_class") == "water":
            if payload.get("unit_of_measurement") not in WATER_UNITS:
                errors.append(f"unit {payload.get('unit_of_measurement')!r} with water")
            if state_class not in WATER_STATE_CLASSES:
                errors.append(f"state_class {state_class} with water")
        if "last_reset_value_template" in payload and state_class != "total":
            errors.append("last_reset_value_template needs state_class total")
        precision = payload.get("suggested_display_precision", 0)
        if not isinstance(precision, int) or precision < 0:
            errors.append("suggested_display_precision")
    else:
        types = payload.get("event_types")
        if not types or not all(isinstance(t, str) for t in types):
            errors.append("event_types must be a non-empty list of strings")
        if payload.get("device_class", "button") not in EVENT_DEVICE_CLASSES:
            errors.append(f"event device_class {payload['device_class']}")
    return errors


def _water_use(home_id: str, suffix: str, start: datetime) -> WaterUse:
    return WaterUse(
        use_id=f"u-{home_id}-ha-{suffix}",
        home_id=home_id,
        lines=("cold",),
        t_open=start,
        t_close=start + timedelta(seconds=40),
        status=UseStatus.PAIRED,
        drop_kpa={"cold": 15.0},
    )


def _classify(engine: Engine, home_id: str, use_id: str, category: str, now: datetime) -> None:
    """A newer classification (a model version of its own: one row per use, level, version)."""
    row = {
        "use_id": use_id,
        "level": "category",
        "label": category,
        "probability": 0.9,
        "model_version": f"m-{now.isoformat()}",
    }
    with engine.begin() as conn:
        insert_classifications(conn, home_id, [row], now=now)


@pytest.fixture
def water_home(request: pytest.FixtureRequest) -> dict:
    """Home A with the usage endpoint tests' uses (``test_api_usage.usage_home``)."""
    return request.getfixturevalue("usage_home")


def _ha(engine: Engine, **kw) -> HomeAssistant:
    return HomeAssistant(engine, PREFIX, BASE, "0.6", **kw)


def _configs(ha: HomeAssistant, home_id: str) -> dict[str, dict | None]:
    return dict(ha.discovery(home_id))


def _sensor_path(template: str) -> tuple[str, ...]:
    """The path into the state a water sensor's value_template reads, e.g. ``("water",
    "category", "shower", "litres")``."""
    m = re.match(r'\{\{ value_json\.water(?:\.(\w+)\[("[^"]*")\])?\.litres if ', template)
    assert m is not None, template
    return (
        ("water", m.group(1), json.loads(m.group(2)), "litres")
        if m.group(1)
        else ("water", "litres")
    )


def _read(state: dict, path: tuple[str, ...]):
    for key in path:
        state = state[key]
    return state


# ---------------------------------------------------------------- discovery


def test_every_config_is_valid_for_home_assistant_at_every_level(
    engine: Engine, water_home
) -> None:
    home_id = water_home["home_id"]
    seen: dict[str, set[str]] = {}
    for level, lumps in (
        ("rules", None),
        ("category", None),
        ("fixture", [["bath1-toilet", "bath2-toilet"]]),
        ("valve", None),
    ):
        set_level(engine, home_id, level, lumps)
        configs = {t: p for t, p in _configs(_ha(engine), home_id).items() if p is not None}
        for topic, payload in configs.items():
            assert ha_errors(topic, payload) == [], (level, topic)
            assert payload["availability_topic"] == availability_topic(BASE)
        ids = [p["unique_id"] for p in configs.values()]
        assert len(ids) == len(set(ids))
        water = {p["name"]: p for p in configs.values() if p.get("device_class") == "water"}
        for p in water.values():
            assert (p["unit_of_measurement"], p["state_class"]) == ("L", "total")
        seen[level] = set(water)
    # week 1: the rule-confident categories only; then every category of the home
    assert "Water (category): Shower" in seen["rules"]
    assert "Water (category): Toilet" not in seen["rules"]
    assert {
        "Water (category): Toilet",
        "Water (category): Unclassified",
        "Water (category): Low confidence",
        "Water (all uses)",
    } <= seen["category"]
    assert not any(n.startswith("Water (fixture)") for n in seen["category"])
    # fixture level: the two toilets are one sensor named for their lump
    lump = [n for n in seen["fixture"] if n.startswith("Water (fixture): One of")]
    assert len(lump) == 1 and "toilet" in lump[0].lower()
    assert "Water (fixture): Main bath toilet" in seen["valve"]
    assert not any("Main bath toilet" in n for n in seen["fixture"])
    assert any(n.startswith("Water (fixture): ") and "shower" in n.lower() for n in seen["valve"])
    assert not any(n.startswith("Water (fixture): One of") for n in seen["valve"])


def test_the_checker_refuses_a_wrong_key_or_unit() -> None:
    """The check above bites: each mistake below is one Home Assistant would refuse."""
    from service.ha_discovery import WaterGroup

    configs = discovery_messages(
        PREFIX, BASE, "h-1", "Home", "0.6", [WaterGroup("category", "shower", "Shower", "named")]
    )
    topic, good = next((t, p) for t, p in configs if p.get("device_class") == "water")
    assert ha_errors(topic, good) == []
    for change, error in (
        ({"unit_of_measurement": "l"}, "unit 'l' with water"),
        ({"unit_of_measurement": "kWh"}, "unit 'kWh' with water"),
        ({"state_class": "measurement"}, "state_class measurement with water"),
        ({"state_class": "totals"}, "state_class totals"),
        ({"unit": "L"}, "unknown option unit"),
        (
            {"last_reset_value_template": "{{ 0 }}", "state_class": "total_increasing"},
            "last_reset_value_template needs state_class total",
        ),
    ):
        assert error in ha_errors(topic, good | change)
    bad = copy.deepcopy(good)
    del bad["state_topic"]
    assert "missing state_topic" in ha_errors(topic, bad)
    event_topic, event = next((t, p) for t, p in configs if "/event/" in t)
    assert ha_errors(event_topic, event) == []
    assert event["event_types"] == ["shower"]  # the groups given at the category grouping
    assert "event_types must be a non-empty list of strings" in ha_errors(
        event_topic, event | {"event_types": []}
    )


def test_a_group_no_longer_served_loses_its_sensor(engine: Engine, water_home) -> None:
    home_id = water_home["home_id"]
    ha = _ha(engine)
    set_level(engine, home_id, "fixture", [["bath1-toilet", "bath2-toilet"]])
    first = _configs(ha, home_id)
    lump = next(t for t, p in first.items() if p and "lump" in t)
    # the first discovery after a start removes every fixture sensor the home could have had
    removed = {t for t, p in first.items() if p is None}
    assert any("bath1_toilet" in t for t in removed) and lump not in removed
    set_level(engine, home_id, "category")  # demoted: the fixture sensors and the lump go
    second = _configs(ha, home_id)
    assert second[lump] is None
    assert not any(p for t, p in second.items() if "_water_fixture_" in t)
    assert any(p for t, p in second.items() if "_water_category_toilet" in t)


# ---------------------------------------------------------------- state


def test_state_carries_the_usage_endpoints_litres_since_the_first_use(
    engine: Engine, client: TestClient, water_home
) -> None:
    home_id = water_home["home_id"]
    set_level(engine, home_id, "fixture", [["bath1-toilet", "bath2-toilet"]])
    ha = _ha(engine)
    configs = _configs(ha, home_id)
    status = ha.stored_status(home_id)  # the newest accuracy (seeded: day 9) for its sensors
    assert status["accuracy"]["category"] == {"estimate": 0.909, "lower_bound": 0.8, "n_labels": 90}
    topic, state = ha.state(home_id, status, NOW)
    assert topic == f"{BASE}/homes/{home_id}/state"
    water = state["water"]
    assert water["since"] == T0.isoformat() and water["unit"] == "L"
    for group in ("category", "fixture"):
        body = client.get(
            f"/v1/homes/{home_id}/usage",
            headers=bearer("owner_a"),
            params={"from": T0.isoformat(), "to": NOW.isoformat(), "group": group},
        ).json()
        assert body["group"] == group
        for g in body["totals"]:
            assert water[group][g["group"]]["litres"] == pytest.approx(g["litres"], abs=1e-2)
            assert water[group][g["group"]]["count"] == g["count"]
        assert water["litres"] == pytest.approx(body["litres"], abs=1e-2)  # sums of rounded parts
    assert water["count"] == 6 + len(USES) and water["unsized"] == 1  # the open-ended washer
    assert water["category"]["unclassified"]["count"] == 1
    assert water["category"]["low_confidence"]["count"] == 1
    assert "lump:bath1-toilet+bath2-toilet" in water["fixture"]
    # every water sensor reads a number from this state; a group without uses reads 0
    sensors = [p for p in configs.values() if p and p.get("device_class") == "water"]
    for p in sensors:
        value = _read(state, _sensor_path(p["value_template"]))
        assert isinstance(value, float) and value >= 0
    assert water["category"]["dishwasher"]["litres"] == 0
    # without water (e.g. the count failed) the templates' guards say unknown, not an error
    bare = state_message(home_id, status)
    assert "water" not in bare
    for p in sensors:
        path = _sensor_path(p["value_template"])
        guards = ["value_json.water is defined"]
        if len(path) == 4:  # each step into the state is checked before it is read
            at = f"value_json.water.{path[1]}"
            guards += [f"{at} is defined", f"{json.dumps(path[2])} in {at}"]
        for key in ("value_template", "json_attributes_template"):
            condition = p[key].split(" if ", 1)[1].rsplit(" else ", 1)[0]
            assert condition.split(" and ") == guards, p[key]
        assert p["value_template"].endswith(" else none }}")
        assert p["json_attributes_template"].endswith(" else '{}' }}")


def test_chunked_count_equals_one_range(engine: Engine, water_home) -> None:
    """Totals over more days than the endpoint serves at once are summed over ranges it does."""
    home_id = water_home["home_id"]
    status = {"level": "category", "phase": "calibrating", "calibration_day": 9}
    one = _ha(engine).state(home_id, status, NOW)[1]["water"]
    daily = _ha(engine, chunk_days=1).state(home_id, status, NOW)[1]["water"]
    assert daily["litres"] == pytest.approx(one["litres"], abs=1e-2)
    for group, row in one["category"].items():
        assert daily["category"][group]["litres"] == pytest.approx(row["litres"], abs=1e-2)
        assert daily["category"][group]["count"] == row["count"]


def test_reclassification_moves_litres_between_groups(engine: Engine, water_home) -> None:
    """The rule: every total is over all uses at their newest classification, so a
    reclassified use leaves its group (whose total then goes down: state_class ``total``).
    Uses from :data:`RECOUNT_OVERLAP` before the last full count are counted again on each
    state; older ones at the next full count (the daily update)."""
    home_id = water_home["home_id"]
    status = {"level": "category", "phase": "calibrating", "calibration_day": 9}
    ha = _ha(engine)
    later = NOW + timedelta(days=10)
    before = ha.water(home_id, later)
    # a new use, then the same (recent) use reclassified from toilet to shower
    late = _water_use(home_id, "late", later - timedelta(hours=5))
    with engine.begin() as conn:
        insert_uses(conn, [late], now=later)
    _classify(engine, home_id, late.use_id, "toilet", later)
    after_new = ha.water(home_id, later + timedelta(hours=1))
    assert after_new["category"]["toilet"]["count"] == before["category"]["toilet"]["count"] + 1
    _classify(engine, home_id, late.use_id, "shower", later + timedelta(hours=1))
    moved = ha.water(home_id, later + timedelta(hours=2))
    assert moved["category"]["toilet"]["litres"] < after_new["category"]["toilet"]["litres"]
    assert moved["category"]["shower"]["count"] == before["category"]["shower"]["count"] + 1
    # the total too may move: a use's litres are sized with its category's valves
    assert moved["count"] == after_new["count"] and moved["litres"] != after_new["litres"]
    # an old use (a flush on 6 April) reclassified: seen at the next full count
    old = f"u-{home_id}-usage-wc1-late"
    _classify(engine, home_id, old, "shower", later + timedelta(hours=2))
    kept = ha.water(home_id, later + timedelta(hours=3))
    assert kept["category"]["toilet"]["count"] == moved["category"]["toilet"]["count"]
    recounted = ha.state(home_id, status, later + timedelta(hours=3), recount=True)[1]["water"]
    assert recounted["category"]["toilet"]["count"] == moved["category"]["toilet"]["count"] - 1


# ---------------------------------------------------------------- use events


def test_a_use_event_per_recent_classified_use(engine: Engine, water_home) -> None:
    home_id = water_home["home_id"]
    set_level(engine, home_id, "fixture", [["bath1-toilet", "bath2-toilet"]])
    ha = _ha(engine)
    event_types = next(p for t, p in ha.discovery(home_id) if "/event/" in t)["event_types"]
    ids = [f"u-{home_id}-usage-{suffix}" for suffix, *_ in USES]
    events = [p for _, p in ha.use_events(home_id, ids, local_time(9, 20))]
    # the uses of the day before 9 April 20:00 (and those after it: replayed, still news)
    assert [e["use_id"] for e in events] == [f"u-{home_id}-usage-{s}" for s in ("none", "washer")]
    assert all(t == uses_topic(BASE, home_id) for t, _ in ha.use_events(home_id, ids, NOW))
    events = [p for _, p in ha.use_events(home_id, ids, local_time(7, 13))]  # all but the shower
    by_suffix = {p["use_id"].rsplit("-usage-", 1)[1]: p for p in events}
    assert set(by_suffix) == {suffix for suffix, *_ in USES} - {"shower"}
    assert all(e["event_type"] in event_types for e in by_suffix.values())
    unsure, washer = by_suffix["unsure"], by_suffix["washer"]
    assert (unsure["event_type"], unsure["fixture"]) == ("low_confidence", "low_confidence")
    assert unsure["litres"] > 0 and unsure["litres_sigma"] > 0
    assert unsure["start"] == "2026-04-08T07:00:00-05:00" and unsure["end"] > unsure["start"]
    assert washer["event_type"] == "washing_machine" and washer["litres"] is None
    assert washer["end"] is None and washer["display_level"] == "fixture"
    wc = by_suffix["wc2"]
    assert (wc["category"], wc["category_text"]) == ("toilet", "Toilet")
    assert wc["fixture"] == "lump:bath1-toilet+bath2-toilet"
    assert wc["fixture_text"].startswith("One of") and wc["litres"] > 0
