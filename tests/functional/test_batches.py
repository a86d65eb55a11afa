"""The batch API over real sockets: receive_many, send_many, broadcast_many.

A batch is what arrived together (one client frame, or frames read in one
go) and what is sent together: it goes out as one ``a`` frame when the
connection takes it at once, in order with every other send.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType

import aiohttp_sockjs
from aiohttp_sockjs import testing
from tests.conftest import ClientFactory, endpoint_of
from tests.functional.test_websocket_send_order import frames_until, open_ws
from tests.wire import bounded, eventually, new_id, open_xhr_session, session_url


async def upper_batches(session: aiohttp_sockjs.Session) -> None:
    """Answers each batch with one send_many of the messages in upper case."""
    try:
        while True:
            batch = await session.receive_many()
            session.send_many([m.upper() for m in batch])
    except aiohttp_sockjs.SessionClosed:
        pass


async def test_a_frame_is_one_batch_and_its_answer_one_frame(serve: ClientFactory) -> None:
    client = await serve(upper_batches)
    ws = await open_ws(client)
    await ws.send_str('["a","b","c"]')
    assert (await bounded(ws.receive())).data == 'a["A","B","C"]'
    await ws.send_str('["d"]')
    assert (await bounded(ws.receive())).data == 'a["D"]'
    await ws.close()


async def test_receive_many_takes_at_most_limit(serve: ClientFactory) -> None:
    async def handler(session: aiohttp_sockjs.Session) -> None:
        while True:
            session.send("|".join(await session.receive_many(limit=2)))

    client = await serve(handler)
    ws = await open_ws(client)
    await ws.send_str('["a","b","c","d","e"]')
    frames = await frames_until(ws, 3)
    assert [m for f in frames for m in f] == ["a|b", "c|d", "e"]
    await ws.close()


async def test_receive_many_ends_with_session_closed(serve: ClientFactory) -> None:
    """Messages that arrived before the close are handed out, then SessionClosed."""
    outcome: asyncio.Future[tuple[list[str], int]] = asyncio.get_running_loop().create_future()

    async def handler(session: aiohttp_sockjs.Session) -> None:
        got: list[str] = []
        try:
            while True:
                got += await session.receive_many()
        except aiohttp_sockjs.SessionClosed as exc:
            outcome.set_result((got, exc.code))

    client = await serve(handler)
    ws = await open_ws(client)
    await ws.send_str('["x","y"]')
    await ws.close()
    got, code = await bounded(outcome)
    assert got == ["x", "y"]
    assert code == 1000


async def test_receive_many_refuses_a_limit_below_one(serve: ClientFactory) -> None:
    errors: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def handler(session: aiohttp_sockjs.Session) -> None:
        try:
            await session.receive_many(limit=0)
        except ValueError as exc:
            errors.set_result(exc)

    client = await serve(handler)
    ws = await open_ws(client)
    assert "limit" in str(await bounded(errors))
    await ws.close()


async def test_send_many_on_polling_is_one_frame_in_order(serve: ClientFactory) -> None:
    """A poll answers with the whole batch, after what was sent before it."""

    async def handler(session: aiohttp_sockjs.Session) -> None:
        session.send("first")
        session.send_many(["1", "2", "3"])
        session.send_many([])
        session.send("last")
        await session.wait_closed()

    client = await serve(handler)
    sid = new_id()
    resp = await client.post(session_url("/e", sid, "xhr"))
    assert await resp.text() == "o\n"
    resp = await client.post(session_url("/e", sid, "xhr"))
    assert await resp.text() == 'a["first","1","2","3","last"]\n'


async def test_send_many_refuses_what_is_not_str(serve: ClientFactory) -> None:
    errors: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def handler(session: aiohttp_sockjs.Session) -> None:
        try:
            session.send_many(["ok", b"bytes"])  # type: ignore[list-item]
        except TypeError as exc:
            errors.set_result(exc)
        session.send("after")
        await session.wait_closed()

    client = await serve(handler)
    ws = await open_ws(client)
    assert "bytes" in str(await bounded(errors))
    # Nothing of the refused batch went out.
    assert (await bounded(ws.receive())).data == 'a["after"]'
    await ws.close()


async def test_send_many_on_raw_websocket_is_one_frame_per_message(
    serve: ClientFactory,
) -> None:
    async def handler(session: aiohttp_sockjs.Session) -> None:
        async for message in session:
            session.send_many([message + "1", message + "2"])

    client = await serve(handler)
    ws = await bounded(client.ws_connect("/e/websocket"))
    await ws.send_str("k")
    assert [(await bounded(ws.receive())).data for _ in range(2)] == ["k1", "k2"]
    await ws.close()


async def test_broadcast_many_is_one_frame_per_client_in_order(serve: ClientFactory) -> None:
    async def handler(session: aiohttp_sockjs.Session) -> None:
        await session.wait_closed()

    client = await serve(handler)
    endpoint = endpoint_of(client)
    sockets: list[Any] = []
    sessions: list[aiohttp_sockjs.Session] = []
    for _ in range(4):
        sockets.append(await open_ws(client))
        await eventually(lambda: len(endpoint) == len(sockets))
        (new,) = set(endpoint.sessions) - set(sessions)
        sessions.append(new)
    await eventually(lambda: not any(testing.writing(s) for s in sessions))
    endpoint.broadcast_many(["x", "y", "z"], exclude=sessions[0])
    for ws in sockets[1:]:
        assert await frames_until(ws, 3) == [["x", "y", "z"]]
    await eventually(lambda: not any(testing.writing(s) for s in sessions))
    for round_ in range(3):
        endpoint.broadcast_many([f"b{round_}", f"c{round_}"])
        for session in sessions:
            session.send(f"own{round_}")
        await asyncio.sleep(0)  # one loop turn per round: the ordering under test
    expected = [m for r in range(3) for m in (f"b{r}", f"c{r}", f"own{r}")]
    for ws in sockets:
        frames = await frames_until(ws, 9)
        assert [m for f in frames for m in f] == expected
    for ws in sockets:
        await ws.close()


async def test_broadcast_many_to_a_room(serve: ClientFactory) -> None:
    async def handler(session: aiohttp_sockjs.Session) -> None:
        async for room in session:
            session.join(room)
            session.send("joined")

    client = await serve(handler)
    endpoint = endpoint_of(client)
    ws_a, ws_b = await open_ws(client), await open_ws(client)
    await ws_a.send_str('["a"]')
    await ws_b.send_str('["b"]')
    for ws in (ws_a, ws_b):
        assert (await bounded(ws.receive())).data == 'a["joined"]'
    endpoint.broadcast_many(["1", "2"], room="a")
    endpoint.broadcast("all")
    assert await frames_until(ws_a, 3) in ([["1", "2"], ["all"]], [["1", "2", "all"]])
    assert await frames_until(ws_b, 1) == [["all"]]
    for ws in (ws_a, ws_b):
        await ws.close()


async def test_broadcast_many_checks_every_message_first(serve: ClientFactory) -> None:
    client = await serve()
    endpoint = endpoint_of(client)
    ws = await open_ws(client)
    await eventually(lambda: len(endpoint) == 1)
    try:
        endpoint.broadcast_many(["ok", 7])  # type: ignore[list-item]
    except TypeError as exc:
        assert "int" in str(exc)
    else:  # pragma: no cover - the assertion of this test
        raise AssertionError("broadcast_many took an int")
    endpoint.broadcast_many([])
    endpoint.broadcast("next")
    assert (await bounded(ws.receive())).data == 'a["next"]'
    await ws.close()


async def test_echo_of_pipelined_frames_keeps_every_message(serve: ClientFactory) -> None:
    """Many frames sent back to back: every message comes back once, in order."""
    client = await serve(upper_batches)
    ws = await open_ws(client)
    sent = [f"m{i}" for i in range(300)]
    for i in range(0, 300, 3):
        await ws.send_str(json.dumps(sent[i : i + 3]))
    frames = await frames_until(ws, 300)
    assert [m for f in frames for m in f] == [m.upper() for m in sent]
    await ws.close()


async def test_batches_over_xhr_streaming(serve: ClientFactory) -> None:
    client = await serve(upper_batches)
    sid = new_id()
    stream = await client.post(session_url("/e", sid, "xhr_streaming"))
    lines: list[str] = []

    async def read_until(count: int) -> None:
        while len(lines) < count:
            line = (await bounded(stream.content.readline())).decode().strip()
            if line and not line.startswith("h"):
                lines.append(line)

    await read_until(1)
    assert lines == ["o"]
    resp = await client.post(session_url("/e", sid, "xhr_send"), data='["p","q"]')
    assert resp.status == 204
    await read_until(2)
    assert lines[1] == 'a["P","Q"]'
    stream.close()


async def test_websocket_client_frames_are_not_split(serve: ClientFactory) -> None:
    """Text frames of the aiohttp client reach the handler whole, as a batch each."""
    sizes: list[int] = []

    async def handler(session: aiohttp_sockjs.Session) -> None:
        while True:
            batch = await session.receive_many()
            sizes.append(len(batch))
            session.send(str(len(batch)))

    client = await serve(handler)
    ws = await open_ws(client)
    for n in (1, 5, 2):
        await ws.send_str(json.dumps(["x"] * n))
        msg = await bounded(ws.receive())
        assert msg.type is WSMsgType.TEXT
        assert msg.data == f'a["{n}"]'
    assert sizes == [1, 5, 2]
    await ws.close()


async def test_receive_many_hands_out_one_at_a_time_under_pressure(
    serve: ClientFactory,
) -> None:
    """While a session holds over half its send bound, receive_many paces a
    batch as receive does: one message, then the next once the pressure is
    relieved."""
    batches: list[list[str]] = []

    async def handler(session: aiohttp_sockjs.Session) -> None:
        with contextlib.suppress(aiohttp_sockjs.SessionClosed):
            while True:
                batches.append(await session.receive_many())

    client = await serve(handler, max_queue_size=100, disconnect_delay=30)
    endpoint = endpoint_of(client)
    stalled = await open_xhr_session(client, "/e")  # and no poll open: it holds what it gets
    ws = await open_ws(client)
    await eventually(lambda: len(endpoint) == 2)
    endpoint.broadcast("x" * 60)  # over half the bound for the stalled session
    assert (await bounded(ws.receive())).data == f'a["{"x" * 60}"]'
    await ws.send_str('["1","2","3"]')
    await eventually(lambda: batches == [["1"]])
    # The stalled client polls: the pressure is gone, the rest follows.
    resp = await client.post(session_url("/e", stalled, "xhr"))
    assert (await resp.text()).startswith('a["xxx')
    await eventually(lambda: [m for b in batches for m in b] == ["1", "2", "3"])
    assert batches[0] == ["1"]
    await ws.close()
