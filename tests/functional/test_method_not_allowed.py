"""A method a SockJS URL does not serve: 405 with ``Allow``, and no body."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.wire import new_id, session_url

#: Every URL of an endpoint and the methods it serves, as ``Allow`` lists them.
ALLOWED = [
    ("", {"GET"}),
    ("/", {"GET"}),
    ("/info", {"GET", "OPTIONS"}),
    ("/iframe.html", {"GET"}),
    ("/iframe-1.6.1.html", {"GET"}),
    ("/websocket", {"GET"}),
    ("websocket", {"GET"}),
    ("xhr", {"OPTIONS", "POST"}),
    ("xhr_send", {"OPTIONS", "POST"}),
    ("xhr_streaming", {"OPTIONS", "POST"}),
    ("eventsource", {"GET"}),
    ("htmlfile", {"GET"}),
    ("jsonp", {"GET"}),
    ("jsonp_send", {"POST"}),
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


def _url(base: str, path: str) -> str:
    if path == "" or path.startswith("/"):
        return base + path
    return session_url(base, new_id(), path)


def _allow(value: str) -> set[str]:
    return {method.strip() for method in value.split(",")}


@pytest.mark.parametrize(("path", "allowed"), ALLOWED, ids=[p or "base" for p, _ in ALLOWED])
async def test_every_405_has_allow_and_no_body(
    conformance: TestClient[Any, Any], path: str, allowed: set[str]
) -> None:
    """Every method a URL does not serve gets 405, ``Allow``, no type and no body."""
    for method in METHODS:
        if method in allowed:
            continue
        async with conformance.request(method, _url("/echo", path), data=b"x") as resp:
            assert resp.status == 405, (method, path)
            assert _allow(resp.headers["Allow"]) == allowed, (method, path)
            assert "Content-Type" not in resp.headers, (method, path)
            assert await resp.read() == b"", (method, path)


async def test_allow_follows_disabled_transports(serve: Any) -> None:
    """``Allow`` names only what is served: xhr_send stays POST-only with
    jsonp's form sends, and a disabled transport's URL is 404, not 405."""
    client = await serve(disabled_transports={"websocket", "jsonp"})
    async with client.put(session_url("/e", new_id(), "xhr_send")) as resp:
        assert resp.status == 405
        assert _allow(resp.headers["Allow"]) == {"OPTIONS", "POST"}
    for path in ("jsonp_send", "jsonp", "websocket"):
        async with client.put(session_url("/e", new_id(), path)) as resp:
            assert resp.status == 404, path


async def test_405_with_aiohttp_cors(aiohttp_client: Any) -> None:
    """With ``cors_config`` the preflight routes are aiohttp-cors's, and ``Allow`` says so."""
    import aiohttp_cors
    from aiohttp import web

    import aiohttp_sockjs
    from demo.conformance import echo

    app = web.Application()
    cors = aiohttp_cors.setup(
        app, defaults={"http://a.example": aiohttp_cors.ResourceOptions(allow_credentials=True)}
    )
    aiohttp_sockjs.setup(app, "/e", echo, cors_config=cors)
    client = await aiohttp_client(app)
    for path, allowed in [("/info", {"GET", "OPTIONS"}), ("xhr", {"OPTIONS", "POST"})]:
        async with client.put(_url("/e", path)) as resp:
            assert resp.status == 405, path
            assert _allow(resp.headers["Allow"]) == allowed, path
            assert await resp.read() == b""
    # The preflight itself still reaches aiohttp-cors.
    headers = {"Origin": "http://a.example", "Access-Control-Request-Method": "POST"}
    async with client.options(_url("/e", "xhr"), headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == "http://a.example"
