"""Homes: list, create and replace from a home spec, one home's state (with its fleet), the
fleet opt-out, fixture inventory."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Response
from sqlalchemy import Connection

from atlas.homespec import HomeSpec, HomeSpecError, HomeSpecModel, parse_home_spec
from service.api.deps import (
    AnswerableHome,
    ConnDep,
    CurrentPrincipal,
    EngineDep,
    HooksDep,
    Installer,
    NowDep,
    ReadableHome,
)
from service.api.errors import (
    BAD_REQUEST,
    CONFLICT,
    FORBIDDEN,
    HOME_READ,
    HOME_WRITE,
    TOO_LARGE,
    UNAUTHORIZED,
    unprocessable,
)
from service.api.schemas.common import HomeIdPath
from service.api.schemas.homes import (
    AccuracyEstimatePublic,
    FixturesPublic,
    HomeFleetPublic,
    HomePublic,
    HomesPublic,
    HomeSummaryPublic,
    HomeUpdate,
    HomeWritten,
    LabelBudgetPublic,
)
from service.api.specbody import check_spec_body
from service.api.wording import fleet_text, label_texts
from service.storage import dashboard
from service.storage.homefleet import load_home_fleet, set_opt_out
from service.storage.homes import upsert_home

router = APIRouter(prefix="/v1/homes", tags=["homes"])

SpecBody = Body(description="A home spec (format atlas.home/1, the installer's file as JSON).")


StrictSpec = [Depends(check_spec_body)]


@router.get("", response_model=HomesPublic, responses=UNAUTHORIZED)
def list_homes(principal: CurrentPrincipal, conn: ConnDep) -> HomesPublic:
    """The homes the caller may see: all for admin and dashboard tokens, else the own home."""
    only = None if principal.all_homes else principal.homes
    rows = dashboard.list_homes(conn, only)
    data = [
        HomeSummaryPublic(
            home_id=r.home_id,
            name=r.name,
            timezone=r.timezone,
            phase=r.phase,
            calibration_day=r.calibration_day,
            display_level=r.level,
            updated_at=r.updated_at,
        )
        for r in rows
    ]
    return HomesPublic(data=data, count=len(data))


def _parse(body: HomeSpecModel) -> HomeSpec:
    try:
        return parse_home_spec(body.model_dump(mode="json", by_alias=True, exclude_none=True))
    except HomeSpecError as exc:  # the model validated already; kept for the resolve step
        raise unprocessable(("body",), str(exc)) from None


def _written(spec: HomeSpec, created: bool) -> HomeWritten:
    return HomeWritten(
        home_id=spec.home_id,
        created=created,
        n_fixtures=len(spec.fixtures),
        n_valves=len(spec.valves),
    )


@router.post(
    "",
    status_code=201,
    response_model=HomeWritten,
    responses=UNAUTHORIZED | FORBIDDEN | CONFLICT | BAD_REQUEST | TOO_LARGE,
    dependencies=StrictSpec,
)
def create_home(
    _: Installer, engine: EngineDep, hooks: HooksDep, now: NowDep, body: HomeSpecModel = SpecBody
) -> HomeWritten:
    """Register a new home from its spec (installer/admin). 409 if the home id exists.

    Validation errors (422) name each offending field, e.g. ``body.fixtures.0.runs``.
    """
    spec = _parse(body)
    with engine.begin() as conn:
        if dashboard.home_exists(conn, spec.home_id):
            raise HTTPException(
                409, f"home_id={spec.home_id!r} exists; PUT /v1/homes/{spec.home_id} replaces it"
            )
        upsert_home(conn, spec, now)
    hooks.on_home_changed(spec.home_id)
    return _written(spec, True)


@router.put(
    "/{home_id}",
    response_model=HomeWritten,
    responses={
        201: {"model": HomeWritten, "description": "The home did not exist and was created."},
        **UNAUTHORIZED,
        **FORBIDDEN,
        **BAD_REQUEST,
        **TOO_LARGE,
    },
    dependencies=StrictSpec,
)
def replace_home(
    home_id: HomeIdPath,
    _: Installer,
    engine: EngineDep,
    hooks: HooksDep,
    now: NowDep,
    response: Response,
    body: HomeSpecModel = SpecBody,
) -> HomeWritten:
    """Create or replace a home's spec (installer/admin); its inventory is replaced wholesale.

    The spec's ``home_id`` must equal the path's (422 otherwise).
    """
    if body.home_id != home_id:
        raise unprocessable(
            ("body", "home_id"),
            f"body.home_id={body.home_id!r} differs from the path's home_id={home_id!r}",
            body.home_id,
        )
    spec = _parse(body)
    with engine.begin() as conn:
        created = upsert_home(conn, spec, now)
    hooks.on_home_changed(spec.home_id)
    response.status_code = 201 if created else 200
    return _written(spec, created)


def _budget(conn: Connection, home_id: str) -> LabelBudgetPublic:
    requests = dashboard.request_counts(conn, home_id)
    labels = dashboard.label_counts(conn, home_id)
    return LabelBudgetPublic(
        requests_sent=sum(n for state, n in requests.items() if state != "planned"),
        answered=requests["answered"],
        declined=requests["declined"],
        expired=requests["expired"],
        open=requests["sent"],
        labels_guided=labels["guided"],
        labels_active=labels["active"],
        labels_audit=labels["audit"],
    )


@router.get("/{home_id}", response_model=HomePublic, responses=HOME_READ)
def get_home(home_id: ReadableHome, conn: ConnDep) -> HomePublic:
    """One home: calibration day and phase, display level and the reason for it, the newest
    accuracy estimate per level (with its lower bound and label count), the label budget used,
    the number of open requests, and the fleet it calibrates with (the version it started
    from, the checklist items that version skipped, the opt-out)."""
    summary = dashboard.list_homes(conn, frozenset({home_id}))[0]
    status: dict[str, Any] = dashboard.home_status_row(conn, home_id) or {}
    budget = _budget(conn, home_id)
    accuracy = [
        AccuracyEstimatePublic(**row) for row in dashboard.latest_accuracy(conn, home_id).values()
    ]
    return HomePublic(
        home_id=home_id,
        name=summary.name,
        timezone=summary.timezone,
        phase=status.get("phase"),
        calibration_day=status.get("calibration_day"),
        display_level=status.get("level", "rules"),
        level_reason=status.get("reason") or {"text": "no classification yet"},
        level_changed_at=status.get("level_changed_at"),
        model_version=status.get("model_version"),
        accuracy=accuracy,
        label_budget=budget,
        open_requests=budget.open,
        updated_at=status.get("updated_at"),
        fleet=_fleet(conn, home_id),
    )


def _fleet(conn: Connection, home_id: str) -> HomeFleetPublic:
    fleet = load_home_fleet(conn, home_id)
    texts = label_texts(dashboard.fixture_inventory(conn, home_id))
    return HomeFleetPublic(
        opt_out=fleet.opt_out,
        started_version=fleet.started_version,
        version=fleet.version,
        skipped_items=list(fleet.skipped),
        text=fleet_text(fleet, texts),
    )


@router.patch("/{home_id}", response_model=HomePublic, responses=HOME_WRITE)
def update_home(
    home_id: AnswerableHome, body: HomeUpdate, engine: EngineDep, now: NowDep
) -> HomePublic:
    """Opt the home out of the fleet, or back in (its homeowner or an admin).

    An opted-out home's data are read by no fleet rebuild from the next one on; a version
    already built stays as it is until rebuilds replace it. The home still receives the fleet
    (that discloses nothing of it). Replacing the spec keeps the choice.
    """
    with engine.begin() as conn:
        set_opt_out(conn, home_id, body.fleet_opt_out, now)
    with engine.connect() as conn:  # a new read: the request's own began before the write
        return get_home(home_id, conn)


@router.get("/{home_id}/fixtures", response_model=FixturesPublic, responses=HOME_READ)
def get_fixtures(home_id: ReadableHome, conn: ConnDep) -> FixturesPublic:
    """The home's fixture inventory with each fixture's valves (from its spec)."""
    data = dashboard.fixture_inventory(conn, home_id)
    return FixturesPublic.model_validate({"data": data, "count": len(data)})
