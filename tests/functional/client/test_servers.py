"""The client against real servers: ours and sockjs-node, on every transport.

Each test runs once per server (the ``server_url`` fixture) and, where it
asks for ``sockjs_transport`` (the package's pytest plugin), once per
transport the client speaks; both servers offer all of them.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from aiohttp_sockjs import ConnectError, SessionClosed
from aiohttp_sockjs.client import DEFAULT_TRANSPORTS, SockJSClient, connect

from ...wire import SERVER_ESCAPE_SET, bounded, eventually
from .conftest import CLIENT_OPTIONS

MESSAGES = [
    "hello",
    "",
    "unicode: \u00e9\u4e2d\U0001f600",
    "newlines\r\nand % percent %25 and \x00 NUL",
    '"quotes" \\ backslash / slash',
    "escaped by servers: " + SERVER_ESCAPE_SET,
    "x" * 10_000,
]


async def open_client(url: str, transport: str, **options: object) -> SockJSClient:
    return await connect(url, transports=transport, **{**CLIENT_OPTIONS, **options})


async def test_echo_keeps_messages_and_order(server_url: str, sockjs_transport: str) -> None:
    """Every message comes back unchanged and in order, sent one by one or at once."""
    async with await open_client(f"{server_url}/echo", sockjs_transport) as client:
        assert client.transport == sockjs_transport
        for message in MESSAGES:
            await client.send(message)
            assert await bounded(client.receive()) == message
        # Concurrent sends: over HTTP they share xhr_send requests.
        await asyncio.gather(*(client.send(f"m{i}") for i in range(50)))
        assert [await bounded(client.receive()) for _ in range(50)] == [f"m{i}" for i in range(50)]


async def test_streams_reopen_past_the_response_limit(
    server_url: str, sockjs_transport: str
) -> None:
    """/echo ends a stream after 4 KiB; the client opens the next one and loses nothing."""
    async with await open_client(f"{server_url}/echo", sockjs_transport) as client:
        for i in range(6):
            await client.send(str(i) * 3000)
        got = [await bounded(client.receive()) for _ in range(6)]
        assert got == [str(i) * 3000 for i in range(6)]


async def test_server_close_ends_the_session(server_url: str, sockjs_transport: str) -> None:
    """The server's close frame: ``async for`` ends, the code and reason are kept."""
    async with await open_client(f"{server_url}/close", sockjs_transport) as client:
        received = [message async for message in client]
        assert received == []
        assert client.closed
        assert (client.close_code, client.close_reason) == (3000, "Go away!")
        assert client.exception is None
        with pytest.raises(SessionClosed) as closed:
            await client.receive()
        assert (closed.value.code, closed.value.reason) == (3000, "Go away!")
        with pytest.raises(SessionClosed):
            await client.send("too late")


async def test_client_close(server_url: str, sockjs_transport: str) -> None:
    """close() ends the session on the client with the code and reason given."""
    client = await open_client(f"{server_url}/echo", sockjs_transport)
    await client.send("before")
    assert await bounded(client.receive()) == "before"
    await bounded(client.close(3001, "bye"))
    assert client.closed
    assert (client.close_code, client.close_reason) == (3001, "bye")
    with pytest.raises(SessionClosed) as closed:
        await client.receive()
    assert (closed.value.code, closed.value.reason) == (3001, "bye")
    with pytest.raises(SessionClosed):
        await client.send("after")
    await client.close()  # idempotent


@pytest.mark.sockjs_transports("websocket", "xhr_streaming", "eventsource", "xhr")
async def test_heartbeats_keep_a_quiet_session_open(server_url: str, sockjs_transport: str) -> None:
    """Heartbeats (every 0.1 s here) count as life: a quiet session outlives heartbeat_timeout.

    sockjs-node sends websocket pings instead of ``h`` frames on a
    websocket; the client answers them and counts them too.
    """
    client = await open_client(f"{server_url}/echo", sockjs_transport, heartbeat_timeout=1.0)
    async with client:
        # Fifteen heartbeats take half as long again as the heartbeat timeout.
        await eventually(lambda: client.heartbeats >= 15 or client.closed, timeout=10)
        assert not client.closed, client.exception
        await client.send("still here")
        assert await bounded(client.receive()) == "still here"


async def test_falls_back_when_info_says_no_websocket(server_url: str) -> None:
    """/info says websockets are off: the default list goes on to xhr_streaming."""
    async with connect(f"{server_url}/disabled_websocket_echo", **CLIENT_OPTIONS) as client:
        assert client.transport == DEFAULT_TRANSPORTS[1] == "xhr_streaming"
        await client.send("hello")
        assert await bounded(client.receive()) == "hello"


async def test_default_transport_is_websocket(server_url: str) -> None:
    async with connect(f"{server_url}/echo", **CLIENT_OPTIONS) as client:
        assert client.transport == "websocket"
        assert client.session_id is not None
        await client.send("hello")
        assert await bounded(client.receive()) == "hello"


async def test_raw_websocket_refuses_a_lone_surrogate(server_url: str) -> None:
    """UTF-8 cannot carry it: that send fails, the session goes on."""
    async with await open_client(f"{server_url}/echo", "raw_websocket") as client:
        with pytest.raises(UnicodeEncodeError):
            await bounded(client.send("\ud800"))
        assert not client.closed
        await client.send("fine")
        assert await bounded(client.receive()) == "fine"


@pytest.mark.sockjs_transports("xhr_streaming", "eventsource", "xhr", "htmlfile", "jsonp")
async def test_session_id_joins_a_session(server_url: str, sockjs_transport: str) -> None:
    """A client given the id of a session with a receiver is its second receiver: 2010."""
    async with await open_client(f"{server_url}/echo", "xhr_streaming") as first:
        assert first.session_id is not None
        with pytest.raises(ConnectError) as raised:
            await open_client(f"{server_url}/echo", sockjs_transport, session_id=first.session_id)
        error = raised.value.errors[sockjs_transport]
        assert isinstance(error, SessionClosed)
        assert (error.code, error.reason) == (2010, "Another connection still open")
        # The first receiver is unharmed.
        await first.send("still mine")
        assert await bounded(first.receive()) == "still mine"


async def test_session_id_is_used(server_url: str) -> None:
    async with await open_client(f"{server_url}/echo", "xhr", session_id="chosen-1") as client:
        assert client.session_id == "chosen-1"
        await client.send("hello")
        assert await bounded(client.receive()) == "hello"


async def test_a_trace_on_the_session_sees_every_request(
    server_url: str, sockjs_transport: str
) -> None:
    """The client makes every request on ``session=``: a TraceConfig there sees each response."""
    seen: list[tuple[str, int]] = []

    async def on_request_end(
        http: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestEndParams
    ) -> None:
        seen.append((params.url.path, params.response.status))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    async with aiohttp.ClientSession(trace_configs=[trace]) as http:
        url = f"{server_url}/echo"
        async with await open_client(url, sockjs_transport, session=http) as client:
            await client.send("hello")
            assert await bounded(client.receive()) == "hello"
    if sockjs_transport == "raw_websocket":
        assert seen == [("/echo/websocket", 101)]
        return
    assert seen[0] == ("/echo/info", 200)
    sent_with = {"websocket": None, "jsonp": "jsonp_send"}.get(sockjs_transport, "xhr_send")
    kinds = []
    for path, status in seen[1:]:
        prefix, _server, session, kind = path.rsplit("/", 3)
        assert (prefix, session) == ("/echo", client.session_id), seen
        assert status in (101, 200, 204), seen
        kinds.append(kind)
    assert kinds[0] == sockjs_transport, seen
    assert set(kinds) == {sockjs_transport, sent_with} - {None}, seen


@pytest.mark.parametrize("bad", ["", "a.b", "a/b", "a?b", "a\nb"])
def test_session_id_must_be_a_path_segment(bad: str) -> None:
    with pytest.raises(ValueError):
        connect("http://127.0.0.1:1/echo", session_id=bad)
