"""Liveness and readiness."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    """Each dependency's state; ``ready`` is True when all are."""

    ready: bool
    checks: dict[str, bool]
    open_mode: bool = Field(description="True when the API runs without tokens (development).")
