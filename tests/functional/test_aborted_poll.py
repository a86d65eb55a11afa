"""A receiving request the client abandons is finished, not left waiting."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

import aiohttp_sockjs
from aiohttp_sockjs import testing

_finished: list[str] = []


class _Finished(AbstractAccessLogger):
    # aiohttp logs access once a request handler has returned.
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        _finished.append(request.path)


async def _until_finished(expected: list[str]) -> None:
    for _ in range(500):
        if _finished == expected:
            return
        await asyncio.sleep(0.01)
    assert _finished == expected


async def _echo(session: aiohttp_sockjs.Session) -> None:
    async for message in session:
        session.send(message)


@pytest.mark.parametrize(
    ("method", "transport", "query", "polling"),
    [
        ("POST", "xhr", "", True),
        ("GET", "jsonp", "?c=cb", True),
        ("POST", "xhr_streaming", "", False),
        ("GET", "eventsource", "", False),
        ("GET", "htmlfile", "?c=cb", False),
    ],
)
async def test_aborted_receiving_request_finishes(
    method: str, transport: str, query: str, polling: bool
) -> None:
    app = web.Application()
    endpoint = testing.setup(app, "/echo", _echo, sweep_interval=0.01)
    runner = web.AppRunner(app, access_log_class=_Finished, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    _finished.clear()
    loop = asyncio.get_running_loop()
    try:
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        path = "/echo/000/s1/" + transport
        request = f"{method} {path}{query} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        await loop.sock_sendall(sock, request.encode())
        first = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
        assert first.startswith(b"HTTP/1.1 200")
        # A poll answered "o" and is done: poll again, then walk away.
        if polling:
            await _until_finished([path])
            await loop.sock_sendall(sock, request.encode())
            for _ in range(500):
                if testing.attached(endpoint.sessions[0]):
                    break
                await asyncio.sleep(0.01)
            assert testing.attached(endpoint.sessions[0])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        await _until_finished([path, path] if polling else [path])
    finally:
        await runner.cleanup()
