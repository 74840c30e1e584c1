"""GET /v1/homes/{id}/usage: counts, minutes and litres per group and home-local bucket, never
finer than the home's display level (SQLite and PostgreSQL through the shared fixtures)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from api_factories import T0, bearer
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from atlas.uses import UseStatus, WaterUse
from service.storage.classifications import insert_classifications
from service.storage.homestatus import upsert_home_status
from service.storage.uses import insert_uses

CHICAGO = ZoneInfo("America/Chicago")  # home A (two_bath_house)
WEEK = {"from": "2026-04-06T00:00:00", "to": "2026-04-20T00:00:00"}  # home-local, two weeks


def local_time(day: int, hour: int, minute: int = 0) -> datetime:
    """April 2026 at home A (Chicago) in UTC; shared with test_ha_water.py."""
    return datetime(2026, 4, day, hour, minute, tzinfo=CHICAGO).astimezone(UTC)


#: (suffix, start, seconds (None: open-ended), lines, drops, {level: (label, probability)})
USES = [
    (
        "shower",
        local_time(6, 12),
        300,
        ("hot", "cold"),
        {"hot": 30.0, "cold": 25.0},
        {
            "category": ("shower", 0.9),
            "fixture": ("bath1-shower", 0.9),
            "valve": ("bath1-shower/mixed", 0.9),
        },
    ),
    (
        "wc1-late",
        local_time(6, 23, 30),
        40,
        ("cold",),
        {"cold": 15.0},
        {
            "category": ("toilet", 0.95),
            "fixture": ("bath1-toilet", 0.95),
            "valve": ("bath1-toilet/fill", 0.95),
        },
    ),
    (
        "wc2",
        local_time(7, 8),
        45,
        ("cold",),
        {"cold": 14.0},
        {
            "category": ("toilet", 0.9),
            "fixture": ("bath2-toilet", 0.9),
            "valve": ("bath2-toilet/fill", 0.9),
        },
    ),
    (
        "unsure",
        local_time(8, 7),
        20,
        ("hot",),
        {"hot": 12.0},
        {
            "category": ("kitchen_faucet", 0.3),
            "fixture": ("kitchen-sink", 0.3),
            "valve": ("kitchen-sink/hot", 0.3),
        },
    ),
    ("none", local_time(9, 19), 60, ("cold",), {"cold": 10.0}, {}),
    (
        "washer",
        local_time(13, 9),
        None,
        ("hot", "cold"),
        {"hot": 20.0, "cold": 18.0},
        {"category": ("washing_machine", 1.0)},
    ),
]


@pytest.fixture
def usage_home(engine: Engine, homes: dict) -> dict:
    """Home A with the uses above (April, clear of the seeded March uses)."""
    home_id = homes["a"]["home_id"]
    rows, stored = [], []
    for suffix, start, seconds, lines, drops, classified in USES:
        use_id = f"u-{home_id}-usage-{suffix}"
        paired = seconds is not None
        stored.append(
            WaterUse(
                use_id=use_id,
                home_id=home_id,
                lines=lines,
                t_open=start,
                t_close=start + timedelta(seconds=seconds) if paired else None,
                status=UseStatus.PAIRED if paired else UseStatus.OPEN_ENDED,
                drop_kpa=drops,
            )
        )
        rows += [
            {
                "use_id": use_id,
                "level": level,
                "label": label,
                "probability": p,
                "model_version": "m2",
            }
            for level, (label, p) in classified.items()
        ]
    with engine.begin() as conn:
        insert_uses(conn, stored, now=T0)
        insert_classifications(conn, home_id, rows, now=T0)
    return homes["a"]


def set_level(engine: Engine, home_id: str, level: str, lumps: list | None = None) -> None:
    """Store the home at ``level`` (with ``lumps``); shared with test_ha_water.py."""
    with engine.begin() as conn:
        upsert_home_status(
            conn,
            home_id,
            phase="calibrating",
            calibration_day=20,
            level=level,
            reason={"text": "test", "lumps": lumps or []},
            model_version="m2",
            now=T0,
        )


def _get(client: TestClient, home_id: str, role: str = "owner_a", **params):
    return client.get(f"/v1/homes/{home_id}/usage", params=params, headers=bearer(role))


def test_usage_is_in_the_openapi_schema(app) -> None:
    op = app.openapi()["paths"]["/v1/homes/{home_id}/usage"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert {"from", "to", "bucket", "group", "min_probability"} <= names
    assert {"200", "401", "403", "404", "422"} <= set(op["responses"])


def test_homeowner_reads_only_its_own_home(client: TestClient, homes) -> None:
    a, b = homes["a"]["home_id"], homes["b"]["home_id"]
    assert _get(client, a).status_code == 200
    assert _get(client, b).status_code == 403
    assert _get(client, b, "owner_b").status_code == 200
    assert _get(client, "h-nowhere").status_code == 403  # ids cannot be probed
    assert _get(client, "h-nowhere", "admin").status_code == 404
    assert client.get(f"/v1/homes/{a}/usage").status_code == 401


def test_groups_clamp_to_the_display_level_with_a_reason(
    client: TestClient, engine: Engine, usage_home
) -> None:
    home_id = usage_home["home_id"]  # the seed's display level: category
    body = _get(client, home_id, group="fixture", **WEEK).json()
    assert body["requested_group"] == "fixture" and body["group"] == "category"
    assert body["reason"] == "fixture level is not certified yet (display: category)"
    groups = {g["group"]: g for g in body["totals"]}
    assert set(groups) == {"shower", "toilet", "washing_machine", "low_confidence", "unclassified"}
    assert groups["toilet"]["count"] == 2 and groups["toilet"]["text"] == "Toilet"
    assert groups["low_confidence"]["kind"] == "low_confidence"
    assert groups["unclassified"]["count"] == 1
    assert _get(client, home_id, group="category", **WEEK).json()["reason"] is None

    # fixture level with the two toilets lumped: valve clamps to fixture, the lump stays one
    set_level(engine, home_id, "fixture", [["bath1-toilet", "bath2-toilet"]])
    body = _get(client, home_id, group="valve", **WEEK).json()
    assert body["group"] == "fixture"
    assert body["reason"] == "valve level is not certified yet (display: fixture)"
    groups = {g["group"]: g for g in body["totals"]}
    lump = groups["lump:bath1-toilet+bath2-toilet"]
    assert lump["kind"] == "lump" and lump["count"] == 2
    assert lump["text"].startswith("One of")  # atlas.levels.lump_label, as /uses shows it
    assert "bath1-toilet" not in groups and "bath1-shower" in groups

    # week 1: only the rule-confident categories are named
    set_level(engine, home_id, "rules")
    body = _get(client, home_id, group="fixture", **WEEK).json()
    assert body["group"] == "rule_categories" and body["display_level"] == "rules"
    assert body["reason"].startswith("fixture level is not certified yet (display: rules)")
    named = {g["group"] for g in body["totals"] if g["kind"] == "named"}
    assert named == {"shower", "washing_machine"}
    unclassified = next(g for g in body["totals"] if g["group"] == "unclassified")
    # two toilets, the low-confidence faucet (not a rule category) and the unclassified use
    assert unclassified["count"] == 4

    # valve level: every grouping is served as asked
    set_level(engine, home_id, "valve")
    body = _get(client, home_id, group="valve", **WEEK).json()
    assert body["group"] == "valve" and body["reason"] is None
    assert "bath1-toilet/fill" in {g["group"] for g in body["totals"]}


@pytest.mark.parametrize("bucket", ["day", "week"])
def test_buckets_are_home_local_and_sum_to_the_totals(
    client: TestClient, usage_home, bucket: str
) -> None:
    body = _get(client, usage_home["home_id"], bucket=bucket, **WEEK).json()
    assert body["count"] == len(USES) and body["timezone"] == "America/Chicago"
    buckets = body["buckets"]
    assert len(buckets) == (14 if bucket == "day" else 2)
    assert buckets[0]["start"] == "2026-04-06T00:00:00-05:00"
    assert buckets[-1]["end"] == "2026-04-20T00:00:00-05:00"
    assert all(x["end"] == y["start"] for x, y in pairwise(buckets))
    assert sum(b["count"] for b in buckets) == body["count"]
    assert sum(b["litres"] for b in buckets) == pytest.approx(body["litres"], abs=1e-2)
    assert sum(b["minutes"] for b in buckets) == pytest.approx(body["minutes"], abs=1e-2)
    for total in body["totals"]:
        parts = [g for b in buckets for g in b["groups"] if g["group"] == total["group"]]
        assert sum(g["count"] for g in parts) == total["count"]
        assert sum(g["litres"] for g in parts) == pytest.approx(total["litres"], abs=1e-2)
    assert body["minutes"] == pytest.approx((300 + 40 + 45 + 20 + 60) / 60, abs=1e-3)
    if bucket == "day":
        # 23:30 local on the 6th is 04:30 UTC on the 7th: it counts on the local 6th
        assert buckets[0]["count"] == 2 and buckets[1]["count"] == 1
    groups = {g["group"]: g for g in body["totals"]}
    assert groups["shower"]["litres"] > 10 and groups["toilet"]["litres"] > 1
    assert all(math.isfinite(g["litres_sigma"]) for g in body["totals"])
    washer = groups["washing_machine"]  # open-ended: counted, no duration, no litres
    assert washer["count"] == 1 and washer["unsized"] == 1 and washer["litres"] == 0


def test_a_dst_day_is_a_local_day(client: TestClient, homes) -> None:
    span = {"from": "2026-03-07", "to": "2026-03-10"}  # US DST starts on Sunday 8 March
    body = _get(client, homes["a"]["home_id"], **span).json()
    assert [b["start"] for b in body["buckets"]] == [
        "2026-03-07T00:00:00-06:00",
        "2026-03-08T00:00:00-06:00",
        "2026-03-09T00:00:00-05:00",
    ]


def test_litres_do_not_depend_on_the_grouping(client: TestClient, usage_home) -> None:
    home_id = usage_home["home_id"]
    litres = {
        _get(client, home_id, group=g, **WEEK).json()["litres"] for g in ("category", "valve")
    }
    assert len(litres) == 1 and litres.pop() > 0


def test_default_range_is_the_last_seven_local_days(client: TestClient, homes) -> None:
    body = _get(client, homes["a"]["home_id"]).json()
    assert len(body["buckets"]) == 7 and body["bucket"] == "day"
    assert body["buckets"][0]["start"].endswith(("T00:00:00-05:00", "T00:00:00-06:00"))


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"from": "2026-04-10T00:00:00Z", "to": "2026-04-09T00:00:00Z"}, "from", "before to"),
        ({"from": "2026-04-10T00:00:00Z", "to": "2026-04-10T00:00:00Z"}, "from", "before to"),
        ({"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to", "400 days"),
        ({"group": "room"}, "group", "'category', 'fixture' or 'valve'"),
        ({"bucket": "month"}, "bucket", "'day' or 'week'"),
        ({"from": "yesterday"}, "from", "ISO 8601"),
        ({"to": "0.5"}, "to", "ISO 8601"),  # pydantic alone reads it as seconds since 1970
        ({"min_probability": "2"}, "min_probability", "less than or equal to 1"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    client: TestClient, homes, params: dict, field: str, words: str
) -> None:
    r = _get(client, homes["a"]["home_id"], **params)
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["query", field] and words in error["msg"], error
