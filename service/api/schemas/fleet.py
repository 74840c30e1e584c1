"""The fleet of calibrated homes: what its newest version holds, for dashboards."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from service.api.schemas.homes import AccuracyLevel


class FleetAccuracyPriorPublic(BaseModel):
    """The fleet's prior for a home's accuracy at one level in one week (a Beta mixture)."""

    layout: str | None = Field(
        description="Layout class of the pooled homes (fixtures per category); None: all homes."
    )
    level: AccuracyLevel
    week: int = Field(description="Protocol week whose end the homes' counts were taken at.")
    mean: float
    strength: float = Field(description="Pseudo-labels of the Beta with the same mean and spread.")
    n_homes: int = Field(description="Homes with evidence at this level and week.")


class FleetSkippablePublic(BaseModel):
    """Valves the fleet's stand-ins cover: a checklist item holding one is left out."""

    category: str
    lines: list[str]
    alone: bool = Field(description="Covered when it is the home's only valve of this kind.")
    grouped: bool = Field(description="Covered also as one of several (two toilets).")


class FleetPublic(BaseModel):
    """The newest fleet version: where it came from and what it gives a new home."""

    version: int
    built_at: datetime
    n_homes: int = Field(description="Calibrated homes, not opted out, it was built from.")
    homes_using: int = Field(description="Homes whose engines use this version.")
    build_s: float = Field(description="Wall seconds of the rebuild.")
    cpu_s: float = Field(description="CPU seconds of the rebuild (its thread).")
    codebook: bool = Field(description="Whether it has a codebook new homes start with.")
    categories: list[str] = Field(description="Categories of its category model.")
    accuracy_prior_used: bool = Field(
        description="Whether engines get its accuracy prior (setting fleet.accuracy_prior; "
        "off by default: it under-covers, docs/fleet.md)."
    )
    accuracy_prior: list[FleetAccuracyPriorPublic]
    skippable: list[FleetSkippablePublic]
