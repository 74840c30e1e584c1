"""Accuracy history of a home and its display-level timeline."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from service.api.deps import ConnDep, ReadableHome
from service.api.errors import HOME_READ
from service.api.schemas.accuracy import AccuracyHistoryPublic, LevelChangePublic
from service.api.schemas.homes import AccuracyEstimatePublic
from service.storage import dashboard

router = APIRouter(prefix="/v1/homes/{home_id}/accuracy", tags=["accuracy"])


@router.get("", response_model=AccuracyHistoryPublic, responses=HOME_READ)
def accuracy_history(
    home_id: ReadableHome,
    conn: ConnDep,
    level: Literal["category", "fixture", "valve"] | None = Query(default=None),
    limit: int = Query(default=1000, ge=1, le=10000, description="The newest this many rows."),
) -> AccuracyHistoryPublic:
    """Accuracy estimates over time (oldest first) and when the displayed level changed."""
    rows = dashboard.accuracy_history_rows(conn, home_id, level=level, limit=limit)
    timeline = [
        LevelChangePublic(t=t, level=lv) for t, lv in dashboard.level_timeline(conn, home_id)
    ]
    return AccuracyHistoryPublic(
        data=[AccuracyEstimatePublic(**r) for r in rows], count=len(rows), timeline=timeline
    )
