"""``SockJSClient.abort()``: the client vanishes and the server sees it go."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from aiohttp_sockjs import Session, SessionClosed, testing
from aiohttp_sockjs.client import TRANSPORTS, connect

from ...wire import bounded, eventually


@pytest.mark.parametrize("transport", [t for t in TRANSPORTS if t != "raw_websocket"])
async def test_abort_interrupts_the_session(aiohttp_server: Any, transport: str) -> None:
    """No close is sent: the server's session ends with 1002 "Connection interrupted"."""
    sessions: list[Session] = []

    async def echo(session: Session) -> None:
        sessions.append(session)
        async for message in session:
            session.send(message)

    app = web.Application()
    testing.setup(app, "/e", echo, disconnect_delay=60, sweep_interval=0.02)
    server = await aiohttp_server(app)
    client = await connect(server.make_url("/e"), transports=transport, timeout=3)
    await client.send("hi")
    assert await bounded(client.receive()) == "hi"
    [session] = sessions
    # A poll must be waiting, or there is no connection to cut.
    await eventually(lambda: testing.attached(session))
    await bounded(client.abort())
    assert (client.close_code, client.close_reason) == (1006, "Aborted by the client")
    with pytest.raises(SessionClosed):
        await client.receive()
    await eventually(lambda: session.closed)
    assert (session.close_code, session.close_reason) == (1002, "Connection interrupted")
    await bounded(client.abort())  # idempotent
    await bounded(client.close())


async def test_raw_websocket_abort_sends_no_close(aiohttp_server: Any) -> None:
    closed: list[int | None] = []

    async def handler(session: Session) -> None:
        await session.wait_closed()
        closed.append(session.close_code)

    app = web.Application()
    testing.setup(app, "/e", handler)
    server = await aiohttp_server(app)
    client = await connect(server.make_url("/e"), transports="raw_websocket", timeout=3)
    await bounded(client.abort())
    await eventually(lambda: closed)
    assert closed == [1002]
