"""Each endpoint's behaviour on seeded homes (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from api_factories import T0, api_settings, bearer, preset_spec
from fastapi.testclient import TestClient
from live_server import live_server
from sqlalchemy import select

from service.api.app import create_app
from service.api.hooks import ApiHooks, EventHub
from service.settings import Settings
from service.storage.classifications import insert_classifications
from service.storage.homestatus import upsert_home_status
from service.storage.schema import announcements


def test_create_home_from_spec_then_conflict(client: TestClient, uid: str) -> None:
    changed: list[str] = []
    client.app.state.hooks = ApiHooks(on_home_changed=changed.append)
    spec = preset_spec("three_bath_house", f"hc-{uid}").to_dict()
    r = client.post("/v1/homes", json=spec, headers=bearer("admin"))
    assert r.status_code == 201 and r.json()["created"] and r.json()["n_fixtures"] > 5
    assert client.post("/v1/homes", json=spec, headers=bearer("admin")).status_code == 409
    assert changed == [f"hc-{uid}"]
    fixtures = client.get(f"/v1/homes/hc-{uid}/fixtures", headers=bearer("admin")).json()
    assert fixtures["count"] == r.json()["n_fixtures"]


def test_invalid_spec_names_the_field(client: TestClient, uid: str) -> None:
    spec = preset_spec("apartment", f"hd-{uid}").to_dict()
    spec["fixtures"][0]["runs"] = {}
    spec["residents"] = 0
    r = client.post("/v1/homes", json=spec, headers=bearer("admin"))
    assert r.status_code == 422
    locs = {tuple(e["loc"]) for e in r.json()["detail"]}
    assert ("body", "residents") in locs and any("fixtures" in loc for loc in locs)


def test_put_replaces_inventory_and_checks_id(client: TestClient, homes) -> None:
    a = homes["a"]["home_id"]
    spec = preset_spec("apartment", a).to_dict()
    r = client.put(f"/v1/homes/{a}", json=spec, headers=bearer("admin"))
    assert r.status_code == 200 and not r.json()["created"]
    fixtures = client.get(f"/v1/homes/{a}/fixtures", headers=bearer("admin")).json()
    assert {f["fixture_id"] for f in fixtures["data"]} == {f["id"] for f in spec["fixtures"]}
    other = client.put("/v1/homes/h-other", json=spec, headers=bearer("admin"))
    assert other.status_code == 422 and "differs" in other.text


def test_home_state(client: TestClient, homes) -> None:
    home = client.get(f"/v1/homes/{homes['a']['home_id']}", headers=bearer("owner_a")).json()
    assert (home["phase"], home["calibration_day"], home["display_level"]) == (
        "calibrating",
        9,
        "category",
    )
    assert "certified" in home["level_reason"]["text"]
    by_level = {a["level"]: a for a in home["accuracy"]}
    assert by_level["category"]["displayed"] and by_level["category"]["n_labels"] == 90
    assert by_level["valve"]["lower_bound"] == pytest.approx(0.4)
    assert home["open_requests"] == 2 and home["label_budget"]["requests_sent"] == 2


def test_accuracy_history_and_timeline(client: TestClient, homes) -> None:
    r = client.get(f"/v1/homes/{homes['a']['home_id']}/accuracy", headers=bearer("dashboard"))
    body = r.json()
    assert body["count"] == 6
    assert [c["level"] for c in body["timeline"]] == ["rules", "category"]
    only = client.get(
        f"/v1/homes/{homes['a']['home_id']}/accuracy?level=valve", headers=bearer("dashboard")
    ).json()
    assert {row["level"] for row in only["data"]} == {"valve"}


def test_uses_paged_at_display_level(client: TestClient, homes) -> None:
    a = homes["a"]
    url = f"/v1/homes/{a['home_id']}/uses"
    first = client.get(url, params={"limit": 4}, headers=bearer("owner_a")).json()
    assert first["display_level"] == "category" and first["count"] == 4
    assert first["data"][0]["classification"]["level"] == "category"
    rest = client.get(
        url, params={"limit": 4, "cursor": first["next_cursor"]}, headers=bearer("owner_a")
    ).json()
    assert rest["next_cursor"] is None
    ids = [u["use_id"] for u in first["data"] + rest["data"]]
    assert ids == sorted(a["use_ids"], reverse=True)
    bad = client.get(url, params={"cursor": "garbage!"}, headers=bearer("owner_a"))
    assert bad.status_code == 422


def test_week_one_names_only_the_categories_the_rules_are_sure_of(
    client: TestClient, engine, homes
) -> None:
    a = homes["a"]
    shower, toilet = a["use_ids"][-1], a["use_ids"][-2]
    with engine.begin() as conn:
        insert_classifications(
            conn,
            a["home_id"],
            [
                {
                    "use_id": shower,
                    "level": "category",
                    "label": "shower",
                    "probability": 0.9,
                    "model_version": "m0",
                },
                {
                    "use_id": toilet,
                    "level": "category",
                    "label": "toilet",
                    "probability": 0.9,
                    "model_version": "m0",
                },
            ],
            now=T0 + timedelta(days=9),
        )
        upsert_home_status(
            conn,
            a["home_id"],
            phase="week1",
            calibration_day=3,
            level="rules",
            reason={"text": "week 1: the rules' categories"},
            model_version="m0",
            now=T0 + timedelta(days=9),
        )
    page = client.get(f"/v1/homes/{a['home_id']}/uses", headers=bearer("owner_a")).json()
    shown = {u["use_id"]: u["classification"] for u in page["data"]}
    assert page["display_level"] == "rules"
    assert shown[shower]["label"] == "shower"
    assert shown[toilet] is None  # the rules do not vouch for toilets in week 1


def test_fixtures_the_model_confuses_show_as_their_lump(client: TestClient, engine, homes) -> None:
    a = homes["a"]
    newest = a["use_ids"][-1]
    with engine.begin() as conn:
        insert_classifications(
            conn,
            a["home_id"],
            [
                {
                    "use_id": newest,
                    "level": "fixture",
                    "label": "bath1-toilet",
                    "probability": 0.5,
                    "model_version": "m2",
                }
            ],
            now=T0 + timedelta(days=15),
        )
        upsert_home_status(
            conn,
            a["home_id"],
            phase="calibrating",
            calibration_day=15,
            level="fixture",
            reason={"text": "fixture certified", "lumps": [["bath1-toilet", "bath2-toilet"]]},
            model_version="m2",
            now=T0 + timedelta(days=15),
        )
    page = client.get(f"/v1/homes/{a['home_id']}/uses", headers=bearer("owner_a")).json()
    shown = {u["use_id"]: u["classification"] for u in page["data"]}
    assert page["display_level"] == "fixture"
    assert shown[newest]["label"] == "lump:bath1-toilet+bath2-toilet"
    assert shown[newest]["text"] == "One of: main bath toilet, upstairs toilet"
    other = a["use_ids"][0]  # a kitchen sink, which nothing is confused with: shown as itself
    assert (shown[other]["label"], shown[other]["text"]) == ("kitchen-sink", "Kitchen sink")


def test_label_requests_filter(client: TestClient, homes) -> None:
    a = homes["a"]
    url = f"/v1/homes/{a['home_id']}/label-requests"
    client.post(
        f"{url}/{a['requests'][0]}/answer",
        json={"choice": a["choices"][0]},
        headers=bearer("owner_a"),
    )
    open_ = client.get(url, params={"state": "open"}, headers=bearer("owner_a")).json()
    assert [r["request_id"] for r in open_["data"]] == [a["requests"][1]]
    assert open_["data"][0]["choices"][-1] == {"value": "not sure", "text": "Not sure"}
    answered = client.get(url, params={"state": "answered"}, headers=bearer("owner_a")).json()
    assert answered["data"][0]["answer"] == a["choices"][0]


def test_checklist_and_announcement(client: TestClient, engine, homes) -> None:
    a = homes["a"]
    seen: list[tuple[str, str, datetime]] = []
    client.app.state.hooks = ApiHooks(on_announcement=lambda h, v, t: seen.append((h, v, t)))
    checklist = client.get(f"/v1/homes/{a['home_id']}/checklist", headers=bearer("owner_a"))
    items = checklist.json()["items"]
    dishwasher = next(i for i in items if i["category"] == "dishwasher")
    assert dishwasher["text"].startswith("Run the") and not dishwasher["complete"]
    t = datetime.now(UTC).replace(microsecond=0)
    url = f"/v1/homes/{a['home_id']}/announcements"
    body = {"valve_id": dishwasher["announce_id"], "t": t.isoformat()}
    assert client.post(url, json=body, headers=bearer("owner_a")).status_code == 201
    assert client.post(url, json=body, headers=bearer("owner_a")).status_code == 200
    assert seen == [(a["home_id"], dishwasher["announce_id"], t)]
    with engine.connect() as conn:
        assert conn.execute(select(announcements.c.valve_id)).scalars().all() == [
            dishwasher["announce_id"]
        ]
    unknown = client.post(url, json={"valve_id": "sauna/hot"}, headers=bearer("owner_a"))
    assert unknown.status_code == 422 and "sauna/hot" in unknown.text
    old = {"valve_id": dishwasher["announce_id"], "t": (t - timedelta(days=2)).isoformat()}
    assert client.post(url, json=old, headers=bearer("owner_a")).status_code == 422


def test_readiness_reports_hooks_and_open_mode(engine) -> None:
    app = create_app(
        Settings(environment="development"),
        db=engine,
        hooks=ApiHooks(readiness=lambda: {"broker": False, "scheduler": True}),
    )
    with TestClient(app) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {
            "ready": False,
            "open_mode": True,
            "checks": {"database": True, "broker": False, "scheduler": True},
        }
        assert client.get("/v1/homes").status_code == 200  # open: no token needed


def test_pages_render_requests_checklist_and_chart(client: TestClient, homes) -> None:
    a = homes["a"]
    page = client.get(f"/homes/{a['home_id']}", headers=bearer("owner_a"))
    assert page.status_code == 200 and "about to do it" in page.text
    assert page.text.count("data-post=") >= 2 * len(a["choices"])
    assert "nonce-" in page.headers["content-security-policy"]
    dash = client.get(f"/homes/{a['home_id']}/dashboard", headers=bearer("dashboard"))
    assert dash.status_code == 200
    assert "<svg" in dash.text and "est-category" in dash.text and "band-category" in dash.text


@pytest.mark.timeout(30)
def test_stream_delivers_published_events(engine, homes) -> None:
    """A real server (uvicorn in a thread) so the SSE response streams as it would live."""
    hub = EventHub()
    a = homes["a"]
    app = create_app(
        api_settings(a["home_id"], homes["b"]["home_id"]), db=engine, hooks=ApiHooks(hub=hub)
    )
    with live_server(app) as base:
        url = f"{base}/v1/homes/{a['home_id']}/stream"
        lines: list[str] = []
        with httpx.stream("GET", url, headers=bearer("owner_a"), timeout=10) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                lines.append(line)
                if line.startswith("event: hello"):
                    hub.publish(a["home_id"], "level", {"level": "fixture"})
                    hub.publish(homes["b"]["home_id"], "level", {"level": "valve"})
                if line.startswith('data: {"level"'):
                    break
        assert "event: level" in lines and 'data: {"level": "fixture"}' in lines
        assert not any("valve" in line for line in lines)
