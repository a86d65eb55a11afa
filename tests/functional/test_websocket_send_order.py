"""Websocket sends: order, coalescing into frames, and every write path.

Each test runs over a real websocket and checks what reaches the client:
sends made together share a frame, and messages keep their order whether a
frame is written at once, waits for the socket to drain, or goes through
permessage-deflate.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from aiohttp_sockjs import testing
from tests.conftest import ClientFactory, endpoint_of
from tests.wire import bounded, eventually, new_id, session_url


async def frames_until(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[list[str]]:
    """Read ``a`` frames until ``count`` messages have arrived; the frames' messages."""
    frames: list[list[str]] = []
    while sum(map(len, frames)) < count:
        msg = await bounded(ws.receive())
        assert msg.type is WSMsgType.TEXT, msg
        assert msg.data.startswith("a["), msg.data
        frames.append(json.loads(msg.data[1:]))
    return frames


async def open_ws(client: TestClient[Any, Any], **kwargs: Any) -> Any:
    ws = await bounded(client.ws_connect(session_url("/e", new_id(), "websocket"), **kwargs))
    msg = await bounded(ws.receive())
    assert msg.data == "o"
    return ws


async def paced(session: Any) -> None:
    """On "go N": N messages, yielding after each, then "end" after three at once."""
    async for message in session:
        n = int(message.split()[1])
        for i in range(n):
            session.send(f"m{i}")
            await asyncio.sleep(0)  # one loop turn per message: the pacing under test
        for tail in ("x", "y", "end"):
            session.send(tail)


async def test_paced_sends_go_out_synchronously_in_order(
    serve: ClientFactory,
) -> None:
    """Sends to a parked actor are written without it, in order; sends made
    before the handler yields still share one frame."""
    client = await serve(paced)
    ws = await open_ws(client)
    await ws.send_str('["go 50"]')
    frames = await frames_until(ws, 53)
    assert [m for f in frames for m in f] == [f"m{i}" for i in range(50)] + ["x", "y", "end"]
    assert frames[-1] == ["x", "y", "end"]
    await ws.close()


async def test_permessage_deflate_frames_arrive_in_order(
    serve: ClientFactory,
) -> None:
    """With permessage-deflate negotiated (short frames uncompressed, others
    compressed by the shared compressor) every frame arrives intact and in
    order."""
    client = await serve(paced, websocket_compression=True, websocket_compression_threshold=10)
    ws = await open_ws(client, compress=15)
    assert ws.compress == 15
    await ws.send_str('["go 30"]')
    frames = await frames_until(ws, 33)
    assert [m for f in frames for m in f] == [f"m{i}" for i in range(30)] + ["x", "y", "end"]
    await ws.close()


async def test_flow_control_limit_falls_back_in_order(
    serve: ClientFactory,
) -> None:
    """Frames that would take the writer past its flow-control limit go
    through the actor (which may wait for the socket to drain); both paths
    interleave and the client still gets every message in order."""
    big = "z" * 10_000

    async def handler(session: Any) -> None:
        async for _ in session:
            for i in range(40):
                session.send(f"{i} {big}")
                await asyncio.sleep(0)  # one loop turn per message: the pacing under test

    client = await serve(handler)
    ws = await open_ws(client)
    await ws.send_str('["go"]')
    frames = await frames_until(ws, 40)
    assert [m for f in frames for m in f] == [f"{i} {big}" for i in range(40)]
    await ws.close()


async def test_broadcast_and_sends_interleave_in_order(
    serve: ClientFactory,
) -> None:
    """Broadcasts to parked sessions are written at once; each client sees
    broadcasts and its own session's sends in the order they were made."""

    async def handler(session: Any) -> None:
        async for message in session:
            session.send("ack " + message)

    client = await serve(handler)
    endpoint = endpoint_of(client)
    sockets = [await open_ws(client) for _ in range(5)]
    await eventually(
        lambda: len(endpoint) == 5 and not any(testing.writing(s) for s in endpoint.sessions)
    )
    for round_ in range(10):
        endpoint.broadcast(f"b{round_}")
        for session in endpoint.sessions:
            session.send(f"s{round_}")
        await asyncio.sleep(0)  # one loop turn per round: the ordering under test
    expected = [m for r in range(10) for m in (f"b{r}", f"s{r}")]
    for ws in sockets:
        frames = await frames_until(ws, 20)
        assert [m for f in frames for m in f] == expected
    for ws in sockets:
        await ws.close()


async def test_send_then_close_keeps_order(
    serve: ClientFactory,
) -> None:
    """A close posted behind a deferred send wakes the actor, which sends
    the message and then the close frame."""

    async def handler(session: Any) -> None:
        await session.receive()
        session.send("one")
        session.send("two")
        await session.close(4002, "bye")

    client = await serve(handler)
    ws = await open_ws(client)
    await ws.send_str('["go"]')
    assert (await bounded(ws.receive())).data == 'a["one","two"]'
    assert (await bounded(ws.receive())).data == 'c[4002,"bye"]'


async def test_raw_websocket_unaffected(serve: ClientFactory) -> None:
    """Raw websockets keep their own path: one message per websocket frame."""

    async def handler(session: Any) -> None:
        async for message in session:
            for i in range(3):
                session.send(f"{message}{i}")
                await asyncio.sleep(0)  # one loop turn per message: the pacing under test
            session.send("last")

    client = await serve(handler)
    ws = await bounded(client.ws_connect("/e/websocket"))
    await ws.send_str("k")
    got = [(await bounded(ws.receive())).data for _ in range(4)]
    assert got == ["k0", "k1", "k2", "last"]
    await ws.close()
