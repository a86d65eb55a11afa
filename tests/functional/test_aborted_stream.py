"""A client that leaves before a stream starts gets no traceback logged."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import Any

import pytest
from aiohttp import web

import aiohttp_sockjs


async def _echo(session: aiohttp_sockjs.Session) -> None:
    async for message in session:
        session.send(message)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/echo/000/{}/xhr_streaming"),
        ("GET", "/echo/000/{}/eventsource"),
        ("GET", "/echo/000/{}/htmlfile?c=cb"),
    ],
)
async def test_stream_aborted_before_start_logs_nothing(
    aiohttp_server: Any, caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    app = web.Application()
    aiohttp_sockjs.setup(app, "/echo", _echo)
    server = await aiohttp_server(app)
    loop = asyncio.get_running_loop()
    for i in range(20):
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", server.port))
        request = (
            f"{method} {path.format(f's{i}')} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        # Reset the connection at once, as a browser does when it aborts.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    await asyncio.sleep(0.2)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
