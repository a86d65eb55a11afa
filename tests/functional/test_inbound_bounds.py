"""Issue 9, finding 1: inbound flow control over real connections.

A handler that reads slowly gets every message, in order, however much
more than ``max_inbox_size`` its client sends; the client is slowed down
meanwhile, not dropped. An ``xhr_send`` that waits for room waits at most
``inbound_timeout`` and is always answered. (The memory bound against a
handler that never reads: ``tests/slow/test_inbound_memory.py``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

import aiohttp_sockjs
from tests.conftest import ClientFactory
from tests.wire import WAIT, bounded, eventually, new_id, open_xhr_session, session_url

INBOX = 1000
#: Per message; far below INBOX, so many of them fill it.
SIZE = 50


def _messages(count: int) -> list[str]:
    # Each message says where it belongs, padded to SIZE characters.
    return [f"{i:06d}".ljust(SIZE, ".") for i in range(count)]


class SlowReader:
    """A handler that reads every message, but takes a while over each."""

    def __init__(self, batches: bool = False) -> None:
        self.got: list[str] = []
        self.batches = batches

    async def __call__(self, session: aiohttp_sockjs.Session) -> None:
        if self.batches:
            # A few at a time: taking from the inbox must reopen it too.
            with contextlib.suppress(aiohttp_sockjs.SessionClosed):
                while True:
                    self.got += await session.receive_many(limit=3)
                    await asyncio.sleep(0.004)
            return
        async for message in session:
            self.got.append(message)
            # The application's work on one message: slower than the client.
            await asyncio.sleep(0.002)

    @property
    def taken(self) -> int:
        """Characters the handler has taken so far."""
        return sum(map(len, self.got))


async def _post(client: TestClient[Any, Any], path: str, body: str) -> tuple[int, str]:
    async with client.post(path, data=io.BytesIO(body.encode())) as resp:
        return resp.status, await resp.text()


@pytest.mark.parametrize("batches", [False, True], ids=["one by one", "receive_many"])
async def test_slow_reader_gets_every_websocket_message_in_order(
    serve: ClientFactory, batches: bool
) -> None:
    reader = SlowReader(batches)
    client = await serve(reader, max_inbox_size=INBOX)
    sent = _messages(200)  # ten times the inbox
    ws = await bounded(client.ws_connect(session_url("/e", new_id(), "websocket")))
    assert (await bounded(ws.receive_str())) == "o"
    for start in range(0, len(sent), 5):
        await bounded(ws.send_str(json.dumps(sent[start : start + 5])))
    await eventually(lambda: len(reader.got) >= len(sent), 10.0)
    assert reader.got == sent
    # Slowed, not dropped: the session is still open.
    await ws.send_str(json.dumps(["one more"]))
    await eventually(lambda: reader.got[-1:] == ["one more"])
    await ws.close()


@pytest.mark.parametrize("batches", [False, True], ids=["one by one", "receive_many"])
async def test_slow_reader_gets_every_xhr_send_message_in_order(
    serve: ClientFactory, batches: bool
) -> None:
    reader = SlowReader(batches)
    # The session has no poll open while the messages go in: it must not
    # expire meanwhile, even on a loaded machine.
    client = await serve(reader, max_inbox_size=INBOX, disconnect_delay=60)
    sid = await open_xhr_session(client, "/e")
    sent = _messages(200)
    url = session_url("/e", sid, "xhr_send")
    offered = 0
    for start in range(0, len(sent), 5):
        batch = sent[start : start + 5]
        assert await bounded(_post(client, url, json.dumps(batch)), 10.0) == (204, "")
        # The request was answered once its messages were taken, and they
        # were taken only with room in the inbox: the handler had by then
        # taken all that came before but less than one inbox.
        assert reader.taken > offered - INBOX, (reader.taken, offered)
        offered += sum(map(len, batch))
    await eventually(lambda: len(reader.got) >= len(sent), 10.0)
    assert reader.got == sent


async def _never_reads(session: aiohttp_sockjs.Session) -> None:
    await session.wait_closed()


async def test_waiting_xhr_sends_are_answered_when_the_session_expires(
    serve: ClientFactory,
) -> None:
    """Requests waiting for room in a session that then expires get a 404,
    as any request for a session that is gone does; none is left hanging."""
    client = await serve(
        _never_reads, max_inbox_size=INBOX, inbound_timeout=30.0, disconnect_delay=0.3
    )
    sid = await open_xhr_session(client, "/e")
    url = session_url("/e", sid, "xhr_send")
    assert await bounded(_post(client, url, json.dumps(_messages(30)))) == (204, "")
    # The inbox is full and the handler never reads: these wait, and no
    # poll keeps the session alive, so it expires under them.
    waiting = [_post(client, url, json.dumps(_messages(3))) for _ in range(3)]
    answers = await bounded(asyncio.gather(*waiting))
    assert answers == [(404, "Session not found.")] * 3
    assert await bounded(_post(client, url, json.dumps(["late"]))) == (404, "Session not found.")


async def test_each_waiting_xhr_send_waits_at_most_inbound_timeout(
    aiohttp_client: Any, serve: ClientFactory
) -> None:
    """Many requests waiting for room at once are each refused after
    ``inbound_timeout``, not one ``inbound_timeout`` after another."""
    timeout = 0.5
    client = await serve(
        _never_reads, max_inbox_size=INBOX, inbound_timeout=timeout, disconnect_delay=30.0
    )
    sid = await open_xhr_session(client, "/e")
    url = session_url("/e", sid, "xhr_send")
    assert await bounded(_post(client, url, json.dumps(_messages(30)))) == (204, "")
    count = 20
    # One connection each, as 20 browser tabs would have.
    sessions = [aiohttp.ClientSession(str(client.make_url(""))) for _ in range(count)]
    try:
        waiting = [_post_with(http, url, json.dumps(_messages(3))) for http in sessions]
        # Served one after another they would need count * timeout (10 s).
        answers = await bounded(asyncio.gather(*waiting), timeout + WAIT)
    finally:
        for http in sessions:
            await http.close()
    assert answers == [(503, "Session inbox full.")] * count


async def _post_with(http: aiohttp.ClientSession, path: str, body: str) -> tuple[int, str]:
    async with http.post(path, data=io.BytesIO(body.encode())) as resp:
        return resp.status, await resp.text()


@pytest.mark.parametrize("transport", ["websocket", "xhr_send"])
async def test_a_message_larger_than_the_inbox_goes_through(
    serve: ClientFactory, transport: str
) -> None:
    """A message larger than the whole inbox still goes through, and the
    next one after it."""
    reader = SlowReader()
    client = await serve(reader, max_inbox_size=INBOX)
    big = "y" * (3 * INBOX)
    if transport == "websocket":
        ws = await bounded(client.ws_connect(session_url("/e", new_id(), "websocket")))
        assert (await bounded(ws.receive_str())) == "o"
        await ws.send_str(json.dumps([big, "after"]))
    else:
        sid = await open_xhr_session(client, "/e")
        url = session_url("/e", sid, "xhr_send")
        assert await bounded(_post(client, url, json.dumps([big]))) == (204, "")
        assert await bounded(_post(client, url, json.dumps(["after"]))) == (204, "")
    await eventually(lambda: reader.got == [big, "after"])
