"""``connect(websocket_compression=True)``: permessage-deflate, as the server's option."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aiohttp_sockjs import Session, testing
from aiohttp_sockjs.client import connect

from ...wire import bounded

#: About 64 KiB of JSON that compresses as records do.
RECORDS = json.dumps([{"id": i, "name": f"item {i % 7}", "ok": i % 3 == 0} for i in range(1500)])


@pytest.mark.parametrize("server_compresses", [True, False])
@pytest.mark.parametrize("transport", ["websocket", "raw_websocket"])
async def test_websocket_compression(
    aiohttp_server: Any, transport: str, server_compresses: bool
) -> None:
    async def echo(session: Session) -> None:
        async for message in session:
            session.send(message)

    app = web.Application()
    testing.setup(app, "/e", echo, websocket_compression=server_compresses)
    server = await aiohttp_server(app)
    extensions: list[str | None] = []

    async def on_request_end(
        http: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestEndParams
    ) -> None:
        if params.url.path.endswith("/websocket"):
            extensions.append(params.response.headers.get("Sec-WebSocket-Extensions"))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    async with aiohttp.ClientSession(trace_configs=[trace]) as http:
        url = server.make_url("/e")
        async with connect(
            url, transports=transport, session=http, websocket_compression=True
        ) as client:
            for message in (RECORDS, "short", "zażółć ☃ 😀" * 500):
                await client.send(message)
                assert await bounded(client.receive()) == message
    [answer] = extensions
    if server_compresses:
        assert answer is not None and answer.startswith("permessage-deflate")
    else:
        assert answer is None


async def test_off_by_default(aiohttp_server: Any) -> None:
    app = web.Application()
    testing.setup(app, "/e", lambda s: s.wait_closed(), websocket_compression=True)
    server = await aiohttp_server(app)
    offered: list[str | None] = []

    async def on_request_start(
        http: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        if params.url.path.endswith("/websocket"):
            offered.append(params.headers.get("Sec-WebSocket-Extensions"))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as http,
        connect(server.make_url("/e"), transports="websocket", session=http),
    ):
        pass
    assert offered == [None]
