"""The client against small misbehaving servers: a clear error in time, never a hang.

Every wait is bounded by ``bounded()`` (3 s), well above the client's own
configured timeouts (0.2 s here), so a client that hangs fails the test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from aiohttp_sockjs import (
    ConnectError,
    ConnectionLost,
    RemoteProtocolError,
    ResponseTimeout,
    SessionClosed,
)
from aiohttp_sockjs.client import SockJSClient, connect

from ...wire import bounded

SOCKJS_TRANSPORTS = ("websocket", "xhr_streaming", "eventsource", "xhr", "htmlfile", "jsonp")
STREAMING = ("xhr_streaming", "eventsource", "htmlfile")
POLLING = ("xhr", "jsonp")
#: For the tests of silence: the client's own bounds.
QUICK: dict[str, Any] = {"timeout": 0.2, "heartbeat_timeout": 0.2}
#: For the others, bounds a slow machine never reaches by accident.
SAFE: dict[str, Any] = {"timeout": 2.0, "heartbeat_timeout": 2.0}

HANG = "hang"  # the response stays open and silent
END = "end"  # the response (or websocket) ends


@dataclass
class Script:
    """What the fake server answers on one transport.

    ``answers`` holds one entry per request (per poll, per stream, per
    websocket): the frames or raw pieces to send, then :data:`HANG` or
    :data:`END`. Requests past the list hang.
    """

    transport: str
    answers: list[tuple[list[str | bytes], str]]
    info: bytes | None = b'{"websocket": true, "cookie_needed": false}'
    info_hangs: bool = False
    send_status: int = 204
    send_hangs: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    send_arrived: asyncio.Event = field(default_factory=asyncio.Event)


def wire(transport: str, piece: str | bytes, callback: str) -> bytes:
    """A frame in the transport's framing; bytes go as they are, with ``{cb}``
    standing for the JSONP callback."""
    if isinstance(piece, bytes):
        return piece.replace(b"{cb}", callback.encode())
    if transport == "eventsource":
        return ("data: " + piece + "\r\n\r\n").encode()
    if transport == "htmlfile":
        return ("<script>\np(" + json.dumps(piece) + ");\n</script>\r\n").encode()
    if transport == "jsonp":
        return ("/**/" + callback + "(" + json.dumps(piece) + ");\r\n").encode()
    return (piece + "\n").encode()


def fake_app(script: Script) -> web.Application:
    app = web.Application()
    answers = iter(script.answers)

    async def on_shutdown(app: web.Application) -> None:
        script.stop.set()

    app.on_shutdown.append(on_shutdown)

    async def info(request: web.Request) -> web.StreamResponse:
        if script.info_hangs or script.info is None:
            await script.stop.wait()
        return web.Response(body=script.info, content_type="application/json")

    async def receiving(request: web.Request) -> web.StreamResponse:
        pieces, then = next(answers, ([], HANG))
        transport = script.transport
        callback = request.query.get("c", "")
        if transport in ("websocket", "raw_websocket"):
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            for piece in pieces:
                if isinstance(piece, bytes):
                    await ws.send_bytes(piece)
                else:
                    await ws.send_str(piece)
            if then == HANG:
                async for _ in ws:
                    pass
            await ws.close()
            return ws
        resp = web.StreamResponse()
        await resp.prepare(request)
        if transport == "xhr_streaming":
            await resp.write(b"h" * 2048 + b"\n")
        elif transport == "eventsource":
            await resp.write(b"\r\n")
        elif transport == "htmlfile":
            page = f"<!doctype html>\n<script>var c = parent.{callback};</script>"
            await resp.write(page.encode() + b" " * 1024 + b"\r\n\r\n")
        for piece in pieces:
            await resp.write(wire(transport, piece, callback))
        if then == HANG:
            await script.stop.wait()
        return resp

    async def xhr_send(request: web.Request) -> web.StreamResponse:
        await request.read()
        script.send_arrived.set()
        if script.send_hangs:
            await script.stop.wait()
        return web.Response(status=script.send_status)

    app.router.add_get("/bad/info", info)
    app.router.add_get("/bad/websocket", receiving)
    session = "/bad/{server}/{session}"
    app.router.add_route("*", session + "/" + script.transport, receiving)
    app.router.add_post(session + "/xhr_send", xhr_send)
    app.router.add_post(session + "/jsonp_send", xhr_send)
    return app


Serve = Callable[[Script], Any]


@pytest.fixture
def bad_url(aiohttp_server: Any) -> Serve:
    """``await bad_url(script)``: serve the script and return the endpoint's URL."""

    async def go(script: Script) -> str:
        server = await aiohttp_server(fake_app(script))
        return str(server.make_url("/bad"))

    return go


async def open_fake(bad_url: Serve, script: Script, **options: Any) -> SockJSClient:
    url = await bad_url(script)
    client: SockJSClient = await bounded(
        connect(url, transports=script.transport, **{**SAFE, **options})
    )
    return client


async def fails_with(client: SockJSClient, error: type[Exception]) -> Exception:
    """Receive until the client fails; check the error and the client's state."""
    with pytest.raises(error) as raised:
        while True:
            await bounded(client.receive())
    assert client.closed and client.close_code == 1006
    assert client.exception is raised.value
    assert client.close_reason == str(raised.value)
    # The same error again, not a hang.
    with pytest.raises(error):
        await bounded(client.receive())
    await bounded(client.close())
    return raised.value


# --- /info ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", RemoteProtocolError),
        (b'{"cookie_needed": false}', RemoteProtocolError),
        (b'["websocket"]', RemoteProtocolError),
    ],
)
async def test_garbage_info(bad_url: Serve, body: bytes, error: type[Exception]) -> None:
    url = await bad_url(Script("xhr", [], info=body))
    with pytest.raises(ConnectError) as raised:
        await bounded(connect(url, **SAFE))
    assert isinstance(raised.value.errors["info"], error)
    assert list(raised.value.errors) == ["info"]


async def test_info_never_answers(bad_url: Serve) -> None:
    url = await bad_url(Script("xhr", [], info_hangs=True))
    with pytest.raises(ConnectError) as raised:
        await bounded(connect(url, **QUICK))
    assert isinstance(raised.value.errors["info"], ResponseTimeout)
    assert "0.2 s" in str(raised.value)


async def test_info_missing(aiohttp_server: Any) -> None:
    server = await aiohttp_server(web.Application())
    with pytest.raises(ConnectError) as raised:
        await bounded(connect(server.make_url("/nothing"), **SAFE))
    assert isinstance(raised.value.errors["info"], ConnectionLost)
    assert "404" in str(raised.value)


# --- opening -------------------------------------------------------------


@pytest.mark.parametrize("transport", SOCKJS_TRANSPORTS)
async def test_open_frame_never_comes(bad_url: Serve, transport: str) -> None:
    url = await bad_url(Script(transport, [([], HANG)]))
    with pytest.raises(ConnectError) as raised:
        await bounded(connect(url, transports=transport, **QUICK))
    assert isinstance(raised.value.errors[transport], ResponseTimeout)


@pytest.mark.parametrize("transport", SOCKJS_TRANSPORTS)
async def test_first_frame_is_not_open(bad_url: Serve, transport: str) -> None:
    then = END if transport in POLLING else HANG
    url = await bad_url(Script(transport, [(['a["early"]'], then)]))
    with pytest.raises(ConnectError) as raised:
        await bounded(connect(url, transports=transport, **SAFE))
    assert isinstance(raised.value.errors[transport], RemoteProtocolError)


@pytest.mark.parametrize("transport", SOCKJS_TRANSPORTS)
async def test_close_instead_of_open_stops_the_fallback(bad_url: Serve, transport: str) -> None:
    url = await bad_url(Script(transport, [(['c[2010,"Another connection still open"]'], END)]))
    with pytest.raises(ConnectError) as raised:
        await bounded(connect(url, transports=[transport, "xhr"], **SAFE))
    error = raised.value.errors[transport]
    assert isinstance(error, SessionClosed) and error.code == 2010
    assert "xhr" not in raised.value.errors or transport == "xhr"


async def test_every_transport_refused(aiohttp_server: Any) -> None:
    """A server with /info but no transport routes: each is tried, each error kept."""
    app = web.Application()

    async def info(request: web.Request) -> web.Response:
        return web.json_response({"websocket": True})

    app.router.add_get("/e/info", info)
    server = await aiohttp_server(app)
    with pytest.raises(ConnectError) as raised:
        await bounded(connect(server.make_url("/e"), **SAFE))
    errors = raised.value.errors
    assert list(errors) == ["websocket", "xhr_streaming", "eventsource", "xhr"]
    assert all(isinstance(error, ConnectionLost) for error in errors.values())
    assert "404" in str(errors["xhr"])


# --- garbage after the open frame ---------------------------------------

GARBAGE = [
    "x",
    "a[1]",
    'a["unterminated',
    'a{"not": "an array"}',
    'c["3000","code is a string"]',
    "c[3000]",
    "oo",
]


@pytest.mark.parametrize("garbage", GARBAGE)
@pytest.mark.parametrize("transport", SOCKJS_TRANSPORTS)
async def test_garbage_frame(bad_url: Serve, transport: str, garbage: str) -> None:
    """Good messages before the garbage are delivered, then the error."""
    answers: list[tuple[list[str | bytes], str]]
    if transport in POLLING:
        answers = [(["o"], END), (['a["fine"]'], END), ([garbage], END)]
    else:
        answers = [(["o", 'a["fine"]', garbage], HANG)]
    client = await open_fake(bad_url, Script(transport, answers))
    assert await bounded(client.receive()) == "fine"
    error = await fails_with(client, RemoteProtocolError)
    assert repr(garbage[:20])[1:-1] in str(error)


async def test_eventsource_bad_percent_escape(bad_url: Serve) -> None:
    client = await open_fake(bad_url, Script("eventsource", [(["o", 'a["100%"]'], HANG)]))
    await fails_with(client, RemoteProtocolError)


async def test_stream_not_utf8(bad_url: Serve) -> None:
    script = Script("xhr_streaming", [(["o", b'a["\xff"]\n'], HANG)])
    client = await open_fake(bad_url, script)
    await fails_with(client, RemoteProtocolError)


async def test_binary_websocket_message(bad_url: Serve) -> None:
    client = await open_fake(bad_url, Script("websocket", [(["o", b"\x00\x01"], HANG)]))
    await fails_with(client, RemoteProtocolError)


async def test_binary_raw_websocket_message(bad_url: Serve) -> None:
    client = await open_fake(bad_url, Script("raw_websocket", [(["fine", b"\x00"], HANG)]))
    assert await bounded(client.receive()) == "fine"
    await fails_with(client, RemoteProtocolError)


@pytest.mark.parametrize("transport", ["websocket", *STREAMING, *POLLING])
async def test_frame_over_max_frame_size(bad_url: Serve, transport: str) -> None:
    big = 'a["' + "x" * 5000 + '"]'
    answers: list[tuple[list[str | bytes], str]]
    if transport in POLLING:
        answers = [(["o"], END), ([big], END)]
    elif transport == "websocket":
        answers = [(["o", big], HANG)]
    elif transport == "htmlfile":
        answers = [(["o", b'<script>\np("', *[b"a" * 1000] * 8], HANG)]
    else:
        # No line end ever: the client must not buffer without bound.
        answers = [(["o", *[b"a" * 1000] * 8], HANG)]
    client = await open_fake(bad_url, Script(transport, answers), max_frame_size=4096)
    error = await fails_with(client, RemoteProtocolError)
    assert "4096" in str(error)


# --- cut off ---------------------------------------------------------------


@pytest.mark.parametrize("transport", SOCKJS_TRANSPORTS)
async def test_closed_mid_frame(bad_url: Serve, transport: str) -> None:
    answers: list[tuple[list[str | bytes], str]]
    if transport == "websocket":
        # A websocket carries whole frames: the cut is a close without "c".
        answers = [(["o", 'a["fine"]'], END)]
    elif transport == "xhr":
        answers = [(["o"], END), ([b'a["fine"]\na["cut'], END)]
    elif transport == "jsonp":
        answers = [(["o"], END), (['a["fine"]'], END), ([b'/**/{cb}("a[\\"cut'], END)]
    elif transport == "eventsource":
        answers = [(["o", 'a["fine"]', b'data: a["cut'], END)]
    elif transport == "htmlfile":
        answers = [(["o", 'a["fine"]', b'<script>\np("a[\\"cut'], END)]
    else:
        answers = [(["o", 'a["fine"]', b'a["cut'], END)]
    client = await open_fake(bad_url, Script(transport, answers))
    assert await bounded(client.receive()) == "fine"
    await fails_with(client, ConnectionLost)


@pytest.mark.parametrize("transport", STREAMING)
async def test_stream_ends_without_a_frame(bad_url: Serve, transport: str) -> None:
    answers: list[tuple[list[str | bytes], str]] = [(["o"], END), ([], END)]
    client = await open_fake(bad_url, Script(transport, answers))
    await fails_with(client, ConnectionLost)


@pytest.mark.parametrize("transport", [*STREAMING, *POLLING])
async def test_server_lost_the_session(bad_url: Serve, transport: str) -> None:
    """A second open frame means a new session: what was queued is gone."""
    then = END if transport in POLLING else HANG
    answers: list[tuple[list[str | bytes], str]] = [(["o", 'a["one"]'], END), (["o"], then)]
    if transport == "jsonp":  # one frame per answer
        answers = [(["o"], END), (['a["one"]'], END), (["o"], END)]
    client = await open_fake(bad_url, Script(transport, answers))
    assert await bounded(client.receive()) == "one"
    error = await fails_with(client, ConnectionLost)
    assert "lost" in str(error)


# --- silence ---------------------------------------------------------------


@pytest.mark.parametrize("transport", [*SOCKJS_TRANSPORTS, "raw_websocket"])
async def test_silence_after_open(bad_url: Serve, transport: str) -> None:
    """No frame, no heartbeat for heartbeat_timeout: ResponseTimeout, also a TimeoutError."""
    first = [] if transport == "raw_websocket" else ["o"]
    answers: list[tuple[list[str | bytes], str]] = [(first, END if transport in POLLING else HANG)]
    client = await open_fake(bad_url, Script(transport, answers), heartbeat_timeout=0.2)
    error = await fails_with(client, ResponseTimeout)
    assert isinstance(error, TimeoutError)
    assert "0.2 s" in str(error)


async def test_send_never_answered(bad_url: Serve) -> None:
    script = Script("xhr_streaming", [(["o"], HANG)], send_hangs=True)
    client = await open_fake(bad_url, script, timeout=0.2)
    with pytest.raises(ResponseTimeout):
        await bounded(client.send("hello"))
    assert client.close_code == 1006
    with pytest.raises(ResponseTimeout):
        await bounded(client.send("again"))
    with pytest.raises(ResponseTimeout):
        await bounded(client.receive())
    await bounded(client.close())


async def test_send_refused(bad_url: Serve) -> None:
    client = await open_fake(bad_url, Script("xhr", [(["o"], END)], send_status=404))
    with pytest.raises(ConnectionLost) as raised:
        await bounded(client.send("hello"))
    assert "xhr_send answered HTTP 404" in str(raised.value)
    await bounded(client.close())


@pytest.mark.parametrize("how", ["close", "abort"])
async def test_close_during_a_send(bad_url: Serve, how: str) -> None:
    """A send in flight when the client is closed raises SessionClosed, never hangs."""
    script = Script("xhr_streaming", [(["o"], HANG)], send_hangs=True)
    client = await open_fake(bad_url, script)
    sending = asyncio.ensure_future(client.send("hello"))
    await bounded(script.send_arrived.wait())
    await bounded(client.close() if how == "close" else client.abort())
    with pytest.raises(SessionClosed):
        await bounded(sending)
