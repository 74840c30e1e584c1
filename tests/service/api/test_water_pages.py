"""This week's water on the homeowner and dashboard pages: bars per group from
``GET /v1/homes/{id}/usage`` over the home-local week, unclassified and low-confidence uses
always with a bar of their own (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from api_factories import T0, api_settings, bearer
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from atlas.uses import UseStatus, WaterUse
from service.api.app import create_app
from service.api.html import water_chart
from service.api.schemas.usage import UsageGroupPublic, UsagePublic
from service.storage.classifications import insert_classifications
from service.storage.uses import insert_uses

#: Wednesday; the home-local (Chicago) week began on Monday 2 March at 06:00 UTC, so the
#: seeded uses (from T0, Monday 08:00 UTC) are this week's.
NOW = T0 + timedelta(days=2)
BAR = re.compile(
    r"<g class='water-bar' data-group='([^']*)' data-kind='(\w+)' data-litres='([^']*)'"
)


@pytest.fixture
def week_client(engine: Engine, homes: dict) -> Iterator[TestClient]:
    """The API at ``NOW``, home A with a low-confidence, an unclassified and a last-week use
    beside its seeded ones."""
    home_id = homes["a"]["home_id"]
    spec = [
        ("unsure", T0 + timedelta(days=1), {"category": ("toilet", 0.2)}),
        ("none", T0 + timedelta(days=1, hours=1), {}),
        ("last-week", datetime(2026, 3, 2, 5, 0, tzinfo=UTC), {"category": ("shower", 0.9)}),
    ]
    stored = [
        WaterUse(
            use_id=f"u-{home_id}-wk-{s}",
            home_id=home_id,
            lines=("cold",),
            t_open=t,
            t_close=t + timedelta(seconds=30),
            status=UseStatus.PAIRED,
            drop_kpa={"cold": 12.0},
        )
        for s, t, _ in spec
    ]
    rows = [
        {
            "use_id": f"u-{home_id}-wk-{s}",
            "level": level,
            "label": label,
            "probability": p,
            "model_version": "m1",
        }
        for s, _, labels in spec
        for level, (label, p) in labels.items()
    ]
    with engine.begin() as conn:
        insert_uses(conn, stored, now=T0)
        insert_classifications(conn, home_id, rows, now=T0)
    settings = api_settings(home_id, homes["b"]["home_id"])
    with TestClient(create_app(settings, db=engine, clock=lambda: NOW)) as client:
        yield client


def _bars(page: str) -> dict[str, tuple[str, float]]:
    return {unescape(g): (kind, float(litres)) for g, kind, litres in BAR.findall(page)}


def test_the_phone_page_shows_this_weeks_water_per_group(week_client, homes) -> None:
    home_id = homes["a"]["home_id"]
    page = week_client.get(f"/homes/{home_id}", headers=bearer("owner_a"))
    assert page.status_code == 200 and "This week's water" in page.text
    bars = _bars(page.text)
    assert set(bars) == {"kitchen_faucet", "low_confidence", "unclassified"}
    assert bars["low_confidence"][0] == "low_confidence" and bars["low_confidence"][1] > 0
    assert bars["unclassified"][0] == "unclassified" and bars["unclassified"][1] > 0
    assert "Kitchen faucet" in page.text and "6 uses" in page.text
    # the same numbers as the usage endpoint over the home-local week so far
    body = week_client.get(
        f"/v1/homes/{home_id}/usage",
        headers=bearer("owner_a"),
        params={"from": "2026-03-02T00:00:00", "to": NOW.isoformat(), "bucket": "week"},
    ).json()
    assert {g["group"]: g["litres"] for g in body["totals"]} == {
        group: litres for group, (_, litres) in bars.items()
    }
    assert body["count"] == 8  # the use of Sunday (last week) is not in it
    assert f"{body['litres']:.0f} ± {body['litres_sigma']:.0f} litres in 8 uses" in page.text
    assert "0 L · 0 uses" not in page.text
    assert page.text.count("class='sigma'") == 3  # one whisker per bar with litres
    # under the page's CSP (style-src with a nonce) a style attribute would be dropped
    assert " style=" not in page.text


def test_the_dashboard_shows_it_too(week_client, homes) -> None:
    page = week_client.get(f"/homes/{homes['a']['home_id']}/dashboard", headers=bearer("dashboard"))
    assert page.status_code == 200
    assert set(_bars(page.text)) == {"kitchen_faucet", "low_confidence", "unclassified"}


def test_a_week_without_uses_still_shows_the_unplaced_bars(engine, homes) -> None:
    settings = api_settings(homes["a"]["home_id"], homes["b"]["home_id"])
    app = create_app(settings, db=engine, clock=lambda: NOW + timedelta(days=14))
    with TestClient(app) as client:
        page = client.get(f"/homes/{homes['a']['home_id']}", headers=bearer("owner_a")).text
    assert _bars(page) == {
        "low_confidence": ("low_confidence", 0.0),
        "unclassified": ("unclassified", 0.0),
    }
    assert "0 litres in 0 uses" in page and page.count("0 L · 0 uses") == 2 * 2  # text, title


def _week(groups: list[UsageGroupPublic]) -> UsagePublic:
    return UsagePublic(
        home_id="h",
        start=NOW,
        end=NOW,
        timezone="UTC",
        bucket="week",
        requested_group="fixture",
        group="fixture",
        display_level="fixture",
        reason=None,
        min_probability=0.5,
        volume_model="spec",
        count=sum(g.count for g in groups),
        minutes=0.0,
        litres=sum(g.litres for g in groups),
        litres_sigma=3.0,
        totals=groups,
        buckets=[],
    )


def _group(group: str, text: str, kind: str, litres: float, unsized: int = 0) -> UsageGroupPublic:
    return UsageGroupPublic(
        group=group,
        text=text,
        kind=kind,
        count=2,
        minutes=1.0,
        litres=litres,
        litres_sigma=litres / 10,
        unsized=unsized,
    )


def test_bars_are_ordered_escaped_and_say_what_has_no_litres() -> None:
    svg = water_chart(
        _week(
            [
                _group("unclassified", "Unclassified", "unclassified", 5.0, unsized=1),
                _group("lump:a+b", "One of the two <b>toilets</b>", "lump", 20.0),
                _group("shower", "Shower", "named", 80.0),
            ]
        )
    )
    assert [g for g, _, _ in BAR.findall(svg)] == [
        "shower",
        "lump:a+b",
        "low_confidence",
        "unclassified",
    ]
    assert "<b>toilets</b>" not in svg and "&lt;b&gt;toilets&lt;/b&gt;" in svg
    assert "1 use without litres (still running or unpaired)" in svg
    assert "by fixture" in svg


@pytest.mark.parametrize(("confidence", "header"), [(0.9, "90% lower bound"), (0.95, "95% lower")])
def test_the_dashboard_names_the_confidence_its_bounds_were_computed_at(
    engine, homes, confidence, header
) -> None:
    settings = api_settings(
        homes["a"]["home_id"], homes["b"]["home_id"], estimate_confidence=confidence
    )
    with TestClient(create_app(settings, db=engine, clock=lambda: NOW)) as client:
        page = client.get(f"/homes/{homes['a']['home_id']}/dashboard", headers=bearer("dashboard"))
    assert page.status_code == 200 and f"<th>{header}" in page.text
