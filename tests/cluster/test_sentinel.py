"""The broker under Redis Sentinel: the master is killed while a process broadcasts.

A real master, replica and three sentinels (tests/cluster/conftest.py);
two server apps, each with its own broker given a :class:`RedisSentinel`.
The guarantee under test (docs/explanation/guarantees.rst): local delivery
never stops; the other process gets the broadcasts in order and each at
most once; the only ones it can miss were taken by the old master before it
died and not yet copied to the replica, and the gap is logged; everything
broadcast after the kill arrives once the replica is promoted.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import pytest
import redis

from aiohttp_sockjs.broker import Publisher, RedisBroker, RedisSentinel, SyncPublisher
from aiohttp_sockjs.client import SockJSClient
from aiohttp_sockjs.pytest_plugin import SockJSClientFactory
from tests.wire import bounded, eventually

from .app import FAST_BROKER, PREFIX, endpoint, make_app
from .conftest import SENTINEL_MASTER, SentinelGroup

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("replica_lags", [False, True], ids=["in-sync", "lossy-link"])
async def test_a_failover_keeps_order_and_loses_only_unreplicated_writes(
    replica_lags: bool,
    sentinel_group: SentinelGroup,
    aiohttp_client: Any,
    sockjs_client: SockJSClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "aiohttp_sockjs.broker")
    config = RedisSentinel(SENTINEL_MASTER, sentinel_group.addresses)
    brokers = [RedisBroker(config, **FAST_BROKER) for _ in range(2)]
    a, b = [await aiohttp_client(make_app(broker)) for broker in brokers]
    local = await sockjs_client(a.server, PREFIX, transport="websocket")
    remote = [
        await sockjs_client(b.server, PREFIX, transport=t) for t in ("websocket", "xhr_streaming")
    ]
    arrivals: dict[SockJSClient, list[tuple[int, float]]] = {rx: [] for rx in (local, *remote)}

    async def collect(rx: SockJSClient) -> None:
        async for message in rx:
            arrivals[rx].append((int(message[1:]), time.monotonic()))

    collectors = [asyncio.ensure_future(collect(rx)) for rx in arrivals]
    sent = 0
    stop = asyncio.Event()

    async def publish() -> None:
        # About 100 broadcasts a second, from one process.
        nonlocal sent
        while not stop.is_set():
            endpoint(a.app).broadcast(f"n{sent}")
            sent += 1
            await asyncio.sleep(0.01)

    publisher = asyncio.ensure_future(publish())
    old_master = sentinel_group.master.address()
    try:
        await eventually(lambda: len(arrivals[remote[1]]) >= 50, timeout=10)
        sent_at_pause = sent
        if replica_lags:
            # What the master takes from now on never reaches the replica:
            # the worst case of asynchronous replication, made certain.
            assert sentinel_group.link is not None
            sentinel_group.link.drop()
            await eventually(lambda: sent >= sent_at_pause + 30)
        sentinel_group.master.stop()  # SIGKILL: no goodbye to anyone
        killed_at, sent_at_kill = time.monotonic(), sent
        # Recovered: a broadcast made after the kill reached the other process.
        await eventually(lambda: any(n >= sent_at_kill for n, _ in arrivals[remote[0]]), timeout=30)
        assert sentinel_group.master_address() == sentinel_group.replica.address()
        first_after = next(t for n, t in arrivals[remote[0]] if n >= sent_at_kill)
        await asyncio.sleep(0.5)  # a steady rate after the failover, too
        stop.set()
        await publisher
        for got in arrivals.values():
            await eventually(lambda got=got: bool(got) and got[-1][0] == sent - 1, timeout=10)
    finally:
        stop.set()
        for task in (publisher, *collectors):
            task.cancel()

    # The new master's stream: what a process that was not reading at the
    # time (paused, cut off) could still get. a's entry n carries seq n + 1.
    with redis.Redis(*sentinel_group.replica.address()) as new_master:
        entries = new_master.xrange(f"sockjs:stream:{PREFIX}")
    kept = {
        int(fields[b"s"]) - 1
        for _, fields in entries
        if fields[b"o"] == brokers[0].process_id.encode()
    }
    stream_missing = sorted(set(range(sent)) - kept)
    if replica_lags:
        assert stream_missing, "the dropped writes should be gone from the new master"
        assert sent_at_pause - 1 <= stream_missing[0] and stream_missing[-1] < sent_at_kill
    else:
        assert all(n < sent_at_kill for n in stream_missing), stream_missing
    assert [n for n, _ in arrivals[local]] == list(range(sent))
    lost_lines = [r.getMessage() for r in caplog.records if "were lost" in r.getMessage()]
    reported = [int(re.match(r"SockJS broker: (\d+)", line)[1]) for line in lost_lines]  # type: ignore[index]
    for rx in remote:
        numbers = [n for n, _ in arrivals[rx]]
        assert numbers == sorted(set(numbers)), f"{rx.transport}: out of order or twice"
        missing = sorted(set(range(sent)) - set(numbers))
        # Only writes the new master lacks can be missing (those the old one
        # took but did not pass on, and this process had not read yet)...
        assert set(missing) <= set(stream_missing), (rx.transport, missing, stream_missing)
        # ... and they are one gap, logged by the receiving process.
        if missing:
            assert missing == list(range(missing[0], missing[-1] + 1)), missing
            assert len(missing) in reported, (missing, lost_lines)
        print(
            f"{'lossy link' if replica_lags else 'in sync'}, {rx.transport}: {sent} sent "
            f"at ~100/s, {len(numbers)} delivered, {len(missing)} lost, 0 twice; "
            f"{len(stream_missing)} missing from the new master's stream "
            f"({sent_at_kill - sent_at_pause} sent since the link dropped); first post-kill "
            f"delivery {first_after - killed_at:.2f} s after the kill"
        )
    assert brokers[0].dropped == 0
    for rx in arrivals:
        await rx.close()
    assert old_master != sentinel_group.master_address()


async def test_publishers_follow_the_sentinels(
    sentinel_group: SentinelGroup, aiohttp_client: Any, sockjs_client: SockJSClientFactory
) -> None:
    config = RedisSentinel(SENTINEL_MASTER, sentinel_group.addresses)
    server = await aiohttp_client(make_app(RedisBroker(config, **FAST_BROKER)))
    rx = await sockjs_client(server.server, PREFIX, transport="websocket")
    await rx.send("join ops")
    assert await bounded(rx.receive()) == "joined ops"
    async with Publisher(config) as publisher:
        await publisher.publish(PREFIX, "async", room="ops")
        rooms: dict[str, int] = {}
        for _ in range(100):  # presence follows the server's heartbeat (0.1 s)
            rooms = (await publisher.presence(PREFIX)).rooms
            if rooms:
                break
            await asyncio.sleep(0.05)
        assert rooms == {"ops": 1}

    def sync() -> None:
        with SyncPublisher(config) as publisher:
            publisher.publish(PREFIX, "sync")

    await asyncio.to_thread(sync)
    assert [await bounded(rx.receive()) for _ in range(2)] == ["async", "sync"]
    await rx.close()


def test_a_sentinel_configuration_is_checked_at_once() -> None:
    with pytest.raises(ValueError, match="master's name"):
        RedisSentinel("", [("127.0.0.1", 26379)])
    with pytest.raises(ValueError, match="at least one sentinel"):
        RedisSentinel("sockjs", [])
    config = RedisSentinel("sockjs", [("10.0.0.1", "26379")])  # type: ignore[list-item]
    assert config.sentinels == (("10.0.0.1", 26379),)
    assert "master 'sockjs' of sentinels 10.0.0.1:26379" in repr(RedisBroker(config))
    secret = RedisSentinel("sockjs", [("h", 1)], password="s3cret", sentinel_password="s3cret")
    assert "s3cret" not in repr(secret) and "s3cret" not in repr(RedisBroker(secret))
