"""``close()``, ``abort()`` and cancellation at every point of a client's life.

Each test counts what is left once the client is gone: this process's TCP
sockets to the server (``open_sockets``, read from /proc), the server's
connections, and the asyncio tasks. Nothing may remain.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aiohttp_sockjs import Session, testing
from aiohttp_sockjs.client import TRANSPORTS, connect

from ...wire import bounded, eventually, open_sockets

STREAMS = ("websocket", "raw_websocket", "xhr_streaming", "eventsource", "htmlfile")


def tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def no_leaks(port: int, server: Any, before: set[asyncio.Task[Any]]) -> None:
    """Wait until no socket, server connection or new task is left."""
    await eventually(lambda: open_sockets(port) == 0)
    await eventually(lambda: not server.runner.server.connections)
    await eventually(lambda: tasks() <= before)


@pytest.mark.parametrize("session", ["own", "user's"])
@pytest.mark.parametrize("how", ["close", "abort"])
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_right_after_connect(
    aiohttp_server: Any, transport: str, how: str, session: str
) -> None:
    """close()/abort() with no await after connect(): the server session ends, nothing is left."""
    sessions: list[Session] = []

    async def echo(s: Session) -> None:
        sessions.append(s)
        async for message in s:
            s.send(message)

    app = web.Application()
    # A polling client that stops polling is noticed after the disconnect delay.
    testing.setup(app, "/e", echo, disconnect_delay=0.5, sweep_interval=0.02)
    server = await aiohttp_server(app)
    before = tasks()
    # force_close: no idle keep-alive connection is left in the pool to count.
    http = (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        if session == "user's"
        else None
    )
    try:
        client = await connect(server.make_url("/e"), transports=transport, timeout=3, session=http)
        if how == "close":
            # Not bounded(): its wait_for() would let the client's tasks start.
            await client.close(4000, "bye")
            assert (client.close_code, client.close_reason) == (4000, "bye")
        else:
            await client.abort()
            assert client.close_code == 1006
        await eventually(lambda: bool(sessions) and sessions[0].closed)
        # SockJS carries no close from the client: the session was interrupted
        # (or, with no poll waiting, expired after the disconnect delay).
        assert sessions[0].close_code in ((1002,) if transport in STREAMS else (1002, 3000))
        await no_leaks(server.port, server, before)
    finally:
        if http is not None:
            await http.close()


def recording_app(codes: list[int | None]) -> web.Application:
    """A SockJS websocket endpoint reduced to its wire: ``o``, then record the close code."""

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if request.match_info.get("session"):
            await ws.send_str("o")
        try:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    data = message.data
                    await ws.send_str("a" + data if data.startswith("[") else data)
        finally:
            codes.append(ws.close_code)
        return ws

    async def info(request: web.Request) -> web.Response:
        return web.json_response({"websocket": True, "cookie_needed": False})

    app = web.Application()
    app.router.add_get("/r/info", info)
    app.router.add_get("/r/websocket", websocket)
    app.router.add_get("/r/{server}/{session}/websocket", websocket)
    return app


@pytest.mark.parametrize("when", ["at once", "after a message"])
@pytest.mark.parametrize("transport", ["websocket", "raw_websocket"])
async def test_websocket_close_sends_the_code(
    aiohttp_server: Any, transport: str, when: str
) -> None:
    """close(code, reason) sends that close frame, even with no await after connect()."""
    codes: list[int | None] = []
    server = await aiohttp_server(recording_app(codes))
    before = tasks()
    client = await connect(server.make_url("/r"), transports=transport, timeout=3)
    if when == "after a message":
        await client.send("hi")
        assert await bounded(client.receive()) == "hi"
    await client.close(4000, "bye")
    await eventually(lambda: codes)
    assert codes == [4000]
    await no_leaks(server.port, server, before)


@pytest.mark.parametrize("transport", ["websocket", "raw_websocket"])
async def test_websocket_abort_right_after_connect_sends_no_close(
    aiohttp_server: Any, transport: str
) -> None:
    codes: list[int | None] = []
    server = await aiohttp_server(recording_app(codes))
    before = tasks()
    client = await connect(server.make_url("/r"), transports=transport, timeout=3)
    await client.abort()
    await eventually(lambda: codes)
    # No close frame came (aiohttp leaves the code unset, or 1006).
    assert codes in ([None], [1006])
    await no_leaks(server.port, server, before)


def stalling_app(stage: str, reached: asyncio.Event) -> web.Application:
    """A SockJS server that stops answering at ``stage`` of the opening of a session."""
    stop = asyncio.Event()

    async def on_shutdown(app: web.Application) -> None:
        stop.set()

    async def stall() -> None:
        reached.set()
        await stop.wait()

    async def info(request: web.Request) -> web.Response:
        if stage == "info":
            await stall()
        return web.json_response({"websocket": True, "cookie_needed": False})

    async def receiving(request: web.Request) -> web.StreamResponse:
        if stage == "request":
            await stall()
        if request.path.endswith("/websocket"):
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            reached.set()
            async for _ in ws:
                pass
            return ws
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"h" * 2048 + b"\n" if request.path.endswith("streaming") else b"\r\n")
        await stall()
        return resp

    app = web.Application()
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/s/info", info)
    app.router.add_route("*", "/s/websocket", receiving)
    app.router.add_route("*", "/s/{server}/{session}/{transport}", receiving)
    return app


@pytest.mark.parametrize(
    ("transport", "stage"),
    [
        (transport, stage)
        for transport in TRANSPORTS
        for stage in ("info", "request", "open frame")
        # The raw websocket reads no /info and no open frame.
        if transport != "raw_websocket" or stage == "request"
    ],
)
async def test_cancel_connect_at_each_await_point(
    aiohttp_server: Any, transport: str, stage: str
) -> None:
    """connect() cancelled while it waits for /info, the transport's answer or the open frame."""
    reached = asyncio.Event()
    server = await aiohttp_server(stalling_app(stage, reached))
    before = tasks()
    connecting = asyncio.ensure_future(
        connect(server.make_url("/s"), transports=transport, timeout=30)
    )
    await bounded(reached.wait())
    await asyncio.sleep(0.05)  # the client is now waiting on its socket
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await bounded(connecting)
    await eventually(lambda: open_sockets(server.port) == 0)
    await eventually(lambda: tasks() <= before)
