"""A client going away at any point is quiet: at most one line, never a traceback.

Every test drives a real ``web.AppRunner`` server (with and without aiohttp's
handler cancellation) through raw sockets, so a connection can be cut at an
exact point: in the middle of a request body, of a websocket frame, of a
ping flood, of a stream, or while a poll waits. Anyone can do this to a
public server, so none of it may fill the logs.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

import aiohttp_sockjs
from aiohttp_sockjs import testing
from tests.functional.conftest import Live, Serve, assert_quiet
from tests.wire import cut, eventually, new_id, raw_http, raw_websocket, ws_frame

HOW = pytest.mark.parametrize("how", ["fin", "rst"])


async def open_session(server: Live) -> str:
    """Create a session with an xhr poll on its own connection; returns its id."""
    sid = new_id()
    reader, writer = await server.connect()
    writer.write(raw_http("POST", f"/e/000/{sid}/xhr"))
    await asyncio.wait_for(reader.readuntil(b"o\n"), 3)
    writer.close()
    return sid


class Recorder:
    """An echo handler that keeps the sessions it served."""

    def __init__(self) -> None:
        self.sessions: list[aiohttp_sockjs.Session] = []

    async def __call__(self, session: aiohttp_sockjs.Session) -> None:
        self.sessions.append(session)
        async for message in session:
            session.send(message)


async def send_until_closed(session: aiohttp_sockjs.Session, message: str) -> None:
    """Keep sending, so the server writes to the cut connection, until the session closes."""

    def sent() -> bool:
        if not session.closed:
            session.send(message)
        return session.closed

    await eventually(sent)


@HOW
@pytest.mark.parametrize("transport", ["xhr_send", "jsonp_send"])
async def test_send_body_cut_short(
    live: Serve, caplog: pytest.LogCaptureFixture, transport: str, how: str
) -> None:
    """``Content-Length: 100``, 5 bytes of body, then gone: no traceback, session unharmed."""
    server = await live()
    sid = await open_session(server)
    reader, writer = await server.connect()
    writer.write(raw_http("POST", f"/e/000/{sid}/{transport}", b'["abc', length=100))
    await server.wait_started(2)
    cut(writer, how)
    await server.wait_handled(2)
    # The session goes on: a whole request on a new connection is delivered.
    reader, writer = await server.connect()
    writer.write(raw_http("POST", f"/e/000/{sid}/xhr_send", b'["whole"]'))
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n"), 3)).startswith(b"HTTP/1.1 204")
    writer.write(raw_http("POST", f"/e/000/{sid}/xhr"))
    assert await asyncio.wait_for(reader.readuntil(b'a["whole"]\n'), 3)
    writer.close()
    await server.stop()
    assert_quiet(caplog, events=1)


async def test_websocket_ping_flood_then_reset(
    live: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """Pings sent without reading the pongs, then a reset: the read loop ends quietly."""
    app = Recorder()
    server = await live(app)
    _, writer = await raw_websocket(server.port, f"/e/000/{new_id()}/websocket", rcvbuf=4096)
    ping = ws_frame(0x9, b"p" * 125) * 32
    # Flood until the server stops reading: it is stuck sending pongs that the
    # client never reads. Bounded, so a server that never pushes back fails.
    for _ in range(100_000):
        writer.write(ping)
        try:
            await asyncio.wait_for(writer.drain(), 0.2)
        except asyncio.TimeoutError:
            break
    else:
        raise AssertionError("the server kept reading pings without sending the pongs")
    cut(writer, "rst")
    await server.wait_handled(1)
    # The application sees the connection interrupted, not a normal close.
    [session] = app.sessions
    await eventually(lambda: session.closed)
    assert (session.close_code, session.close_reason) == (1002, "Connection interrupted")
    await server.stop()
    assert_quiet(caplog, events=1)


@HOW
async def test_websocket_cut_mid_frame(
    live: Serve, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """A text frame announcing 1000 bytes, 10 sent, then gone."""
    app = Recorder()
    server = await live(app)
    reader, writer = await raw_websocket(server.port, f"/e/000/{new_id()}/websocket")
    assert await asyncio.wait_for(reader.readexactly(3), 3) == b"\x81\x01o"
    writer.write(ws_frame(0x1, b'["01234567', length=1000))
    await writer.drain()
    cut(writer, how)
    await server.wait_handled(1)
    [session] = app.sessions
    await eventually(lambda: session.closed)
    assert session.close_code == 1002
    await server.stop()
    assert_quiet(caplog, events=1)


@HOW
@pytest.mark.parametrize("path", ["/e/000/{}/websocket", "/e/websocket"])
async def test_websocket_gone_while_server_writes(
    live: Serve, caplog: pytest.LogCaptureFixture, path: str, how: str
) -> None:
    """A websocket client stops reading while messages pour out, then leaves."""
    sessions: list[aiohttp_sockjs.Session] = []

    async def hold(session: aiohttp_sockjs.Session) -> None:
        sessions.append(session)
        await session.wait_closed()

    server = await live(hold)
    _, writer = await raw_websocket(server.port, path.format(new_id()), rcvbuf=4096)
    await eventually(lambda: sessions)
    [session] = sessions
    for _ in range(16):
        session.send("x" * 65536)
    cut(writer, how)
    # More sends after the cut, so writes meet the closed socket.
    await send_until_closed(session, "y" * 65536)
    await server.wait_handled(1)
    await server.stop()
    assert_quiet(caplog, events=1)


STREAMS = [
    ("POST", "/e/000/{}/xhr_streaming", b"h" * 2048 + b"\n"),
    ("GET", "/e/000/{}/eventsource", b"\r\n"),
    ("GET", "/e/000/{}/htmlfile?c=cb", b"</script>"),
]


@HOW
@pytest.mark.parametrize(("method", "path", "prelude_end"), STREAMS)
async def test_stream_cut_midway(
    live: Serve,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    prelude_end: bytes,
    how: str,
) -> None:
    """A streaming client leaves after the open frame while messages keep coming."""
    server = await live(sweep_interval=0.02)
    sid = new_id()
    reader, writer = await server.connect()
    writer.write(raw_http(method, path.format(sid)))
    await asyncio.wait_for(reader.readuntil(prelude_end), 3)
    await asyncio.wait_for(reader.readuntil(b"o"), 3)
    [session] = server.endpoint.sessions
    cut(writer, how)
    await send_until_closed(session, "z" * 1000)
    await server.wait_handled(1)
    await server.stop()
    assert_quiet(caplog, events=1)


@HOW
@pytest.mark.parametrize("transport", ["xhr", "jsonp?c=cb"])
async def test_poll_cut_while_waiting(
    live: Serve, caplog: pytest.LogCaptureFixture, transport: str, how: str
) -> None:
    """A poll waiting for messages is cut: the session closes, quietly."""
    server = await live(sweep_interval=0.02)
    sid = new_id()
    method = "POST" if transport == "xhr" else "GET"
    reader, writer = await server.connect()
    writer.write(raw_http(method, f"/e/000/{sid}/{transport}"))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    writer.write(raw_http(method, f"/e/000/{sid}/{transport}"))
    await server.wait_started(2)
    [session] = server.endpoint.sessions
    cut(writer, how)
    await eventually(lambda: session.closed)
    assert session.close_code == 1002
    await server.wait_handled(2)
    await server.stop()
    assert_quiet(caplog, events=1)


# --- a receiving request the client abandons is found and finished ------------


@pytest.mark.parametrize(
    ("method", "transport", "query"),
    [
        ("POST", "xhr", ""),
        ("GET", "jsonp", "?c=cb"),
        ("POST", "xhr_streaming", ""),
        ("GET", "eventsource", ""),
        ("GET", "htmlfile", "?c=cb"),
    ],
)
async def test_abandoned_receiver_request_finishes(
    live: Serve, method: str, transport: str, query: str
) -> None:
    """A receiving request reset by its client is finished, not left waiting."""
    server = await live(sweep_interval=0.01)
    path = f"/e/000/{new_id()}/{transport}"
    reader, writer = await server.connect()
    writer.write(raw_http(method, path + query))
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n"), 3)).startswith(b"HTTP/1.1 200")
    if transport in ("xhr", "jsonp"):
        # A poll answered "o" and is done: poll again, then walk away.
        await server.wait_handled(1)
        writer.write(raw_http(method, path + query))
        [session] = server.endpoint.sessions
        await eventually(lambda: testing.attached(session))
    cut(writer, "rst")
    await server.wait_handled(2 if transport in ("xhr", "jsonp") else 1)
    assert server.handled == server.started


@pytest.mark.parametrize("transport", ["xhr", "xhr_streaming"])
async def test_cut_receiver_is_found_and_released(live: Serve, transport: str) -> None:
    """A receiver cut while it waits (a poll) or streams is found by the sweeper
    with nothing written to it: the session closes with 1002 and the request
    handler ends; the session is not kept."""
    server = await live(heartbeat_delay=60, disconnect_delay=60, sweep_interval=0.02)
    path = f"/e/a/{new_id()}/{transport}"
    reader, writer = await server.connect()
    writer.write(raw_http("POST", path))
    await asyncio.wait_for(reader.readuntil(b"o\n"), 3)
    [session] = server.endpoint.sessions
    if transport == "xhr":
        writer.close()
        await server.wait_handled(1)
        reader, writer = await server.connect()
        writer.write(raw_http("POST", path))
        await server.wait_started(2)
        await eventually(lambda: testing.attached(session))
    writer.close()
    await eventually(lambda: session.closed)
    assert session.close_code == 1002
    # The waiting request handler has finished too.
    await server.wait_handled(len(server.started))
    if transport == "xhr_streaming":
        assert server.endpoint.sessions == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/e/000/{}/xhr_streaming"),
        ("GET", "/e/000/{}/eventsource"),
        ("GET", "/e/000/{}/htmlfile?c=cb"),
    ],
)
async def test_stream_reset_before_it_starts(
    live: Serve, caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    """Clients that reset a stream request at once, as an aborting browser does:
    no error logged."""
    server = await live()
    for _ in range(20):
        _, writer = await server.connect()
        writer.write(raw_http(method, path.format(new_id())))
        await writer.drain()
        cut(writer, "rst")
    # One whole request after them, then the server's shutdown: every late
    # line the resets could cause is logged by then.
    reader, writer = await server.connect()
    writer.write(raw_http("GET", "/e/info"))
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n"), 3)).startswith(b"HTTP/1.1 200")
    writer.close()
    await server.stop()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
