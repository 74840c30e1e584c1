"""``atlas serve``: the runtime and the HTTP API under uvicorn, tied together by the lifespan.

uvicorn handles SIGINT/SIGTERM: it stops accepting requests, then the lifespan's shutdown stops
the runtime (intake first, without acking uncommitted work; scheduler; MQTT) and disposes the
database. The runtime starts before the first request is served.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from service import metrics
from service.api.app import create_app
from service.clock import Clock
from service.gcpauses import PauseTimer, freeze_startup, space_full_collections
from service.runtime.service import AtlasRuntime
from service.settings import Settings
from service.storage.engine import make_engine, require_schema, upgrade

_LOGGER = logging.getLogger(__name__)


def build_app(
    settings: Settings, db: Engine | None = None, clock: Clock | None = None
) -> tuple[FastAPI, AtlasRuntime]:
    """The API app whose lifespan starts and stops an :class:`AtlasRuntime` (``clock``: the
    service's time for both, e.g. the demo's virtual clock; None: from the settings)."""
    own_db = db is None
    db = db or make_engine(settings.db_url)
    runtime = AtlasRuntime(settings, db, clock)
    # the API writes and compares times by the runtime's clock: one clock for both
    app = create_app(settings, db=db, hooks=runtime.hooks(), clock=runtime.clock.now)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        require_schema(db)
        runtime.start()
        try:
            yield
        finally:
            runtime.stop()
            if own_db:
                db.dispose()

    app.router.lifespan_context = lifespan
    app.state.runtime = runtime
    return app, runtime


def serve(settings: Settings, *, migrate: bool = True, clock: Clock | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    if migrate:
        engine = make_engine(settings.db_url)
        upgrade(engine)
        engine.dispose()
    app, _ = build_app(settings, clock=clock)
    config = uvicorn.Config(
        app, host=settings.http_host, port=settings.http_port, log_config=None, access_log=False
    )
    _LOGGER.info("serving on http://%s:%d", settings.http_host, settings.http_port)
    PauseTimer(lambda generation, s: metrics.GC_PAUSES.record("serve", generation, s)).install()
    configure_interpreter(settings)
    uvicorn.Server(config).run()
    return 0


def configure_interpreter(settings: Settings) -> None:
    """Set this process up for latency once start-up has imported everything.

    A person waits for the intake and the provisional path while the classifier's ingests run
    in the same interpreter: collector pauses and waits for the interpreter lock stop them
    (docs/service.md, classification latency).
    """
    freeze_startup()
    space_full_collections()
    sys.setswitchinterval(settings.switch_interval_ms / 1000.0)
