"""Issue 21, "nothing outlives its session" at its own numbers: 100
xhr_streaming clients that read one byte a second. Their streams end at
``response_limit`` with the rest of it unread, and the sessions are reaped
(the injected clock moves past ``disconnect_delay``); within 1 s of real time
after the reap the server holds none of their connections and runs none of
their request handlers. (Before, aiohttp's keep-alive held both for as long
as the clients kept reading slowly.)"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs import testing
from tests.wire import (
    WAIT,
    ManualClock,
    bounded,
    eventually,
    new_id,
    raw_http,
    request_handler_tasks,
    served,
)

CLIENTS = 100


@pytest.fixture
async def readers() -> AsyncIterator[list[asyncio.Task[None]]]:
    """The slow readers' tasks (each owns its socket), stopped after the test."""
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def slow_reader(port: int, opened: asyncio.Event) -> None:
    """An xhr_streaming request read up to its open frame, then a byte a second."""
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await bounded(loop.sock_connect(sock, ("127.0.0.1", port)))
        await bounded(loop.sock_sendall(sock, raw_http("POST", f"/e/000/{new_id()}/xhr_streaming")))
        got = b""
        while b"o\n" not in got:
            chunk = await bounded(loop.sock_recv(sock, 1))
            assert chunk, got
            got += chunk
        opened.set()
        while await loop.sock_recv(sock, 1):
            await asyncio.sleep(1.0)


async def test_slow_readers_leave_nothing_after_the_reap(
    readers: list[asyncio.Task[None]],
) -> None:
    flooded: list[aiohttp_sockjs.Session] = []

    async def handler(session: aiohttp_sockjs.Session) -> None:
        # 256 KiB: past response_limit, and more than the clients take in
        # the test's few seconds.
        for _ in range(16):
            if session.closed:
                break
            session.send("x" * 16384)
            await asyncio.sleep(0)
        flooded.append(session)
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
        response_limit=64 << 10,
        max_queue_size=1 << 20,
    )
    async with served(app) as (runner, port):
        for _ in range(CLIENTS // 25):
            events = [asyncio.Event() for _ in range(25)]
            readers.extend(asyncio.ensure_future(slow_reader(port, e)) for e in events)
            await bounded(asyncio.gather(*(e.wait() for e in events)), 10 * WAIT)
        await eventually(lambda: len(flooded) == CLIENTS, 10 * WAIT)
        server = runner.server
        assert server is not None
        assert len(server.connections) == CLIENTS
        # Reap: past the liveness bound and disconnect_delay, in sweeps.
        bound = clock.now + 4 * 1.0 + 2 * 0.5
        while len(endpoint) and clock.now < bound:
            clock.now += 0.25
            endpoint.sweep()
            for _ in range(20):
                await asyncio.sleep(0)
        await eventually(lambda: len(endpoint) == 0, WAIT)
        try:
            await eventually(lambda: not server.connections and not request_handler_tasks(), 1.0)
        except AssertionError:
            raise AssertionError(
                f"1 s after the reap the server still holds {len(server.connections)}"
                f" connections and {len(request_handler_tasks())} request-handler tasks"
            ) from None
