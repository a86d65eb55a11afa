"""``await client.ping()``: a measured round trip, on every transport."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aiohttp_sockjs import ResponseTimeout, Session, SessionClosed, testing
from aiohttp_sockjs.client import TRANSPORTS, connect

from ...wire import bounded
from .conftest import CLIENT_OPTIONS

#: How long the servers below hold their answer to a ping: the round trip
#: measured must include it.
HOLD = 0.2


async def test_ping_against_real_servers(server_url: str, sockjs_transport: str) -> None:
    """Ours and sockjs-node answer: a positive round trip, the session unharmed."""
    async with connect(
        f"{server_url}/echo", transports=sockjs_transport, **CLIENT_OPTIONS
    ) as client:
        assert client.latency is None
        rtt = await bounded(client.ping())
        assert rtt > 0
        assert client.latency == rtt
        await client.send("after")
        assert await bounded(client.receive()) == "after"


def held_pong_app(pings: list[bytes]) -> web.Application:
    """A SockJS websocket endpoint that answers each ping HOLD s late."""

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        if "session" in request.match_info:
            await ws.send_str("o")
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.PING:
                pings.append(msg.data)
                await asyncio.sleep(HOLD)
                await ws.pong(msg.data)
        return ws

    async def info(request: web.Request) -> web.Response:
        return web.json_response({"websocket": True, "cookie_needed": False})

    app = web.Application()
    app.router.add_get("/p/info", info)
    app.router.add_get("/p/websocket", websocket)
    app.router.add_get("/p/{server}/{session}/websocket", websocket)
    return app


@pytest.mark.parametrize("transport", ["websocket", "raw_websocket"])
async def test_websocket_ping_waits_for_the_pong(aiohttp_server: Any, transport: str) -> None:
    pings: list[bytes] = []
    server = await aiohttp_server(held_pong_app(pings))
    async with connect(server.make_url("/p"), transports=transport, timeout=3) as client:
        rtt = await bounded(client.ping())
        assert len(pings) == 1
        assert rtt >= HOLD
        # A pong that never comes: a timeout, and the session stays open.
        with pytest.raises(ResponseTimeout):
            await bounded(client.ping(timeout=HOLD / 4))
        assert not client.closed


@pytest.mark.parametrize("transport", [t for t in TRANSPORTS if "websocket" not in t])
async def test_http_ping_is_an_info_round_trip(aiohttp_server: Any, transport: str) -> None:
    infos: list[str] = []
    hold = asyncio.Event()

    @web.middleware
    async def slow_info(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.endswith("/info") and hold.is_set():
            infos.append(request.path)
            await asyncio.sleep(HOLD)
        response: web.StreamResponse = await handler(request)
        return response

    async def echo(session: Session) -> None:
        async for message in session:
            session.send(message)

    app = web.Application(middlewares=[slow_info])
    testing.setup(app, "/e", echo)
    server = await aiohttp_server(app)
    async with connect(server.make_url("/e"), transports=transport, timeout=3) as client:
        hold.set()
        rtt = await bounded(client.ping())
        assert infos == ["/e/info"]
        assert rtt >= HOLD


async def test_ping_on_a_closed_session(aiohttp_server: Any) -> None:
    app = web.Application()
    testing.setup(app, "/e", lambda s: s.wait_closed())
    server = await aiohttp_server(app)
    client = await connect(server.make_url("/e"), transports="websocket", timeout=3)
    await client.close()
    with pytest.raises(SessionClosed):
        await client.ping()
