"""``reconnecting()``: a new session after each loss, against a server killed and restarted.

The server is ``demo.conformance`` in its own process (tests/restartable_server.py),
killed with SIGKILL and started again on the same port. The client's delays
are small here (10-40 ms) so that ten restarts take about a second.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from aiohttp_sockjs import ClientError, ConnectError, Session, testing
from aiohttp_sockjs.client import TRANSPORTS, Reconnecting, SockJSClient, reconnecting

from ...process_server import ROOT
from ...wire import bounded, eventually, open_sockets

RESTARTS = 10
FAST: dict[str, Any] = {"initial_delay": 0.01, "max_delay": 0.04, "timeout": 2.0}


class Restartable:
    """The supervisor of tests/restartable_server.py, driven over its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port

    async def command(self, command: str, answer: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        line = (await bounded(self.proc.stdout.readline(), 20)).decode()
        assert line.startswith(answer), line

    async def start(self) -> None:
        await self.command("start", "started")

    async def kill(self) -> None:
        await self.command("kill", "killed")


@pytest.fixture
async def restartable() -> AsyncIterator[Restartable]:
    options = {"heartbeat_delay": 0.5, "disconnect_delay": 1.0}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.restartable_server",
        "conformance",
        json.dumps(options),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = (await bounded(proc.stdout.readline(), 20)).decode()
    assert line.startswith("port "), line
    try:
        yield Restartable(proc, int(line.split()[1]))
    finally:
        proc.stdin.close()
        await bounded(proc.wait(), 20)


def tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_survives_restarts(restartable: Restartable, transport: str) -> None:
    """Ten kills in a row: each time a new session, and no socket or task piles up."""
    url = f"http://127.0.0.1:{restartable.port}/echo"
    before = tasks()
    connected = asyncio.Event()
    retried = asyncio.Event()
    sessions: list[str | None] = []
    reconnected: list[SockJSClient] = []
    sockets: list[int] = []
    failures: list[str] = []

    def on_retry(error: ClientError, delay: float) -> None:
        assert 0 < delay <= FAST["max_delay"]
        retried.set()

    async def run(clients: Reconnecting) -> None:
        async for client in clients:
            async with client:
                try:
                    await client.send(f"hello {len(sessions)}")
                    assert await bounded(client.receive()) == f"hello {len(sessions)}"
                    sessions.append(client.session_id)
                    sockets.append(open_sockets(restartable.port))
                    if len(sessions) > RESTARTS:
                        break
                    connected.set()
                    async for _ in client:
                        pass
                except ClientError as exc:
                    failures.append(type(exc).__name__)

    await restartable.start()
    clients = reconnecting(
        url, transports=transport, on_retry=on_retry, on_reconnect=reconnected.append, **FAST
    )
    runner = asyncio.ensure_future(run(clients))
    try:
        for _ in range(RESTARTS):
            await bounded(connected.wait(), 10)
            connected.clear()
            retried.clear()
            await restartable.kill()
            # At least one attempt fails against the dead server...
            await bounded(retried.wait(), 10)
            await restartable.start()
        # ...and the loop comes back on the restarted one, every time.
        await bounded(runner, 10)
    finally:
        runner.cancel()
        await clients.aclose()
    assert len(sessions) == RESTARTS + 1
    if transport != "raw_websocket":
        assert len(set(sessions)) == RESTARTS + 1  # a new session each time
    assert len(reconnected) == RESTARTS
    assert clients.connections == RESTARTS + 1
    assert len(failures) == RESTARTS  # each loss reached the loop's body once
    # One receiving connection, and one for sending over HTTP: never more.
    assert max(sockets) <= 2, sockets
    await eventually(lambda: open_sockets(restartable.port) == 0)
    await eventually(lambda: tasks() <= before)
    await restartable.kill()


async def test_gives_up_after_max_attempts(restartable: Restartable) -> None:
    url = f"http://127.0.0.1:{restartable.port}/echo"
    delays: list[float] = []
    clients = reconnecting(url, max_attempts=3, on_retry=lambda e, d: delays.append(d), **FAST)
    with pytest.raises(ConnectError):
        await bounded(clients.__anext__())
    assert clients.failures == 3
    assert len(delays) == 2
    assert isinstance(clients.last_error, ConnectError)
    with pytest.raises(StopAsyncIteration):
        await clients.__anext__()


def test_delays_back_off_with_jitter_to_a_cap() -> None:
    clients = reconnecting(
        "http://127.0.0.1:1/e", initial_delay=1, max_delay=10, factor=2, jitter=0.5
    )
    for failures, full in [(0, 1), (1, 2), (2, 4), (3, 8), (4, 10), (100, 10), (10**6, 10)]:
        delays = [clients.delay(failures) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays), (failures, min(delays), max(delays))
        assert len(set(delays)) > 1  # jittered
    no_jitter = reconnecting("http://127.0.0.1:1/e", initial_delay=1, max_delay=10, jitter=0)
    assert [no_jitter.delay(n) for n in range(5)] == [1, 2, 4, 8, 10]


@pytest.mark.parametrize(
    "options",
    [
        {"session_id": "x"},
        {"initial_delay": 0},
        {"initial_delay": 2, "max_delay": 1},
        {"jitter": 1.5},
        {"max_attempts": 0},
        {"factor": 0.5},
        {"timeout": 0},
    ],
)
def test_bad_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        reconnecting("http://127.0.0.1:1/e", **options)


async def test_server_close_also_reconnects(aiohttp_server: Any) -> None:
    """A session the server closes is followed by a new one, as a lost one is."""
    opened: list[Session] = []

    async def close_the_first(session: Session) -> None:
        opened.append(session)
        if len(opened) == 1:
            await session.close(3000, "Go away!")
            return
        async for message in session:
            session.send(message)

    app = web.Application()
    testing.setup(app, "/e", close_the_first)
    server = await aiohttp_server(app)
    codes = []
    async with reconnecting(server.make_url("/e"), **FAST) as clients:
        async for client in clients:
            async with client:
                if codes:
                    await client.send("back")
                    assert await bounded(client.receive()) == "back"
                    break
                async for _ in client:
                    pass
                codes.append(client.close_code)
    assert codes == [3000]
    assert len(opened) == 2
    assert clients.connections == 2
