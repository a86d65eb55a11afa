"""Lone surrogates round-trip: the client sends them escaped, so must we."""

from __future__ import annotations

from typing import Any

from aiohttp import web

import aiohttp_sockjs


async def _echo(session: aiohttp_sockjs.Session) -> None:
    async for message in session:
        session.send(message)


async def test_lone_surrogates_echo_escaped_over_xhr(aiohttp_client: Any) -> None:
    app = web.Application()
    aiohttp_sockjs.setup(app, "/echo", _echo)
    client = await aiohttp_client(app)
    resp = await client.post("/echo/000/s1/xhr")
    assert await resp.text() == "o\n"
    # What sockjs-client sends for the strings "\ud800" and "a\udc00b".
    resp = await client.post("/echo/000/s1/xhr_send", data=b'["\\ud800","a\\udc00b"]')
    assert resp.status == 204
    resp = await client.post("/echo/000/s1/xhr")
    assert resp.status == 200
    assert await resp.read() == b'a["\\ud800","a\\udc00b"]\n'


async def test_lone_surrogate_echo_over_websocket(aiohttp_client: Any) -> None:
    app = web.Application()
    aiohttp_sockjs.setup(app, "/echo", _echo)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/echo/000/s2/websocket")
    assert await ws.receive_str(timeout=5) == "o"
    await ws.send_str('["\\udfff"]')
    assert await ws.receive_str(timeout=5) == 'a["\\udfff"]'
    await ws.close()
