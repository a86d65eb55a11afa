"""A SockJS client of ``/relay`` (see server.py) through the proxy, for the cluster tests.

A background reader puts every message in an inbox and notes when the
session or its connection ends. Reads wait as long as they must (the
servers send heartbeats), so a busy machine slows the tests down rather
than failing them; every wait for an expected message is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp

from tests.wire import XHR_PRELUDE, messages_of, new_id

#: Transports a Python client drives here: one of each kind of connection.
TRANSPORTS = ("websocket", "xhr_streaming", "xhr")
WAIT = 10.0


class RelayClient:
    """One session of ``/relay`` over ``transport``."""

    def __init__(self, http: aiohttp.ClientSession, transport: str) -> None:
        assert transport in TRANSPORTS
        self.http = http
        self.transport = transport
        self.sid = new_id()
        self.url = f"/relay/000/{self.sid}/"
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stream: aiohttp.ClientResponse | None = None
        self.inbox: asyncio.Queue[str] = asyncio.Queue()
        self.ended = asyncio.Event()
        self.end_reason: str | None = None
        self.process = ""
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<RelayClient {self.transport} {self.sid[:8]} on {self.process}>"

    async def _frame(self) -> str:
        """The next frame; raises ``EOFError`` when the connection is gone."""
        if self._ws is not None:
            msg = await self._ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise EOFError(f"websocket {msg.type.name}")
            return str(msg.data)
        if self._stream is not None:
            line = await self._stream.content.readline()
            if not line.endswith(b"\n"):
                raise EOFError("the stream ended")
            return line[:-1].decode()
        async with self.http.post(self.url + "xhr") as response:
            body = await response.read()
            if response.status != 200:
                raise EOFError(f"xhr poll answered {response.status}")
        return body.decode().removesuffix("\n")

    async def open(self) -> RelayClient:
        if self.transport == "websocket":
            self._ws = await self.http.ws_connect(self.url + "websocket")
        elif self.transport == "xhr_streaming":
            self._stream = await self.http.post(self.url + "xhr_streaming")
            assert self._stream.status == 200, self._stream.status
            prelude = await self._stream.content.readexactly(len(XHR_PRELUDE))
            assert prelude == XHR_PRELUDE
        frame = await asyncio.wait_for(self._frame(), WAIT)
        assert frame == "o", frame
        self._task = asyncio.ensure_future(self._read())
        await self.send("whoami")
        self.process = (await self.next()).removeprefix("me:")
        return self

    async def _read(self) -> None:
        try:
            while True:
                frame = await self._frame()
                if frame == "h":
                    continue
                if frame.startswith("c"):
                    self.end_reason = frame
                    return
                for message in messages_of(frame):
                    self.inbox.put_nowait(message)
        except (EOFError, aiohttp.ClientError, OSError) as exc:
            # A connection the proxy cut, a poll answered 502, a stream that ended.
            self.end_reason = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            self.ended.set()

    async def send(self, *messages: str) -> None:
        """Send messages; raises ``EOFError`` if the session is gone."""
        payload = json.dumps(list(messages))
        if self._ws is not None:
            await self._ws.send_str(payload)
            return
        async with self.http.post(self.url + "xhr_send", data=payload) as response:
            if response.status != 204:
                raise EOFError(f"xhr_send answered {response.status}")

    async def next(self, timeout: float = WAIT) -> str:
        """The next message; fails if none comes within ``timeout`` s."""
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def take(self, n: int, timeout: float = WAIT) -> list[str]:
        return [await self.next(timeout) for _ in range(n)]

    async def command(self, text: str) -> str:
        """Send a command and return its answer (nothing else may be in flight)."""
        await self.send(text)
        return await self.next()

    async def presence(self) -> dict[str, Any]:
        answer = await self.command("presence")
        assert answer.startswith("presence:"), answer
        figures: dict[str, Any] = json.loads(answer.removeprefix("presence:"))
        return figures

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._ws is not None:
            await self._ws.close()
        if self._stream is not None:
            self._stream.close()
