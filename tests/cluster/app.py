"""The test application of the cluster tests: one endpoint, a small command language.

Messages from a client: ``join ROOM``, ``leave ROOM``, ``all TEXT`` (broadcast
to everyone), ``to ROOM[,ROOM...] TEXT`` (broadcast to rooms). Run as a
module it is one server process of a cluster (used to kill one for real)::

    python -m tests.cluster.app REDIS_URL PORT
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs.broker import RedisBroker

PREFIX = "/chat"

#: Small intervals, so that presence tests wait for fractions of a second.
FAST_BROKER: dict[str, Any] = {
    "heartbeat_interval": 0.1,
    "process_ttl": 0.6,
    "retry_interval": 0.1,
    "connect_timeout": 2.0,
}


async def commands(session: aiohttp_sockjs.Session) -> None:
    """Run the test command language for one session."""
    async for message in session:
        command, _, argument = message.partition(" ")
        if command == "join":
            session.join(argument)
            session.send("joined " + argument)
        elif command == "leave":
            session.leave(argument)
            session.send("left " + argument)
        elif command == "all":
            session.endpoint.broadcast(argument)
        elif command == "to":
            rooms, _, text = argument.partition(" ")
            session.endpoint.broadcast(text, room=rooms.split(","))


def make_app(broker: RedisBroker | None, *prefixes: str) -> web.Application:
    """An app serving the command language at each of ``prefixes`` (default ``/chat``)."""
    app = web.Application()
    for prefix in prefixes or (PREFIX,):
        aiohttp_sockjs.setup(
            app, prefix, commands, heartbeat_delay=10.0, disconnect_delay=1.0, broker=broker
        )
    return app


def endpoint(app: web.Application, prefix: str = PREFIX) -> aiohttp_sockjs.Endpoint:
    """The endpoint at ``prefix``."""
    return app[aiohttp_sockjs.ENDPOINTS][prefix]


async def _serve(url: str, port: int) -> None:
    broker = RedisBroker(url, **FAST_BROKER)
    runner = web.AppRunner(make_app(broker))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"ready {broker.process_id}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], int(sys.argv[2])))
