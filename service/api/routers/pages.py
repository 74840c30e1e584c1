"""The homeowner page and the dashboard page (HTML, phone-friendly, server-rendered).

Tokens: open a page once as ``/homes/{home_id}?token=TOKEN``; the server sets the token as an
HttpOnly, SameSite=Strict cookie and redirects to the clean URL (so the token leaves the
address bar and the history). An ``Authorization: Bearer`` header works too. The page's
buttons call the JSON API with the cookie and the ``X-Atlas-Page: 1`` header.
"""

from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security.utils import get_authorization_scheme_param

from service.api.auth import Principal, TokenAuthenticator
from service.api.deps import TOKEN_COOKIE, ConnDep, NowDep, SettingsDep
from service.api.html import dashboard_page, homeowner_page, message_page
from service.api.routers.accuracy import accuracy_history
from service.api.routers.alerts import alert_public
from service.api.routers.checklist import get_checklist
from service.api.routers.homes import get_home
from service.api.routers.label_requests import request_public
from service.api.schemas.common import HomeIdPath
from service.api.schemas.homes import HomePublic
from service.api.schemas.label_requests import LabelRequestPublic
from service.api.schemas.usage import UsagePublic
from service.api.usage_report import usage_report
from service.api.wording import label_texts
from service.push.text import describe_use
from service.storage import dashboard
from service.storage.alerts import list_alerts
from service.storage.uses import load_uses

router = APIRouter(tags=["pages"], include_in_schema=False)
TOKEN_MAX_AGE_S = 90 * 24 * 3600


def _html(content: str, nonce: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        content,
        status_code=status,
        headers={
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
                "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                "form-action 'none'; frame-ancestors 'none'"
            ),
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


def _principal(request: Request) -> Principal | None:
    auth: TokenAuthenticator = request.app.state.auth
    scheme, credentials = get_authorization_scheme_param(request.headers.get("Authorization"))
    if scheme.lower() == "bearer" and credentials:
        return auth.authenticate(credentials)
    cookie = request.cookies.get(TOKEN_COOKIE)
    return auth.authenticate(cookie, via_cookie=cookie is not None)


def _gate(request: Request, home_id: str, token: str | None, conn) -> Response | None:
    """A response that ends the request (redirect or error page), or None to render."""
    nonce = secrets.token_urlsafe(12)
    if token is not None:
        auth: TokenAuthenticator = request.app.state.auth
        if auth.authenticate(token) is None:
            return _html(
                message_page("Unknown link", "This link's token is not valid.", nonce), nonce, 401
            )
        response = RedirectResponse(request.url.path, status_code=303)
        response.set_cookie(
            TOKEN_COOKIE,
            token,
            max_age=TOKEN_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response
    principal = _principal(request)
    if principal is None:
        text = "Open the link you were given (it ends in ?token=...)."
        return _html(message_page("Sign-in needed", text, nonce), nonce, 401)
    if not principal.can_read(home_id):
        return _html(
            message_page("Not your home", "This link is for another home.", nonce), nonce, 403
        )
    if not dashboard.home_exists(conn, home_id):
        return _html(message_page("Unknown home", f"No home {home_id}.", nonce), nonce, 404)
    return None


TokenQuery = Annotated[str | None, Query(max_length=256, description="Sets the token cookie.")]


def _worded_as_of(
    conn, home_id: str, tz: ZoneInfo, requests: list[LabelRequestPublic], now: datetime
) -> list[LabelRequestPublic]:
    """``requests`` with their prompts worded as of ``now``: a prompt is written when the
    request is sent, and "Yesterday at 20:15" was still shown five days later."""
    used = load_uses(conn, home_id, only=[r.use_id for r in requests if r.use_id is not None])
    uses = {u.use_id: u for u in used}
    worded = []
    for req in requests:
        use = uses.get(req.use_id) if req.use_id is not None else None
        if use is not None and (use.t_open or use.t_close) is not None:
            text = describe_use(use.t_open, use.t_close, use.lines, now, tz)
            req = req.model_copy(update={"prompt": text})
        worded.append(req)
    return worded


def this_weeks_water(conn, home: HomePublic, now: datetime) -> UsagePublic | None:
    """``GET /v1/homes/{id}/usage`` from the start of the home-local week (Monday 00:00) to
    ``now``, at the certified grouping, with the endpoint's default confidence threshold (None
    at the very first instant of the week)."""
    tz = ZoneInfo(home.timezone)
    today = now.astimezone(tz).date()
    monday = datetime.combine(today - timedelta(days=today.weekday()), time(0), tzinfo=tz)
    if monday >= now:
        return None
    # the water chart's grouping: the display level's own (the rules' categories in week 1)
    group = dashboard.CLASSIFICATION_LEVEL.get(home.display_level, "category")
    return usage_report(conn, home.home_id, now, start=monday, end=now, bucket="week", group=group)


@router.get("/homes/{home_id}", response_class=HTMLResponse)
def homeowner(
    request: Request, home_id: HomeIdPath, conn: ConnDep, now: NowDep, token: TokenQuery = None
):
    """Open alerts, open questions with big answer buttons, this week's water, and the week-1
    checklist."""
    stop = _gate(request, home_id, token, conn)
    if stop is not None:
        return stop
    nonce = secrets.token_urlsafe(12)
    texts = label_texts(dashboard.fixture_inventory(conn, home_id))
    home = get_home(home_id, conn)
    requests = [
        request_public(r, texts)
        for r in dashboard.label_requests_of(conn, home_id, state="sent", limit=50)
    ]
    requests = _worded_as_of(conn, home_id, ZoneInfo(home.timezone), requests, now)
    water = this_weeks_water(conn, home, now)
    alerts = [alert_public(a) for a in list_alerts(conn, home_id, only_open=True, limit=20)]
    page = homeowner_page(home, requests, get_checklist(home_id, conn), nonce, water, alerts)
    return _html(page, nonce)


@router.get("/homes/{home_id}/dashboard", response_class=HTMLResponse)
def dashboard_view(
    request: Request,
    home_id: HomeIdPath,
    conn: ConnDep,
    now: NowDep,
    settings: SettingsDep,
    token: TokenQuery = None,
):
    """This week's water, accuracy over time and the level timeline (read-only)."""
    stop = _gate(request, home_id, token, conn)
    if stop is not None:
        return stop
    nonce = secrets.token_urlsafe(12)
    history = accuracy_history(home_id, conn, level=None, limit=10000)
    home = get_home(home_id, conn)
    water = this_weeks_water(conn, home, now)
    page = dashboard_page(home, history, nonce, water, confidence=settings.estimate_confidence)
    return _html(page, nonce)
