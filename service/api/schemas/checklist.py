"""The week-1 checklist and announcements ("I'm about to do it")."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from service.api.schemas.common import STRICT, ValveOrFixtureId


class ChecklistItemPublic(BaseModel):
    item_id: str
    text: str = Field(examples=["Run the Dishwasher once"])
    fixture_id: str
    category: str
    valve_ids: list[str]
    announce_id: str = Field(description="The valve_id to POST as an announcement for this item.")
    count: int
    done: int
    complete: bool
    optional: bool


class AnnouncementPublic(BaseModel):
    home_id: str
    valve_id: str
    t: datetime
    matched_use_id: str | None = None
    created: bool = Field(default=False, description="False when already recorded.")


class ChecklistPublic(BaseModel):
    phase: str | None
    items: list[ChecklistItemPublic]
    n_required: int
    n_done: int
    complete: bool
    skipped: list[str] = Field(
        description="Item ids left out because the home's fleet covers them (stand-ins)."
    )
    announcements: list[AnnouncementPublic]


class AnnouncementCreate(BaseModel):
    """The homeowner is about to use a valve (or any valve of a fixture) now or at ``t``."""

    model_config = STRICT

    valve_id: ValveOrFixtureId = Field(
        examples=["dishwasher/hot"],
        description="A valve or fixture of this home (its checklist's ``announce_id``); "
        "422 otherwise.",
    )
    t: datetime | None = Field(
        default=None,
        description="Default: the time of the request. Within an hour of the server's clock "
        "(422 otherwise).",
    )
