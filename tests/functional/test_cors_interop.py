"""Apps that already configure CORS with aiohttp-cors hand it our routes."""

from __future__ import annotations

import aiohttp_cors
from aiohttp import web
from pytest_aiohttp import AiohttpClient

import aiohttp_sockjs
from aiohttp_sockjs import Session

ORIGIN = "http://client.example"


async def echo(session: Session) -> None:
    async for message in session:
        session.send(message)


def make_app() -> web.Application:
    app = web.Application()
    cors = aiohttp_cors.setup(
        app,
        defaults={
            ORIGIN: aiohttp_cors.ResourceOptions(
                allow_credentials=True, expose_headers="*", allow_headers="*"
            )
        },
    )
    aiohttp_sockjs.setup(app, "/echo", echo, cors_config=cors)
    return app


async def test_preflight_answered_by_aiohttp_cors(aiohttp_client: AiohttpClient) -> None:
    """OPTIONS on /info and xhr routes follows the app's aiohttp-cors config."""
    client = await aiohttp_client(make_app())
    for path in ["/echo/info", "/echo/a/b/xhr", "/echo/a/b/xhr_send"]:
        method = "GET" if path.endswith("info") else "POST"
        resp = await client.options(
            path,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert resp.status == 200, path
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert resp.headers["Access-Control-Allow-Credentials"] == "true"
        assert method in resp.headers["Access-Control-Allow-Methods"]


async def test_unlisted_origin_gets_no_cors(aiohttp_client: AiohttpClient) -> None:
    """An origin the app did not list gets no CORS headers from us either."""
    client = await aiohttp_client(make_app())
    resp = await client.get("/echo/info", headers={"Origin": "http://evil.example"})
    assert resp.status == 200
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_xhr_echo_with_aiohttp_cors(aiohttp_client: AiohttpClient) -> None:
    """The session transports still work, with aiohttp-cors's headers."""
    client = await aiohttp_client(make_app())
    headers = {"Origin": ORIGIN}
    resp = await client.post("/echo/a/b/xhr", headers=headers)
    assert await resp.text() == "o\n"
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    resp = await client.post("/echo/a/b/xhr_send", data='["hi"]', headers=headers)
    assert resp.status == 204
    resp = await client.post("/echo/a/b/xhr", headers=headers)
    assert await resp.text() == 'a["hi"]\n'
