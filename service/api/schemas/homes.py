"""Homes: the list, one home's calibration state, and its fixture inventory."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.api.schemas.common import STRICT

Phase = Literal["week1", "calibrating", "calibrated"]
DisplayLevel = Literal["rules", "category", "fixture", "valve"]
AccuracyLevel = Literal["category", "fixture", "valve"]


class HomeSummaryPublic(BaseModel):
    """One home in the list: its name and where its calibration stands."""

    home_id: str
    name: str
    timezone: str
    phase: Phase | None = Field(description="None until the runtime has processed the home.")
    calibration_day: int | None
    display_level: DisplayLevel | None
    updated_at: datetime | None


class HomesPublic(BaseModel):
    """The homes the caller may see (a homeowner sees only their own)."""

    data: list[HomeSummaryPublic]
    count: int


class AccuracyEstimatePublic(BaseModel):
    """The newest accuracy estimate of one level, from the homeowner's sampled answers."""

    level: AccuracyLevel
    estimate: float = Field(description="Point estimate of the accuracy (0-1).")
    lower_bound: float = Field(
        description="One-sided lower confidence bound (0-1), at the service's "
        "estimate_confidence (default 90%)."
    )
    n_labels: int = Field(description="Labels the estimate rests on.")
    displayed: bool = Field(description="Whether this is the level shown to the homeowner.")
    model_version: str
    t: datetime


class LabelBudgetPublic(BaseModel):
    """How many questions the homeowner has been asked and answered so far."""

    requests_sent: int = Field(description="Requests ever offered (any state but planned).")
    answered: int
    declined: int = Field(description="Answered 'not sure'.")
    expired: int
    open: int
    labels_guided: int = Field(description="Week-1 checklist labels (announced uses).")
    labels_active: int
    labels_audit: int


class HomeFleetPublic(BaseModel):
    """The fleet of earlier homes this home calibrates with (docs/fleet.md, "In the service")."""

    opt_out: bool = Field(
        description="The homeowner declined: no fleet rebuild reads this home's data "
        "(PATCH /v1/homes/{home_id}). The home still receives the fleet."
    )
    started_version: int | None = Field(
        description="The fleet version the home was installed with (None: there was none)."
    )
    version: int | None = Field(
        description="The fleet version its engine uses now: a newer one is taken at the "
        "home's codebook refit (end of day 7, then weekly), never in between."
    )
    skipped_items: list[str] = Field(
        description="Checklist item ids left out because that fleet's stand-ins cover them."
    )
    text: str = Field(
        examples=[
            "Started from fleet version 3: 1 checklist item skipped, the fleet recognises "
            "your dishwasher."
        ]
    )


class HomePublic(BaseModel):
    """One home: calibration day and phase, display level and why, accuracy, budget."""

    home_id: str
    name: str
    timezone: str
    phase: Phase | None
    calibration_day: int | None
    display_level: DisplayLevel = Field(description="'rules' until a level is certified.")
    level_reason: dict[str, Any] = Field(
        description="Why this level is shown (from the runtime): ``text``, labels by source "
        "and ``lumps``, the groups of fixture ids shown as one at the fixture level."
    )
    level_changed_at: datetime | None
    model_version: str | None
    accuracy: list[AccuracyEstimatePublic]
    label_budget: LabelBudgetPublic
    open_requests: int
    updated_at: datetime | None
    fleet: HomeFleetPublic


class HomeUpdate(BaseModel):
    """What a home's homeowner (or an admin) may change outside its spec."""

    model_config = STRICT

    fleet_opt_out: bool = Field(
        description="True: leave this home's data out of every fleet rebuild from the next "
        "one on (what a fleet holds: docs/fleet.md, Privacy). False: contribute again."
    )


class ValvePublic(BaseModel):
    valve_id: str = Field(examples=["kitchen/hot"])
    name: str
    lines: list[str]


class FixturePublic(BaseModel):
    fixture_id: str
    name: str
    category: str
    handle: str
    location: str
    valves: list[ValvePublic]


class FixturesPublic(BaseModel):
    """A home's fixture inventory (from its spec)."""

    data: list[FixturePublic]
    count: int


class HomeWritten(BaseModel):
    """The outcome of creating or replacing a home spec."""

    home_id: str
    created: bool
    n_fixtures: int
    n_valves: int
