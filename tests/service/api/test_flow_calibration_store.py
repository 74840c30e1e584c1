"""Stored flow calibrations (service/flowcalibrate.py, service/storage/flowcalibrations.py)
and the usage endpoint's litres after them, on SQLite and PostgreSQL: a bucket fill reads the
bucket's litres, a meter reading makes its period sum to the meter, and the stored rows
replay to the model that was recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_factories import T0, bearer, preset_spec
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from test_api_usage import (
    WEEK,
    local_time,
    set_level,
    usage_home,  # noqa: F401 (a fixture: see calibration_home)
)

from atlas.uses import UseStatus, WaterUse
from service.flowcalibrate import (
    CalibrationError,
    calibrate_fixture,
    calibrate_meter_reading,
    calibration_history,
)
from service.ha_discovery import HomeAssistant
from service.storage.classifications import insert_classifications
from service.storage.flowcalibrations import flow_calibrations_of, home_flow_model
from service.storage.uses import insert_uses

#: The installer's bucket: 5 L at the kitchen tap, cold, on Wednesday 15 April at 10:00 (home
#: A's time), an hour and more from every use of ``usage_home``.
FILL_AT = local_time(15, 10)
RECORDED = datetime(2026, 4, 15, 15, 30, tzinfo=UTC)


@pytest.fixture
def calibration_home(request: pytest.FixtureRequest) -> dict:
    """Home A with the usage endpoint tests' uses (``test_api_usage.usage_home``)."""
    return request.getfixturevalue("usage_home")


def add_use(
    engine: Engine,
    home_id: str,
    name: str,
    start: datetime,
    seconds: float,
    drops: dict[str, float],
    valve: str,
    fixture: str,
    category: str,
) -> str:
    """A paired use classified (0.9) as ``valve``, stored as the runtime stores uses."""
    use_id = f"u-{home_id}-{name}"
    use = WaterUse(
        use_id=use_id,
        home_id=home_id,
        lines=tuple(drops),
        t_open=start,
        t_close=start + timedelta(seconds=seconds),
        status=UseStatus.PAIRED,
        drop_kpa=drops,
    )
    rows = [
        {
            "use_id": use_id,
            "level": level,
            "label": label,
            "probability": 0.9,
            "model_version": "m2",
        }
        for level, label in (("valve", valve), ("fixture", fixture), ("category", category))
    ]
    with engine.begin() as conn:
        insert_uses(conn, [use], now=T0)
        insert_classifications(conn, home_id, rows, now=T0)
    return use_id


def add_fill(engine: Engine, home_id: str, start: datetime = FILL_AT, name: str = "fill") -> str:
    """30 s at the kitchen's cold tap, fully open."""
    return add_use(
        engine,
        home_id,
        name,
        start,
        30.0,
        {"cold": 22.0},
        "kitchen-sink/cold",
        "kitchen-sink",
        "kitchen_faucet",
    )


def usage(client: TestClient, home_id: str, **params) -> dict:
    r = client.get(f"/v1/homes/{home_id}/usage", params=params, headers=bearer("owner_a"))
    assert r.status_code == 200, r.text
    return r.json()


def replayed(engine: Engine, home_id: str):
    """The home's model read on a new connection (the pool emptied first)."""
    engine.dispose()
    with engine.connect() as conn:
        return home_flow_model(conn, home_id, preset_spec("two_bath_house", home_id))


def test_a_home_without_calibration_reads_the_spec_defaults(
    engine: Engine, client: TestClient, calibration_home: dict
) -> None:
    home_id = calibration_home["home_id"]
    body = usage(client, home_id, **WEEK)
    assert body["volume_model"] == "spec" and body["litres"] > 0
    with engine.connect() as conn:
        assert flow_calibrations_of(conn, home_id) == []
        assert calibration_history(conn, home_id)[0].endswith("defaults (flow model 'spec')")
    schema = client.app.openapi()["components"]["schemas"]["UsagePublic"]["properties"]
    assert "fixture:<valve ids>" in schema["volume_model"]["description"]


def test_a_bucket_fill_reads_the_buckets_litres(
    engine: Engine, client: TestClient, calibration_home: dict
) -> None:
    home_id = calibration_home["home_id"]
    fill = add_fill(engine, home_id)
    set_level(engine, home_id, "valve")  # the fill is sized with its own valve's branch
    around = {"from": FILL_AT.isoformat(), "to": (FILL_AT + timedelta(minutes=1)).isoformat()}
    spec_fill = usage(client, home_id, group="valve", **around)["litres"]
    toilet = {"group": "valve", **WEEK}
    wc_before = _group(usage(client, home_id, **toilet), "bath2-toilet/fill")["litres"]

    with engine.begin() as conn:
        done = calibrate_fixture(
            conn, home_id, "Kitchen Sink", 5.0, now=RECORDED, at=FILL_AT + timedelta(minutes=3)
        )
    assert done.use_id == fill and done.kind == "fixture"
    assert done.subject == "kitchen sink/cold"
    assert done.before_litres == pytest.approx(spec_fill, abs=1e-3) and spec_fill > 6
    assert done.after_litres == pytest.approx(5.0, abs=1e-9)

    body = usage(client, home_id, group="valve", **around)
    assert body["volume_model"] == "fixture:kitchen-sink/cold"
    assert body["litres"] == pytest.approx(5.0, abs=1e-3)
    (group,) = body["totals"]
    assert group["group"] == "kitchen-sink/cold" and group["count"] == 1
    # the rest of the home moved as the summary says: a toilet's fill alone on the cold line
    wc_after = _group(usage(client, home_id, **toilet), "bath2-toilet/fill")["litres"]
    low, high = done.others
    assert low - 1e-4 <= wc_after / wc_before - 1 <= high + 1e-4 and high < 0

    assert replayed(engine, home_id) == done.model
    with engine.connect() as conn:
        (stored,) = flow_calibrations_of(conn, home_id)
    assert (stored.id, stored.kind, stored.valve_id) == (
        done.calibration_id,
        "fixture",
        "kitchen-sink/cold",
    )
    assert (stored.t_from, stored.t_to) == (FILL_AT, FILL_AT + timedelta(seconds=30))
    assert (stored.litres, stored.estimated_litres) == (5.0, done.before_litres)
    assert stored.created_at == RECORDED


def test_a_meter_reading_makes_the_period_sum_to_the_meter(
    engine: Engine, client: TestClient, calibration_home: dict
) -> None:
    home_id = calibration_home["home_id"]
    add_fill(engine, home_id)
    with engine.begin() as conn:
        bucket = calibrate_fixture(
            conn, home_id, "kitchen-sink", 5.0, now=RECORDED, at=FILL_AT + timedelta(minutes=1)
        )
    before = usage(client, home_id, **WEEK)["litres"]
    metered = round(before * 1.25, 1)
    with engine.begin() as conn:
        done = calibrate_meter_reading(
            conn,
            home_id,
            metered,
            datetime.fromisoformat(WEEK["from"]),  # home-local, as the endpoint reads it
            datetime.fromisoformat(WEEK["to"]),
            now=RECORDED + timedelta(days=5),
        )
    assert done.kind == "meter" and done.left_out == 1  # the open-ended washer
    assert done.before_litres == pytest.approx(before, abs=1e-2)
    assert done.after_litres == pytest.approx(metered, rel=1e-9)
    assert done.others == pytest.approx((metered / done.before_litres - 1,) * 2)
    body = usage(client, home_id, **WEEK)
    assert body["volume_model"] == "meter"
    assert body["litres"] == pytest.approx(metered, abs=1e-2)

    # both calibrations apply in the order recorded: the meter's factor on the bucket's model
    model = replayed(engine, home_id)
    assert model == done.model and model != bucket.model
    with engine.connect() as conn:
        assert [c.kind for c in flow_calibrations_of(conn, home_id)] == ["fixture", "meter"]
        history = calibration_history(conn, home_id)
    assert history[0].startswith(f"#{bucket.calibration_id} ")
    assert "fill at kitchen sink/cold: 5 L measured" in history[0]
    assert f"water meter: {metered:g} L from 2026-04-06 00:00 to 2026-04-20 00:00" in history[1]
    assert "flow model 'meter'" in history[2]


def test_the_fill_is_the_newest_lone_use_on_the_valves_lines(
    engine: Engine, client: TestClient, calibration_home: dict
) -> None:
    home_id = calibration_home["home_id"]
    add_fill(engine, home_id, FILL_AT - timedelta(minutes=10), "earlier")
    fill = add_fill(engine, home_id)
    # the hot tap after the fill is on another line: it is not taken
    add_use(
        engine,
        home_id,
        "hot",
        FILL_AT + timedelta(minutes=1),
        20.0,
        {"hot": 15.0},
        "kitchen-sink/hot",
        "kitchen-sink",
        "kitchen_faucet",
    )
    at = FILL_AT + timedelta(minutes=5)
    with engine.begin() as conn:
        done = calibrate_fixture(conn, home_id, "kitchen sink", 5.0, now=RECORDED, at=at)
    assert done.use_id == fill

    # a toilet refilled during the next fill: which water was the bucket is ambiguous
    second = add_fill(engine, home_id, FILL_AT + timedelta(hours=3), "second")
    wc = add_use(
        engine,
        home_id,
        "wc",
        FILL_AT + timedelta(hours=3, seconds=10),
        40.0,
        {"cold": 14.0},
        "bath1-toilet/fill",
        "bath1-toilet",
        "toilet",
    )
    later = at + timedelta(hours=3)
    with engine.begin() as conn, pytest.raises(CalibrationError) as refused:
        calibrate_fixture(conn, home_id, "kitchen sink", 5.0, now=RECORDED, at=later)
    message = str(refused.value)
    assert "ambiguous" in message and second in message and wc in message
    assert "--use" in message and "\n" not in message

    # nothing closed in the window: the error says what did close around it
    with engine.begin() as conn, pytest.raises(CalibrationError) as refused:
        calibrate_fixture(
            conn, home_id, "kitchen sink", 5.0, now=RECORDED, at=FILL_AT, within=timedelta(1e-3)
        )
    assert "no use on the cold line closed between" in str(refused.value)

    # named by the installer, the overlapped fill is taken with the toilet as its context
    with engine.begin() as conn:
        named = calibrate_fixture(conn, home_id, "kitchen sink", 5.0, now=RECORDED, use_id=second)
        (_, stored) = flow_calibrations_of(conn, home_id)
    assert named.use_id == second
    assert [u["use_id"] for u in stored.inputs["context"]] == [wc]
    assert replayed(engine, home_id) == named.model


def test_home_assistant_totals_follow_the_calibration(
    engine: Engine, client: TestClient, calibration_home: dict
) -> None:
    home_id = calibration_home["home_id"]
    add_fill(engine, home_id)
    now = datetime(2026, 4, 20, tzinfo=UTC)
    since = {"from": T0.isoformat(), "to": now.isoformat()}
    spec_litres = usage(client, home_id, **since)["litres"]
    ha = HomeAssistant(engine, "ha-test", "test/v1", "0.6")
    assert ha.water(home_id, now)["litres"] == pytest.approx(spec_litres, abs=1e-2)
    with engine.begin() as conn:
        calibrate_fixture(
            conn, home_id, "kitchen sink", 5.0, now=RECORDED, at=FILL_AT + timedelta(minutes=1)
        )
    water = ha.water(home_id, now)  # the running totals are counted again with the new model
    body = usage(client, home_id, **since)
    assert body["volume_model"] == "fixture:kitchen-sink/cold"
    assert water["litres"] == pytest.approx(body["litres"], abs=1e-2)
    assert abs(water["litres"] - spec_litres) > 1


def _group(body: dict, group: str) -> dict:
    return next(g for g in body["totals"] if g["group"] == group)
