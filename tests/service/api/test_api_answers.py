"""Answers: validated against the choices, one transaction, idempotent, conflicts and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_factories import T0, add_request, api_settings, bearer
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.api.app import create_app
from service.api.hooks import ApiHooks
from service.storage.answers import AnswerError, load_answer, record_answer
from service.storage.schema import label_requests, labels


def _n_labels(engine, request_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(labels).where(labels.c.request_id == request_id)
        ).scalar_one()


def _state(engine, request_id: str) -> str:
    with engine.connect() as conn:
        return conn.execute(
            select(label_requests.c.state).where(label_requests.c.request_id == request_id)
        ).scalar_one()


def _url(home: dict, i: int = 0) -> str:
    return f"/v1/homes/{home['home_id']}/label-requests/{home['requests'][i]}/answer"


def test_same_answer_twice_is_one_label(client: TestClient, engine, homes) -> None:
    a = homes["a"]
    body = {"choice": a["choices"][0], "answered_by": "alice"}
    first = client.post(_url(a), json=body, headers=bearer("owner_a"))
    again = client.post(_url(a), json=body, headers=bearer("owner_a"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["created"] and not again.json()["created"]
    assert again.json()["answered_at"] == first.json()["answered_at"]
    assert first.json()["level"] == "valve" and first.json()["source"] == "active"
    assert _n_labels(engine, a["requests"][0]) == 1
    assert _state(engine, a["requests"][0]) == "answered"


def test_conflicting_second_answer_is_409(client: TestClient, engine, homes) -> None:
    a = homes["a"]
    client.post(_url(a), json={"choice": a["choices"][0]}, headers=bearer("owner_a"))
    r = client.post(_url(a), json={"choice": a["choices"][1]}, headers=bearer("owner_a"))
    assert r.status_code == 409
    assert a["choices"][1] in r.json()["detail"]
    with engine.connect() as conn:
        assert load_answer(conn, a["home_id"], a["requests"][0]).choice == a["choices"][0]


@pytest.mark.parametrize("choice", ["kitchen-sink/bogus", "toilet", "", "x" * 128])
def test_choice_not_offered_is_refused(client: TestClient, engine, homes, choice) -> None:
    a = homes["a"]
    r = client.post(_url(a), json={"choice": choice}, headers=bearer("owner_a"))
    assert r.status_code == 422
    assert _state(engine, a["requests"][0]) == "sent"


def test_unknown_fields_are_refused(client: TestClient, homes) -> None:
    a = homes["a"]
    body = {"choice": a["choices"][0], "label": "valve"}
    r = client.post(_url(a), json=body, headers=bearer("owner_a"))
    assert r.status_code == 422 and "label" in r.text


def test_expired_request_is_refused(client: TestClient, engine, homes) -> None:
    a = homes["a"]
    rid = f"{a['home_id']}-old"
    with engine.begin() as conn:
        add_request(
            conn,
            a["home_id"],
            rid,
            a["use_ids"][3],
            a["choices"],
            slot=9,
            expires_at=T0 + timedelta(hours=24),
        )
    url = f"/v1/homes/{a['home_id']}/label-requests/{rid}/answer"
    r = client.post(url, json={"choice": a["choices"][0]}, headers=bearer("owner_a"))
    assert r.status_code == 410 and "expired" in r.json()["detail"]
    assert _n_labels(engine, rid) == 0 and _state(engine, rid) == "sent"


def test_not_sure_declines_without_label(client: TestClient, engine, homes) -> None:
    a = homes["a"]
    r = client.post(_url(a), json={"choice": "not sure"}, headers=bearer("owner_a"))
    assert r.status_code == 201 and r.json()["state"] == "declined"
    assert _n_labels(engine, a["requests"][0]) == 0
    again = client.post(_url(a), json={"choice": "not sure"}, headers=bearer("owner_a"))
    assert again.status_code == 200
    other = client.post(_url(a), json={"choice": a["choices"][0]}, headers=bearer("owner_a"))
    assert other.status_code == 409


def test_audit_request_gives_audit_label(engine, homes) -> None:
    a = homes["a"]
    rid = f"{a['home_id']}-audit"
    now = datetime.now(UTC)
    with engine.begin() as conn:
        add_request(conn, a["home_id"], rid, a["use_ids"][4], a["choices"], slot=7, is_audit=True)
        result = record_answer(conn, a["home_id"], rid, a["choices"][3], "bob", now)
    assert (result.source, result.level) == ("audit", "fixture")


def test_planned_request_cannot_be_answered(engine, homes) -> None:
    a = homes["a"]
    rid = f"{a['home_id']}-planned"
    with engine.begin() as conn:
        add_request(conn, a["home_id"], rid, a["use_ids"][4], a["choices"], slot=6, state="planned")
        with pytest.raises(AnswerError) as err:
            record_answer(conn, a["home_id"], rid, a["choices"][0], "bob", datetime.now(UTC))
    assert err.value.code == "not_sent"


def test_request_of_another_home_is_not_found(engine, homes) -> None:
    a, b = homes["a"], homes["b"]
    with engine.begin() as conn, pytest.raises(AnswerError) as err:
        record_answer(conn, b["home_id"], a["requests"][0], a["choices"][0], "x", T0)
    assert err.value.code == "not_found"


def test_on_answer_hook_runs_once_after_commit(engine, homes) -> None:
    a = homes["a"]
    seen: list[tuple[str, str, str]] = []

    def on_answer(home_id: str, request_id: str) -> None:
        # _state reads on a separate connection: it sees the answer only once committed
        seen.append((home_id, request_id, _state(engine, request_id)))

    app = create_app(
        api_settings(a["home_id"], homes["b"]["home_id"]),
        db=engine,
        hooks=ApiHooks(on_answer=on_answer),
    )
    with TestClient(app) as client:
        for _ in range(2):
            client.post(_url(a), json={"choice": a["choices"][0]}, headers=bearer("owner_a"))
        client.post(_url(a, 1), json={"choice": "bogus"}, headers=bearer("owner_a"))
    assert seen == [(a["home_id"], a["requests"][0], "answered")]
