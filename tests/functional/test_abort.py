"""A client that cuts a waiting request: found by the sweeper, nothing left behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from aiohttp_sockjs import Session, testing


async def echo(session: Session) -> None:
    async for message in session:
        session.send(message)


async def wait_for(predicate, limit: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not predicate():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.01)


async def raw_post(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


Serve = Callable[[web.Application], Awaitable[int]]


@pytest.fixture(params=[False, True], ids=["run_app-default", "handler_cancellation"])
async def serve(request: pytest.FixtureRequest) -> AsyncIterator[Serve]:
    """Run apps on a real port, with and without aiohttp's handler cancellation."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> int:
        runner = web.AppRunner(app, handler_cancellation=request.param)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return runner.addresses[0][1]  # type: ignore[no-any-return]

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_aborted_poll_is_found_and_released(serve: Serve) -> None:
    """An aborted xhr poll closes the session with 1002 and its request ends."""
    app = web.Application()
    endpoint = testing.setup(
        app, "/echo", echo, heartbeat_delay=60, disconnect_delay=60, sweep_interval=0.02
    )
    port = await serve(app)
    reader, writer = await raw_post(port, "/echo/a/s/xhr")
    assert (await reader.readuntil(b"o\n")).endswith(b"o\n")
    writer.close()
    [session] = endpoint.sessions
    handlers_before = len(asyncio.all_tasks())
    reader, writer = await raw_post(port, "/echo/a/s/xhr")
    await wait_for(lambda: len(asyncio.all_tasks()) > handlers_before)
    writer.close()
    await wait_for(lambda: session.closed)
    assert session.close_code == 1002
    # The waiting request handler has finished too.
    await wait_for(lambda: len(asyncio.all_tasks()) <= handlers_before)


async def test_aborted_stream_is_found_and_released(serve: Serve) -> None:
    """An aborted xhr_streaming closes the session with 1002 without a write."""
    app = web.Application()
    endpoint = testing.setup(
        app, "/echo", echo, heartbeat_delay=60, disconnect_delay=60, sweep_interval=0.02
    )
    port = await serve(app)
    reader, writer = await raw_post(port, "/echo/a/s/xhr_streaming")
    await reader.readuntil(b"o\n")
    [session] = endpoint.sessions
    writer.close()
    await wait_for(lambda: session.closed)
    assert session.close_code == 1002
    assert endpoint.sessions == []
