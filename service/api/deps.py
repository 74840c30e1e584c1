"""FastAPI dependencies as ``Annotated`` aliases: the database, the caller, and home access.

A handler states what it needs in its signature (``conn: ConnDep``, ``home_id: ReadableHome``)
and the checks run before it: 401 when the caller is not identified, 403 when identified but
not allowed, 404 only for callers allowed to know whether a home exists (a homeowner asking
about another home gets 403 whether or not it exists, so ids cannot be probed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Engine

from service.api.auth import Principal, TokenAuthenticator
from service.api.hooks import ApiHooks, EventHub
from service.api.schemas.common import HomeIdPath
from service.api.streamslots import StreamSlots
from service.settings import Settings
from service.storage.dashboard import home_exists

#: Name of the cookie a page sets from ``?token=`` (HttpOnly, SameSite=Strict).
TOKEN_COOKIE = "atlas_token"
#: Header a cookie-authenticated write must carry: a cross-site form cannot set it (CSRF guard).
PAGE_HEADER = "X-Atlas-Page"

_bearer = HTTPBearer(auto_error=False, description="A token from `atlas token hash` set-up.")
_cookie = APIKeyCookie(
    name=TOKEN_COOKIE, auto_error=False, description="Set by the pages from ?token=."
)


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_conn(request: Request) -> Iterator[Connection]:
    """A read connection for the request (writes open their own transaction)."""
    with request.app.state.engine.connect() as conn:
        yield conn


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_hooks(request: Request) -> ApiHooks:
    return request.app.state.hooks


def get_hub(request: Request) -> EventHub:
    return request.app.state.hub


def service_now(request: Request) -> datetime:
    """The service's time (``create_app``'s clock). Answers and announcements are compared with
    request expiry and use times, which are service time; the wall clock would call every
    simulated request expired, and a home created "now" by the wall clock would start its
    calibration before its first simulated day."""
    return request.app.state.clock()


EngineDep = Annotated[Engine, Depends(get_engine)]
ConnDep = Annotated[Connection, Depends(get_conn)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
HooksDep = Annotated[ApiHooks, Depends(get_hooks)]
HubDep = Annotated[EventHub, Depends(get_hub)]
NowDep = Annotated[datetime, Depends(service_now)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def current_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    cookie: Annotated[str | None, Security(_cookie)],
) -> Principal:
    """The caller, from ``Authorization: Bearer`` (preferred) or the page cookie."""
    auth: TokenAuthenticator = request.app.state.auth
    if bearer is not None:
        principal = auth.authenticate(bearer.credentials)
    else:
        principal = auth.authenticate(cookie, via_cookie=cookie is not None)
    if principal is None:
        raise _unauthorized(
            "unknown bearer token" if (bearer or cookie) else "missing bearer token"
        )
    if (
        principal.via_cookie
        and request.method not in ("GET", "HEAD", "OPTIONS")
        and request.headers.get(PAGE_HEADER) != "1"
    ):
        raise HTTPException(403, f"a write authenticated by cookie must send {PAGE_HEADER}: 1")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def _existing(conn: Connection, home_id: str) -> str:
    if not home_exists(conn, home_id):
        raise HTTPException(404, f"home_id={home_id!r} is not registered")
    return home_id


def _check_read(principal: Principal, home_id: str) -> None:
    if not principal.can_read(home_id):
        raise HTTPException(403, f"this token may not read home_id={home_id!r}")


def readable_home(home_id: HomeIdPath, principal: CurrentPrincipal, conn: ConnDep) -> str:
    """``home_id`` when the caller may read it (admin, dashboard, that home's homeowner)."""
    _check_read(principal, home_id)
    return _existing(conn, home_id)


def streamable_home(home_id: HomeIdPath, principal: CurrentPrincipal, engine: EngineDep) -> str:
    """:func:`readable_home` for a response that stays open (the SSE stream).

    It checks on a connection of its own and gives it back at once: FastAPI exits request-scoped
    ``yield`` dependencies after the response is sent, and a stream's response lasts as long as
    the dashboard stays open, so a ``ConnDep`` here could hold a pooled connection per stream.
    """
    _check_read(principal, home_id)
    with engine.connect() as conn:
        return _existing(conn, home_id)


def answerable_home(home_id: HomeIdPath, principal: CurrentPrincipal, conn: ConnDep) -> str:
    """``home_id`` when the caller may answer for it (admin, that home's homeowner)."""
    if not principal.can_answer(home_id):
        raise HTTPException(403, f"this token may not answer for home_id={home_id!r}")
    return _existing(conn, home_id)


def installer(principal: CurrentPrincipal) -> Principal:
    """The caller when it may create and update homes (admin/installer tokens)."""
    if not principal.can_install:
        raise HTTPException(403, f"role {principal.role!r} may not create or change homes")
    return principal


def all_homes_reader(principal: CurrentPrincipal) -> Principal:
    """The caller when it may read what concerns every home (admin and dashboard tokens)."""
    if not principal.all_homes:
        raise HTTPException(403, f"role {principal.role!r} may read only its own home")
    return principal


ReadableHome = Annotated[str, Depends(readable_home)]
StreamableHome = Annotated[str, Depends(streamable_home)]
AnswerableHome = Annotated[str, Depends(answerable_home)]
Installer = Annotated[Principal, Depends(installer)]
AllHomesReader = Annotated[Principal, Depends(all_homes_reader)]


async def stream_slot(
    request: Request, home_id: StreamableHome, principal: CurrentPrincipal
) -> AsyncIterator[str]:
    """``home_id`` with one of its stream slots held until the stream ends (429 when the
    token or the home already holds as many streams as the settings allow).

    A ``yield`` dependency: FastAPI runs the code after ``yield`` once the response is over,
    which for a stream is when the client goes away.
    """
    slots: StreamSlots = request.app.state.stream_slots
    refused = slots.take(principal.token_id, home_id)
    if refused is not None:
        raise HTTPException(429, f"too many open streams: {refused}", headers={"Retry-After": "60"})
    try:
        yield home_id
    finally:
        slots.give_back(principal.token_id, home_id)


StreamSlot = Annotated[str, Depends(stream_slot)]
