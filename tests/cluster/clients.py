"""Sessions of ``/relay`` (see server.py) through the proxy, for the cluster tests.

A thin layer on the public client (:mod:`aiohttp_sockjs.client`): each
session asks its process for its name (``whoami``) once it is open, and
every wait for an expected message is bounded. The client reads in the
background and waits as long as the servers keep sending heartbeats, so a
busy machine slows the tests down rather than failing them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from aiohttp_sockjs.client import SockJSClient, connect

#: Transports a Python client drives here: one of each kind of connection.
TRANSPORTS = ("websocket", "xhr_streaming", "xhr")
WAIT = 10.0


class Relay:
    """One session of ``/relay``, and the process that serves it."""

    def __init__(self, client: SockJSClient, process: str) -> None:
        self.client = client
        #: The name of the server process that holds the session.
        self.process = process

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, origin: str, transport: str) -> Relay:
        """Open a session of ``/relay`` at ``origin`` over ``transport``."""
        assert transport in TRANSPORTS
        client = await connect(f"{origin}/relay", transports=transport, session=http)
        try:
            await client.send("whoami")
            answer = await asyncio.wait_for(client.receive(), WAIT)
        except BaseException:
            await client.close()
            raise
        assert answer.startswith("me:"), answer
        return cls(client, answer.removeprefix("me:"))

    def __repr__(self) -> str:
        return f"<Relay {self.transport} {self.sid[:8]} on {self.process}: {self.client!r}>"

    @property
    def transport(self) -> str:
        return self.client.transport

    @property
    def sid(self) -> str:
        sid = self.client.session_id
        assert sid is not None
        return sid

    @property
    def closed(self) -> bool:
        """Whether the session or its connection has ended."""
        return self.client.closed

    async def wait_closed(self, timeout: float = WAIT) -> None:
        await asyncio.wait_for(self.client.wait_closed(), timeout)

    async def send(self, *messages: str) -> None:
        """Send messages in order; each returns once the server has it."""
        for message in messages:
            await self.client.send(message)

    async def next(self, timeout: float = WAIT) -> str:
        """The next message; fails if none comes within ``timeout`` s."""
        return await asyncio.wait_for(self.client.receive(), timeout)

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
        await self.client.close()
