"""``receive(timeout=)`` and ``idle_timeout``: a silent server ends a wait, not the session."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from aiohttp_sockjs import ResponseTimeout, Session, testing
from aiohttp_sockjs.client import TRANSPORTS, connect

from ...wire import bounded

#: The server sends heartbeats every 0.05 s: the connection is alive,
#: only messages are missing.
HEARTBEAT = 0.05


async def quiet_server(aiohttp_server: Any) -> str:
    """An echo that sends nothing of its own."""

    async def echo(session: Session) -> None:
        async for message in session:
            session.send(message)

    app = web.Application()
    testing.setup(app, "/e", echo, heartbeat_delay=HEARTBEAT)
    server = await aiohttp_server(app)
    return str(server.make_url("/e"))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_receive_timeout(aiohttp_server: Any, transport: str) -> None:
    url = await quiet_server(aiohttp_server)
    async with connect(url, transports=transport, timeout=3, heartbeat_timeout=3) as client:
        with pytest.raises(ResponseTimeout, match=r"no message within 0\.2 s"):
            await bounded(client.receive(timeout=0.2))
        # Only the wait ended: the session goes on.
        assert not client.closed
        await client.send("after")
        assert await bounded(client.receive(timeout=2)) == "after"


@pytest.mark.parametrize("transport", ["websocket", "xhr_streaming", "xhr"])
async def test_idle_timeout_ends_async_for(aiohttp_server: Any, transport: str) -> None:
    url = await quiet_server(aiohttp_server)
    async with connect(url, transports=transport, timeout=3, idle_timeout=0.2) as client:
        await client.send("one")
        received = []
        with pytest.raises(ResponseTimeout):
            async for message in client:
                received.append(message)
        assert received == ["one"]
        assert not client.closed
        # receive() waits idle_timeout too, unless told otherwise.
        with pytest.raises(ResponseTimeout):
            await bounded(client.receive())
        await client.send("two")
        assert await bounded(client.receive(timeout=None)) == "two"


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        connect("http://127.0.0.1:1/e", idle_timeout=0)
