"""Liveness (``/healthz``) and readiness (``/readyz``): no token needed, no home data."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from service.api.schemas.health import Health, Readiness

_LOGGER = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process answers HTTP."""
    return Health(status="ok")


def database_ok(request: Request) -> bool:
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # any driver error means "not reachable"; logged, not raised
        _LOGGER.warning("readiness: database check failed", exc_info=True)
        return False
    return True


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is not ready."}},
)
def readyz(request: Request) -> JSONResponse:
    """Database reachable (and, under ``atlas serve``, broker connected, scheduler running)."""
    hooks = request.app.state.hooks
    checks = {"database": database_ok(request)}
    checks.update(hooks.readiness())
    body = Readiness(
        ready=all(checks.values()), checks=checks, open_mode=request.app.state.auth.open_mode
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)
