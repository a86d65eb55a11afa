"""Issue 9, finding 2: one client cannot disconnect every session of a
broadcasting endpoint.

A large inbound batch from one client makes its handler broadcast a burst;
recipients that keep up must get all of it, not a 1013 "Send queue
overflow". The server runs in its own process (``tests.process_server``),
so the readers read as separate clients do.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from aiohttp_sockjs import SessionClosed
from aiohttp_sockjs.client import SockJSClient, connect
from tests.process_server import ServerProcess
from tests.wire import bounded, new_id

MiB = 1 << 20
READERS = 20
#: How long a reader may wait for its next frame while a megabyte burst is
#: on its way to twenty clients.
FRAME_WAIT = 15.0


class Reader:
    """A client that reads everything it is sent, as it comes."""

    def __init__(self, client: SockJSClient) -> None:
        self.client = client
        self.messages: list[str] = []

    async def read_until(self, done: Callable[[], bool]) -> None:
        """Read until ``done()`` holds; a close frame fails it."""
        while not done():
            try:
                message = await bounded(self.client.receive(), FRAME_WAIT)
            except SessionClosed as closed:
                raise AssertionError(
                    f"{self.client.transport} reader {self.client.session_id} closed with "
                    f"{closed.code} {closed.reason!r} after {len(self.messages)} messages"
                ) from None
            self.messages.append(message)
            self.took(message)

    def took(self, message: str) -> None:
        """One message arrived."""


class ChatReader(Reader):
    """A chat participant: remembers each chat message as (type, nick, text)."""

    def __init__(self, client: SockJSClient) -> None:
        super().__init__(client)
        self.seen: set[tuple[Any, Any, Any]] = set()

    def took(self, message: str) -> None:
        parsed = json.loads(message)
        self.seen.add((parsed.get("type"), parsed.get("nick"), parsed.get("text")))


@pytest.fixture
def server() -> AsyncIterator[ServerProcess]:
    with ServerProcess("conformance", heartbeat_delay=10.0, disconnect_delay=5.0) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # One connection per reader; no client-side cap on frame sizes.
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def _xhr_send(http: aiohttp.ClientSession, url: str, *messages: str) -> int:
    body = io.BytesIO(json.dumps(list(messages)).encode())
    async with http.post(url + "/xhr_send", data=body) as resp:
        await resp.read()
        return resp.status


@pytest.mark.parametrize(
    "transport",
    [
        "websocket",
        "xhr_streaming",
    ],
)
async def test_one_large_batch_does_not_evict_the_readers_of_a_broadcast(
    server: ServerProcess, http: aiohttp.ClientSession, transport: str
) -> None:
    base = f"http://127.0.0.1:{server.port}/broadcast"
    readers: list[Reader] = []
    for _ in range(READERS):
        # The burst is one 5 MiB frame on a websocket: within max_frame_size.
        client = await connect(base, transports=transport, session=http)
        readers.append(Reader(client))
    reading: list[asyncio.Future[None]] = []
    try:
        # The attacker: a polling session that sends one request of five
        # messages of 1 MiB each (within every inbound cap) and never polls.
        attacker = f"{base}/000/{new_id()}"
        async with http.post(attacker + "/xhr") as resp:
            assert await resp.text() == "o\n"
        burst = [f"{i}" + "x" * (MiB - 1) for i in range(5)]
        reading += [
            asyncio.ensure_future(r.read_until(lambda r=r: len(r.messages) >= len(burst)))
            for r in readers
        ]
        assert await bounded(_xhr_send(http, attacker, *burst), 30.0) == 204
        await bounded(asyncio.gather(*reading), 60.0)
        for r in readers:
            assert r.messages == burst, [m[:10] for m in r.messages]
        # Still open, all of them: one more message reaches every reader.
        await readers[0].client.send("after")
        await bounded(
            asyncio.gather(
                *(r.read_until(lambda r=r: r.messages[-1:] == ["after"]) for r in readers)
            ),
            30.0,
        )
        assert all(r.messages == [*burst, "after"] for r in readers)
    finally:
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)
        for r in readers:
            await r.client.close()


@pytest.mark.parametrize("transport", ["websocket", "xhr_streaming"])
async def test_chat_flood_does_not_close_the_other_participants(
    http: aiohttp.ClientSession, transport: str
) -> None:
    """One websocket frame of a join and 9,000 ``say`` of 500 characters
    leaves the rest of the room open and chatting."""
    with ServerProcess("chat", heartbeat_delay=10.0, disconnect_delay=5.0) as server:
        base = f"http://127.0.0.1:{server.port}/chat"
        people: list[tuple[str, ChatReader]] = []
        for index in range(4):
            nick = f"reader{index}-{new_id()[:8]}"
            client = await connect(base, transports=transport, session=http)
            reader = ChatReader(client)
            await client.send(json.dumps({"type": "join", "nick": nick}))
            await reader.read_until(lambda r=reader, n=nick: ("welcome", n, None) in r.seen)
            people.append((nick, reader))
        speaker, flooder = people[0][0], f"flood-{new_id()[:8]}"
        canary = ("say", speaker, "still here?")

        def done(r: ChatReader) -> bool:
            # The message said after the flood, and the flooder's leave
            # notice if it got to join: its handler has worked through
            # whatever it took by then.
            joined = ("join", flooder, None) in r.seen
            return canary in r.seen and (not joined or ("leave", flooder, None) in r.seen)

        # Everyone reads all along, as browsers do.
        reading = [asyncio.ensure_future(r.read_until(lambda r=r: done(r))) for _, r in people]
        try:
            flood = [json.dumps({"type": "join", "nick": flooder})]
            flood += [
                json.dumps({"type": "say", "text": f"{i:05d}" + "z" * 495}) for i in range(9000)
            ]
            ws = await bounded(http.ws_connect(f"{base}/000/{new_id()}/websocket", max_msg_size=0))
            assert await bounded(ws.receive_str()) == "o"
            await bounded(ws.send_str(json.dumps(flood)))  # one frame
            # The flooder reads its own messages back until the last one, or
            # until the server closes it (a rate limit may), then leaves.
            await bounded(_until_last_or_closed(ws, json.loads(flood[-1])["text"]), 60.0)
            await ws.close()
            # Everyone else is still here: a message said after the flood
            # reaches every other participant, with no close frame before it.
            await people[0][1].client.send(json.dumps({"type": "say", "text": canary[2]}))
            await bounded(asyncio.gather(*reading), 60.0)
        finally:
            for task in reading:
                task.cancel()
            await asyncio.gather(*reading, return_exceptions=True)
            for _, reader in people:
                await reader.client.close()


async def _until_last_or_closed(ws: aiohttp.ClientWebSocketResponse, last: str) -> None:
    while True:
        msg = await ws.receive()
        if msg.type is not aiohttp.WSMsgType.TEXT or msg.data.startswith("c"):
            return
        if msg.data.startswith("a") and _has(json.loads(msg.data[1:]), type="say", text=last):
            return


def _has(messages: list[str], **fields: str) -> bool:
    for raw in messages:
        message = json.loads(raw)
        if all(message.get(k) == v for k, v in fields.items()):
            return True
    return False
