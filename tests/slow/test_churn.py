"""Churn: thousands of sessions on every transport opened, used and left.

Afterwards nothing may be left behind (sessions, tasks, receivers), and no
session that behaved lost or reordered a message.
"""

from __future__ import annotations

import asyncio
import gc
import logging

import aiohttp
import pytest
from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs import Session, testing
from aiohttp_sockjs.session import Receiver
from tests.churn import churn
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
    # 3,500 sessions from one address, closing ones held until they expire:
    # the per-client share (tested elsewhere) is not what this measures.
    endpoint = aiohttp_sockjs.setup(
        app,
        "/echo",
        echo,
        heartbeat_delay=0.5,
        disconnect_delay=3.0,
        response_limit=4096,
        max_sessions_per_client=None,
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
