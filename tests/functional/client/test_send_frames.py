"""How the client's sends reach a websocket: one frame per event-loop turn, nothing lost on close.

The server here is a SockJS websocket endpoint reduced to its wire, which
records every frame as it arrives.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp import web

from aiohttp_sockjs import Session, testing
from aiohttp_sockjs.client import connect

from ...wire import bounded, eventually


def recording_app(frames: list[str], closed: asyncio.Event) -> web.Application:
    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("o")
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                frames.append(msg.data)
                await ws.send_str("a" + msg.data)
        closed.set()
        return ws

    async def info(request: web.Request) -> web.Response:
        return web.json_response({"websocket": True, "cookie_needed": False})

    app = web.Application()
    app.router.add_get("/r/info", info)
    app.router.add_get("/r/{server}/{session}/websocket", websocket)
    return app


async def test_sends_of_one_turn_share_a_frame(aiohttp_server: Any) -> None:
    """100 sends awaited one after the other, with nothing else to wait for: one frame."""
    frames: list[str] = []
    server = await aiohttp_server(recording_app(frames, asyncio.Event()))
    async with connect(server.make_url("/r"), transports="websocket", timeout=3) as client:
        for i in range(100):
            await client.send(f"m{i}")
        assert [await bounded(client.receive()) for _ in range(100)] == [
            f"m{i}" for i in range(100)
        ]
    assert [json.loads(frame) for frame in frames] == [[f"m{i}" for i in range(100)]]


async def test_close_delivers_what_was_sent(aiohttp_server: Any) -> None:
    """A send queued in the same turn as close() still reaches the server, before the close."""
    frames: list[str] = []
    closed = asyncio.Event()
    server = await aiohttp_server(recording_app(frames, closed))
    client = await connect(server.make_url("/r"), transports="websocket", timeout=3)
    await client.send("last words")
    await client.close()
    await bounded(closed.wait())
    assert frames == ['["last words"]']


async def test_many_pipelined_sends_reach_a_real_server_in_order(aiohttp_server: Any) -> None:
    """Backpressure: 20,000 messages of 1 KiB sent at once arrive whole and in order."""
    received: list[str] = []

    async def sink(session: Session) -> None:
        async for message in session:
            received.append(message)

    app = web.Application()
    testing.setup(app, "/e", sink)
    server = await aiohttp_server(app)
    async with connect(server.make_url("/e"), transports="websocket", timeout=10) as client:
        for i in range(20_000):
            await client.send(f"{i:05d}" + "x" * 1019)
        await eventually(lambda: len(received) == 20_000, timeout=20)
    assert [int(m[:5]) for m in received] == list(range(20_000))
