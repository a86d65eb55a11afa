"""Inbound caps, the session cap, outbound queue bounds and websocket liveness."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import aiohttp_sockjs
from aiohttp_sockjs import ConnectionLost, Endpoint, Session, SessionClosed, testing
from aiohttp_sockjs.client import SockJSClient, connect
from tests.wire import (
    ALL_TRANSPORTS,
    bounded,
    eventually,
    new_id,
    open_xhr_session,
    xhr,
    xhr_send,
)

Factory = Callable[..., Awaitable[TestClient[Any, Any]]]
SENDERS = ("websocket", "xhr", "jsonp")


async def echo(session: Session) -> None:
    async for message in session:
        session.send(message)


async def serve(
    aiohttp_client: Factory, handler: Any = echo, **options: Any
) -> tuple[TestClient[Any, Any], Endpoint, str]:
    app = web.Application()
    endpoint = aiohttp_sockjs.setup(app, "/echo", handler, **options)
    client = await aiohttp_client(app)
    return client, endpoint, str(client.make_url("/echo"))


async def sockjs(base: str, transport: str) -> SockJSClient:
    return await connect(base, transports=transport, timeout=5.0)


async def send_together(client: SockJSClient, messages: list[str]) -> None:
    """Send ``messages`` in one frame or request: the client batches what is
    sent in one loop turn."""
    await asyncio.gather(*(client.send(m) for m in messages))


def limit_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "aiohttp_sockjs" and r.levelno >= logging.INFO]


def assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [r for r in caplog.records if r.exc_info] == []


# --- inbound caps -----------------------------------------------------------


async def _over_cap(
    aiohttp_client: Factory,
    caplog: pytest.LogCaptureFixture,
    transport: str,
    messages: list[str],
    **options: Any,
) -> None:
    caplog.set_level(logging.INFO, "aiohttp_sockjs")
    client, _, base = await serve(aiohttp_client, **options)
    c = await sockjs(base, transport)
    await c.send("before")
    assert await bounded(c.receive()) == "before"
    caplog.clear()
    if transport == "websocket":
        await send_together(c, messages)
        with pytest.raises(ConnectionLost) as lost:
            await bounded(c.receive())
        # Closed as a websocket, with no SockJS close frame: 1009 "message too big".
        assert "closed without a close frame: 1009" in str(lost.value)
    else:
        # The exact body on the wire, and its answer.
        url = f"/echo/000/{c.session_id}/{transport}_send"
        body = json.dumps(messages)
        if transport == "jsonp":
            async with client.post(url, data={"d": body}) as r:
                assert r.status == 413
        else:
            async with client.post(url, data=body.encode()) as r:
                assert r.status == 413
        # The session goes on: earlier messages were delivered and new ones flow.
        await c.send("after")
        assert await bounded(c.receive()) == "after"
    records = limit_records(caplog)
    assert len(records) == 1, records
    assert "\n" not in records[0].getMessage()
    assert_no_tracebacks(caplog)
    await c.close()


@pytest.mark.parametrize("transport", SENDERS)
async def test_message_over_max_message_size(
    aiohttp_client: Factory, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    await _over_cap(aiohttp_client, caplog, transport, ["ok", "x" * 101], max_message_size=100)


@pytest.mark.parametrize("transport", SENDERS)
async def test_body_over_max_request_size(
    aiohttp_client: Factory, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    await _over_cap(aiohttp_client, caplog, transport, ["y" * 3000], max_request_size=2000)


@pytest.mark.parametrize("transport", SENDERS)
async def test_too_many_messages_per_request(
    aiohttp_client: Factory, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    await _over_cap(aiohttp_client, caplog, transport, ["m"] * 11, max_messages_per_request=10)


@pytest.mark.parametrize("transport", SENDERS)
async def test_at_the_caps_is_accepted(aiohttp_client: Factory, transport: str) -> None:
    _client, _, base = await serve(
        aiohttp_client, max_message_size=100, max_messages_per_request=10
    )
    c = await sockjs(base, transport)
    batch = ["z" * 100] * 10
    await send_together(c, batch)
    assert [await bounded(c.receive()) for _ in batch] == batch
    await c.close()


# --- the session cap ----------------------------------------------------------


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
async def test_max_sessions(
    aiohttp_client: Factory, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    caplog.set_level(logging.INFO, "aiohttp_sockjs")
    client, endpoint, base = await serve(aiohttp_client, max_sessions=2)
    first = await sockjs(base, "xhr")
    second = await sockjs(base, "websocket")
    await eventually(lambda: len(endpoint) == 2)
    # The refusal as it is on the wire.
    path = f"/echo/000/{new_id()}/{transport}"
    if transport == "websocket":
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await client.ws_connect(path)
        assert info.value.status == 503
    else:
        method, query = {
            "xhr": ("POST", ""),
            "jsonp": ("GET", "?c=cb"),
            "xhr_streaming": ("POST", ""),
            "eventsource": ("GET", ""),
            "htmlfile": ("GET", "?c=cb"),
        }[transport]
        async with client.request(method, path + query) as r:
            assert r.status == 503
    assert len(endpoint) == 2
    # The sessions already open keep working.
    await first.send("still")
    assert await bounded(first.receive()) == "still"
    await second.send("here")
    assert await bounded(second.receive()) == "here"
    assert_no_tracebacks(caplog)
    # Once one closes there is room again.
    await second.close()
    await eventually(lambda: len(endpoint) == 1)
    again = await sockjs(base, transport)
    await again.send("room")
    assert await bounded(again.receive()) == "room"
    await again.close()
    await first.close()


# --- outbound queue bounds ------------------------------------------------------


async def test_absent_polling_client_overflow_closes(aiohttp_client: Factory) -> None:
    sessions: list[Session] = []

    async def flood(session: Session) -> None:
        sessions.append(session)
        async for _ in session:
            # The client asked for a flood and then never polls again.
            for i in range(1000):
                session.send(f"{i:04d}" + "x" * 996)
                assert testing.backlog(session) <= 50_000

    client, endpoint, _base = await serve(
        aiohttp_client, flood, max_queue_size=50_000, disconnect_delay=0.3, heartbeat_delay=0.1
    )
    # Raw polls: this client is absent, no poll waits while the flood comes.
    sid = await open_xhr_session(client, "/echo")
    await xhr_send(client, "/echo", sid, "go")
    await eventually(lambda: sessions[0].closed)
    assert sessions[0].close_code == 1013
    # The client learns why on its next poll.
    assert await bounded(xhr(client, "/echo", sid)) == 'c[1013,"Send queue overflow"]\n'
    await eventually(lambda: not testing.held_sessions(endpoint))


async def test_drop_oldest_keeps_the_newest(aiohttp_client: Factory) -> None:
    async def flood(session: Session) -> None:
        async for _ in session:
            for i in range(100):
                session.send(f"{i:03d}" + "x" * 97)

    # Each message encodes to 102 characters: ten fit.
    client, _, _base = await serve(
        aiohttp_client, flood, max_queue_size=1020, queue_overflow="drop_oldest"
    )
    # Raw polls: no poll waits while the flood comes, so all of it is queued.
    sid = await open_xhr_session(client, "/echo")
    for _ in range(2):  # the session stays open
        await xhr_send(client, "/echo", sid, "go")
        body = await bounded(xhr(client, "/echo", sid))
        got = json.loads(body[1:])
        assert [m[:3] for m in got] == [f"{i:03d}" for i in range(90, 100)]


async def test_one_message_larger_than_the_bound_still_goes_out(aiohttp_client: Factory) -> None:
    _client, _, base = await serve(aiohttp_client, max_queue_size=1000)
    for transport in ("websocket", "xhr", "xhr_streaming"):
        async with connect(base, transports=transport) as c:
            await c.send("q" * 50_000)
            assert await bounded(c.receive()) == "q" * 50_000


async def test_default_bound_round_trips_max_size_messages(aiohttp_client: Factory) -> None:
    _client, endpoint, base = await serve(aiohttp_client)
    size = endpoint.options.max_message_size
    # The worst case: a control character is 6 characters on the wire.
    worst = "\x01" * size
    plain = ["p" * size, "q" * size, "r" * size]
    for transport in ("websocket", "xhr", "xhr_streaming"):
        async with connect(base, transports=transport) as c:
            await c.send(worst)
            assert await bounded(c.receive()) == worst
            # Three plain ones echoed back to back fit the default bound together.
            await send_together(c, plain)
            assert [await bounded(c.receive()) for _ in plain] == plain


def _stalled_socket(port: int, request: bytes) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(request)
    return sock


@pytest.mark.parametrize("transport", ["websocket", "raw_websocket", "xhr_streaming"])
async def test_stalled_client_cannot_grow_memory(
    aiohttp_client: Factory, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    caplog.set_level(logging.INFO, "aiohttp_sockjs")
    sessions: list[Session] = []
    bound = 100_000

    async def flood(session: Session) -> None:
        sessions.append(session)
        chunk = "s" * 10_000
        while not session.closed:
            session.send(chunk)
            assert testing.backlog(session) <= bound + 10_002
            await asyncio.sleep(0)  # a handler that lets the loop write between sends

    client, endpoint, _ = await serve(
        aiohttp_client,
        flood,
        max_queue_size=bound,
        disconnect_delay=0.2,
        heartbeat_delay=0.1,
        response_limit=1 << 30,
    )
    port = client.port
    if transport == "xhr_streaming":
        request = (
            b"POST /echo/000/stall/xhr_streaming HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        )
    else:
        path = b"/echo/websocket" if transport == "raw_websocket" else b"/echo/000/stall/websocket"
        request = (
            b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
    sock = await asyncio.get_running_loop().run_in_executor(None, _stalled_socket, port, request)
    try:
        await eventually(lambda: bool(sessions) and sessions[0].closed, timeout=20)
        assert sessions[0].close_code == 1013
        await eventually(lambda: not testing.held_sessions(endpoint), timeout=5)
        assert any("queue" in r.getMessage() for r in limit_records(caplog))
        assert_no_tracebacks(caplog)
    finally:
        sock.close()


async def test_broadcast_with_stalled_sessions_reaches_the_healthy(
    aiohttp_client: Factory,
) -> None:
    sessions: list[Session] = []

    async def idle(session: Session) -> None:
        sessions.append(session)
        async for _ in session:
            pass

    client, endpoint, base = await serve(
        aiohttp_client,
        idle,
        max_sessions=None,
        max_sessions_per_client=None,  # 10,000 sessions from one address
        max_queue_size=200_000,
        disconnect_delay=60,
        response_limit=1 << 30,
    )
    # 10,000 polling sessions whose clients never come back.
    sem = asyncio.Semaphore(64)

    async def absent() -> None:
        async with sem:
            await open_xhr_session(client, "/echo")

    await asyncio.gather(*(absent() for _ in range(10_000)))
    # Three websockets whose clients stop reading.
    request = (
        b"GET /echo/000/stalled%d/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    loop = asyncio.get_running_loop()
    stalled = [
        await loop.run_in_executor(None, _stalled_socket, client.port, request % i)
        for i in range(3)
    ]
    healthy = [await sockjs(base, t) for t in ("websocket", "xhr_streaming") * 5]
    await eventually(lambda: len(endpoint) == 10_013)
    messages = [f"{i:05d}" + "b" * 9_994 for i in range(1000)]

    async def produce() -> None:
        for m in messages:
            endpoint.broadcast(m)
            await asyncio.sleep(0)  # a producer that lets the loop write between broadcasts

    try:

        async def read(c: SockJSClient) -> list[str]:
            return [await c.receive() for _ in messages]

        results = await asyncio.gather(produce(), *(read(c) for c in healthy))
        for got in results[1:]:
            assert got == messages
        # Every absent and stalled session went over its bound and was closed.
        await eventually(lambda: len(endpoint) == 10)
        closed = [s for s in sessions if (testing.session_id(s) or "").startswith("stalled")]
        assert [s.close_code for s in closed] == [1013, 1013, 1013]
    finally:
        for sock in stalled:
            sock.close()
    for c in healthy:
        await c.close()


# --- liveness -----------------------------------------------------------------


async def test_dead_websocket_peer_is_detected(aiohttp_client: Factory) -> None:
    sessions: list[Session] = []

    async def keep(session: Session) -> None:
        sessions.append(session)
        await echo(session)

    # aiohttp's own ping timer (a number of seconds), beside heartbeats.
    client, endpoint, base = await serve(
        aiohttp_client, keep, websocket_ping_interval=0.05, heartbeat_delay=0.05
    )
    # The client answers pings (and counts the heartbeat frames).
    alive = await connect(base, transports="websocket", session_id="alive")
    # A raw websocket that never reads, so never answers a ping.
    dead = await client.session.ws_connect(base + "/000/dead/websocket", autoping=False)
    await eventually(lambda: len(sessions) == 2)
    by_id = {testing.session_id(s): s for s in sessions}
    # The peer that never answers pings is dropped; the other stays.
    await eventually(lambda: by_id["dead"].closed)
    await eventually(lambda: by_id["dead"] not in testing.held_sessions(endpoint))
    answered = alive.heartbeats
    await eventually(lambda: alive.heartbeats >= answered + 4)  # several more ping intervals
    assert not by_id["alive"].closed
    await alive.send("ping")
    assert await bounded(alive.receive()) == "ping"
    await alive.close()
    await dead.close()


# --- handler faults ---------------------------------------------------------------


@pytest.mark.parametrize("transport", ["websocket", "xhr", "jsonp", "xhr_streaming"])
async def test_handler_exception_closes_only_its_session(
    aiohttp_client: Factory, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    async def fragile(session: Session) -> None:
        async for message in session:
            if message == "boom":
                raise RuntimeError("application bug")
            session.send(message)

    _client, endpoint, base = await serve(aiohttp_client, fragile)
    bystanders = [await sockjs(base, t) for t in ("websocket", "xhr", "eventsource")]
    victim = await sockjs(base, transport)
    await victim.send("fine")
    assert await bounded(victim.receive()) == "fine"
    await victim.send("boom")
    with pytest.raises(SessionClosed) as closed:
        await bounded(victim.receive())
    assert (closed.value.code, closed.value.reason) == (1011, "Internal error")
    errors = [r for r in caplog.records if r.exc_info]
    assert len(errors) == 1
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is RuntimeError
    for b in bystanders:
        await b.send("alive")
        assert await bounded(b.receive()) == "alive"
    assert len(endpoint) == 3
    for b in bystanders:
        await b.close()
    await victim.close()


async def test_lone_surrogate_to_a_raw_websocket(aiohttp_client: Factory) -> None:
    app = web.Application()
    endpoint = aiohttp_sockjs.setup(app, "/b")

    @endpoint.on_message
    def relay(session: Session, message: str) -> None:
        endpoint.broadcast(message)

    client = await aiohttp_client(app)
    raw = await client.ws_connect("/b/websocket")
    sockjs = await client.ws_connect("/b/000/s/websocket")
    assert await sockjs.receive_str() == "o"
    await eventually(lambda: len(endpoint) == 2)
    # A browser may send a lone surrogate; the raw socket cannot carry one.
    await sockjs.send_str('["a\\ud800b"]')
    assert await raw.receive_str() == "a\ufffdb"
    assert await sockjs.receive_str() == 'a["a\\ud800b"]'
    await sockjs.send_str('["next"]')
    assert await raw.receive_str() == "next"
    await raw.close()
    await sockjs.close()
