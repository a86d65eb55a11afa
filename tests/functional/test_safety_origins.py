"""The allowed_origins option: CORS answers and websocket upgrades per origin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import aiohttp_sockjs
from aiohttp_sockjs import Session
from aiohttp_sockjs.options import OriginPolicy

Factory = Callable[..., Awaitable[TestClient[Any, Any]]]
ACAO = "Access-Control-Allow-Origin"
GOOD = ["https://example.com", "https://app.example.org", "http://localhost:8080"]
BAD = [
    "https://evil.com",
    "http://example.com",
    "https://example.com:444",
    "https://example.org",
    "https://example.com.evil.com",
    "https://badexample.org",
    "http://localhost",
    "null",
]


async def echo(session: Session) -> None:
    async for message in session:
        session.send(message)


async def serve(aiohttp_client: Factory, **options: Any) -> TestClient[Any, Any]:
    app = web.Application()
    aiohttp_sockjs.setup(app, "/echo", echo, **options)
    return await aiohttp_client(app)


RESTRICTED = {
    "allowed_origins": ["https://example.com", "https://*.example.org", "http://localhost:8080"]
}


def test_origin_policy_matching() -> None:
    policy = OriginPolicy(RESTRICTED["allowed_origins"])
    for origin in [*GOOD, "https://a.b.example.org", "HTTPS://Example.COM"]:
        assert policy.allows(origin), origin
    for origin in BAD:
        assert not policy.allows(origin), origin
    with pytest.raises(ValueError):
        OriginPolicy(["example.com"])
    with pytest.raises(ValueError):
        OriginPolicy(["https://ex*ample.com"])


def _requests(sid: str) -> list[tuple[str, str, bytes | None]]:
    base = f"/echo/000/{sid}"
    return [
        ("GET", "/echo/info", None),
        ("OPTIONS", "/echo/info", None),
        ("OPTIONS", base + "/xhr", None),
        ("POST", base + "/xhr", None),
        ("POST", base + "/xhr_send", b'["x"]'),
        ("POST", base + "/xhr_streaming", None),
        ("GET", base + "/eventsource", None),
    ]


@pytest.mark.parametrize("origin", BAD)
async def test_disallowed_origin_gets_403_without_cors(
    aiohttp_client: Factory, origin: str
) -> None:
    client = await serve(aiohttp_client, **RESTRICTED)
    for method, path, body in _requests("s1"):
        async with client.request(method, path, data=body, headers={"Origin": origin}) as r:
            assert r.status == 403, (method, path)
            assert ACAO not in r.headers
            assert "Access-Control-Allow-Credentials" not in r.headers
    for path in ("/echo/000/s2/websocket", "/echo/websocket"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await client.ws_connect(path, headers={"Origin": origin})
        assert info.value.status == 403
    # jsonp_send is a form post, which carries an Origin.
    async with client.post(
        "/echo/000/s1/jsonp_send", data={"d": '["x"]'}, headers={"Origin": origin}
    ) as r:
        assert r.status == 403


@pytest.mark.parametrize("origin", GOOD)
async def test_allowed_origin_works(aiohttp_client: Factory, origin: str) -> None:
    client = await serve(aiohttp_client, **RESTRICTED)
    headers = {"Origin": origin}
    async with client.get("/echo/info", headers=headers) as r:
        assert r.status == 200
        assert r.headers[ACAO] == origin
    async with client.post("/echo/000/a/xhr", headers=headers) as r:
        assert await r.text() == "o\n"
        assert r.headers[ACAO] == origin
    async with client.post("/echo/000/a/xhr_send", data=b'["hi"]', headers=headers) as r:
        assert r.status == 204
    async with client.post("/echo/000/a/xhr", headers=headers) as r:
        assert await r.text() == 'a["hi"]\n'
    ws = await client.ws_connect("/echo/000/b/websocket", headers=headers)
    assert await ws.receive_str() == "o"
    await ws.send_str('["yo"]')
    assert await ws.receive_str() == 'a["yo"]'
    await ws.close()


async def test_no_origin_header_is_not_a_browser_request(aiohttp_client: Factory) -> None:
    client = await serve(aiohttp_client, **RESTRICTED)
    async with client.post("/echo/000/a/xhr") as r:
        assert await r.text() == "o\n"
    ws = await client.ws_connect("/echo/000/b/websocket")
    assert await ws.receive_str() == "o"
    await ws.close()


async def test_iframe_and_jsonp_are_off_with_allowed_origins(aiohttp_client: Factory) -> None:
    client = await serve(aiohttp_client, **RESTRICTED)
    async with client.get("/echo/iframe.html") as r:
        assert r.status == 404
    async with client.get("/echo/iframe-1.6.1.html") as r:
        assert r.status == 404
    async with client.get("/echo/000/j/jsonp?c=cb") as r:
        assert r.status == 404


async def test_iframe_and_jsonp_can_be_allowed(aiohttp_client: Factory) -> None:
    client = await serve(aiohttp_client, allow_iframe=True, allow_jsonp=True, **RESTRICTED)
    async with client.get("/echo/iframe.html") as r:
        assert r.status == 200
        assert b"SockJS.bootstrap_iframe()" in await r.read()
    async with client.get("/echo/000/j/jsonp?c=cb") as r:
        assert await r.text() == '/**/cb("o");\r\n'


async def test_without_the_option_every_origin_is_served(aiohttp_client: Factory) -> None:
    client = await serve(aiohttp_client)
    for origin in BAD:
        async with client.get("/echo/info", headers={"Origin": origin}) as r:
            assert r.status == 200
            assert r.headers[ACAO] == origin
    ws = await client.ws_connect("/echo/000/w/websocket", headers={"Origin": "https://evil.com"})
    assert await ws.receive_str() == "o"
    await ws.close()
    async with client.get("/echo/iframe.html") as r:
        assert r.status == 200
    async with client.get("/echo/000/j/jsonp?c=cb") as r:
        assert r.status == 200
