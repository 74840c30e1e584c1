"""The API's times come from the service's clock (``create_app(..., clock=...)``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from api_factories import T0, api_settings, bearer, preset_spec
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.api.app import create_app
from service.storage.schema import homes

LATER = T0 + timedelta(days=5, hours=4)


def _client(engine, homes_seeded) -> TestClient:
    a, b = homes_seeded["a"]["home_id"], homes_seeded["b"]["home_id"]
    return TestClient(create_app(api_settings(a, b), db=engine, clock=lambda: LATER))


def test_a_home_created_over_http_is_created_at_service_time(
    sqlite_engine, homes_sqlite, uid
) -> None:
    spec = preset_spec("apartment", f"hc-{uid}").to_dict()
    with _client(sqlite_engine, homes_sqlite) as client:
        assert client.post("/v1/homes", json=spec, headers=bearer("admin")).status_code == 201
    with sqlite_engine.connect() as conn:
        created = conn.execute(
            select(homes.c.created_at).where(homes.c.home_id == f"hc-{uid}")
        ).scalar_one()
    assert created == LATER


def test_the_phone_page_words_a_request_by_its_age_now(sqlite_engine, homes_sqlite) -> None:
    a = homes_sqlite["a"]
    with _client(sqlite_engine, homes_sqlite) as client:
        page = client.get(f"/homes/{a['home_id']}", headers=bearer("owner_a")).text
        listed = client.get(f"/v1/homes/{a['home_id']}/label-requests", headers=bearer("owner_a"))
        home = client.get(f"/v1/homes/{a['home_id']}", headers=bearer("owner_a")).json()
    assert "5 days ago at " in page and "Today at" not in page
    # the API lists the prompt as it was sent
    assert all(r["prompt"].startswith("Today at 08:") for r in listed.json()["data"])
    # the deadline on the home's clock, not in UTC
    tz = ZoneInfo(home["timezone"])
    assert tz.key != "UTC"
    for r in listed.json()["data"]:
        due = datetime.fromisoformat(r["expires_at"]).astimezone(tz)
        assert f"Answer by {due:%a %d %b %H:%M}<" in page
    assert " UTC<" not in page


def test_a_home_in_an_unknown_time_zone_is_refused_and_not_stored(
    sqlite_engine, homes_sqlite, uid
) -> None:
    spec = preset_spec("apartment", f"tz-{uid}").to_dict() | {"timezone": "Mars/Olympus"}
    with _client(sqlite_engine, homes_sqlite) as client:
        r = client.post("/v1/homes", json=spec, headers=bearer("admin"))
    assert r.status_code == 422 and "unknown time zone" in r.text
    with sqlite_engine.connect() as conn:
        assert (
            conn.execute(select(homes.c.home_id).where(homes.c.home_id == f"tz-{uid}")).all() == []
        )
