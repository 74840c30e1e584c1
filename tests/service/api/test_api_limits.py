"""Bounds of the HTTP API: request bodies (413 before they are read) and open event streams
(429 beyond the caps per token and per home)."""

from __future__ import annotations

import json
import select
import socket
from contextlib import ExitStack
from urllib.parse import urlparse

import httpx
import pytest
from api_factories import api_settings, bearer
from fastapi.testclient import TestClient
from live_server import live_server

from service.api.app import create_app
from service.api.hooks import ApiHooks, EventHub
from service.waiting import wait_until

HUGE = 200 * 1024 * 1024


def _answer_path(home: dict) -> str:
    return f"/v1/homes/{home['home_id']}/label-requests/{home['requests'][0]}/answer"


def _response_of(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def server(sqlite_engine, homes_sqlite):
    a, b = homes_sqlite["a"], homes_sqlite["b"]
    app = create_app(api_settings(a["home_id"], b["home_id"]), db=sqlite_engine)
    with live_server(app) as base:
        yield urlparse(base)


def test_declared_huge_body_without_token_is_refused_unread(server, homes_sqlite) -> None:
    """Only the headers are sent: the 413 comes without waiting for a byte of the body."""
    with socket.create_connection((server.hostname, server.port)) as sock:
        sock.sendall(
            f"POST {_answer_path(homes_sqlite['a'])} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {HUGE}\r\n\r\n".encode()
        )
        head = _response_of(sock)
    assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head.lower()


def test_streamed_body_is_refused_once_past_the_limit(server, homes_sqlite) -> None:
    """A chunked body (no length) is counted as it arrives: 413 after about 64 KiB."""
    sent = 0
    with socket.create_connection((server.hostname, server.port)) as sock:
        sock.sendall(
            f"POST {_answer_path(homes_sqlite['a'])} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
        try:
            while sent < HUGE and not select.select([sock], [], [], 0)[0]:
                sock.sendall(chunk)
                sent += 0x4000
        except (BrokenPipeError, ConnectionResetError):
            pass
        head = _response_of(sock)
    assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head.lower(), head[:200]
    assert sent < 8 * 1024 * 1024  # the server stopped reading long before 200 MB


@pytest.mark.parametrize(("size", "refused"), [(1500, False), (2100, True)])
def test_body_limit_is_the_setting(sqlite_engine, homes_sqlite, size, refused) -> None:
    a, b = homes_sqlite["a"], homes_sqlite["b"]
    app = create_app(
        api_settings(a["home_id"], b["home_id"], http_max_body_bytes=2048), db=sqlite_engine
    )
    body = json.dumps({"choice": a["choices"][0], "answered_by": "x" * 100}).encode()
    body += b" " * (size - len(body))
    headers = bearer("owner_a") | {"Content-Type": "application/json"}
    with TestClient(app) as client:
        r = client.post(_answer_path(a), content=body, headers=headers)
    assert (r.status_code == 413) == refused, r.text
    if refused:
        assert r.json()["detail"] == (
            f"request body of {size} bytes exceeds http_max_body_bytes=2048"
        )


def _open(stack: ExitStack, client: httpx.Client, url: str, role: str) -> httpx.Response:
    response = stack.enter_context(client.stream("GET", url, headers=bearer(role)))
    if response.status_code == 200:
        lines = response.iter_lines()  # kept: a dropped line iterator closes the stream
        assert next(lines).startswith("event: hello")
        stack.callback(lines.close)
    return response


@pytest.mark.timeout(60)
def test_streams_are_capped_per_token_and_per_home(sqlite_engine, homes_sqlite) -> None:
    a, b = homes_sqlite["a"], homes_sqlite["b"]
    settings = api_settings(
        a["home_id"], b["home_id"], sse_max_streams_per_token=2, sse_max_streams_per_home=3
    )
    app = create_app(settings, db=sqlite_engine, hooks=ApiHooks(hub=EventHub()))
    slots = app.state.stream_slots
    with live_server(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        url = f"/v1/homes/{a['home_id']}/stream"
        with ExitStack() as first:
            assert _open(first, client, url, "owner_a").status_code == 200
            with ExitStack() as rest:
                assert _open(rest, client, url, "owner_a").status_code == 200
                third = _open(rest, client, url, "owner_a")
                assert third.status_code == 429
                third.read()
                assert "sse_max_streams_per_token=2" in third.json()["detail"]
                assert _open(rest, client, url, "admin").status_code == 200
                by_home = _open(rest, client, url, "dashboard")
                assert by_home.status_code == 429
                by_home.read()
                assert "sse_max_streams_per_home=3" in by_home.json()["detail"]
                assert _open(rest, client, f"/v1/homes/{b['home_id']}/stream", "dashboard")
            assert wait_until(lambda: slots.open_streams(a["home_id"]) == 1, 10)
        assert wait_until(lambda: slots.open_streams(a["home_id"]) == 0, 10)
        with ExitStack() as again:  # closed streams gave their slots back
            assert _open(again, client, url, "owner_a").status_code == 200
