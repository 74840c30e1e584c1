"""Water uses with their classification at the home's display level."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ClassificationPublic(BaseModel):
    level: str
    label: str = Field(description="A category, fixture or valve id, or a lump of fixtures.")
    text: str = Field(description="The label in words.")
    probability: float
    model_version: str
    created_at: datetime


class UsePublic(BaseModel):
    use_id: str
    t: datetime
    t_open: datetime | None
    t_close: datetime | None
    duration_s: float | None
    lines: list[str]
    status: str
    classification: ClassificationPublic | None


class UsesPublic(BaseModel):
    """One page of uses, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    display_level: str
    data: list[UsePublic]
    count: int
    next_cursor: str | None
