"""Shared field types: ids as the home spec defines them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import ConfigDict, Field

from atlas.homespec import ID_PATTERN

#: A home, fixture or sensor id (atlas.homespec.ID_PATTERN: lower case, digits, _ and -).
Id = Annotated[str, Field(pattern=ID_PATTERN, min_length=1, max_length=63)]
VALVE_OR_FIXTURE_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,62}(/[a-z0-9][a-z0-9_\-]{0,62})?$"
#: A valve id ``fixture/valve`` or a fixture id.
ValveOrFixtureId = Annotated[
    str, Field(pattern=VALVE_OR_FIXTURE_PATTERN, min_length=1, max_length=127)
]
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"

HomeIdPath = Annotated[
    str,
    Path(description="The home's id.", pattern=ID_PATTERN, max_length=63, examples=["h-demo"]),
]
RequestIdPath = Annotated[
    str,
    Path(description="The label request's id.", pattern=REQUEST_ID_PATTERN, max_length=128),
]

#: Input models refuse unknown fields: a misspelt field is an error, not silently ignored.
STRICT = ConfigDict(extra="forbid")
