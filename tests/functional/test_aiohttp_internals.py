"""The one module that reaches past aiohttp's public API works on this aiohttp.

pyproject.toml pins aiohttp to the versions aiohttp_sockjs/_aiohttp.py was
written against; on any of them a missing fast path is a failure here, not
a silent fallback.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from aiohttp_sockjs import _aiohttp
from tests.helpers import bounded

TEXTS = ["a", "é" * 200, "x" * 30_000, "y" * 70_000]


def _allowed(v: str) -> bool:
    parts = tuple(int(p) for p in v.split(".")[:3] if p.isdigit())
    return (3, 13, 2) <= parts < (3, 15)


def test_running_aiohttp_is_a_supported_one_and_has_the_layout() -> None:
    assert _allowed(version("aiohttp")), version("aiohttp")
    assert _aiohttp.SUPPORTED


async def _serve(aiohttp_client: Any, compress: bool, results: list[bool]) -> TestClient[Any, Any]:

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=compress, writer_limit=65536)
        await ws.prepare(request)
        for text in TEXTS:
            wrote = _aiohttp.write_text_now(ws, text.encode())
            results.append(wrote)
            if not wrote:
                await ws.send_str(text)
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


async def _receive_all(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
    texts = []
    while True:
        msg = await bounded(ws.receive())
        if msg.type is not WSMsgType.TEXT:
            return texts
        texts.append(msg.data)


async def test_frames_written_at_once_arrive_exactly(aiohttp_client: Any) -> None:
    results: list[bool] = []
    client = await _serve(aiohttp_client, False, results)
    async with client.ws_connect("/ws", compress=0) as ws:
        assert await _receive_all(ws) == TEXTS
    # The last frame would take the writer past its flow-control limit.
    assert results == [True, True, True, False]


async def test_compressed_sockets_are_left_to_send_str(aiohttp_client: Any) -> None:
    results: list[bool] = []
    client = await _serve(aiohttp_client, True, results)
    async with client.ws_connect("/ws", compress=15) as ws:
        assert ws.compress == 15
        assert await _receive_all(ws) == TEXTS
    assert results == [False] * len(TEXTS)
