"""Server and session ids outside the protocol's rules are a 404 on every transport.

An id is 1 to ``MAX_ID_LENGTH`` characters without ``/``, ``.`` or a control
character. Requests go over raw sockets so the percent-encoding on the wire
is exactly the one written here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs import protocol
from tests.conftest import FAST
from tests.wire import new_id

#: (method, transport, query) for every session URL.
ROUTES = [
    ("POST", "xhr", ""),
    ("POST", "xhr_send", ""),
    ("POST", "xhr_streaming", ""),
    ("GET", "eventsource", ""),
    ("GET", "htmlfile", "?c=cb"),
    ("GET", "jsonp", "?c=cb"),
    ("POST", "jsonp_send", ""),
    ("GET", "websocket", ""),
]

UPGRADE = (
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)

LONG = "a" * 8000
BAD_SESSION_IDS = {
    "8000 characters": LONG,
    "one over the cap": "b" * (protocol.MAX_ID_LENGTH + 1),
    "NUL": "x%00y",
    "newline": "x%0AINFO:aiohttp_sockjs:FORGED",
    "carriage return": "x%0Dy",
    "escape": "x%1B[31my",
    "DEL": "x%7Fy",
    "C1 NEL": "x%C2%85y",
}


async def status_of(port: int, method: str, path: str, body: bytes = b"") -> int:
    """The status code of one raw request on a fresh connection (GETs go without ``body``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if method == "GET":
        body = b""
    headers = UPGRADE if path.endswith("/websocket") else "Connection: close\r\n"
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{headers}"
        "\r\n".encode()
        + body
    )
    line = await asyncio.wait_for(reader.readline(), 3)
    writer.close()
    return int(line.split()[1])


@pytest.fixture
async def echo_server(aiohttp_server: Any) -> tuple[int, aiohttp_sockjs.Endpoint]:
    async def echo(session: aiohttp_sockjs.Session) -> None:
        async for message in session:
            session.send(message)

    app = web.Application()
    endpoint = aiohttp_sockjs.setup(app, "/e", echo, **FAST)
    server = await aiohttp_server(app)
    return server.port, endpoint


@pytest.mark.parametrize("sid", BAD_SESSION_IDS.values(), ids=BAD_SESSION_IDS.keys())
@pytest.mark.parametrize(("method", "transport", "query"), ROUTES)
async def test_bad_session_id_is_404(
    echo_server: tuple[int, aiohttp_sockjs.Endpoint],
    method: str,
    transport: str,
    query: str,
    sid: str,
) -> None:
    """No session is made or found under an id the protocol does not allow."""
    port, endpoint = echo_server
    path = f"/e/000/{sid}/{transport}{query}"
    assert await status_of(port, method, path, b'["x"]') == 404
    assert endpoint.sessions == []


@pytest.mark.parametrize(
    "server_id", ["s" * (protocol.MAX_ID_LENGTH + 1), "%00", "a%0Ab", "x%7F"], ids=repr
)
@pytest.mark.parametrize(("method", "transport", "query"), ROUTES)
async def test_bad_server_id_is_404(
    echo_server: tuple[int, aiohttp_sockjs.Endpoint],
    method: str,
    transport: str,
    query: str,
    server_id: str,
) -> None:
    """The server id follows the same rules, although it is otherwise ignored."""
    port, endpoint = echo_server
    path = f"/e/{server_id}/{new_id()}/{transport}{query}"
    assert await status_of(port, method, path, b'["x"]') == 404
    assert endpoint.sessions == []


@pytest.mark.parametrize(
    "sid",
    ["c" * protocol.MAX_ID_LENGTH, "caf%C3%A9", "with%20space", "x~!$'()*+,;=:@y"],
    ids=["at the cap", "non-ASCII", "space", "sub-delims"],
)
async def test_ids_within_the_rules_open_sessions(
    echo_server: tuple[int, aiohttp_sockjs.Endpoint], sid: str
) -> None:
    """Ids at the length cap or with any printable character work as before."""
    port, endpoint = echo_server
    assert await status_of(port, "POST", f"/e/{sid}/{sid}/xhr") == 200
    assert len(endpoint.sessions) == 1
