"""A home spec body checked against the OpenAPI schema the API publishes, before the model.

The body model (``atlas.homespec.HomeSpecModel``) validates in pydantic's lax mode: it took
``"has_prv": 0`` and numbers sent as strings, which the published schema calls invalid. The
schema (with the rules of :mod:`service.api.openapi`) is what a client codes against, so the
server refuses what it refuses: 422, in FastAPI's validation shape. Sensor ids must also differ
between lines, which JSON Schema cannot state (two equal ids made the insert fail with 500).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from jsonschema import Draft202012Validator

from service.api.deps import Installer

SPEC_SCHEMA = "#/components/schemas/HomeSpecModel"


def _validator(request: Request) -> Draft202012Validator:
    state = request.app.state
    if getattr(state, "spec_validator", None) is None:
        document = request.app.openapi()
        schema = {"$ref": SPEC_SCHEMA, "components": document["components"]}
        state.spec_validator = Draft202012Validator(schema)
    return state.spec_validator


def _error(loc: tuple[Any, ...], msg: str, value: Any) -> dict[str, Any]:
    return {"type": "value_error", "loc": ("body", *loc), "msg": msg, "input": value}


async def check_spec_body(request: Request, _: Installer) -> None:
    """Refuse (422) a home spec the published schema refuses, or whose sensors share an id
    (after authentication: a caller who may not write learns nothing about the body)."""
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):
        return  # FastAPI's own parsing answers it (400)
    errors = [
        _error(tuple(e.absolute_path), e.message, e.instance)
        for e in _validator(request).iter_errors(body)
    ]
    sensors = body.get("sensors") if isinstance(body, dict) else None
    if not errors and isinstance(sensors, dict):
        ids = [s.get("sensor_id") for s in sensors.values() if isinstance(s, dict)]
        if len(set(ids)) < len(ids):
            errors.append(_error(("sensors",), f"sensor ids must differ between lines: {ids}", ids))
    if errors:
        raise RequestValidationError(errors[:20])
