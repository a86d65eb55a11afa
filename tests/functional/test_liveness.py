"""Dead and stalled connections are found and released, within a bound.

Each test serves a real ``web.AppRunner`` on an injected clock: the test
moves the clock and calls ``endpoint.sweep()`` itself, so a "tick" is one
heartbeat period of fake time. What the network does happens in real time
and is waited for as a condition.

- A websocket client that stops reading (its TCP peer stays) is released by
  the second heartbeat tick: every heartbeat is followed by a websocket
  ping, and a ping not answered by the next tick ends the session.
- Clients that answer pings, and live clients of a handler that does not
  read (its inbox full), stay.
- A websocket whose inbox is full, whose client then leaves, is released by
  the second tick after it left.
- A stream whose write cannot complete is cut a heartbeat period after its
  heartbeat was due, and the session expires ``disconnect_delay`` later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

import aiohttp_sockjs
from aiohttp_sockjs import testing
from tests.functional.conftest import Live, Serve
from tests.wire import (
    OP_PING,
    OP_TEXT,
    WAIT,
    BareWebsocket,
    ManualClock,
    bounded,
    eventually,
    new_id,
    stalled_request,
    ws_frame,
)

SOCKJS_WS = "/e/000/{}/websocket"
RAW_WS = "/e/websocket"
PATHS = pytest.mark.parametrize("path", [SOCKJS_WS, RAW_WS], ids=["websocket", "raw_websocket"])

#: How long a test watches a client it expects to stay.
TICKS = 20


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    """Close every bare client a test leaves open, whatever its outcome."""
    yield
    for client in list(BareWebsocket.opened):
        await client.close()
    while _SOCKETS:
        _SOCKETS.pop().close()


#: Plain sockets made by the running test, closed after it.
_SOCKETS: list[socket.socket] = []


class Recorder:
    """A handler that keeps its sessions: echoes, or (``read=False``) never reads."""

    def __init__(self, read: bool = True) -> None:
        self.read = read
        self.sessions: list[aiohttp_sockjs.Session] = []

    async def __call__(self, session: aiohttp_sockjs.Session) -> None:
        self.sessions.append(session)
        if not self.read:
            await session.wait_closed()
            return
        async for message in session:
            session.send(message)


async def serve(live: Serve, handler: Any, **options: Any) -> tuple[Live, ManualClock]:
    """A live server on a fake clock that only the test's sweeps move."""
    clock = ManualClock()
    server = await live(handler, clock=clock, sweep_interval=3600, **options)
    return server, clock


def tick(server: Live, clock: ManualClock) -> None:
    """One heartbeat period of fake time, and the sweep that acts on it."""
    clock.now += server.endpoint.options.heartbeat_delay
    server.endpoint.sweep()


def held(server: Live, session: aiohttp_sockjs.Session) -> bool:
    return session in testing.held_sessions(server.endpoint)


async def holds(predicate: Callable[[], bool], timeout: float) -> bool:
    """Whether ``predicate`` comes to hold within ``timeout`` (no failure if not)."""
    with contextlib.suppress(AssertionError):
        await eventually(predicate, timeout)
        return True
    return False


async def connect(
    server: Live, handler: Recorder, path: str, rcvbuf: int | None = None
) -> tuple[BareWebsocket, aiohttp_sockjs.Session]:
    """A bare websocket client and its session; a SockJS client reads its open frame."""
    count = len(handler.sessions)
    client = await BareWebsocket.connect(server.port, path.format(new_id()), rcvbuf=rcvbuf)
    if path == SOCKJS_WS:
        assert await client.text() == "o"
    await eventually(lambda: len(handler.sessions) > count)
    return client, handler.sessions[count]


# --- clients that stop reading ------------------------------------------------


def _seen(client: BareWebsocket, path: str, beats: int, pings: int) -> bool:
    """Whether ``beats`` heartbeats and ``pings`` pings wait unread at ``client``."""
    frames = client.peek()
    got_beats = sum(1 for op, p in frames if op == OP_TEXT and p == b"h")
    got_pings = sum(1 for op, _ in frames if op == OP_PING)
    return (path == RAW_WS or got_beats >= beats) and got_pings >= pings


async def test_websocket_clients_that_stop_reading_are_released(live: Serve) -> None:
    """20 websocket clients (SockJS and raw) read what they got on opening and
    then nothing, never answering a ping: all are released by the second tick,
    their handlers see the session closed and their connections end."""
    app = Recorder()
    server, clock = await serve(live, app)
    clients = [
        await connect(server, app, SOCKJS_WS if i % 2 else RAW_WS, rcvbuf=4096) for i in range(20)
    ]
    paths = [SOCKJS_WS if i % 2 else RAW_WS for i in range(20)]
    pinging = True
    ticks = 0
    while len(server.endpoint) and ticks < TICKS:
        tick(server, clock)
        ticks += 1

        def settled(pings: int, beats: int = ticks) -> bool:
            return all(
                not held(server, s) or (_seen(c, p, beats, pings) and not testing.writing(s))
                for (c, s), p in zip(clients, paths, strict=True)
            )

        if pinging and not await holds(functools.partial(settled, ticks), WAIT):
            # No ping came: the rest of the ticks wait for the heartbeats only.
            pinging = False
        if not pinging:
            await eventually(lambda: settled(0))
    assert len(server.endpoint) == 0, (
        f"{len(server.endpoint)} of 20 sessions still held after {ticks} ticks"
        f" (websocket pings seen: {pinging})"
    )
    assert ticks <= 2, f"released only after {ticks} ticks"
    assert all(s.closed for s in app.sessions)
    # Their connections end: whatever the server still sends, then EOF.
    await bounded(asyncio.gather(*(c.rest(timeout=2 * WAIT) for c, _ in clients)), 2 * WAIT)
    for client, _ in clients:
        await client.close()


@PATHS
async def test_every_websocket_heartbeat_is_followed_by_a_ping(live: Serve, path: str) -> None:
    """Each tick writes a heartbeat (none on the wire for a raw websocket) and then
    a websocket ping; a client that answers them stays."""
    app = Recorder()
    server, clock = await serve(live, app)
    client, session = await connect(server, app, path)
    client.answer_pings()
    for n in range(1, 4):
        tick(server, clock)

        def pinged(n: int = n) -> bool:
            return client.pings == n and not testing.writing(session)

        assert await holds(pinged, WAIT), (
            f"tick {n}: {client.pings} websocket pings reached the client"
        )
        if path == SOCKJS_WS:
            # The ping comes after the heartbeat.
            frames = [(op, p) for op, p in client.frames if op in (OP_TEXT, OP_PING)]
            assert frames[-2:] == [(OP_TEXT, b"h"), (OP_PING, frames[-1][1])]
    assert held(server, session) and not session.closed
    await client.close()


async def _round_trip(send: Callable[[str], Any], got: Callable[[], list[str]], text: str) -> None:
    await send(text)
    await eventually(lambda: text in got())


async def test_clients_that_answer_pings_stay(live: Serve) -> None:
    """An aiohttp client (its autoping answers pings) and a bare client that
    answers them, over SockJS and raw websockets, stay open over 20 ticks.

    Guards against a liveness check that drops live clients: after each tick
    every client makes two round trips, so the pong it sent has reached the
    server before the next tick.
    """
    app = Recorder()
    server, clock = await serve(live, app)
    async with aiohttp.ClientSession() as http:
        wired: list[tuple[Callable[[str], Any], Callable[[], list[str]], bool]] = []
        closers = []
        for path in (SOCKJS_WS, RAW_WS):
            ws = await bounded(
                http.ws_connect(f"http://127.0.0.1:{server.port}{path}".format(new_id()))
            )
            texts: list[str] = []

            async def pump(ws: aiohttp.ClientWebSocketResponse, texts: list[str]) -> None:
                async for msg in ws:  # receive() answers pings (autoping)
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        texts.append(msg.data)

            task = asyncio.ensure_future(pump(ws, texts))
            closers.append((ws, task))
            sockjs = path == SOCKJS_WS
            wired.append((_sender(ws.send_str, sockjs), _echoes(texts, sockjs), sockjs))
            bare, _ = await connect(server, app, path)
            bare.answer_pings()
            wired.append((_sender(bare.send_text, sockjs), _echoes(bare.texts, sockjs), sockjs))
        await eventually(lambda: len(app.sessions) == 4)
        for n in range(TICKS):
            tick(server, clock)
            for send, got, sockjs in wired:
                if sockjs:
                    await eventually(lambda got=got, n=n: got().count("h") > n)
                await _round_trip(send, got, f"{n}a")
                await _round_trip(send, got, f"{n}b")
        assert len(server.endpoint) == 4
        assert not any(s.closed for s in app.sessions)
        for ws, task in closers:
            assert not ws.closed
            await ws.close()
            await bounded(task)


@PATHS
async def test_client_whose_frame_came_with_its_upgrade_answers_pings(
    live: Serve, path: str
) -> None:
    """A client that sends its first message in the same write as its upgrade
    request: that message is delivered, and its pongs (read by the socket's
    read loop here, not by the parser) keep it open over 20 ticks, while a
    client of the same kind that stops answering is released by the second."""
    app = Recorder()
    server, clock = await serve(live, app)
    sockjs = path == SOCKJS_WS
    early = ws_frame(OP_TEXT, b'["early"]' if sockjs else b"early")
    clients = []
    for _ in range(2):
        count = len(app.sessions)
        client = await BareWebsocket.connect(server.port, path.format(new_id()), early=early)
        client.answer_pings()
        await eventually(lambda count=count: len(app.sessions) > count)
        clients.append((client, app.sessions[count]))
        await eventually(lambda client=client: _echoes(client.texts, sockjs)().count("early") == 1)
    (stays, kept), (leaves, dropped) = clients
    for n in range(TICKS):
        tick(server, clock)
        await eventually(lambda n=n: stays.pings > n and not testing.writing(kept))
        if n == 0:
            await eventually(lambda: leaves.pings == 1)
            await leaves.stop_reading()
        if n >= 2:  # its last pong answered the first ping
            await eventually(lambda: dropped.closed)
    assert held(server, kept) and not kept.closed
    assert not held(server, dropped)


def _sender(send: Callable[[str], Any], sockjs: bool) -> Callable[[str], Any]:
    """Send one message, in a SockJS frame or bare."""

    async def go(text: str) -> None:
        await send(f'["{text}"]' if sockjs else text)

    return go


def _echoes(texts: Callable[[], list[str]] | list[str], sockjs: bool) -> Callable[[], list[str]]:
    """The messages received, unpacked from SockJS frames (``h`` kept as is)."""

    def get() -> list[str]:
        got = texts() if callable(texts) else texts
        if not sockjs:
            return list(got)
        out = []
        for frame in got:
            if frame.startswith("a["):
                out += [m.strip('"') for m in frame[2:-1].split(",")]
            else:
                out.append(frame)
        return out

    return get


async def _fill_inbox(client: BareWebsocket, session: aiohttp_sockjs.Session, sockjs: bool) -> None:
    """Send until the server stops reading the socket: the inbox is full and
    aiohttp's own buffer too (over 64 KiB unread)."""
    chunk = "x" * 8192
    payload = f'["{chunk}"]' if sockjs else chunk
    transport = session.request.transport
    assert transport is not None
    sock = client.sock
    frame_bytes = ws_frame(OP_TEXT, payload.encode())
    sent = 0
    for _ in range(2000):
        if not transport.is_reading() and sent > 256 * 1024:
            return
        try:
            sock.send(frame_bytes)
            sent += len(frame_bytes)
        except BlockingIOError:
            await asyncio.sleep(0.01)
    raise AssertionError("the server kept reading a session whose handler never reads")


@PATHS
async def test_live_client_of_a_handler_that_never_reads_stays(live: Serve, path: str) -> None:
    """A client that answers pings, of a handler that never reads: its inbox
    fills and the server stops reading, so it cannot see the pongs. That is
    not held against the client: it stays open over 20 ticks."""
    app = Recorder(read=False)
    server, clock = await serve(live, app, max_inbox_size=1000)
    client, session = await connect(server, app, path)
    await _fill_inbox(client, session, path == SOCKJS_WS)
    client.answer_pings()
    for n in range(1, TICKS + 1):
        tick(server, clock)
        if path == SOCKJS_WS:
            await eventually(lambda n=n: client.texts().count("h") >= n)
        await eventually(lambda: not testing.writing(session))
    assert held(server, session) and not session.closed
    assert not client.eof
    await client.close()


# --- a full inbox, then the client leaves -------------------------------------


@pytest.mark.parametrize("how", ["fin", "rst"])
@PATHS
async def test_full_inbox_client_gone_is_released(live: Serve, path: str, how: str) -> None:
    """A websocket whose inbox is full (the handler never reads, the server has
    stopped reading the socket) and whose client then leaves is released by
    the second tick after the client left."""
    app = Recorder(read=False)
    server, clock = await serve(live, app, max_inbox_size=1000)
    client, session = await connect(server, app, path)
    await _fill_inbox(client, session, path == SOCKJS_WS)
    # Leave with nothing unread, so "fin" is a FIN and not a reset.
    while client.peek():
        await client.frame()
    await client.cut(how)
    released_at = None
    for n in range(1, 11):
        tick(server, clock)
        await eventually(lambda: not held(server, session) or not testing.writing(session))
        # The second tick is the bound: give its consequences time to land.
        # Later ticks (a failing server) are only measured, for the message.
        wait = 0.0 if n == 1 else WAIT if n == 2 else 0.5
        if await holds(lambda: not held(server, session), wait):
            released_at = n
            break
    assert released_at is not None and released_at <= 2, (
        f"released after {released_at} ticks" if released_at else "still held after 10 ticks"
    )
    assert session.closed


# --- streams whose writes cannot complete -------------------------------------

STREAMS = [
    ("POST", "xhr_streaming", b"o\n"),
    ("GET", "eventsource", b"data: o\r\n\r\n"),
    ("GET", "htmlfile?c=cb", b'p("o");'),
]


@pytest.mark.parametrize(("method", "transport", "open_frame"), STREAMS)
async def test_stalled_stream_is_cut_and_expires(
    live: Serve, method: str, transport: str, open_frame: bytes
) -> None:
    """A streaming client stops reading while the handler keeps sending: the
    server's write cannot complete. One heartbeat period after the heartbeat
    was due the connection is cut, and the session expires ``disconnect_delay``
    later: released within 2 x heartbeat_delay + disconnect_delay of the stall."""
    stalled = asyncio.Event()

    async def flood(session: aiohttp_sockjs.Session) -> None:
        message = "x" * 16384
        # Send until 1 MiB waits unwritten: the write is stuck on the client.
        while not session.closed and testing.backlog(session) < 1 << 20:
            session.send(message)
            await asyncio.sleep(0)
        stalled.set()
        await session.wait_closed()

    server, clock = await serve(live, flood, response_limit=64 << 20, max_queue_size=64 << 20)
    await stalled_request(
        server.port, method, f"/e/000/{new_id()}/{transport}", open_frame, _SOCKETS
    )
    await bounded(stalled.wait())
    [session] = testing.held_sessions(server.endpoint)
    assert testing.writing(session)
    transport_ = session.request.transport
    assert transport_ is not None
    options = server.endpoint.options
    stall = clock.now
    bound = stall + 2 * options.heartbeat_delay + options.disconnect_delay
    step = options.disconnect_delay / 2

    def settled() -> bool:
        # Either still stuck writing on an open connection, or done with it.
        if not held(server, session) or not testing.attached(session):
            return True
        return testing.writing(session) and not transport_.is_closing()

    while clock.now < bound:
        clock.now = min(clock.now + step, bound)
        server.endpoint.sweep()
        await eventually(settled)
    assert await holds(lambda: not held(server, session), WAIT), (
        f"still held {bound - stall:g} s of fake time after the stall"
        f" (attached: {testing.attached(session)}, writing: {testing.writing(session)},"
        f" connection closing: {transport_.is_closing()})"
    )
    assert session.closed
