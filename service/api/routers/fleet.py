"""The fleet of calibrated homes: its newest version, for dashboards (admin and dashboard)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from service.api.deps import AllHomesReader, ConnDep, SettingsDep
from service.api.errors import FORBIDDEN, NOT_FOUND, UNAUTHORIZED
from service.api.schemas.fleet import FleetPublic
from service.fleet_summary import stored_fleet_summary

router = APIRouter(prefix="/v1/fleet", tags=["fleet"])


@router.get("", response_model=FleetPublic, responses=UNAUTHORIZED | FORBIDDEN | NOT_FOUND)
def get_fleet(_: AllHomesReader, conn: ConnDep, settings: SettingsDep) -> FleetPublic:
    """The newest fleet version: when it was built and from how many homes, how many homes
    run on it, its accuracy prior per layout class, level and week, and which kinds of
    checklist item its stand-ins let a new home skip. 404 while no fleet has been built.

    It names no home: a version holds only aggregates (docs/fleet.md, Privacy).
    """
    summary = stored_fleet_summary(conn, accuracy_prior_used=settings.fleet.accuracy_prior)
    if summary is None:
        raise HTTPException(404, "no fleet version is stored yet (atlas fleet rebuild)")
    return FleetPublic.model_validate(summary)
