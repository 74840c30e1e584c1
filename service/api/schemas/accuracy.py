"""Accuracy history and the display-level timeline."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from service.api.schemas.homes import AccuracyEstimatePublic, DisplayLevel


class LevelChangePublic(BaseModel):
    t: datetime
    level: DisplayLevel


class AccuracyHistoryPublic(BaseModel):
    """Every stored estimate, oldest first, and when the displayed level changed."""

    data: list[AccuracyEstimatePublic]
    count: int
    timeline: list[LevelChangePublic]
