"""Two server apps and one real redis-server: broadcasts, rooms and presence cross.

Each app has its own :class:`RedisBroker`, so it behaves as one process of
a cluster would (the tests that run separate OS processes behind nginx
live beside these). Clients of the public client (through the pytest
plugin's ``sockjs_client``) talk to each app over real sockets.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

import aiohttp_sockjs
from aiohttp_sockjs.broker import Publisher, RedisBroker, SyncPublisher
from aiohttp_sockjs.client import SockJSClient, connect
from aiohttp_sockjs.pytest_plugin import SockJSClientFactory
from tests.wire import bounded, eventually

from .app import FAST_BROKER, PREFIX, endpoint, make_app
from .conftest import RedisServer, free_port

Client = TestClient[Any, Any]


class Node:
    """One server of the cluster: an app, its broker and a test client."""

    def __init__(self, client: Client, broker: RedisBroker, connect: SockJSClientFactory) -> None:
        self.client = client
        self.broker = broker
        self._connect = connect

    @property
    def app(self) -> web.Application:
        app = self.client.app
        assert app is not None
        return app

    def endpoint(self, prefix: str = PREFIX) -> aiohttp_sockjs.Endpoint:
        return endpoint(self.app, prefix)

    async def open(self, transport: str, prefix: str = PREFIX) -> SockJSClient:
        """A SockJS session of this server over ``transport``."""
        return await self._connect(self.client.server, prefix, transport=transport)


NodeFactory = Callable[..., Awaitable[Node]]


@pytest.fixture
def node(
    redis_server: RedisServer, aiohttp_client: Any, sockjs_client: SockJSClientFactory
) -> NodeFactory:
    """``await node()`` starts one more server sharing the test's Redis."""

    async def go(*prefixes: str, **options: Any) -> Node:
        broker = RedisBroker(redis_server.url, **{**FAST_BROKER, **options})
        client: Client = await aiohttp_client(make_app(broker, *prefixes))
        return Node(client, broker, sockjs_client)

    return go


async def messages(rx: SockJSClient, n: int) -> list[str]:
    """The next ``n`` messages, each waited for a bounded time."""
    return [await bounded(rx.receive()) for _ in range(n)]


async def command(rx: SockJSClient, text: str, answer: str | None = None) -> None:
    """Send a command and, if given, wait for its answer."""
    await rx.send(text)
    if answer is not None:
        assert await messages(rx, 1) == [answer]


TRANSPORTS = ("websocket", "xhr_streaming", "xhr")


async def test_broadcast_to_everyone_crosses_processes_in_order(node: NodeFactory) -> None:
    a, b = await node(), await node()
    receivers = [await n.open(t) for n in (a, b) for t in TRANSPORTS]
    sent = [f"m{i}" for i in range(50)]
    for text in sent:
        a.endpoint().broadcast(text)
    for rx in receivers:
        assert await messages(rx, len(sent)) == sent, rx.transport
    # A session's own broadcast, from the other side.
    await receivers[3].send("all from b")
    for rx in receivers:
        assert await messages(rx, 1) == ["from b"]
    for rx in receivers:
        await rx.close()


async def test_broadcast_many_crosses_processes_in_order(node: NodeFactory) -> None:
    """A batch reaches the other process's sessions whole and in order,
    between the broadcasts made before and after it."""
    a, b = await node(), await node()
    receivers = [await n.open(t) for n in (a, b) for t in TRANSPORTS]
    a.endpoint().broadcast("before")
    a.endpoint().broadcast_many([f"m{i}" for i in range(20)])
    a.endpoint().broadcast("after")
    expected = ["before", *(f"m{i}" for i in range(20)), "after"]
    for rx in receivers:
        assert await messages(rx, len(expected)) == expected, rx.transport
    for rx in receivers:
        await rx.close()


async def test_rooms_cross_processes_each_session_once(node: NodeFactory) -> None:
    a, b = await node(), await node()
    red = await a.open("websocket")
    blue = await b.open("websocket")
    both = await b.open("xhr_streaming")
    polling = await a.open("xhr")
    nowhere = await b.open("xhr")
    await command(red, "join red", "joined red")
    await command(blue, "join blue", "joined blue")
    await command(both, "join red", "joined red")
    await command(both, "join blue", "joined blue")
    await command(polling, "join blue", "joined blue")

    # Order holds per publishing process, so each phase has one publisher
    # and ends with a message to everyone: whoever got nothing else in the
    # phase gets only that.
    a.endpoint().broadcast("to blue", room="blue")
    await command(red, "to red,blue from red", "from red")  # published by a
    a.endpoint().broadcast("end a")
    assert await messages(red, 1) == ["end a"]
    for rx in (blue, both, polling):
        assert await messages(rx, 3) == ["to blue", "from red", "end a"]
    assert await messages(nowhere, 1) == ["end a"]

    b.endpoint().broadcast("to both", room=["red", "blue", "red"])
    b.endpoint().broadcast("end b")
    for rx in (red, blue, both, polling):
        assert await messages(rx, 2) == ["to both", "end b"]
    assert await messages(nowhere, 1) == ["end b"]
    for rx in (red, blue, both, polling, nowhere):
        await rx.close()


async def test_presence_agrees_across_processes(
    node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = await node(), await node()
    sessions = []
    for n, room in ((a, "x"), (a, None), (b, "x"), (b, "x"), (b, "y")):
        rx = await n.open("websocket")
        if room is not None:
            await command(rx, "join " + room, "joined " + room)
        sessions.append(rx)
    want = aiohttp_sockjs.Presence(
        5, {"x": 3, "y": 1}, {a.broker.process_id: 2, b.broker.process_id: 3}
    )
    seen: list[aiohttp_sockjs.Presence] = []

    async def agree() -> bool:
        seen[:] = [await a.endpoint().presence(), await b.endpoint().presence()]
        async with Publisher(redis_server.url) as outside:
            seen.append(await outside.presence(PREFIX))
        return all(p == want for p in seen)

    await eventually_async(agree)
    assert await a.broker.processes() == {a.broker.process_id, b.broker.process_id}

    await sessions[4].close()  # b's member of "y"
    want = aiohttp_sockjs.Presence(4, {"x": 3}, {a.broker.process_id: 2, b.broker.process_id: 2})
    await eventually_async(agree)


async def eventually_async(check: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> None:
    """Wait until the async ``check()`` holds, in small steps, for at most ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"condition never held: {check}")
        await asyncio.sleep(0.02)


async def test_redis_outage_loses_nothing(
    node: NodeFactory, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis down for 3 s while one process broadcasts: local sessions keep
    receiving, the other process gets every message in order once Redis is back."""
    caplog.set_level(logging.INFO, "aiohttp_sockjs.broker")
    a, b = await node(), await node()
    local = await a.open("websocket")
    remote = [await b.open("websocket"), await b.open("xhr_streaming")]
    received: dict[SockJSClient, list[str]] = {rx: [] for rx in (local, *remote)}

    async def collect(rx: SockJSClient) -> None:
        # Quiet through the outage: the client waits (heartbeats are 10 s
        # apart, its heartbeat_timeout is 60 s) and the stream stays open.
        async for message in rx:
            received[rx].append(message)

    collectors = [asyncio.ensure_future(collect(rx)) for rx in received]
    sent: list[str] = []
    stop = asyncio.Event()

    async def publish() -> None:
        while not stop.is_set():
            sent.append(f"n{len(sent)}")
            a.endpoint().broadcast(sent[-1])
            await asyncio.sleep(0.01)

    publisher = asyncio.ensure_future(publish())
    try:
        await eventually(lambda: len(received[remote[0]]) >= 10)
        redis_server.stop()
        at_stop = len(received[local])
        await asyncio.sleep(3)  # the outage under test, not a wait for a condition
        during = len(received[local]) - at_stop
        redis_server.start()
        await eventually(lambda: len(received[remote[1]]) > len(sent) - 5, timeout=10)
        stop.set()
        await publisher
        for rx, got in received.items():
            await eventually(lambda got=got: len(got) >= len(sent), timeout=10)
            assert got == sent, (rx.transport, rx.exception)
    finally:
        stop.set()
        for task in (publisher, *collectors):
            task.cancel()
    assert during > 100  # about 300 broadcasts were made in the 3 s
    assert a.broker.connected and b.broker.connected
    assert a.broker.dropped == 0
    outages = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(outages) == 2, [r.getMessage() for r in outages]  # one per process
    assert len({r.levelno for r in outages}) == 1
    for rx in received:
        await rx.close()


async def test_a_killed_process_drops_out_of_presence(
    node: NodeFactory, redis_server: RedisServer
) -> None:
    """A server process killed with SIGKILL leaves presence within process_ttl."""
    watcher = await node()
    port = free_port()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.cluster.app",
        redis_server.url,
        str(port),
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert child.stdout is not None
        line = (await asyncio.wait_for(child.stdout.readline(), 20)).decode()
        assert line.startswith("ready "), line
        child_id = line.split()[1]
        sockets: list[SockJSClient] = []
        try:
            for _ in range(3):
                rx = await connect(f"http://127.0.0.1:{port}{PREFIX}", transports="websocket")
                sockets.append(rx)
                await rx.send("join lobby")
                assert await bounded(rx.receive(), 5) == "joined lobby"
            mine = await watcher.open("websocket")
            await command(mine, "join lobby", "joined lobby")

            async def counted() -> bool:
                p = await watcher.endpoint().presence()
                return (
                    p.sessions == 4 and p.rooms == {"lobby": 4} and p.processes.get(child_id) == 3
                )

            await eventually_async(counted)
            child.kill()
            await child.wait()
            killed = asyncio.get_running_loop().time()

            async def forgotten() -> bool:
                p = await watcher.endpoint().presence()
                return p == aiohttp_sockjs.Presence(1, {"lobby": 1}, {watcher.broker.process_id: 1})

            # process_ttl is 0.6 s; the margin is for a loaded machine.
            await eventually_async(forgotten, timeout=FAST_BROKER["process_ttl"] + 2)
            gone_after = asyncio.get_running_loop().time() - killed
            assert child_id not in await watcher.broker.processes()
            print(f"presence forgot the killed process after {gone_after:.2f} s")
            await mine.close()
        finally:
            for rx in sockets:
                await rx.close()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def test_external_publishers_reach_a_room_on_every_process(
    node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = await node(), await node()
    alice_a = await a.open("websocket")
    alice_b = await b.open("xhr_streaming")
    bob = await b.open("websocket")
    for rx in (alice_a, alice_b):
        await command(rx, "join user:alice", "joined user:alice")
    await command(bob, "join user:bob", "joined user:bob")

    async with Publisher(redis_server.url) as publisher:
        await publisher.publish(PREFIX, "async for alice", room="user:alice")
        await publisher.publish("chat/", "async for everyone")

    def sync_publish() -> None:
        with SyncPublisher(redis_server.url) as publisher:
            publisher.publish(PREFIX, "sync for alice", room=["user:alice"])
            publisher.publish(PREFIX, "sync for everyone")

    await asyncio.to_thread(sync_publish)
    for rx in (alice_a, alice_b):
        assert await messages(rx, 4) == [
            "async for alice",
            "async for everyone",
            "sync for alice",
            "sync for everyone",
        ]
    assert await messages(bob, 2) == ["async for everyone", "sync for everyone"]

    def sync_presence() -> aiohttp_sockjs.Presence:
        with SyncPublisher(redis_server.url) as publisher:
            return publisher.presence(PREFIX)

    async def counted() -> bool:
        presence = await asyncio.to_thread(sync_presence)
        return presence.sessions == 3 and presence.rooms == {"user:alice": 2, "user:bob": 1}

    await eventually_async(counted)
    for rx in (alice_a, alice_b, bob):
        await rx.close()


async def test_several_endpoints_share_one_connection_pair(
    node: NodeFactory, redis_server: RedisServer
) -> None:
    a = await node("/one", "/two", "/three")
    b = await node("/one", "/two", "/three")
    receivers = {p: await b.open("websocket", p) for p in ("/one", "/two", "/three")}
    for prefix in receivers:
        a.endpoint(prefix).broadcast("to " + prefix)
    for prefix, rx in receivers.items():
        assert await messages(rx, 1) == ["to " + prefix]
    with redis.Redis.from_url(redis_server.url) as client:
        listed = client.client_list()
    assert len(listed) <= 2 * 2 + 1, listed  # a pair per process, and this client
    for rx in receivers.values():
        await rx.close()


async def test_an_unreachable_redis_fails_app_start() -> None:
    port = free_port()  # nothing listens there
    broker = RedisBroker(f"redis://127.0.0.1:{port}/0", connect_timeout=1.0)
    runner = web.AppRunner(make_app(broker))
    try:
        with pytest.raises(
            aiohttp_sockjs.BrokerError, match=f"cannot reach Redis at 127.0.0.1:{port}"
        ):
            await runner.setup()
    finally:
        await runner.cleanup()


def test_bad_broker_arguments_fail_at_once() -> None:
    with pytest.raises(ValueError, match="not a Redis URL"):
        RedisBroker("http://example.com/")
    with pytest.raises(ValueError, match="decode_responses=False"):
        RedisBroker(aioredis.Redis(decode_responses=True))
    with pytest.raises(TypeError):
        RedisBroker(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="heartbeat_interval"):
        RedisBroker("redis://127.0.0.1/0", heartbeat_interval=5, process_ttl=5)


async def test_garbage_in_the_stream_is_dropped_with_one_line_each(
    node: NodeFactory, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "aiohttp_sockjs.broker")
    a = await node(max_message_size=1000)
    rx = await a.open("websocket")
    key = f"sockjs:stream:{PREFIX}"
    garbage: list[dict[str, bytes]] = [
        {"x": b"y"},  # not ours at all
        {"o": b"p", "s": b"1"},  # no message
        {"o": b"p", "s": b"two", "m": b"hi"},  # bad sequence number
        {"o": b"p", "s": b"3", "m": b"\xff\xfe"},  # not UTF-8
        {"o": b"p", "s": b"4", "m": b"x" * 1001},  # over max_message_size
        {"o": b"p", "s": b"5", "m": b"hi", "r": b"[not json"},
        {"o": b"p", "s": b"6", "m": b"hi", "r": b'{"a": 1}'},
        {"o": b"p", "s": b"7", "m": b"hi", "r": b"[1, 2]"},
    ]
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        for fields in garbage:
            await client.xadd(key, fields)  # type: ignore[arg-type]
        async with Publisher(client) as publisher:
            await publisher.publish(PREFIX, "still fine")
            assert await messages(rx, 1) == ["still fine"]
            await publisher.publish(PREFIX, "and again")
            assert await messages(rx, 1) == ["and again"]
        # Garbage in the presence keys is dropped too.
        await client.set("sockjs:process:junk", b"\x00not json", px=5000)
        await client.sadd("sockjs:processes", "junk")
        assert (await a.endpoint().presence()).sessions == 1
    finally:
        await client.aclose()
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == len(garbage) + 1, [r.getMessage() for r in dropped]
    assert all(r.exc_info is None for r in dropped)
    await rx.close()


async def test_a_broadcast_too_large_for_redis_raises(node: NodeFactory) -> None:
    a = await node(max_message_size=100)
    with pytest.raises(ValueError, match="max_message_size"):
        a.endpoint().broadcast("x" * 101)
    a.endpoint().broadcast("x" * 100)
    # A batch is checked whole before any of it is published or delivered.
    rx = await a.open("websocket")
    with pytest.raises(ValueError, match="max_message_size"):
        a.endpoint().broadcast_many(["first", "x" * 101])
    a.endpoint().broadcast("next")
    assert await messages(rx, 1) == ["next"]
    await rx.close()


async def test_the_outbox_is_bounded_while_redis_is_down(
    node: NodeFactory, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Past max_outbox_size the oldest broadcasts are dropped and counted; the rest arrive."""
    caplog.set_level(logging.INFO, "aiohttp_sockjs.broker")
    cost = 3 + 64  # a 3-character message and the per-entry overhead
    a, b = await node(max_outbox_size=10 * cost), await node()
    local, remote = await a.open("websocket"), await b.open("websocket")
    a.endpoint().broadcast("m00")
    assert await messages(remote, 1) == ["m00"]
    redis_server.stop()
    await eventually(lambda: not a.broker.connected)
    sent = [f"m{i:02}" for i in range(1, 51)]
    for text in sent:
        a.endpoint().broadcast(text)
    assert await messages(local, 51) == ["m00", *sent]
    assert a.broker.dropped == 40
    redis_server.start()
    assert await messages(remote, 10) == sent[-10:]
    await eventually(lambda: a.broker.connected)
    lines = [r.getMessage() for r in caplog.records]
    assert any("40 broadcasts were dropped" in line for line in lines), lines
    assert any(f"40 broadcasts from {a.broker.process_id}" in line for line in lines), lines
    for rx in (local, remote):
        await rx.close()


async def test_broadcasts_made_while_shutting_down_still_cross(
    node: NodeFactory, redis_server: RedisServer
) -> None:
    """A handler that says goodbye as the app stops reaches the other processes."""

    async def farewell(session: aiohttp_sockjs.Session) -> None:
        async for _ in session:
            pass
        session.endpoint.broadcast("bye")

    b = await node()
    listener = await b.open("websocket")
    app = web.Application()
    aiohttp_sockjs.setup(app, PREFIX, farewell, broker=RedisBroker(redis_server.url, **FAST_BROKER))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        endpoint_a = endpoint(app)
        port = runner.addresses[0][1]
        async with connect(f"http://127.0.0.1:{port}{PREFIX}", transports="websocket"):
            await eventually(lambda: len(endpoint_a) == 1)
            await runner.cleanup()
    finally:
        await runner.cleanup()
    assert await messages(listener, 1) == ["bye"]
    await listener.close()
