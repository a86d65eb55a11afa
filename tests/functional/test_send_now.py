"""The synchronous send path: a parked actor's _SEND applied without waking it.

Each test runs over a real websocket and checks what reaches the client, in
order, and which path the frames took (a spy around the real receiver
methods), including the cases where the synchronous path must not be taken.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from aiohttp_sockjs import SessionState
from aiohttp_sockjs._transports import WebSocketReceiver
from tests.actor.test_actor import Clock, Recorder, make, open_session, settle
from tests.conftest import ClientFactory, endpoint_of
from tests.helpers import bounded, new_id, session_url


class Spy:
    """Counts the frames each send path of WebSocketReceiver wrote."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 0
        self.refused = 0
        self.later = 0
        send_now = WebSocketReceiver.send_messages_now
        send_later = WebSocketReceiver.send_messages

        def spy_now(receiver: WebSocketReceiver, messages: list[str]) -> bool:
            ok = send_now(receiver, messages)
            if ok:
                self.now += 1
            else:
                self.refused += 1
            return ok

        async def spy_later(receiver: WebSocketReceiver, messages: list[str]) -> bool:
            self.later += 1
            return await send_later(receiver, messages)

        monkeypatch.setattr(WebSocketReceiver, "send_messages_now", spy_now)
        monkeypatch.setattr(WebSocketReceiver, "send_messages", spy_later)


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
            await asyncio.sleep(0)
        for tail in ("x", "y", "end"):
            session.send(tail)


async def test_paced_sends_go_out_synchronously_in_order(
    serve: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sends to a parked actor are written without it, in order; sends made
    before the handler yields still share one frame."""
    spy = Spy(monkeypatch)
    client = await serve(paced)
    ws = await open_ws(client)
    await ws.send_str('["go 50"]')
    frames = await frames_until(ws, 53)
    assert [m for f in frames for m in f] == [f"m{i}" for i in range(50)] + ["x", "y", "end"]
    assert frames[-1] == ["x", "y", "end"]
    assert spy.now == len(frames)
    assert spy.later == 0
    await ws.close()


async def test_permessage_deflate_takes_the_actor_path(
    serve: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With permessage-deflate negotiated nothing is written synchronously;
    every frame goes through send_str and arrives intact and in order."""
    spy = Spy(monkeypatch)
    client = await serve(paced)
    ws = await open_ws(client, compress=15)
    assert ws.compress == 15
    await ws.send_str('["go 30"]')
    frames = await frames_until(ws, 33)
    assert [m for f in frames for m in f] == [f"m{i}" for i in range(30)] + ["x", "y", "end"]
    assert spy.now == 0
    assert spy.later == len(frames)
    await ws.close()


async def test_flow_control_limit_falls_back_in_order(
    serve: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames that would take the writer past its flow-control limit go
    through the actor (which may wait for the socket to drain); both paths
    interleave and the client still gets every message in order."""
    spy = Spy(monkeypatch)
    big = "z" * 10_000

    async def handler(session: Any) -> None:
        async for _ in session:
            for i in range(40):
                session.send(f"{i} {big}")
                await asyncio.sleep(0)

    client = await serve(handler)
    ws = await open_ws(client)
    await ws.send_str('["go"]')
    frames = await frames_until(ws, 40)
    assert [m for f in frames for m in f] == [f"{i} {big}" for i in range(40)]
    assert spy.now > 0
    assert spy.refused > 0
    assert spy.later > 0
    await ws.close()


async def test_broadcast_and_sends_interleave_in_order(
    serve: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Broadcasts to parked sessions are written at once; each client sees
    broadcasts and its own session's sends in the order they were made."""
    spy = Spy(monkeypatch)

    async def handler(session: Any) -> None:
        async for message in session:
            session.send("ack " + message)

    client = await serve(handler)
    endpoint = endpoint_of(client)
    sockets = [await open_ws(client) for _ in range(5)]
    await asyncio.sleep(0.05)
    for round_ in range(10):
        endpoint.broadcast(f"b{round_}")
        for session in endpoint.sessions:
            session.send(f"s{round_}")
        await asyncio.sleep(0)
    expected = [m for r in range(10) for m in (f"b{r}", f"s{r}")]
    for ws in sockets:
        frames = await frames_until(ws, 20)
        assert [m for f in frames for m in f] == expected
    assert spy.now == 50  # one frame per round and session
    assert spy.later == 0
    for ws in sockets:
        await ws.close()


async def test_send_then_close_keeps_order(
    serve: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A close posted behind a deferred send wakes the actor, which sends
    the message and then the close frame."""
    spy = Spy(monkeypatch)

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
    assert spy.now == 0
    assert spy.later == 1


async def test_raw_websocket_unaffected(serve: ClientFactory) -> None:
    """Raw websockets keep their own path: one message per websocket frame."""

    async def handler(session: Any) -> None:
        async for message in session:
            for i in range(3):
                session.send(f"{message}{i}")
                await asyncio.sleep(0)
            session.send("last")

    client = await serve(handler)
    ws = await bounded(client.ws_connect("/e/websocket"))
    await ws.send_str("k")
    got = [(await bounded(ws.receive())).data for _ in range(4)]
    assert got == ["k0", "k1", "k2", "last"]
    await ws.close()


class ExplodingNow(Recorder):
    sends_now = True

    def send_messages_now(self, messages: list[str]) -> bool:
        raise RuntimeError("a bug in a synchronous write")


async def test_synchronous_write_fault_ends_only_that_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A synchronous write that raises ends its session with 1011, as a
    failing actor command does; other sessions carry on, waiters are answered."""
    endpoint = make(Clock())
    bad_rec, good_rec = ExplodingNow(), Recorder()
    bad = await open_session(endpoint, bad_rec, "bad")
    good = await open_session(endpoint, good_rec, "good")
    bad.send("x")
    good.send("y")
    await settle()
    assert bad.state is SessionState.CLOSED
    assert bad.close_code == 1011
    assert bad_rec.gone  # its connection was cut, as _fail does
    late = Recorder()
    bad._attach(late)
    await settle()
    assert late.frames == []  # a closed session releases a late receiver
    assert good_rec.frames == ["o", ("a", ['"y"'])]
    assert len([r for r in caplog.records if r.exc_info]) == 1
    await endpoint.shutdown()
