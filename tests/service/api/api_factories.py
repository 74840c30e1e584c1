"""Seed data for the API tests, written through the storage layer (as the runtime would)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, update

from atlas.homespec import HomeSpec, parse_home_spec
from atlas.uses import UseStatus, WaterUse
from service.settings import Settings, TokenSettings, hash_token
from service.storage.classifications import insert_classifications
from service.storage.homes import upsert_home
from service.storage.homestatus import append_accuracy, upsert_home_status
from service.storage.labelrequests import plan_request, transition
from service.storage.schema import label_requests
from service.storage.uses import insert_uses
from simulator.presets import load_preset

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TOKENS = {
    "admin": "tok-admin-0123456789",
    "dashboard": "tok-dash-0123456789",
    "owner_a": "tok-owner-a-0123456789",
    "owner_b": "tok-owner-b-0123456789",
}


def bearer(role: str) -> dict[str, str]:
    """Headers for the token of ``role`` (admin, dashboard, owner_a, owner_b)."""
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def preset_spec(preset: str, home_id: str) -> HomeSpec:
    return parse_home_spec(load_preset(preset).to_dict() | {"home_id": home_id})


def api_settings(home_a: str, home_b: str, **overrides) -> Settings:
    """Development settings with one token per role (homeowner tokens for A and B)."""
    tokens = TokenSettings(
        admin_sha256=[hash_token(TOKENS["admin"])],
        dashboard_sha256=[hash_token(TOKENS["dashboard"])],
        homeowner_sha256={
            home_a: [hash_token(TOKENS["owner_a"])],
            home_b: [hash_token(TOKENS["owner_b"])],
        },
    )
    return Settings(environment="development", tokens=tokens, **overrides)


def add_uses(conn: Connection, home_id: str, n: int, *, start: datetime = T0) -> list[str]:
    """``n`` paired uses, one every 10 minutes; returns their ids, oldest first."""
    uses = [
        WaterUse(
            use_id=f"u-{home_id}-{i:04d}",
            home_id=home_id,
            lines=("hot",) if i % 2 else ("cold",),
            t_open=start + timedelta(minutes=10 * i),
            t_close=start + timedelta(minutes=10 * i, seconds=30),
            status=UseStatus.PAIRED,
            drop_kpa={"hot": 20.0} if i % 2 else {"cold": 18.0},
        )
        for i in range(n)
    ]
    insert_uses(conn, uses, now=start)
    return [u.use_id for u in uses]


def add_request(
    conn: Connection,
    home_id: str,
    request_id: str,
    use_id: str,
    choices: list[str],
    *,
    slot: int,
    state: str = "sent",
    expires_at: datetime | None = None,
    is_audit: bool = False,
    now: datetime = T0,
) -> None:
    """A label request planned and moved to ``state`` through the storage state machine."""
    plan_request(
        conn,
        request_id=request_id,
        home_id=home_id,
        round_=8,
        slot=slot,
        use_id=use_id,
        choices=choices,
        prompt=f"Today at 08:{slot:02d} water ran for 30 s. What was it?",
        now=now,
    )
    conn.execute(
        update(label_requests)
        .where(label_requests.c.request_id == request_id)
        .values(expires_at=expires_at or now + timedelta(days=3650), is_audit=is_audit)
    )
    if state != "planned":
        transition(conn, request_id, "sent", now)
    if state not in ("planned", "sent"):
        transition(conn, request_id, state, now)


def seed_home(engine: Engine, spec: HomeSpec, *, n_uses: int = 6) -> dict:
    """A home with uses, classifications, a status row, accuracy history and two open requests."""
    home_id = spec.home_id
    valve_ids = [v.id for v in spec.valves]
    with engine.begin() as conn:
        upsert_home(conn, spec, now=T0)
        use_ids = add_uses(conn, home_id, n_uses)
        insert_classifications(
            conn,
            home_id,
            [
                {"use_id": u, "level": lvl, "label": lab, "probability": 0.8, "model_version": "m1"}
                for u in use_ids
                for lvl, lab in (
                    ("valve", valve_ids[0]),
                    ("fixture", spec.fixtures[0].id),
                    ("category", str(spec.fixtures[0].category)),
                )
            ],
            now=T0,
        )
        upsert_home_status(
            conn,
            home_id,
            phase="calibrating",
            calibration_day=9,
            level="category",
            reason={"text": "category certified: 29 of 30 correct"},
            model_version="m1",
            now=T0 + timedelta(days=8),
        )
        for day, shown in ((8, "rules"), (9, "category")):
            append_accuracy(
                conn,
                home_id,
                t=T0 + timedelta(days=day),
                estimates={
                    "category": (0.9 + day / 1000, 0.8, 10 * day),
                    "fixture": (0.7, 0.55, 10 * day),
                    "valve": (0.6, 0.4, 10 * day),
                },
                displayed=shown,
                model_version="m1",
            )
        choices = [*valve_ids[:3], spec.fixtures[-1].id, "not sure"]
        for slot, use_id in enumerate(use_ids[:2]):
            add_request(conn, home_id, f"{home_id}-d008-{slot}", use_id, choices, slot=slot)
    return {
        "home_id": home_id,
        "use_ids": use_ids,
        "choices": choices,
        "requests": [f"{home_id}-d008-{s}" for s in range(2)],
    }
