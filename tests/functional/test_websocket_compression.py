"""The ``websocket_compression`` option over real sockets.

A client that offers permessage-deflate the way Chromium does checks the
negotiated extension, each frame's RSV1 bit and that every message
arrives exactly, in both directions (tests/deflate_client.py).
"""

from __future__ import annotations

import asyncio
import json
import random
import zlib
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from aiohttp_sockjs import RateLimit
from tests.conftest import ClientFactory, endpoint_of
from tests.deflate_client import DeflateClient
from tests.wire import SERVER_ESCAPE_SET, ManualClock, new_id, session_url

UNICODE = "zażółć gęślą jaźń ☃ 😀 " + SERVER_ESCAPE_SET


def json_records(size: int, seed: int = 14) -> str:
    """About ``size`` characters of JSON that compresses as real data does."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "price", "stock", "north", "south"]
    rows = []
    total = 0
    i = 0
    while total < size:
        row = json.dumps({"id": i, "name": rng.choice(words), "n": rng.randint(0, 10**6)})
        rows.append(row)
        total += len(row) + 1
        i += 1
    return "[" + ",".join(rows) + "]"


async def connect(
    client: TestClient[Any, Any], path: str | None = None, **kwargs: Any
) -> DeflateClient:
    server = client.server
    assert server.host is not None and server.port is not None
    path = path or session_url("/e", new_id(), "websocket")
    ws = await DeflateClient.connect(server.host, server.port, path, **kwargs)
    assert ws.status == 101
    return ws


async def open_session(client: TestClient[Any, Any], **kwargs: Any) -> DeflateClient:
    ws = await connect(client, **kwargs)
    assert await ws.recv_text() == "o"
    return ws


async def echo_frame(ws: DeflateClient, message: str, compress: bool = True) -> Any:
    """Send one message, return the frame that brings it back."""
    ws.send_text(json.dumps([message]).encode(), compress)
    frame = await ws.recv()
    assert frame.opcode == 1
    assert json.loads(frame.text[1:]) == [message]
    return frame


async def test_off_by_default_no_extension_is_negotiated(serve: ClientFactory) -> None:
    client = await serve()
    assert endpoint_of(client).options.websocket_compression is False
    ws = await open_session(client)
    assert ws.extensions is None
    for message in ("hi", UNICODE, json_records(70_000)):
        frame = await echo_frame(ws, message)
        assert not frame.rsv1
    await ws.close()


async def test_on_answers_without_server_context_takeover(serve: ClientFactory) -> None:
    client = await serve(websocket_compression=True)
    ws = await open_session(client)
    assert ws.extensions == "permessage-deflate; server_no_context_takeover"
    await ws.close()


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        (None, None),
        ("permessage-deflate", "permessage-deflate; server_no_context_takeover"),
        (
            "permessage-deflate; server_no_context_takeover; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=10; server_no_context_takeover",
        ),
        ("x-webkit-deflate-frame", None),
    ],
)
async def test_answer_follows_the_offer(
    serve: ClientFactory, offer: str | None, answer: str | None
) -> None:
    client = await serve(websocket_compression=True, websocket_compression_threshold=0)
    ws = await open_session(client, offer=offer)
    assert ws.extensions == answer
    # A window the client asked for is kept: a larger one would not inflate.
    frame = await echo_frame(ws, json_records(40_000))
    assert frame.rsv1 is (answer is not None)
    await ws.close()


async def test_threshold_sends_short_frames_uncompressed(serve: ClientFactory) -> None:
    client = await serve(websocket_compression=True, websocket_compression_threshold=300)
    ws = await open_session(client)
    short = "x" * (300 - len('a[""]') - 1)
    at_threshold = "x" * (300 - len('a[""]'))
    assert not (await echo_frame(ws, short)).rsv1
    frame = await echo_frame(ws, at_threshold)
    assert frame.rsv1
    assert frame.wire < 300
    await ws.close()


async def test_threshold_zero_compresses_every_frame(serve: ClientFactory) -> None:
    client = await serve(websocket_compression=True, websocket_compression_threshold=0)
    ws = await connect(client)
    opening = await ws.recv()
    assert (opening.text, opening.rsv1) == ("o", True)
    assert (await echo_frame(ws, "a")).rsv1
    await ws.close()


@pytest.mark.parametrize("threshold", [0, 1024])
@pytest.mark.parametrize("client_compresses", [True, False])
async def test_messages_round_trip_exactly(
    serve: ClientFactory, threshold: int, client_compresses: bool
) -> None:
    """Chat-sized, unicode, 64 KiB and 1 MiB messages, compressed or not
    by the client, come back exactly; the large ones compressed."""
    client = await serve(websocket_compression=True, websocket_compression_threshold=threshold)
    ws = await open_session(client)
    for message in ("", "hi", UNICODE, json_records(64 * 1024), "é" * (1 << 19)):
        frame = await echo_frame(ws, message, client_compresses)
        assert frame.rsv1 is (len(frame.data) >= threshold)
        if len(message) > 1000:
            assert frame.wire < len(frame.data) / 2
    await ws.close()


async def test_paced_frames_through_both_send_paths_keep_order(serve: ClientFactory) -> None:
    """Frames past the writer's flow-control limit wait for the socket to
    drain; compressed, uncompressed, written at once or not, they arrive
    in order."""

    async def handler(session: Any) -> None:
        async for _ in session:
            for i in range(60):
                session.send(f"{i} " + ("z" * 20_000 if i % 3 else "short"))
                await asyncio.sleep(0)  # one loop turn per frame: the pacing under test

    client = await serve(handler, websocket_compression=True, websocket_compression_threshold=64)
    ws = await open_session(client)
    ws.send_text(b'["go"]')
    got: list[str] = []
    kinds = set()
    while len(got) < 60:
        frame = await ws.recv()
        kinds.add(frame.rsv1)
        got += json.loads(frame.text[1:])
    assert got == [f"{i} " + ("z" * 20_000 if i % 3 else "short") for i in range(60)]
    assert kinds == {True, False}
    await ws.close()


async def test_broadcast_reaches_sessions_with_different_settings(serve: ClientFactory) -> None:
    client = await serve(websocket_compression=True, websocket_compression_threshold=100)
    offers = [
        None,
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=9",
    ]
    sockets = [await open_session(client, offer=offer) for offer in offers for _ in range(2)]
    endpoint = endpoint_of(client)
    messages = ["short", json_records(3000), json_records(30_000, seed=2), json_records(3000)]
    for message in messages:
        endpoint.broadcast(message)
        for ws in sockets:
            frame = await ws.recv()
            assert json.loads(frame.text[1:]) == [message]
            assert frame.rsv1 is (ws.extensions is not None and len(frame.data) >= 100)
    for ws in sockets:
        await ws.close()


async def test_raw_websocket_is_compressed_too(serve: ClientFactory) -> None:
    client = await serve(websocket_compression=True, websocket_compression_threshold=100)
    ws = await connect(client, "/e/websocket")
    assert ws.extensions == "permessage-deflate; server_no_context_takeover"
    for message, compressed in (("hello", False), (json_records(5000), True), (UNICODE, True)):
        ws.send_text(message.encode())
        frame = await ws.recv()
        assert (frame.text, frame.rsv1) == (message, compressed)
    await ws.close()


async def test_a_frame_that_inflates_past_max_request_size_is_refused(
    serve: ClientFactory,
) -> None:
    """A small compressed frame must not inflate into unbounded memory: over
    ``max_request_size`` the socket is closed with 1009."""
    client = await serve(websocket_compression=True, max_request_size=64 * 1024)
    ws = await open_session(client)
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = b'["' + b"x" * (4 << 20) + b'"]'
    data = (bomb.compress(payload) + bomb.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert len(data) < 64 * 1024
    ws.send_raw(0xC1, data)
    frame = await ws.recv()
    assert frame.opcode == 8
    assert int.from_bytes(frame.data[:2], "big") == 1009
    await ws.close()


def test_threshold_must_not_be_negative() -> None:
    from aiohttp_sockjs.options import Options

    with pytest.raises(ValueError, match="websocket_compression_threshold"):
        Options(websocket_compression=True, websocket_compression_threshold=-1)


# --- inflated bytes count against the rate limits (issue 21) --------------------

#: One message of one character, padded with JSON whitespace to 100,000
#: bytes once inflated; about 130 bytes on the wire.
PADDED = b"[" + b" " * 100_000 + b'"x"]'


@pytest.mark.parametrize("which", ["rate_limit", "client_rate_limit"])
async def test_inflated_bytes_count_against_the_rate_limits(
    serve: ClientFactory, which: str
) -> None:
    """A compressed frame counts what it inflates to, whitespace included: a
    frame of 130 bytes on the wire that inflates to 100,000 closes a session
    allowed 10,000 bytes a second with 1008, though its one message has one
    character; frames of the same messages without the padding go through."""
    limit = RateLimit(bytes_per_second=10_000, burst=1)
    client = await serve(clock=ManualClock(), websocket_compression=True, **{which: limit})
    ws = await open_session(client)
    for _ in range(3):
        ws.send_text(b'["x"]')
        assert await ws.recv_text() == 'a["x"]'
    ws.send_text(PADDED)
    reason = "Rate limit exceeded" if which == "rate_limit" else "Client rate limit exceeded"
    assert await ws.recv_text() == f'c[1008,"{reason}"]'
    await ws.close()


async def test_inflated_whitespace_alone_is_charged(serve: ClientFactory) -> None:
    """A frame that inflates to whitespace and no message is charged too."""
    limit = RateLimit(bytes_per_second=10_000, burst=1)
    client = await serve(clock=ManualClock(), websocket_compression=True, rate_limit=limit)
    ws = await open_session(client)
    ws.send_text(b"[" + b" " * 100_000 + b"]")
    assert await ws.recv_text() == 'c[1008,"Rate limit exceeded"]'
    await ws.close()
