"""Nothing outlives its session: once a session is reaped, the server holds no
socket and no request handler for the responses that belonged to it.

Clients on raw sockets with a small receive buffer read the open frame and
then nothing, while the handler sends more than the connection can take. The
test moves an injected clock past the liveness bound and ``disconnect_delay``
and sweeps until every session is reaped; within 1 s of real time the server
then holds none of their connections and runs none of their handlers.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

import aiohttp_sockjs
from aiohttp_sockjs import testing
from tests.functional.conftest import Live, Serve
from tests.wire import WAIT, ManualClock, eventually, new_id, request_handler_tasks, stalled_request

#: How many clients each test opens.
CLIENTS = 20

_SOCKETS: list[socket.socket] = []


@pytest.fixture(autouse=True)
async def _close_sockets() -> AsyncIterator[None]:
    yield
    while _SOCKETS:
        _SOCKETS.pop().close()


def server_connections(server: Live) -> int:
    """Connections the aiohttp server still holds (one per accepted socket)."""
    web_server = server.runner.server
    assert web_server is not None
    return len(web_server.connections)


async def reap_all(server: Live, clock: ManualClock) -> None:
    """Move the clock and sweep until the endpoint holds no session."""
    options = server.endpoint.options
    step = min(options.heartbeat_delay, options.disconnect_delay) / 2
    bound = clock.now + 4 * options.heartbeat_delay + 2 * options.disconnect_delay
    while len(server.endpoint) and clock.now < bound:
        clock.now += step
        server.endpoint.sweep()
        # Let the sessions act on the sweep (a cut write fails, a stream ends).
        for _ in range(20):
            await asyncio.sleep(0)
    await eventually(lambda: len(server.endpoint) == 0)


async def assert_nothing_left(server: Live) -> None:
    try:
        await eventually(
            lambda: server_connections(server) == 0 and not request_handler_tasks(), 1.0
        )
    except AssertionError:
        raise AssertionError(
            f"1 s after the reap the server still holds {server_connections(server)} "
            f"connections and {len(request_handler_tasks())} request-handler tasks"
            f" ({len(server.started) - len(server.handled)} handlers running)"
        ) from None


def flood(sessions: list[aiohttp_sockjs.Session], flooded: list[aiohttp_sockjs.Session]) -> object:
    async def handler(session: aiohttp_sockjs.Session) -> None:
        sessions.append(session)
        message = "x" * 16384
        # 1 MiB: more than the sockets' buffers hold.
        for _ in range(64):
            if session.closed:
                break
            session.send(message)
            await asyncio.sleep(0)
        flooded.append(session)
        await session.wait_closed()

    return handler


@pytest.mark.parametrize("limit", [64 << 10], ids=["response_limit"])
async def test_stalled_streams_leave_nothing_after_reap(live: Serve, limit: int) -> None:
    """xhr_streaming clients that stop reading: whether their stream reached
    ``response_limit`` (its end waits on the client) or its write is stuck,
    once the sessions are reaped their connections and handlers are gone."""
    sessions: list[aiohttp_sockjs.Session] = []
    flooded: list[aiohttp_sockjs.Session] = []
    clock = ManualClock()
    server = await live(
        flood(sessions, flooded),
        clock=clock,
        sweep_interval=3600,
        response_limit=limit,
        max_queue_size=64 << 20,
    )
    for _ in range(CLIENTS):
        await stalled_request(
            server.port, "POST", f"/e/000/{new_id()}/xhr_streaming", b"o\n", _SOCKETS
        )
    await eventually(lambda: len(flooded) == CLIENTS, WAIT)
    await reap_all(server, clock)
    assert all(s.closed for s in sessions)
    await assert_nothing_left(server)


async def test_stalled_polls_leave_nothing_after_reap(live: Serve) -> None:
    """xhr polls whose answer (1 MiB queued) their clients never read: once the
    sessions are reaped their connections and handlers are gone."""
    sessions: list[aiohttp_sockjs.Session] = []
    flooded: list[aiohttp_sockjs.Session] = []
    clock = ManualClock()
    server = await live(
        flood(sessions, flooded), clock=clock, sweep_interval=3600, max_queue_size=64 << 20
    )
    ids = [new_id() for _ in range(CLIENTS)]
    for sid in ids:
        # The opening poll's client reads its answer and leaves.
        sock = await stalled_request(server.port, "POST", f"/e/000/{sid}/xhr", b"o\n", _SOCKETS)
        sock.close()
    await eventually(lambda: len(flooded) == CLIENTS, WAIT)
    await eventually(lambda: all(testing.backlog(s) >= 64 * 16384 for s in sessions), WAIT)
    for sid in ids:
        await stalled_request(server.port, "POST", f"/e/000/{sid}/xhr", b"", _SOCKETS)
    await server.wait_started(2 * CLIENTS)
    await reap_all(server, clock)
    assert all(s.closed for s in sessions)
    await assert_nothing_left(server)
