"""Auth matrix: 401 vs 403, read-only dashboard, and no path of home B open to A's homeowner.

The home-scoped routes are discovered from the OpenAPI schema, so a new endpoint is covered
without editing this file.
"""

from __future__ import annotations

import pytest
from api_factories import TOKENS, bearer
from fastapi.testclient import TestClient

from service.api.deps import PAGE_HEADER, TOKEN_COOKIE

#: The HTML pages (left out of the OpenAPI schema on purpose).
PAGES = [("GET", "/homes/{home_id}"), ("GET", "/homes/{home_id}/dashboard")]


def _home_routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every operation with a {home_id}, pages included."""
    out = [
        (method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        if "{home_id}" in path
        for method in ops
    ]
    return out + PAGES


def _fill(path: str, home: dict) -> str:
    """``path`` with the home's ids; an alert id of the right form (no home has alerts here:
    the permission is decided before the alert is looked up)."""
    return path.format(
        home_id=home["home_id"], request_id=home["requests"][0], alert_id="al-" + "0" * 24
    )


def _body(path: str, home: dict) -> dict | None:
    if path.endswith("/answer"):
        return {"choice": home["choices"][0]}
    if path.endswith("/announcements"):
        return {"valve_id": home["choices"][0]}
    return None


def _call(client: TestClient, method: str, url: str, body, headers: dict):
    return client.request(method, url, json=body, headers=headers, follow_redirects=False)


def test_every_home_route_is_covered(app) -> None:
    paths = {p for _, p in _home_routes(app)}
    assert {
        "/v1/homes/{home_id}",
        "/v1/homes/{home_id}/accuracy",
        "/v1/homes/{home_id}/uses",
        "/v1/homes/{home_id}/fixtures",
        "/v1/homes/{home_id}/label-requests",
        "/v1/homes/{home_id}/label-requests/{request_id}/answer",
        "/v1/homes/{home_id}/checklist",
        "/v1/homes/{home_id}/announcements",
        "/v1/homes/{home_id}/stream",
        "/v1/homes/{home_id}/alerts",
        "/v1/homes/{home_id}/alerts/{alert_id}/acknowledge",
        "/homes/{home_id}",
        "/homes/{home_id}/dashboard",
    } <= paths


def test_homeowner_of_a_gets_403_on_every_path_of_b(app, client: TestClient, homes) -> None:
    b = homes["b"]
    for method, path in _home_routes(app):
        r = _call(client, method, _fill(path, b), _body(path, b), bearer("owner_a"))
        assert r.status_code == 403, (method, path, r.status_code, r.text[:200])
        assert "Apartment" not in r.text and b["requests"][0] not in r.text.replace(
            f"home_id={b['home_id']!r}", ""
        )


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}])
def test_missing_or_unknown_token_is_401(app, client: TestClient, homes, headers) -> None:
    a = homes["a"]
    for method, path in [*_home_routes(app), ("GET", "/v1/homes"), ("POST", "/v1/homes")]:
        r = _call(client, method, _fill(path, a), _body(path, a), headers)
        assert r.status_code == 401, (method, path, r.status_code)
        if path.startswith("/v1"):
            assert r.headers["www-authenticate"] == "Bearer"


def test_homeowner_reads_and_answers_own_home(client: TestClient, homes) -> None:
    a = homes["a"]
    assert client.get(f"/v1/homes/{a['home_id']}", headers=bearer("owner_a")).status_code == 200
    r = client.post(
        _fill("/v1/homes/{home_id}/label-requests/{request_id}/answer", a),
        json={"choice": a["choices"][0]},
        headers=bearer("owner_a"),
    )
    assert r.status_code == 201


def test_dashboard_is_read_only(app, client: TestClient, homes) -> None:
    for home in (homes["a"], homes["b"]):
        for method, path in _home_routes(app):
            if path.endswith("/stream"):
                continue  # an allowed stream stays open; covered in the SSE test
            r = _call(client, method, _fill(path, home), _body(path, home), bearer("dashboard"))
            assert r.status_code == (200 if method == "GET" else 403), (method, path)
    assert client.post("/v1/homes", json={}, headers=bearer("dashboard")).status_code == 403


def test_only_admin_creates_or_replaces_homes(client: TestClient, homes) -> None:
    a = homes["a"]
    for role in ("owner_a", "dashboard"):
        assert client.post("/v1/homes", json={}, headers=bearer(role)).status_code == 403
        r = client.put(f"/v1/homes/{a['home_id']}", json={}, headers=bearer(role))
        assert r.status_code == 403


def test_home_list_is_filtered(client: TestClient, homes) -> None:
    ids = {h["home_id"] for h in homes.values()}
    for role, expected in (
        ("owner_a", {homes["a"]["home_id"]}),
        ("owner_b", {homes["b"]["home_id"]}),
        ("dashboard", ids),
    ):
        listed = {
            h["home_id"] for h in client.get("/v1/homes", headers=bearer(role)).json()["data"]
        }
        assert listed & ids == expected


def test_unknown_home_is_403_for_homeowner_404_for_admin(client: TestClient) -> None:
    assert client.get("/v1/homes/h-nowhere", headers=bearer("owner_a")).status_code == 403
    assert client.get("/v1/homes/h-nowhere", headers=bearer("admin")).status_code == 404


def test_cookie_write_needs_page_header(client: TestClient, homes) -> None:
    a = homes["a"]
    client.cookies.set(TOKEN_COOKIE, TOKENS["owner_a"])
    url = _fill("/v1/homes/{home_id}/label-requests/{request_id}/answer", a)
    assert client.get(f"/v1/homes/{a['home_id']}").status_code == 200
    assert client.post(url, json={"choice": a["choices"][0]}).status_code == 403
    r = client.post(url, json={"choice": a["choices"][0]}, headers={PAGE_HEADER: "1"})
    assert r.status_code == 201


def test_page_token_sets_httponly_cookie(client: TestClient, homes) -> None:
    a = homes["a"]
    r = client.get(f"/homes/{a['home_id']}?token={TOKENS['owner_a']}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/homes/{a['home_id']}"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get(f"/homes/{a['home_id']}?token=wrong").status_code == 401


def test_fleet_is_for_admin_and_dashboard_only(client: TestClient) -> None:
    """GET /v1/fleet concerns every home: a homeowner token gets 403 (no fleet yet: 404)."""
    assert client.get("/v1/fleet").status_code == 401
    assert client.get("/v1/fleet", headers=bearer("owner_a")).status_code == 403
    for role in ("admin", "dashboard"):
        assert client.get("/v1/fleet", headers=bearer(role)).status_code == 404


def test_metrics_need_admin_or_dashboard(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer("owner_a")).status_code == 403
    assert client.get("/metrics", headers=bearer("dashboard")).status_code == 200


def test_health_needs_no_token(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json()["open_mode"] is False
