"""The fleet through the API (SQLite and PostgreSQL): GET /v1/fleet, the shorter checklist and
the status of a home installed with a fleet, and the homeowner's opt-out (PATCH)."""

from __future__ import annotations

from datetime import UTC, datetime

from api_factories import bearer, preset_spec
from fastapi.testclient import TestClient

from atlas.fleet import AccuracyCount, FleetAccuracyPrior, FleetConfig, FleetPrior
from atlas.fleet.standin import StandinCounts, StandinTrust
from service.api.wording import fleet_text
from service.storage.fleets import save_fleet_version
from service.storage.homefleet import HomeFleet

SHOWER = ("shower", ("cold", "hot"))


def _store_fleet(engine) -> int:
    """A fleet whose stand-ins cover a shower alone in its home, with an accuracy prior."""
    counts = {f"h{i}": [AccuracyCount("category", 2, 18.0 - i % 2, 20.0)] for i in range(3)}
    prior = FleetPrior(
        3,
        None,
        None,
        FleetAccuracyPrior(counts, min_homes=3, layouts={f"h{i}": "flat" for i in range(3)}),
        FleetConfig(),
        standin=StandinTrust(
            [StandinCounts({SHOWER: (3, 3, 0, 0)})] * 3, min_homes=3, min_precision=0.5
        ),
    )
    built = datetime(2026, 3, 1, tzinfo=UTC)
    with engine.begin() as conn:
        return save_fleet_version(conn, prior, built_at=built, build_s=2.0, cpu_s=1.5)


def test_fleet_is_404_until_built_then_describes_the_newest_version(client: TestClient, engine):
    assert "/v1/fleet" in client.app.openapi()["paths"]
    r = client.get("/v1/fleet", headers=bearer("dashboard"))
    assert r.status_code == 404 and "atlas fleet rebuild" in r.json()["detail"]
    assert _store_fleet(engine) == 1
    fleet = client.get("/v1/fleet", headers=bearer("dashboard")).json()
    assert (fleet["version"], fleet["n_homes"], fleet["homes_using"]) == (1, 3, 0)
    assert (fleet["codebook"], fleet["accuracy_prior_used"]) == (False, False)
    assert fleet["skippable"] == [
        {"category": "shower", "lines": ["cold", "hot"], "alone": True, "grouped": False}
    ]
    layouts = {(p["layout"], p["level"], p["week"], p["n_homes"]) for p in fleet["accuracy_prior"]}
    assert layouts == {(None, "category", 2, 3), ("flat", "category", 2, 3)}
    assert all(0.8 < p["mean"] < 0.95 for p in fleet["accuracy_prior"])


def test_home_installed_with_a_fleet_skips_items_and_says_so(client: TestClient, engine, uid):
    _store_fleet(engine)
    spec = preset_spec("apartment", f"hf-{uid}").to_dict()
    assert client.post("/v1/homes", json=spec, headers=bearer("admin")).status_code == 201
    checklist = client.get(f"/v1/homes/hf-{uid}/checklist", headers=bearer("admin")).json()
    assert checklist["skipped"] == ["shower"]
    assert "shower" not in {i["item_id"] for i in checklist["items"]}
    fleet = client.get(f"/v1/homes/hf-{uid}", headers=bearer("admin")).json()["fleet"]
    assert (fleet["started_version"], fleet["version"], fleet["opt_out"]) == (1, 1, False)
    assert fleet["text"] == (
        "Started from fleet version 1: 1 checklist item skipped, the fleet recognises your shower."
    )
    assert client.get("/v1/fleet", headers=bearer("admin")).json()["homes_using"] == 1


def test_homes_without_a_fleet_keep_the_full_checklist(client: TestClient, homes) -> None:
    a = homes["a"]["home_id"]
    assert client.get(f"/v1/homes/{a}/checklist", headers=bearer("owner_a")).json()["skipped"] == []
    fleet = client.get(f"/v1/homes/{a}", headers=bearer("owner_a")).json()["fleet"]
    assert fleet == {
        "opt_out": False,
        "started_version": None,
        "version": None,
        "skipped_items": [],
        "text": "Installed without a fleet of earlier homes.",
    }


def test_the_homeowner_opts_out_and_back_in(client: TestClient, homes) -> None:
    a, b = homes["a"]["home_id"], homes["b"]["home_id"]
    r = client.patch(f"/v1/homes/{a}", json={"fleet_opt_out": True}, headers=bearer("owner_a"))
    assert r.status_code == 200 and r.json()["fleet"]["opt_out"] is True
    assert r.json()["fleet"]["text"].endswith("stay out of the fleet (opted out).")
    assert client.get(f"/v1/homes/{a}", headers=bearer("admin")).json()["fleet"]["opt_out"]
    for role, home in (("owner_a", b), ("dashboard", a)):
        r = client.patch(f"/v1/homes/{home}", json={"fleet_opt_out": True}, headers=bearer(role))
        assert r.status_code == 403
    assert client.patch(f"/v1/homes/{a}", json={}, headers=bearer("owner_a")).status_code == 422
    back = client.patch(f"/v1/homes/{a}", json={"fleet_opt_out": False}, headers=bearer("admin"))
    assert back.json()["fleet"]["opt_out"] is False


def test_the_status_names_a_newer_version_taken_at_a_refit() -> None:
    texts = {"shower": "Shower", "kitchen/hot": "Kitchen sink (hot)", "wm": "Washing machine"}
    fleet = HomeFleet(False, 1, 3, ("shower", "kitchen/hot", "wm"))
    assert fleet_text(fleet, texts) == (
        "Started from fleet version 1: 3 checklist items skipped, the fleet recognises your "
        "shower, kitchen sink (hot) and washing machine. Now on fleet version 3, taken at a "
        "codebook refit."
    )
    assert fleet_text(HomeFleet(True, 2, 2, ()), texts) == (
        "Started from fleet version 2: no checklist item skipped. This home's own data stay "
        "out of the fleet (opted out)."
    )
