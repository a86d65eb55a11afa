"""Issue 9, finding 1: a client cannot grow the server by pushing at a handler
that does not read.

The server runs in its own process (``tests.process_server``) so that its
resident set size is its own; the pushing client lives in the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import AsyncIterator

import pytest

from tests.process_server import ServerProcess
from tests.wire import bounded, eventually, new_id, raw_websocket, ws_frame

MiB = 1 << 20
#: The bound on the server's growth while a client pushes hundreds of MiB.
GROWTH_LIMIT = 64 * MiB
#: A write that makes no progress for this long is blocked by the server.
BLOCKED_AFTER = 2.0


class ServerFrames:
    """Reads a server's websocket frames from a raw socket, in the background."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.frames: list[str] = []
        self.ended = False
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            while True:
                b0, b1 = await self.reader.readexactly(2)
                length = b1 & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
                payload = await self.reader.readexactly(length)
                if b0 & 0x0F == 0x1:
                    self.frames.append(payload.decode())
                elif b0 & 0x0F == 0x8:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self.ended = True

    def count(self, frame: str) -> int:
        return self.frames.count(frame)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest.fixture
def ticker() -> AsyncIterator[ServerProcess]:
    # Heartbeats out of the picture, no expiry during the test, and a small
    # inbound_timeout for xhr_send.
    options = {"heartbeat_delay": 10.0, "disconnect_delay": 60.0, "inbound_timeout": 0.3}
    with ServerProcess("conformance", **options) as server:
        yield server


async def test_websocket_push_at_a_handler_that_never_reads(ticker: ServerProcess) -> None:
    """Frames of 1 MiB at ``/ticker``: the client is slowed down by TCP, the
    server stays small, and the session stays open (the ticks go on)."""
    reader, writer = await raw_websocket(ticker.port, f"/ticker/000/{new_id()}/websocket")
    frames = ServerFrames(reader)
    drain: asyncio.Future[None] | None = None
    try:
        await eventually(lambda: frames.count('a["tick!"]') >= 1)
        assert frames.frames[0] == "o"
        base = ticker.rss()
        frame = ws_frame(0x1, json.dumps(["x" * MiB]).encode())
        sent = 0
        peak = 0
        while sent < 600:
            writer.write(frame)
            drain = asyncio.ensure_future(writer.drain())
            done, _ = await asyncio.wait({drain}, timeout=BLOCKED_AFTER)
            if not done:
                break
            sent += 1
            peak = max(peak, ticker.rss() - base)
            assert peak < GROWTH_LIMIT, f"server grew {peak / MiB:.0f} MiB after {sent} MiB"
        assert drain is not None and not drain.done(), (
            f"the client pushed {sent} MiB without ever being slowed"
        )
        ticks = frames.count('a["tick!"]')
        # The session is slowed, not dropped: it still ticks, and the write
        # is still held back meanwhile (a slow server would have caught up).
        await eventually(lambda: frames.count('a["tick!"]') > ticks, 5.0)
        assert not drain.done()
        peak = max(peak, ticker.rss() - base)
        print(
            f"websocket: {sent} frames of 1 MiB taken before the client blocked; "
            f"server RSS {base / MiB:.0f} MiB + {peak / MiB:.1f} MiB at most"
        )
        assert peak < GROWTH_LIMIT
        assert not frames.ended
    finally:
        if drain is not None:
            drain.cancel()
        await frames.stop()
        writer.transport.abort()


async def _xhr_send(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    """POST ``body`` the way a browser does, and read the answer as it comes.

    The body goes out in small pieces, each written once the socket takes
    it, so a server that does not read holds the client back, and the
    client's own memory stays small. Returns the status and the body.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    view = memoryview(body)

    async def write() -> None:
        writer.write(head.encode())
        for start in range(0, len(view), 64 * 1024):
            writer.write(view[start : start + 64 * 1024])
            await writer.drain()

    writing = asyncio.ensure_future(write())
    try:
        status_line = await reader.readuntil(b"\r\n")
        headers = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in headers.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        answer = await reader.readexactly(length)
        return int(status_line.split()[1]), answer
    finally:
        writing.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await writing
        writer.transport.abort()


async def test_concurrent_xhr_sends_at_a_handler_that_never_reads(ticker: ServerProcess) -> None:
    """40 requests of 7 x 1 MiB at once to one polling session of ``/ticker``:
    one is taken, the others are refused with 503 once ``inbound_timeout``
    has passed, and the server's memory stays bounded throughout."""
    sid = new_id()
    status, body = await bounded(_xhr_send(ticker.port, f"/ticker/000/{sid}/xhr", b""))
    assert (status, body) == (200, b"o\n")
    base = ticker.rss()
    payload = json.dumps(["x" * MiB] * 7).encode()
    requests = [
        asyncio.ensure_future(_xhr_send(ticker.port, f"/ticker/000/{sid}/xhr_send", payload))
        for _ in range(40)
    ]
    peak = 0

    def sample() -> bool:
        nonlocal peak
        peak = max(peak, ticker.rss() - base)
        return all(r.done() for r in requests)

    try:
        # Generous: each waiting request is refused after inbound_timeout (0.3 s).
        await eventually(sample, 30.0)
    finally:
        for r in requests:
            r.cancel()
        await asyncio.gather(*requests, return_exceptions=True)
    answers = sorted(r.result() for r in requests)
    peak = max(peak, ticker.rss() - base)
    print(
        f"xhr_send: {[s for s, _ in answers].count(204)} x 204, "
        f"{[s for s, _ in answers].count(503)} x 503; "
        f"server RSS {base / MiB:.0f} MiB + {peak / MiB:.1f} MiB at most"
    )
    assert peak < GROWTH_LIMIT, f"server grew {peak / MiB:.0f} MiB"
    # The handler never reads: the first request fills the inbox, nothing
    # more fits, so every other request is refused.
    assert answers == [(204, b"")] + [(503, b"Session inbox full.")] * 39
