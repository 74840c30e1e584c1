"""The FastAPI application factory.

``create_app(settings, db=engine, hooks=..., clock=...)`` builds everything from its arguments
(nothing at import time), so tests, the demo and ``atlas serve`` each pass their own database,
settings and clock.
It starts no intake and no scheduler: with ``hooks=None`` it serves everything from the
database alone (stateless HTTP: any worker answers any request).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from prometheus_client import make_asgi_app
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.auth import TokenAuthenticator
from service.api.bodylimit import BodyLimit
from service.api.hooks import ApiHooks, EventHub
from service.api.openapi import state_home_spec_rules
from service.api.routers import (
    accuracy,
    alerts,
    checklist,
    events,
    fleet,
    health,
    homes,
    label_requests,
    pages,
    usage,
    uses,
)
from service.api.streamslots import StreamSlots
from service.clock import clock_from_settings
from service.settings import Settings

_LOGGER = logging.getLogger(__name__)

DESCRIPTION = """
Atlas calibrates pressure-wave water sensing per home. This API serves installers (create a
home from its spec), homeowners (answer the few questions Atlas asks, run the week-1 checklist)
and dashboards (calibration phase, display level, accuracy estimates, classified water uses).

**Auth**: `Authorization: Bearer <token>`. Roles: admin/installer (all homes, write),
dashboard (all homes, read-only), homeowner (their own home: read, answer, announce).
401 = no or unknown token; 403 = valid token, not allowed. See docs/api.md.

**Limits**: a request body above `http_max_body_bytes` (64 KiB) gets 413 before it is read;
event streams beyond `sse_max_streams_per_token` or `sse_max_streams_per_home` get 429.
"""


class MetricsGuard:
    """Prometheus ``/metrics`` for admin and dashboard tokens only (it names homes)."""

    def __init__(self, app: ASGIApp, auth: TokenAuthenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.auth.open_mode:
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            scheme, _, token = header.partition(" ")
            principal = self.auth.authenticate(token) if scheme.lower() == "bearer" else None
            if principal is None or not principal.all_homes:
                status = 401 if principal is None else 403
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"text/plain"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b"metrics need a token\n"})
                return
        await self.app(scope, receive, send)


class AllowedMethods:
    """The ``Allow`` header of a 405: every method documented for the path.

    Starlette answers 405 from the first route whose path matches, which lists only that
    route's methods (GET and POST of ``/v1/homes`` are two routes); RFC 9110 wants them all.
    """

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._table: list[tuple[re.Pattern[str], str]] | None = None

    def for_path(self, path: str) -> str | None:
        if self._table is None:
            self._table = [
                (
                    re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"),
                    ", ".join(sorted(m.upper() for m in ops)),
                )
                for template, ops in self._app.openapi()["paths"].items()
            ]
        return next((allow for pattern, allow in self._table if pattern.match(path)), None)


def create_app(
    settings: Settings,
    *,
    db: Engine,
    hooks: ApiHooks | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The HTTP API and pages over ``db``; ``hooks`` connect it to a running service.

    ``clock`` is the service's time (the runtime's, e.g. the demo's virtual clock); None: the
    simulated clock of the ``sim_*`` settings, else real time. Every time the API writes
    (a home's ``created_at``, an answer, an announcement) and every expiry it checks is read
    from it, so a simulated service never mixes in the wall clock.
    """
    hooks = hooks or ApiHooks()
    auth = TokenAuthenticator(settings)
    app = FastAPI(
        title="Atlas",
        version="1",
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "homes", "description": "Homes, their state and fixture inventory."},
            {"name": "label-requests", "description": "Questions to the homeowner; answers."},
            {"name": "uses", "description": "Classified water uses."},
            {"name": "usage", "description": "Counts, minutes and litres per group and day/week."},
            {"name": "alerts", "description": "Leak and anomaly alerts; acknowledging them."},
            {"name": "accuracy", "description": "Accuracy estimates and the level timeline."},
            {"name": "checklist", "description": "Week-1 checklist and announcements."},
            {"name": "events", "description": "Server-Sent Events per home."},
            {"name": "fleet", "description": "The fleet of calibrated homes (dashboards)."},
            {"name": "health", "description": "Liveness and readiness."},
        ],
    )
    app.state.settings = settings
    app.state.clock = (
        clock
        or clock_from_settings(settings.sim_start, settings.sim_wall_start, settings.sim_speed).now
    )
    app.state.engine = db
    app.state.hooks = hooks
    app.state.hub = hooks.hub or EventHub()
    app.state.auth = auth
    app.state.stream_slots = StreamSlots(
        settings.sse_max_streams_per_token, settings.sse_max_streams_per_home
    )
    if auth.open_mode:
        _LOGGER.warning(
            "HTTP API is OPEN: environment=development and no tokens configured; "
            "every caller is admin"
        )
    for module in (
        health,
        homes,
        label_requests,
        uses,
        usage,
        alerts,
        accuracy,
        checklist,
        events,
        fleet,
        pages,
    ):
        app.include_router(module.router)
    generate = app.openapi
    app.openapi = lambda: app.openapi_schema or state_home_spec_rules(generate())  # type: ignore[method-assign]
    app.mount("/metrics", MetricsGuard(make_asgi_app(), auth))
    app.add_middleware(BodyLimit, max_bytes=settings.http_max_body_bytes)
    allowed = AllowedMethods(app)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            allow = allowed.for_path(request.url.path)
            if allow is not None:
                exc.headers = {**(exc.headers or {}), "Allow": allow}
        return await http_exception_handler(request, exc)

    return app
