"""A bound on HTTP request bodies, enforced before they are read.

FastAPI reads and parses a JSON body before it resolves the dependencies that authenticate, so
without a bound a 200 MB body without a token was read, parsed and held in memory (the server
grew by a gigabyte over five of them). This middleware is pure ASGI (``BaseHTTPMiddleware``
would buffer): a declared ``Content-Length`` above the limit is answered 413 at once, without
calling the app and before a byte of the body is read; a body without a length (chunked) is
counted as it streams and refused as soon as the count passes the limit. Either 413 closes the
connection, so the server does not read the rest of the body to reach a next request.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Makes uvicorn close the connection after the response instead of draining the body.
_CLOSE = {"Connection": "close"}


class BodyTooLarge(HTTPException):
    """A streamed body passed the limit. Raised from ``receive``: FastAPI re-raises an
    ``HTTPException`` met while reading a body, so the app's handler answers it (413)."""

    def __init__(self, limit: int, size: str) -> None:
        super().__init__(413, _detail(limit, size), headers=_CLOSE)


def _detail(limit: int, size: str) -> str:
    return f"request body of {size} bytes exceeds http_max_body_bytes={limit}"


class BodyLimit:
    """Refuse request bodies of more than ``max_bytes`` (setting ``http_max_body_bytes``)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse(
                {"detail": _detail(self.max_bytes, declared)}, 413, headers=_CLOSE
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes, f"more than {received}")
            return message

        await self.app(scope, counted, send)
