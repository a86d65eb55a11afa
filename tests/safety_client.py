"""A small SockJS client for the safety tests: one open/send/receive per transport."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
import re
import urllib.parse
import uuid
from typing import Any

import aiohttp

POLLING = ("xhr", "jsonp")
STREAMING = ("xhr_streaming", "eventsource", "htmlfile")
ALL = ("websocket", *POLLING, *STREAMING)

_HTMLFILE_RE = re.compile(r'<script>\np\((".*?")\);\n</script>\r\n', re.S)
_JSONP_RE = re.compile(r'^/\*\*/cb\((".*")\);\r\n$', re.S)


def new_id() -> str:
    return uuid.uuid4().hex


def parse_frames(frames: list[str]) -> list[Any]:
    """Turn raw frames into ("o",), ("h",), ("a", [...]) or ("c", [code, reason])."""
    out: list[Any] = []
    for frame in frames:
        if frame in ("o", "h"):
            out.append((frame,))
        else:
            out.append((frame[0], json.loads(frame[1:])))
    return out


class Client:
    """One session over one transport, against ``base`` (e.g. ``http://h:p/echo``)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, transport: str) -> None:
        self.http = http
        self.base = base
        self.transport = transport
        self.sid = new_id()
        self.url = f"{base}/000/{self.sid}"
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.stream: aiohttp.ClientResponse | None = None
        self._buffer = ""

    async def open(self) -> list[Any]:
        """Open the session; returns the first frames (starting with ``("o",)``)."""
        if self.transport == "websocket":
            self.ws = await self.http.ws_connect(self.url + "/websocket", max_msg_size=0)
            return parse_frames([await self.ws.receive_str()])
        if self.transport in POLLING:
            return await self.poll()
        return await self._start_stream()

    async def _start_stream(self) -> list[Any]:
        if self.transport == "xhr_streaming":
            self.stream = await self.http.post(self.url + "/xhr_streaming")
            assert await self._until("\n") == "h" * 2048 + "\n"
        elif self.transport == "eventsource":
            self.stream = await self.http.get(self.url + "/eventsource")
            assert await self._until("\r\n") == "\r\n"
        else:
            self.stream = await self.http.get(self.url + "/htmlfile?c=cb")
            assert "c.start()" in await self._until("\r\n\r\n")
        return await self.read_stream()

    async def _until(self, sep: str) -> str:
        assert self.stream is not None
        while sep not in self._buffer:
            chunk = await self.stream.content.readany()
            if not chunk:
                raise EOFError
            self._buffer += chunk.decode()
        head, _, self._buffer = self._buffer.partition(sep)
        return head + sep

    async def read_stream(self) -> list[Any]:
        """Read at least one frame from the streaming response."""
        frames: list[str] = []
        while not frames:
            if self.transport == "xhr_streaming":
                frames.append((await self._until("\n"))[:-1])
            elif self.transport == "eventsource":
                text = await self._until("\r\n\r\n")
                assert text.startswith("data: "), text
                frames.append(urllib.parse.unquote(text[6:-4]))
            else:
                chunk = await self._until("</script>\r\n")
                match = _HTMLFILE_RE.fullmatch(chunk)
                assert match is not None, chunk
                frames.append(json.loads(match.group(1)))
        return parse_frames(frames)

    async def poll(self) -> list[Any]:
        """One polling request (xhr or jsonp)."""
        if self.transport == "xhr":
            async with self.http.post(self.url + "/xhr") as r:
                assert r.status == 200, r.status
                text = await r.text()
            return parse_frames(text.splitlines())
        async with self.http.get(self.url + "/jsonp?c=cb") as r:
            assert r.status == 200, r.status
            text = await r.text()
        match = _JSONP_RE.fullmatch(text)
        assert match is not None, text
        return parse_frames([json.loads(match.group(1))])

    async def send(self, *messages: str) -> int:
        """Send messages; returns the HTTP status (0 for websocket)."""
        payload = json.dumps(list(messages))
        if self.ws is not None:
            await self.ws.send_str(payload)
            return 0
        if self.transport == "jsonp":
            form = {"d": payload}
            async with self.http.post(self.url + "/jsonp_send", data=form) as r:
                await r.read()
                return r.status
        body = io.BytesIO(payload.encode())
        async with self.http.post(self.url + "/xhr_send", data=body) as r:
            await r.read()
            return r.status

    async def receive(self) -> list[Any]:
        """The next frames of any kind."""
        if self.ws is not None:
            msg = await self.ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return [("ws-closed", self.ws.close_code)]
            return parse_frames([msg.data])
        if self.transport in POLLING:
            return await self.poll()
        try:
            return await self.read_stream()
        except EOFError:
            # Past response_limit: a real client opens the next stream.
            assert self.stream is not None
            self.stream.close()
            self._buffer = ""
            return await self._start_stream()

    async def messages(self, count: int) -> list[str]:
        """Receive until ``count`` messages have arrived (heartbeats skipped)."""
        got: list[str] = []
        while len(got) < count:
            for frame in await self.receive():
                if frame[0] == "a":
                    got.extend(frame[1])
                elif frame[0] != "h":
                    raise AssertionError(f"unexpected frame {frame!r} after {len(got)}")
        return got

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.stream is not None:
            self.stream.close()


async def _abort_midway(c: Client, rng: random.Random) -> None:
    """Leave the session the rude way: cut a connection in the middle of a request."""
    if c.ws is not None:
        await c.send("bye")
        conn = c.ws._conn
        if conn is not None and conn.transport is not None:
            conn.transport.abort()
        return
    if c.transport in POLLING:
        # A poll waiting for data (nothing is queued), cut after a moment.
        task = asyncio.ensure_future(c.poll() if rng.random() < 0.7 else c.send("x" * 1000))
        await asyncio.sleep(rng.random() * 0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, AssertionError):
            await task
        return
    assert c.stream is not None
    c.stream.close()  # hang up on the open stream


async def churn_one(
    http: aiohttp.ClientSession,
    base: str,
    transport: str,
    index: int,
    rng: random.Random,
    abort_share: float,
    count: int = 3,
) -> bool:
    """Open, use and leave one session; returns whether it was aborted.

    A session that is not aborted must get back exactly what it sent, in order.
    """
    sent = [f"{index}:{seq}" for seq in range(count)]
    if transport == "raw_websocket":
        ws = await http.ws_connect(base + "/websocket")
        for message in sent:
            await ws.send_str(message)
        got = [await ws.receive_str() for _ in sent]
        assert got == sent, (transport, got)
        if rng.random() < abort_share:
            conn = ws._conn
            if conn is not None and conn.transport is not None:
                conn.transport.abort()
            return True
        await ws.close()
        return False
    c = Client(http, base, transport)
    first = await c.open()
    assert first[0] == ("o",), first
    if rng.random() < abort_share:
        await _abort_midway(c, rng)
        return True
    half = rng.randrange(count + 1)
    for batch in (sent[:half], sent[half:]):
        if batch:
            status = await c.send(*batch)
            assert status in (0, 200, 204), f"{transport} session {index}: send got {status}"
    try:
        got = await c.messages(count)
    except AssertionError as exc:
        raise AssertionError(f"{transport} session {index} ({c.sid}): {exc}") from None
    assert got == sent, (transport, got)
    await c.close()
    return False


async def churn(
    http: aiohttp.ClientSession,
    base: str,
    sessions: int,
    *,
    abort_share: float = 0.2,
    concurrency: int = 50,
    seed: int = 1,
    transports: tuple[str, ...] = (*ALL, "raw_websocket"),
) -> dict[str, int]:
    """Run ``sessions`` sessions spread over ``transports``; returns counts by outcome."""
    rng = random.Random(seed)
    sem = asyncio.Semaphore(concurrency)
    stats = {"clean": 0, "aborted": 0}

    async def one(i: int) -> None:
        local = random.Random(rng.random())
        async with sem:
            aborted = await churn_one(
                http, base, transports[i % len(transports)], i, local, abort_share
            )
        stats["aborted" if aborted else "clean"] += 1

    await asyncio.gather(*(one(i) for i in range(sessions)))
    return stats
