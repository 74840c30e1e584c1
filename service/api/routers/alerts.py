"""A home's leak and anomaly alerts, and the homeowner's "seen it"."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query

from service.api.deps import (
    AnswerableHome,
    ConnDep,
    EngineDep,
    HooksDep,
    HubDep,
    NowDep,
    ReadableHome,
)
from service.api.errors import HOME_READ, HOME_WRITE
from service.api.schemas.alerts import AcknowledgeCreate, AlertIdPath, AlertPublic, AlertsPublic
from service.push.payload import ALERT_TITLES
from service.storage.alerts import StoredAlert, acknowledge, list_alerts

router = APIRouter(prefix="/v1/homes/{home_id}/alerts", tags=["alerts"])


def alert_public(alert: StoredAlert) -> AlertPublic:
    return AlertPublic(
        alert_id=alert.alert_id,
        kind=alert.kind,  # type: ignore[arg-type]  # the table's check constraint
        title=ALERT_TITLES[alert.kind],
        message=alert.message,
        at=alert.at,
        evidence=alert.evidence,
        use_ids=list(alert.use_ids),
        pushed_at=alert.pushed_at,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=alert.acknowledged_by,
    )


@router.get("", response_model=AlertsPublic, responses=HOME_READ)
def list_home_alerts(
    home_id: ReadableHome,
    conn: ConnDep,
    state: Literal["open", "all"] = Query(
        default="open", description="'open': not acknowledged yet; 'all': every stored alert."
    ),
    limit: int = Query(default=50, ge=1, le=200),
) -> AlertsPublic:
    """The home's alerts, newest first."""
    found = list_alerts(conn, home_id, only_open=state == "open", limit=limit)
    return AlertsPublic(data=[alert_public(a) for a in found], count=len(found))


@router.post("/{alert_id}/acknowledge", response_model=AlertPublic, responses=HOME_WRITE)
def acknowledge_alert(
    home_id: AnswerableHome,
    alert_id: AlertIdPath,
    engine: EngineDep,
    hooks: HooksDep,
    hub: HubDep,
    now: NowDep,
    body: AcknowledgeCreate | None = None,
) -> AlertPublic:
    """Mark the alert seen: it leaves the open alerts (the phone page, the retained MQTT state)
    and is kept in the history. Idempotent: acknowledging again keeps the first time and name.
    """
    by = (body or AcknowledgeCreate()).acknowledged_by
    with engine.begin() as conn:
        alert = acknowledge(conn, home_id, alert_id, by, now)
    if alert is None:
        raise HTTPException(404, f"home {home_id!r} has no alert {alert_id!r}")
    hooks.on_alert_acknowledged(home_id)
    hub.publish(home_id, "alert", {"alert_id": alert_id, "acknowledged": True})
    return alert_public(alert)
