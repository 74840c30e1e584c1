"""The week-1 checklist and the homeowner's announcements ("I'm about to do it")."""

from __future__ import annotations

from datetime import UTC, timedelta

from fastapi import APIRouter, Response

from atlas.checklist import build_checklist, checklist_progress
from atlas.homespec import parse_home_spec
from service.api.deps import (
    AnswerableHome,
    ConnDep,
    EngineDep,
    HooksDep,
    NowDep,
    ReadableHome,
)
from service.api.errors import HOME_READ, HOME_WRITE, unprocessable
from service.api.schemas.checklist import (
    AnnouncementCreate,
    AnnouncementPublic,
    ChecklistItemPublic,
    ChecklistPublic,
)
from service.storage import dashboard
from service.storage.announcements import insert_announcement
from service.storage.homefleet import load_home_fleet

router = APIRouter(prefix="/v1/homes/{home_id}", tags=["checklist"])

#: How far an announced time may lie from the server's clock (phones' clocks drift; a typo
#: of a day would otherwise label the wrong use).
ANNOUNCE_SKEW = timedelta(hours=1)


@router.get("/checklist", response_model=ChecklistPublic, responses=HOME_READ)
def get_checklist(home_id: ReadableHome, conn: ConnDep) -> ChecklistPublic:
    """The guided week-1 checklist with progress from the labels of announced uses.

    A home installed while a fleet existed gets that fleet's checklist
    (``FleetPrior.checklist(spec)``): the items whose valves the fleet's stand-ins cover are
    left out and listed in ``skipped``.
    """
    spec = parse_home_spec(dashboard.home_spec_dict(conn, home_id))
    fleet = load_home_fleet(conn, home_id)
    items = [i for i in build_checklist(spec.fixtures) if i.item_id not in fleet.skipped]
    progress = checklist_progress(items, dashboard.guided_valve_labels(conn, home_id))
    status = dashboard.home_status_row(conn, home_id) or {}
    return ChecklistPublic(
        phase=status.get("phase"),
        items=[
            ChecklistItemPublic(
                item_id=p.item.item_id,
                text=p.item.text,
                fixture_id=p.item.fixture_id,
                category=str(p.item.category),
                valve_ids=list(p.item.valve_ids),
                # one valve: announce it; several (a shower's mixer): the fixture, any valve
                announce_id=p.item.valve_ids[0]
                if len(p.item.valve_ids) == 1
                else p.item.fixture_id,
                count=p.item.count,
                done=p.done,
                complete=p.complete,
                optional=p.item.optional,
            )
            for p in progress.items
        ],
        n_required=progress.n_required,
        n_done=progress.n_done,
        complete=progress.complete,
        skipped=list(fleet.skipped),
        announcements=[
            AnnouncementPublic(home_id=home_id, **a)
            for a in dashboard.announcements_of(conn, home_id)
        ],
    )


@router.post(
    "/announcements",
    status_code=201,
    response_model=AnnouncementPublic,
    responses={200: {"description": "Already recorded (same valve and time)."}, **HOME_WRITE},
)
def announce(
    home_id: AnswerableHome,
    body: AnnouncementCreate,
    engine: EngineDep,
    hooks: HooksDep,
    now: NowDep,
    response: Response,
) -> AnnouncementPublic:
    """Announce that a valve (``fixture/valve``) or any valve of a fixture is about to run.

    The runtime labels the next matching use with it (week-1 checklist). ``t`` defaults to
    now and must lie within an hour of the server's clock.
    """
    t = now if body.t is None else (body.t if body.t.tzinfo else body.t.replace(tzinfo=UTC))
    if abs(t - now) > ANNOUNCE_SKEW:
        raise unprocessable(
            ("body", "t"),
            f"t={t.isoformat()} is more than {ANNOUNCE_SKEW} from now ({now.isoformat()})",
            body.t.isoformat() if body.t else None,
        )
    with engine.begin() as conn:
        known = {
            v["valve_id"] for f in dashboard.fixture_inventory(conn, home_id) for v in f["valves"]
        } | {f["fixture_id"] for f in dashboard.fixture_inventory(conn, home_id)}
        if body.valve_id not in known:
            raise unprocessable(
                ("body", "valve_id"),
                f"valve_id={body.valve_id!r} is not a valve or fixture of home {home_id!r}",
                body.valve_id,
            )
        created = insert_announcement(conn, home_id, body.valve_id, t)
    if created:
        hooks.on_announcement(home_id, body.valve_id, t)
    response.status_code = 201 if created else 200
    return AnnouncementPublic(home_id=home_id, valve_id=body.valve_id, t=t, created=created)
