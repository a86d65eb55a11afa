"""Churn: thousands of sessions on every transport opened, used and left.

Afterwards nothing may be left behind (sessions, tasks, receivers), and no
session that behaved lost or reordered a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random

import aiohttp
import pytest
from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs import ClientError, Session, SessionClosed, testing
from aiohttp_sockjs.client import TRANSPORTS, SockJSClient, connect
from aiohttp_sockjs.session import Receiver
from tests.wire import eventually


async def echo(session: Session) -> None:
    async for message in session:
        session.send(message)


def _receivers() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, Receiver))


async def _real_server(app: web.Application) -> tuple[web.AppRunner, str]:
    # Not aiohttp's TestServer: it cancels request handlers when the client
    # disconnects (handler_cancellation=True), which would hide handlers left
    # waiting; web.run_app does not.
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.mark.timeout(90)
async def test_churn_leaves_nothing_behind(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    app = web.Application()
    endpoint = aiohttp_sockjs.setup(
        app, "/echo", echo, heartbeat_delay=0.5, disconnect_delay=3.0, response_limit=4096
    )
    runner, url = await _real_server(app)
    try:
        await _churn(endpoint, url + "/echo", caplog)
    finally:
        await runner.cleanup()


async def _churn(
    endpoint: aiohttp_sockjs.Endpoint, base: str, caplog: pytest.LogCaptureFixture
) -> None:
    # One loop turn, so that tasks the server start scheduled are running
    # and belong to the baseline.
    await asyncio.sleep(0)
    baseline = set(asyncio.all_tasks())
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        stats = await churn(http, base, 3500, abort_share=0.25, concurrency=60)
    finally:
        await http.close()
    assert stats["clean"] + stats["aborted"] == 3500
    assert stats["aborted"] > 500
    # Every session expires or ends; no task or receiver outlives them.
    await eventually(
        lambda: not testing.held_sessions(endpoint) and not testing.running_handlers(endpoint),
        timeout=10,
    )
    await eventually(
        lambda: not set(asyncio.all_tasks()) - baseline - {asyncio.current_task()}, timeout=10
    )
    assert _receivers() == 0
    assert [r for r in caplog.records if r.exc_info] == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def _turns(rng: random.Random) -> None:
    """A few loop turns, a random number: where in a request the client vanishes."""
    for _ in range(rng.randrange(5)):
        await asyncio.sleep(0)


async def _abort_midway(c: SockJSClient, rng: random.Random) -> None:
    """Leave the session the rude way: vanish in the middle of something."""
    if c.transport == "websocket":
        await c.send("bye")
    elif c.transport in ("xhr", "jsonp") and rng.random() >= 0.7:
        # A send in flight (else the poll that is always waiting is cut).
        sending = asyncio.ensure_future(c.send("x" * 1000))
        await _turns(rng)
        await c.abort()
        with contextlib.suppress(SessionClosed, ClientError):
            await sending
        return
    await _turns(rng)
    await c.abort()


async def churn_one(
    http: aiohttp.ClientSession,
    base: str,
    transport: str,
    index: int,
    rng: random.Random,
    abort_share: float,
    count: int = 3,
) -> bool:
    """Open, use and leave one session; returns whether it was aborted.

    A session that is not aborted must get back exactly what it sent, in order.
    """
    sent = [f"{index}:{seq}" for seq in range(count)]
    c = await connect(base, transports=transport, session=http, timeout=10)
    if transport == "raw_websocket":
        for message in sent:
            await c.send(message)
        got = [await c.receive() for _ in sent]
        assert got == sent, (transport, got)
        if rng.random() < abort_share:
            await c.abort()
            return True
        await c.close()
        return False
    if rng.random() < abort_share:
        await _abort_midway(c, rng)
        return True
    half = rng.randrange(count + 1)
    for batch in (sent[:half], sent[half:]):
        # Sent in one loop turn: one frame or request per batch.
        await asyncio.gather(*(c.send(message) for message in batch))
    try:
        got = [await c.receive() for _ in sent]
    except ClientError as exc:
        raise AssertionError(f"{transport} session {index} ({c.session_id}): {exc!r}") from None
    assert got == sent, (transport, got)
    await c.close()
    return False


async def churn(
    http: aiohttp.ClientSession,
    base: str,
    sessions: int,
    *,
    abort_share: float = 0.2,
    concurrency: int = 50,
    seed: int = 1,
    transports: tuple[str, ...] = TRANSPORTS,
) -> dict[str, int]:
    """Run ``sessions`` sessions spread over ``transports``; returns counts by outcome."""
    rng = random.Random(seed)
    sem = asyncio.Semaphore(concurrency)
    stats = {"clean": 0, "aborted": 0}

    async def one(i: int) -> None:
        local = random.Random(rng.random())
        async with sem:
            aborted = await churn_one(
                http, base, transports[i % len(transports)], i, local, abort_share
            )
        stats["aborted" if aborted else "clean"] += 1

    await asyncio.gather(*(one(i) for i in range(sessions)))
    return stats
