"""The broker on a Redis Cluster: three real masters, created by the test.

The single-Redis tests of order and rooms (test_broker.py) run here again,
with each app's broker given a ``redis.asyncio.RedisCluster``: redis-py
refuses, and the server answers CROSSSLOT to, any command whose keys are in
two slots, so passing them shows that no command of the broker spans slots.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

import aiohttp_sockjs
from aiohttp_sockjs.broker import Publisher, RedisBroker, SyncPublisher
from aiohttp_sockjs.pytest_plugin import SockJSClientFactory

from .app import FAST_BROKER, PREFIX, make_app
from .conftest import RedisClusterNodes

# The single-Redis tests, collected again here with this module's ``node``.
from .test_broker import (  # noqa: F401
    Node,
    NodeFactory,
    command,
    eventually_async,
    messages,
    test_broadcast_many_crosses_processes_in_order,
    test_broadcast_to_everyone_crosses_processes_in_order,
    test_rooms_cross_processes_each_session_once,
)

pytestmark = pytest.mark.cluster


@pytest.fixture
async def cluster_clients(redis_cluster: RedisClusterNodes) -> AsyncIterator[list[Any]]:
    """Cluster clients made for the test (the broker closes none it did not make)."""
    made: list[aioredis.RedisCluster] = []
    yield made
    for client in made:
        await client.aclose()


@pytest.fixture
def node(
    redis_cluster: RedisClusterNodes,
    cluster_clients: list[aioredis.RedisCluster],
    aiohttp_client: Any,
    sockjs_client: SockJSClientFactory,
) -> NodeFactory:
    """``await node()`` starts one more server whose broker talks to the cluster."""

    async def go(*prefixes: str, **options: Any) -> Node:
        host, port = redis_cluster.addresses[0]
        cluster_clients.append(aioredis.RedisCluster(host=host, port=port))
        broker = RedisBroker(cluster_clients[-1], **{**FAST_BROKER, **options})
        client = await aiohttp_client(make_app(broker, *prefixes))
        return Node(client, broker, sockjs_client)

    return go


def owner(nodes: RedisClusterNodes, key: str) -> int:
    """The port of the master that holds ``key``."""
    host, port = nodes.addresses[0]
    with redis.RedisCluster(host=host, port=port) as client:
        return int(client.get_node_from_key(key).port)


async def test_endpoints_spread_over_masters_and_each_keeps_its_order(
    node: NodeFactory, redis_cluster: RedisClusterNodes
) -> None:
    """Each endpoint's stream is one key on its own slot: endpoints land on
    different masters, and each is read by its own XREAD, in order."""
    prefixes = ("/one", "/two", "/three", "/four", "/five", "/six")
    owners = {owner(redis_cluster, f"sockjs:stream:{p}") for p in prefixes}
    assert len(owners) >= 2, owners  # a fact of these key names, checked
    a, b = await node(*prefixes), await node(*prefixes)
    receivers = {p: await b.open("websocket", p) for p in prefixes}
    for i in range(20):
        for p in prefixes:
            a.endpoint(p).broadcast(f"{p} {i}")
    for p, rx in receivers.items():
        assert await messages(rx, 20) == [f"{p} {i}" for i in range(20)]
    for rx in receivers.values():
        await rx.close()


async def test_presence_and_publishers_on_a_cluster(
    node: NodeFactory, redis_cluster: RedisClusterNodes
) -> None:
    a, b = await node(), await node()
    sessions = []
    for n, room in ((a, "x"), (b, "x"), (b, "y")):
        rx = await n.open("websocket")
        await command(rx, "join " + room, "joined " + room)
        sessions.append(rx)
    want = aiohttp_sockjs.Presence(
        3, {"x": 2, "y": 1}, {a.broker.process_id: 1, b.broker.process_id: 2}
    )
    host, port = redis_cluster.addresses[1]
    outside = Publisher(aioredis.RedisCluster(host=host, port=port))
    sync_client = redis.RedisCluster(host=host, port=port)
    try:

        async def agree() -> bool:
            seen = [
                await a.endpoint().presence(),
                await b.endpoint().presence(),
                await outside.presence(PREFIX),
                await asyncio.to_thread(SyncPublisher(sync_client).presence, PREFIX),
            ]
            return all(p == want for p in seen)

        await eventually_async(agree)
        await outside.publish(PREFIX, "to x", room="x")
        await asyncio.to_thread(SyncPublisher(sync_client).publish, PREFIX, "to all")
        assert await messages(sessions[0], 2) == ["to x", "to all"]
        assert await messages(sessions[1], 2) == ["to x", "to all"]
        assert await messages(sessions[2], 1) == ["to all"]
    finally:
        await outside._client.aclose()
        sync_client.close()
    for rx in sessions:
        await rx.close()
