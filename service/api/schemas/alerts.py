"""Leak and anomaly alerts (docs/usage.md, "Alerts") and their acknowledgement."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, Field

from service.api.schemas.common import STRICT

ALERT_ID_PATTERN = r"^al-[0-9a-f]{24}$"
AlertIdPath = Annotated[
    str, Path(description="The alert's id.", pattern=ALERT_ID_PATTERN, max_length=27)
]
AlertKind = Literal["running", "flapper", "night"]


class AlertPublic(BaseModel):
    """One alert: what the detector saw, in words and in numbers a person can check."""

    alert_id: str
    kind: AlertKind = Field(
        description="running: water ran longer than the setting; flapper: regular short toilet "
        "refills without a flush (a leaking flapper); night: water at night in a home usually "
        "quiet then."
    )
    title: str = Field(examples=["A toilet may be leaking"])
    message: str
    at: datetime = Field(description="When it could first be raised (UTC).")
    evidence: dict[str, float | int | str] = Field(
        description="The detector's numbers; each key names its unit (e.g. duration_min).",
        examples=[{"toilet": "bath1-toilet", "refills": 4, "median_interval_min": 20.0}],
    )
    use_ids: list[str] = Field(description="The uses behind it (GET .../uses/{use_id}).")
    pushed_at: datetime | None = Field(description="When every configured channel took it.")
    acknowledged_at: datetime | None
    acknowledged_by: str | None


class AlertsPublic(BaseModel):
    data: list[AlertPublic]
    count: int


class AcknowledgeCreate(BaseModel):
    """Who saw the alert (shown to the other members of the household)."""

    model_config = STRICT

    acknowledged_by: str = Field(
        default="homeowner", min_length=1, max_length=120, pattern=r"^[^\x00-\x1f]+$"
    )
