"""Error bodies and the documented error responses of each kind of route.

Every route declares the errors it can return (``responses=``), so the OpenAPI schema documents
every status a client can see (schemathesis checks this).
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, Field


class Problem(BaseModel):
    """An error: ``detail`` names the field or resource, the constraint and the value received."""

    detail: str = Field(examples=["home 'h-x' has no label request request_id='r-1'"])


def _r(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


UNAUTHORIZED = {401: _r("No bearer token (or cookie), or an unknown token.")}
FORBIDDEN = {403: _r("The token is valid but its role may not do this (or not for this home).")}
NOT_FOUND = {404: _r("No such home (or no such resource in this home).")}
CONFLICT = {409: _r("The request conflicts with the stored state.")}
BAD_REQUEST = {400: _r("The request could not be read (e.g. malformed JSON or cursor).")}
TOO_LARGE = {413: _r("The body is larger than the setting http_max_body_bytes (64 KiB).")}
TOO_MANY_STREAMS = {429: _r("The token or the home holds as many streams as allowed.")}

#: Routes that read one home.
HOME_READ = UNAUTHORIZED | FORBIDDEN | NOT_FOUND
#: Routes that write with a JSON body.
HOME_WRITE = HOME_READ | BAD_REQUEST | TOO_LARGE


def as_json(responses: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """``responses`` documented as ``application/json`` whatever the route's response class.

    FastAPI documents a response's ``model`` under the route's media type: for the event
    stream that is ``text/event-stream``, while its errors are JSON. Naming the content
    directly (no ``model``) keeps the route's media type out.
    """
    json = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        code: {"description": r["description"], "content": json} for code, r in responses.items()
    }


def unprocessable(loc: tuple[str | int, ...], msg: str, value: Any = None) -> HTTPException:
    """A 422 for a rule the schema cannot express (e.g. a choice the request did not offer).

    Same body shape as FastAPI's own validation errors (``detail``: a list naming the field
    by ``loc``), so clients and the documented 422 schema see one format.
    """
    return HTTPException(
        422, detail=[{"type": "value_error", "loc": list(loc), "msg": msg, "input": value}]
    )
