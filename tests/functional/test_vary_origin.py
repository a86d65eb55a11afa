"""``Vary: Origin`` on every answer that depends on the request's Origin.

CORS answers echo the Origin (or say ``*`` without one) and preflights are
cacheable for a year, so a shared cache must key them on Origin: without
``Vary: Origin`` it could hand one origin's answer to another. sockjs-node
0.3.24 sends it on its CORS answers and preflights.
"""

from __future__ import annotations

from typing import Any

import aiohttp_cors
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import aiohttp_sockjs
from demo.conformance import echo
from tests.wire import new_id, session_url

ORIGIN = "https://app.example"


def _varies_on_origin(resp: Any) -> bool:
    fields = {f.strip().lower() for v in resp.headers.getall("Vary", []) for f in v.split(",")}
    return "origin" in fields


def _requests(base: str, sid: str) -> list[tuple[str, str, bytes | None]]:
    """Every request whose answer carries CORS headers, in session order."""
    url = session_url(base, sid, "{}").format
    return [
        ("GET", base + "/info", None),
        ("OPTIONS", base + "/info", None),
        ("OPTIONS", url("xhr"), None),
        ("OPTIONS", url("xhr_send"), None),
        ("OPTIONS", url("xhr_streaming"), None),
        ("POST", url("xhr"), None),
        ("POST", url("xhr_send"), b'["x"]'),
        ("POST", url("xhr"), None),
        ("POST", session_url(base, new_id(), "xhr_streaming"), None),
        ("GET", session_url(base, new_id(), "eventsource"), None),
        ("GET", session_url(base, new_id(), "htmlfile") + "?c=cb", None),
        ("GET", session_url(base, new_id(), "jsonp") + "?c=cb", None),
        # Errors on session URLs carry CORS headers too, so the client can read them.
        ("POST", session_url(base, new_id(), "xhr_send"), b'["x"]'),
        ("POST", url("xhr_send"), b"[broken"),
    ]


@pytest.mark.parametrize("origin", [ORIGIN, None], ids=["origin", "no-origin"])
async def test_cors_answers_vary_on_origin(
    conformance: TestClient[Any, Any], origin: str | None
) -> None:
    """With or without Origin (``*`` then), every CORS answer says ``Vary: Origin``."""
    headers = {} if origin is None else {"Origin": origin}
    for method, path, body in _requests("/echo", new_id()):
        async with conformance.request(method, path, data=body, headers=headers) as resp:
            assert resp.status < 500 or path.endswith("xhr_send"), (method, path, resp.status)
            assert resp.headers["Access-Control-Allow-Origin"] == (origin or "*"), (method, path)
            assert _varies_on_origin(resp), (method, path, resp.headers)


async def test_preflight_is_cached_per_origin(conformance: TestClient[Any, Any]) -> None:
    """The year-long cacheable preflight says it varies on Origin."""
    async with conformance.options("/echo/info", headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 204
        assert resp.headers["Cache-Control"] == "public, max-age=31536000"
        assert _varies_on_origin(resp)


async def test_refused_origin_varies_on_origin(aiohttp_client: Any) -> None:
    """A 403 for an origin outside ``allowed_origins`` depends on Origin too."""
    app = web.Application()
    aiohttp_sockjs.setup(app, "/e", echo, allowed_origins=[ORIGIN])
    client: TestClient[Any, Any] = await aiohttp_client(app)
    bad = {"Origin": "https://evil.example"}
    for method, path, body in _requests("/e", new_id())[:7]:
        async with client.request(method, path, data=body, headers=bad) as resp:
            assert resp.status == 403, (method, path)
            assert _varies_on_origin(resp), (method, path)
    upgrade = {
        **bad,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    async with client.get(session_url("/e", new_id(), "websocket"), headers=upgrade) as resp:
        assert resp.status == 403
        assert _varies_on_origin(resp)


async def test_aiohttp_cors_answers_vary_on_origin(aiohttp_client: Any) -> None:
    """With ``cors_config`` our answers still say ``Vary: Origin``."""
    app = web.Application()
    cors = aiohttp_cors.setup(
        app, defaults={ORIGIN: aiohttp_cors.ResourceOptions(allow_credentials=True)}
    )
    aiohttp_sockjs.setup(app, "/e", echo, cors_config=cors)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    for path in ["/e/info", session_url("/e", new_id(), "xhr")]:
        method = "GET" if path.endswith("info") else "POST"
        async with client.request(method, path, headers={"Origin": ORIGIN}) as resp:
            assert resp.status == 200, path
            assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert _varies_on_origin(resp), path


async def test_origin_independent_answers_do_not_vary(conformance: TestClient[Any, Any]) -> None:
    """The greeting and the iframe page are the same for every origin."""
    for path in ["/echo", "/echo/iframe.html"]:
        async with conformance.get(path, headers={"Origin": ORIGIN}) as resp:
            assert resp.status == 200
            assert "Vary" not in resp.headers, path
