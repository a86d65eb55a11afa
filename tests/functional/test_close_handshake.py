"""The websocket close handshake (RFC 6455 5.5.1 and 7.1.1).

When the server closes a websocket session it sends its close frame and
keeps the TCP connection until the client's close frame arrives, bounded by
``websocket_close_timeout``; only then does it close TCP. A client therefore
sees the server's close code, never 1006. Shutdown still returns within its
own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest

import aiohttp_sockjs
from aiohttp_sockjs import testing
from tests.functional.conftest import Live, Serve
from tests.wire import (
    OP_CLOSE,
    OP_TEXT,
    WAIT,
    BareWebsocket,
    bounded,
    close_payload,
    eventually,
    new_id,
)

SOCKJS_WS = "/e/000/{}/websocket"
RAW_WS = "/e/websocket"
PATHS = pytest.mark.parametrize("path", [SOCKJS_WS, RAW_WS], ids=["websocket", "raw_websocket"])


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    """Close every bare client a test leaves open, whatever its outcome."""
    yield
    for client in list(BareWebsocket.opened):
        await client.close()


async def go_away(session: aiohttp_sockjs.Session) -> None:
    """Close every session at once, with an application's code."""
    await session.close(3000, "Go away!")


async def read_server_close(client: BareWebsocket, path: str) -> tuple[int, str]:
    """Read what the server sends up to its close frame; returns its code and reason."""
    if path == SOCKJS_WS:
        assert await client.text() == "o"
        assert await client.text() == 'c[3000,"Go away!"]'
    frame = await client.frame()
    assert frame is not None and frame[0] == OP_CLOSE, frame
    return close_payload(frame[1])


async def stays_open(client: BareWebsocket, window: float = 0.3) -> bool:
    """Whether the connection shows no end for ``window`` seconds (reads nothing)."""
    with contextlib.suppress(AssertionError):
        await eventually(client.peek_eof, window)
        return False
    return True


async def server_done(server: Live) -> None:
    """The application's handler has ended and the session is released."""
    await eventually(lambda: testing.running_handlers(server.endpoint) == 0)
    await eventually(lambda: len(server.endpoint) == 0)


@PATHS
@pytest.mark.parametrize("ends", ["close", "return"])
async def test_server_close_waits_for_the_clients_close_frame(
    live: Serve, path: str, ends: str
) -> None:
    """The server sends its close frame and keeps TCP open; the client's close
    frame then ends the connection."""

    async def handler(session: aiohttp_sockjs.Session) -> None:
        if ends == "close":
            await session.close(3000, "Go away!")
        # Returning closes the session with the SockJS default, 3000 "Go away!".

    server = await live(handler)
    client = await BareWebsocket.connect(server.port, path.format(new_id()))
    code, reason = await read_server_close(client, path)
    if path == RAW_WS:
        assert (code, reason) == (3000, "Go away!")
    await server_done(server)
    assert await stays_open(client), "TCP closed before the client's close frame"
    await client.send(OP_CLOSE, code.to_bytes(2, "big"))
    assert await client.rest() == []
    assert client.eof


@PATHS
async def test_client_that_never_answers_is_cut_after_the_close_timeout(
    live: Serve, path: str
) -> None:
    """A client that never sends its close frame: TCP is closed after
    ``websocket_close_timeout``."""
    server = await live(go_away, websocket_close_timeout=0.3)
    client = await BareWebsocket.connect(server.port, path.format(new_id()))
    await read_server_close(client, path)
    await server_done(server)
    await eventually(client.peek_eof, 0.3 + WAIT)


@PATHS
async def test_aiohttp_client_sees_the_servers_close_code(live: Serve, path: str) -> None:
    """100 closes in a row: an aiohttp client sees the server's code every
    time, never 1006 (a close whose handshake was cut short)."""
    server = await live(go_away)
    codes = []
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            url = f"http://127.0.0.1:{server.port}{path.format(new_id())}"
            ws = await bounded(http.ws_connect(url))
            while True:
                msg = await bounded(ws.receive())
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
            assert msg.type is aiohttp.WSMsgType.CLOSE, msg
            await bounded(ws.close())
            codes.append(ws.close_code)
    # A raw websocket carries the application's code; a SockJS one has it in
    # its c[...] frame and may close the websocket with 1000 or with it.
    expected = {3000} if path == RAW_WS else {1000, 3000}
    assert sum(code in expected for code in codes) == 100, sorted(set(codes))


async def test_shutdown_returns_within_its_timeout_when_clients_never_answer(
    live: Serve,
) -> None:
    """Clients that never answer the close frame do not hold shutdown past its
    timeout, however long the close handshake may wait."""
    sessions: list[aiohttp_sockjs.Session] = []

    async def hold(session: aiohttp_sockjs.Session) -> None:
        sessions.append(session)
        await session.wait_closed()

    server = await live(hold, websocket_close_timeout=60.0)
    clients = [
        await BareWebsocket.connect(server.port, path.format(new_id()))
        for path in (SOCKJS_WS, RAW_WS) * 3
    ]
    await eventually(lambda: len(sessions) == 6)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await bounded(server.endpoint.shutdown(timeout=0.3), 30.0)
    # A bound on a library timeout, with a wide margin; far below the 60 s
    # the close handshake would wait.
    assert loop.time() - started < 10.0
    assert all(s.closed for s in sessions)
    for client in clients:
        got = [f for f in client.peek() if f[0] in (OP_TEXT, OP_CLOSE)]
        assert got, "the client got no close"
        # Gone without a close frame: the server stops waiting for one.
        await client.close()
