"""The one package that reaches past aiohttp's public API works on this aiohttp.

pyproject.toml pins aiohttp to the versions aiohttp_sockjs/_aiohttp/ was
written against; on any of them a missing fast path or a compression
choice it cannot make is a failure here, not a silent fallback.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from importlib.metadata import version
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, make_mocked_request

import aiohttp_sockjs
from aiohttp_sockjs import _aiohttp
from aiohttp_sockjs._aiohttp import writes
from tests.conftest import ClientFactory
from tests.deflate_client import DeflateClient
from tests.wire import bounded, eventually, new_id, session_url

TEXTS = ["a", "é" * 200, "x" * 30_000, "y" * 70_000]


def _allowed(v: str) -> bool:
    parts = tuple(int(p) for p in v.split(".")[:3] if p.isdigit())
    return (3, 13, 2) <= parts < (3, 15)


def test_running_aiohttp_is_a_supported_one_and_has_the_layout() -> None:
    assert _allowed(version("aiohttp")), version("aiohttp")
    assert _aiohttp.SUPPORTED
    assert _aiohttp.STREAM_SUPPORTED
    assert _aiohttp.PONGS_SUPPORTED


async def _serve(aiohttp_client: Any, compress: bool, results: list[bool]) -> TestClient[Any, Any]:

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=compress, writer_limit=65536)
        await ws.prepare(request)
        for text in TEXTS:
            wrote = _aiohttp.write_text_now(ws, text.encode())
            results.append(wrote)
            if not wrote:
                await ws.send_str(text)
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


async def _receive_all(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
    texts = []
    while True:
        msg = await bounded(ws.receive())
        if msg.type is not WSMsgType.TEXT:
            return texts
        texts.append(msg.data)


async def test_nothing_is_written_at_once_after_the_close_frame(aiohttp_client: Any) -> None:
    """Once the server has sent its close frame (``start_close``), write_text_now
    writes nothing: the client sees the close frame and no text after it."""
    results: list[bool] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        results.append(_aiohttp.write_text_now(ws, b"before"))
        await _aiohttp.start_close(ws, 1000, b"", 5.0)
        results.append(_aiohttp.write_text_now(ws, b"after"))
        await _aiohttp.await_close(ws)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws", autoclose=False) as ws:
        assert (await bounded(ws.receive())).data == "before"
        closing = await bounded(ws.receive())
        assert closing.type is WSMsgType.CLOSE, closing
        await ws.close()
    assert results == [True, False]


async def test_frames_written_at_once_arrive_exactly(aiohttp_client: Any) -> None:
    results: list[bool] = []
    client = await _serve(aiohttp_client, False, results)
    async with client.ws_connect("/ws", compress=0) as ws:
        assert await _receive_all(ws) == TEXTS
    # The last frame would take the writer past its flow-control limit.
    assert results == [True, True, True, False]


async def test_compressed_sockets_follow_the_threshold(aiohttp_client: Any) -> None:
    """On a socket with permessage-deflate, write_text_now writes short
    frames uncompressed and others compressed, up to the sync limit;
    send_text sends the rest. A client that inflates each message afresh
    (server_no_context_takeover) reads them all exactly."""
    results: list[bool] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=True)
        await ws.prepare(_aiohttp.no_server_takeover(request))
        for text in ("a", "é" * 200, "x" * 70_000):
            wrote = _aiohttp.write_text_now(ws, text.encode(), threshold=100)
            results.append(wrote)
            if not wrote:
                await _aiohttp.send_text(ws, text.encode(), threshold=100)
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    assert client.server.host is not None and client.server.port is not None
    ws = await DeflateClient.connect(client.server.host, client.server.port, "/ws")
    assert ws.extensions == "permessage-deflate; server_no_context_takeover"
    frames = [await ws.recv() for _ in range(3)]
    assert [(f.data.decode(), f.rsv1) for f in frames] == [
        ("a", False),
        ("é" * 200, True),
        ("x" * 70_000, True),
    ]
    assert results == [True, True, False]
    await ws.close()


async def test_the_same_frame_is_compressed_once() -> None:
    data = json.dumps([str(i) for i in range(500)]).encode()
    first = writes._DEFLATER.compress_now(data, 15)
    assert writes._DEFLATER.compress_now(bytes(bytearray(data)), 15) is first
    assert writes._DEFLATER.compress_now(data, 10) is not first
    large = data * 100
    assert len(large) > _aiohttp.SYNC_COMPRESS_LIMIT
    once = await writes._DEFLATER.compress(large, 15)
    assert await writes._DEFLATER.compress(bytes(bytearray(large)), 15) is once
    inflate = zlib.decompressobj(-15)
    assert inflate.decompress(once + b"\x00\x00\xff\xff") == large


def _request(extensions: str | None) -> web.Request:
    headers = {"Upgrade": "websocket", "Connection": "Upgrade"}
    if extensions is not None:
        headers["Sec-WebSocket-Extensions"] = extensions
    return make_mocked_request("GET", "/ws", headers=headers)


def test_offers_get_server_no_context_takeover() -> None:
    cases = {
        "permessage-deflate": "permessage-deflate; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits": (
            "permessage-deflate; client_max_window_bits; server_no_context_takeover"
        ),
        "permessage-deflate; server_no_context_takeover": (
            "permessage-deflate; server_no_context_takeover"
        ),
        "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10": (
            "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10"
            "; server_no_context_takeover"
        ),
    }
    for offer, seen in cases.items():
        request = _request(offer)
        assert _aiohttp.no_server_takeover(request).headers["Sec-WebSocket-Extensions"] == seen
        assert request.headers["Sec-WebSocket-Extensions"] == offer
    for offer in (None, "x-webkit-deflate-frame"):
        request = _request(offer)
        assert _aiohttp.no_server_takeover(request) is request


async def test_one_payload_written_whole_to_many_sockets(aiohttp_client: Any) -> None:
    """write_text_now builds a frame whole once and writes it to each socket
    that gets the same payload (a broadcast); others get their own frame,
    and the length forms at the 7/16-bit boundary arrive exactly."""
    shared = ("s" * 125).encode()
    texts: list[bytes] = [shared, b"t" * 126, shared, ("\u00e9" * 300).encode(), shared]
    results: list[bool] = []
    sockets: list[web.WebSocketResponse] = []
    ready = asyncio.Event()
    written = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.append(ws)
        if len(sockets) == 3:
            ready.set()
        await ready.wait()
        if ws is sockets[0]:
            # Every socket gets each text in turn, as a broadcast writes them.
            for text in texts:
                for each in sockets:
                    results.append(_aiohttp.write_text_now(each, text))
            written.set()
        await written.wait()
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    clients = [await client.ws_connect("/ws", compress=0) for _ in range(3)]
    got = [await _receive_all(ws) for ws in clients]
    assert got == [[t.decode() for t in texts]] * 3
    assert all(results)
    for ws in clients:
        await ws.close()


async def test_a_marked_dispatcher_is_taken_as_is(aiohttp_client: Any) -> None:
    """aiohttp takes a plain function marked by coroutine_handler as a
    handler without wrapping it (no extra coroutine per connection) and
    without a DeprecationWarning (the suite turns warnings into errors)."""

    async def target(request: web.Request) -> web.Response:
        return web.Response(text="via " + request.match_info["name"])

    def dispatch(request: web.Request) -> Any:
        return target(request)

    app = web.Application()
    resource = app.router.add_resource("/d/{name}")
    route = resource.add_route("*", _aiohttp.coroutine_handler(dispatch))
    assert route.handler is dispatch
    client: TestClient[Any, Any] = await aiohttp_client(app)
    response = await client.get("/d/x")
    assert (response.status, await response.text()) == (200, "via x")


CHUNKS = [b"a\n", "é".encode() * 100 + b"\n", b"x" * 30_000 + b"\n", b"y" * 70_000 + b"\n"]


@pytest.mark.parametrize("compressed", [False, True])
async def test_stream_chunks_written_at_once_arrive_exactly(
    aiohttp_client: Any, compressed: bool
) -> None:
    """write_stream_now writes what response.write would, or nothing and says so."""
    results: list[bool] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if compressed:
            response.enable_compression(web.ContentCoding.deflate)
        await response.prepare(request)
        await response.write(b"prelude\n")
        for chunk in CHUNKS:
            wrote = _aiohttp.write_stream_now(response, chunk)
            results.append(wrote)
            if not wrote:
                await response.write(chunk)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/stream", handler)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    headers = {"Accept-Encoding": "deflate"} if compressed else {}
    async with client.get("/stream", headers=headers) as response:
        body = await bounded(response.read())
    assert body == b"prelude\n" + b"".join(CHUNKS)
    if compressed:
        # A compressed stream always takes the awaited path.
        assert results == [False] * len(CHUNKS)
    else:
        # Within the writer's 64 KiB flow-control window at once; the
        # 70,000-byte chunk would make it drain, so it is awaited.
        assert results == [True, True, True, False]


@pytest.mark.parametrize("compress", [0, 15])
async def test_client_text_frames_are_written_at_once(aiohttp_client: Any, compress: int) -> None:
    """The client's fast path writes masked frames the server reads; never with deflate."""
    received: list[str] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=True)
        await ws.prepare(request)
        async for msg in ws:
            received.append(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws", compress=compress) as ws:
        for text in TEXTS:
            data = text.encode()
            writer = ws._writer  # type: ignore[attr-defined]
            # Within the writer's flow-control window (64 KiB on aiohttp
            # 3.13, more on 3.14), never with deflate.
            fits = writer._output_size + len(data) + 14 <= writer._limit
            written = _aiohttp.write_client_text_now(ws, data)
            assert written is (fits and not compress)
            if not written:
                await ws.send_str(text)
    await bounded(_wait(lambda: len(received) == len(TEXTS)))
    assert received == TEXTS


async def _wait(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


async def test_pongs_are_noted_by_the_parser_and_not_queued(aiohttp_client: Any) -> None:
    """A server socket from ``websocket_response(pings=True)``: the client's
    pong sets its flag, and ``receive()`` hands the read loop the client's
    next text frame, not the pong; the flag goes down and up per ping."""
    seen: list[tuple[str, Any, bool]] = []
    pinged = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = _aiohttp.websocket_response(True)
        await ws.prepare(request)
        pongs = _aiohttp.pongs(ws)
        assert isinstance(ws.pongs, type(pongs))  # the parser's, not a stand-in
        for _ in range(2):
            pongs.ping_sent()
            assert _aiohttp.write_ping_now(ws)
            pinged.set()
            msg = await ws.receive()
            seen.append((msg.type.name, msg.data, pongs.answered))
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws", autoping=False) as ws:
        for n in range(2):
            await bounded(pinged.wait())
            pinged.clear()
            msg = await bounded(ws.receive())
            assert msg.type is WSMsgType.PING
            await ws.pong(msg.data)
            await ws.send_str(f"after pong {n}")
        assert (await bounded(ws.receive())).type is WSMsgType.CLOSE
    assert seen == [("TEXT", "after pong 0", True), ("TEXT", "after pong 1", True)]


async def test_small_reads_keep_large_messages_whole(aiohttp_client: Any) -> None:
    """After ``small_reads``, asyncio's transport reads 64 KiB at a time (not
    256 KiB, which glibc serves with mmap per read), and a 1 MiB message
    still arrives whole."""
    sizes: list[int] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4 << 20)
        await ws.prepare(request)
        _aiohttp.small_reads(request.transport)
        sizes.append(getattr(request.transport, "max_size", -1))
        msg = await ws.receive()
        await ws.send_str(str(len(msg.data)))
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("x" * (1 << 20))
        assert (await bounded(ws.receive())).data == str(1 << 20)
    assert sizes == [1 << 16]


async def test_request_number_counts_the_requests_of_a_connection(aiohttp_client: Any) -> None:
    """Three requests on one kept-alive connection are its 1st, 2nd and 3rd;
    a request on a new connection is its first."""
    numbers: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        numbers.append(_aiohttp.request_number(request))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    for _ in range(3):
        async with client.get("/") as response:
            assert await response.text() == "ok"
    async with client.get("/", headers={"Connection": "close"}) as response:
        await response.read()
    async with client.get("/") as response:
        await response.read()
    assert numbers == [1, 2, 3, 4, 1]


@pytest.mark.parametrize("transport", ["websocket", "xhr"])
async def test_every_session_request_reads_64_kib_at_most(
    serve: ClientFactory, transport: str
) -> None:
    """The endpoint's session route applies ``small_reads`` to every
    request's connection: a websocket's and a polling session's alike."""
    sizes: list[int] = []

    async def handler(session: aiohttp_sockjs.Session) -> None:
        sizes.append(getattr(session.request.transport, "max_size", -1))
        await session.close()

    client = await serve(handler)
    url = session_url("/e", new_id(), transport)
    if transport == "websocket":
        async with client.ws_connect(url) as ws:
            assert (await bounded(ws.receive())).data == "o"
    else:
        async with client.post(url) as response:
            assert await response.text() == "o\n"
    await eventually(lambda: bool(sizes))
    assert sizes == [1 << 16]
