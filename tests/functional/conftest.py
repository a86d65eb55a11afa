"""A real ``web.AppRunner`` server for tests that cut connections with raw sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs import testing
from tests.conftest import FAST
from tests.wire import eventually


async def _echo(session: aiohttp_sockjs.Session) -> None:
    async for message in session:
        session.send(message)


@dataclass
class Live:
    """One endpoint at ``/e`` served by a real ``web.AppRunner`` on loopback."""

    port: int
    endpoint: aiohttp_sockjs.Endpoint
    runner: web.AppRunner
    #: Paths of the requests whose handler has started, in order.
    started: list[str] = field(default_factory=list)
    #: Paths of the requests whose handler has returned or raised, in order.
    handled: list[str] = field(default_factory=list)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A raw TCP connection to the server."""
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def wait_started(self, count: int, timeout: float = 3.0) -> None:
        """Wait until ``count`` request handlers have started."""
        await eventually(lambda: len(self.started) >= count, timeout)

    async def wait_handled(self, count: int, timeout: float = 3.0) -> None:
        """Wait until ``count`` request handlers have finished."""
        await eventually(lambda: len(self.handled) >= count, timeout)

    async def stop(self) -> None:
        """Shut the server down (idempotent), so late log lines are caught too."""
        await self.runner.cleanup()


Serve = Callable[..., Awaitable[Live]]


@pytest.fixture(params=[False, True], ids=["run_app-default", "handler_cancellation"])
async def live(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Serve]:
    """Start an echo endpoint (or ``handler``) with ``options`` on a real server.

    Runs twice: with aiohttp's default for ``web.run_app`` (a request handler
    is not cancelled when its client goes away) and with
    ``handler_cancellation=True`` (what aiohttp's ``TestServer`` uses).
    Every logger is captured from DEBUG up.
    """
    caplog.set_level(logging.DEBUG)
    servers: list[Live] = []

    async def start(handler: Any = _echo, **options: Any) -> Live:
        started: list[str] = []
        handled: list[str] = []

        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            started.append(request.path)
            try:
                response: web.StreamResponse = await handler(request)
                return response
            finally:
                handled.append(request.path)

        app = web.Application(middlewares=[record])
        endpoint = testing.setup(app, "/e", handler, **{**FAST, **options})
        runner = web.AppRunner(app, handler_cancellation=request.param)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = Live(runner.addresses[0][1], endpoint, runner, started, handled)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def server_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records logged by the server side, minus the access log and asyncio's debug chatter."""
    return [
        r
        for r in caplog.records
        if r.name != "aiohttp.access" and not (r.name == "asyncio" and r.levelno < logging.INFO)
    ]


def assert_quiet(caplog: pytest.LogCaptureFixture, events: int) -> None:
    """No tracebacks, nothing above INFO, and at most one line per event."""
    lines = server_lines(caplog)
    shown = [f"{r.levelname}:{r.name}:{r.getMessage()}" for r in lines]
    assert [r.getMessage() for r in lines if r.exc_info or r.exc_text] == []
    assert [r.getMessage() for r in lines if r.levelno > logging.INFO] == []
    assert len(lines) <= events, shown
