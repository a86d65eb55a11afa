"""Shutdown with many open sessions closes every one of them and returns."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

import aiohttp_sockjs
from aiohttp_sockjs import Session, SessionState, testing
from aiohttp_sockjs.client import SockJSClient, connect
from tests.wire import eventually

Factory = Callable[..., Awaitable[TestClient[Any, Any]]]


async def test_shutdown_closes_1000_sessions(aiohttp_client: Factory) -> None:
    sessions: list[Session] = []
    ended: list[Session] = []

    async def handler(session: Session) -> None:
        sessions.append(session)
        async for message in session:
            session.send(message)
        ended.append(session)

    app = web.Application()
    # Polling sessions wait between their polls until all 1,000 are open:
    # on a loaded machine that takes longer than the default expiry.
    endpoint = aiohttp_sockjs.setup(app, "/echo", handler, disconnect_delay=60)
    client = await aiohttp_client(app)
    base = str(client.make_url("/echo"))
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    transports = ["websocket"] * 4 + ["xhr_streaming"] * 2 + ["eventsource"] * 2 + ["xhr"] * 2
    clients: list[SockJSClient] = []
    try:
        sem = asyncio.Semaphore(100)

        async def open_one(transport: str) -> None:
            async with sem:
                clients.append(await connect(base, transports=transport, session=http))

        await asyncio.gather(*(open_one(transports[i % len(transports)]) for i in range(1000)))
        assert len(endpoint) == 1000
        # Connected clients wait for their next frame; polling ones poll.
        await eventually(lambda: all(testing.attached(s) for s in sessions), timeout=10)
        await endpoint.shutdown()
        assert not testing.held_sessions(endpoint)
        assert all(s.state is SessionState.CLOSED for s in sessions)
        assert all(s.close_code == 1001 for s in sessions)
        await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in clients)), 10)
        closed = [c for c in clients if (c.close_code, c.close_reason) == (1001, "Going away")]
        assert len(closed) == 1000, [
            (c.transport, c.close_code, c.close_reason, c.exception)
            for c in clients
            if c not in closed
        ][:8]
        await eventually(lambda: len(ended) == 1000)
        # A shut-down endpoint opens no new session.
        async with http.post(base + "/000/late/xhr") as r:
            assert r.status == 503
        async with http.post(base + "/000/late/xhr_streaming") as r:
            assert r.status == 503
        try:
            await http.ws_connect(base + "/000/late/websocket")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 503
        else:
            raise AssertionError("websocket opened after shutdown")
        assert not testing.held_sessions(endpoint)
    finally:
        for c in clients:
            await c.close()
        await http.close()


def _read_until_closed(port: int, request: bytes, stalled: threading.Event) -> bool:
    """Connect, stall until told, then read everything; True once the server hangs up."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(request)
    stalled.wait(20)
    sock.settimeout(10)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    finally:
        sock.close()
    return True


async def test_shutdown_cuts_a_stalled_websocket(aiohttp_client: Factory) -> None:
    sessions: list[Session] = []

    async def flood(session: Session) -> None:
        sessions.append(session)
        while not session.closed:
            session.send("f" * 10_000)
            await asyncio.sleep(0)  # the handler lets the loop write between sends

    app = web.Application()
    # A bound far above what the socket buffers hold: the actor gets stuck writing.
    endpoint = aiohttp_sockjs.setup(app, "/echo", flood, max_queue_size=1 << 30)
    client = await aiohttp_client(app)
    request = (
        b"GET /echo/000/stall/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    stalled = threading.Event()
    loop = asyncio.get_running_loop()
    reader = loop.run_in_executor(None, _read_until_closed, client.port, request, stalled)

    def stuck() -> bool:
        first = sessions[0] if sessions else None
        return first is not None and testing.writing(first) and testing.backlog(first) > 1e6

    await eventually(stuck, timeout=10)
    await endpoint.shutdown(timeout=0.2)
    assert not testing.held_sessions(endpoint)
    assert sessions[0].closed
    stalled.set()
    assert await reader, "the server never hung up on the stalled websocket"
