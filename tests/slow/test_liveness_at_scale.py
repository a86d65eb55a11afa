"""Issue 20, the liveness finding at its own numbers: 300 websockets and 100
xhr_streaming clients stop reading (their TCP peers stay, nothing is read).
With default options, apart from short delays and a large response_limit, all are released within 20
heartbeat periods of fake time."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs import testing
from tests.wire import WAIT, BareWebsocket, ManualClock, eventually, new_id, served, stalled_request

WEBSOCKETS = 300
STREAMS = 100
TICKS = 20


@pytest.fixture
async def sockets() -> AsyncIterator[list[socket.socket]]:
    """Plain sockets of the test, and its bare websocket clients, closed after it."""
    made: list[socket.socket] = []
    yield made
    for sock in made:
        sock.close()
    for client in list(BareWebsocket.opened):
        await client.close()


async def test_clients_that_stop_reading_are_all_released(sockets: list[socket.socket]) -> None:
    stalled: set[aiohttp_sockjs.Session] = set()

    async def handler(session: aiohttp_sockjs.Session) -> None:
        if session.request.path.endswith("/xhr_streaming"):
            # The stream's client does not read: send until 1 MiB waits
            # unwritten, the write stuck on the client.
            while not session.closed and testing.backlog(session) < 1 << 20:
                session.send("x" * 16384)
                await asyncio.sleep(0)
            stalled.add(session)
        await session.wait_closed()

    clock = ManualClock()
    app = web.Application()
    endpoint = testing.setup(
        app,
        "/e",
        handler,
        clock=clock,
        sweep_interval=3600,
        heartbeat_delay=1.0,
        disconnect_delay=0.5,
        max_sessions=None,
        # With the default (128 KiB) a stream's response ends after a write
        # the kernel's buffers swallow whole, so its session expires anyway;
        # a large limit keeps the stream open until it stalls.
        response_limit=64 << 20,
    )
    async with served(app) as (_, port):
        for _ in range(WEBSOCKETS // 50):
            clients = await asyncio.gather(
                *(
                    BareWebsocket.connect(port, f"/e/000/{new_id()}/websocket", rcvbuf=4096)
                    for _ in range(50)
                )
            )
            for client in clients:
                assert await client.text() == "o"
        for _ in range(STREAMS // 25):
            await asyncio.gather(
                *(
                    stalled_request(
                        port, "POST", f"/e/000/{new_id()}/xhr_streaming", b"o\n", sockets
                    )
                    for _ in range(25)
                )
            )
        await eventually(lambda: len(stalled) == STREAMS, 10 * WAIT)
        assert len(endpoint) == WEBSOCKETS + STREAMS

        def settled() -> bool:
            for session in testing.held_sessions(endpoint):
                transport = session.request.transport
                if transport is not None and transport.is_closing() and testing.attached(session):
                    return False  # a cut in progress
                if session not in stalled and testing.writing(session):
                    return False
            return True

        for _ in range(TICKS):
            clock.now += endpoint.options.heartbeat_delay
            endpoint.sweep()
            await eventually(settled, 2 * WAIT)

        def counts() -> tuple[int, int]:
            held = testing.held_sessions(endpoint)
            streams = sum(1 for s in held if s in stalled)
            return len(held) - streams, streams

        released = True
        try:
            await eventually(lambda: len(endpoint) == 0, WAIT)
        except AssertionError:
            released = False
        websockets, streams = counts()
        assert released, (
            f"after {TICKS} heartbeat periods still held: {websockets} of {WEBSOCKETS}"
            f" websockets, {streams} of {STREAMS} xhr_streaming"
        )
