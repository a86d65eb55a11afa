"""Shutdown with many open sessions closes every one of them and returns."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

import aiohttp_sockjs
from aiohttp_sockjs import Session, SessionState

from .safety_client import Client

Factory = Callable[..., Awaitable[TestClient[Any, Any]]]


async def test_shutdown_closes_1000_sessions(aiohttp_client: Factory) -> None:
    sessions: list[Session] = []
    ended: list[Session] = []

    async def handler(session: Session) -> None:
        sessions.append(session)
        async for message in session:
            session.send(message)
        ended.append(session)

    app = web.Application()
    endpoint = aiohttp_sockjs.setup(app, "/echo", handler)
    client = await aiohttp_client(app)
    base = str(client.make_url("/echo"))
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    transports = ["websocket"] * 4 + ["xhr_streaming"] * 2 + ["eventsource"] * 2 + ["xhr"] * 2
    clients = [Client(http, base, transports[i % len(transports)]) for i in range(1000)]
    try:
        sem = asyncio.Semaphore(100)

        async def open_one(c: Client) -> None:
            async with sem:
                assert (await c.open())[0] == ("o",)

        await asyncio.gather(*(open_one(c) for c in clients))
        assert len(endpoint) == 1000
        # Connected clients wait for their next frame; polling ones poll.
        waiting = [asyncio.ensure_future(c.receive()) for c in clients]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while any(s._receiver is None for s in sessions):
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
        await endpoint.shutdown()
        assert not endpoint._sessions
        assert all(s.state is SessionState.CLOSED for s in sessions)
        assert all(s.close_code == 1001 for s in sessions)
        results = await asyncio.wait_for(asyncio.gather(*waiting), 10)
        closed = [r for r in results if r and r[0] == ("c", [1001, "Going away"])]
        assert len(closed) == 1000, [
            (c.transport, r) for c, r in zip(clients, results, strict=True) if r not in closed
        ][:8]
        await asyncio.sleep(0)
        assert len(ended) == 1000
        # A shut-down endpoint opens no new session.
        async with http.post(base + "/000/late/xhr") as r:
            assert r.status == 503
        async with http.post(base + "/000/late/xhr_streaming") as r:
            assert r.status == 503
        try:
            await http.ws_connect(base + "/000/late/websocket")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 503
        else:
            raise AssertionError("websocket opened after shutdown")
        assert not endpoint._sessions
    finally:
        for c in clients:
            await c.close()
        await http.close()
