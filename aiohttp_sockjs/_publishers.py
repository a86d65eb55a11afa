"""Broadcasting to a running cluster from a process with no sessions.

:class:`Publisher` (asyncio) and :class:`SyncPublisher` (no event loop)
append an entry to an endpoint's stream, as a :class:`RedisBroker` of the
cluster does, and read its presence. Used by :mod:`aiohttp_sockjs.broker`,
which exports them.
"""

from __future__ import annotations

from typing import Any

# Imported by broker.py, once it has checked that redis-py is installed.
import redis

from ._broker_wire import (
    DEFAULT_NAMESPACE,
    MESSAGE,
    as_text,
    encode_entry,
    merge_presence,
    new_process_id,
    normalise_prefix,
    process_key,
    processes_key,
    stream_key,
)
from ._redis_links import (
    AsyncClient,
    RedisClient,
    SyncRedisClient,
    client_from,
    close_link,
    read_presence,
    sync_client_from,
)
from .rooms import Presence, RoomSpec, room_names


class Publisher:
    """Broadcast to a running cluster from a process with no sessions (asyncio).

    ::

        async with Publisher("redis://localhost:6379/0") as publisher:
            await publisher.publish("/chat", "the build is green", room="team")

    Give the same ``namespace`` and ``stream_maxlen`` as the servers' broker.
    Each publish is one ``XADD``; errors (Redis unreachable) are raised to
    the caller, nothing is queued.
    """

    def __init__(
        self,
        redis: RedisClient,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        stream_maxlen: int = 10_000,
        max_message_size: int = 1 << 20,
        connect_timeout: float = 5.0,
    ) -> None:
        self._link = client_from(redis, connect_timeout)
        self._client: AsyncClient = self._link.client
        self.namespace = namespace
        self.stream_maxlen = int(stream_maxlen)
        self.max_message_size = int(max_message_size)
        #: The publisher id written on each entry.
        self.process_id = "publisher:" + new_process_id()
        self._seqs: dict[str, int] = {}

    async def publish(self, prefix: str, message: str, *, room: RoomSpec | None = None) -> str:
        """Broadcast ``message`` to the endpoint at ``prefix`` (or to ``room``); the entry id."""
        key, fields = _prepare(self, prefix, message, room)
        entry_id = await self._client.xadd(
            key,
            fields,  # type: ignore[arg-type]
            maxlen=self.stream_maxlen,
            approximate=True,
        )
        return as_text(entry_id)

    async def presence(self, prefix: str) -> Presence:
        """Open sessions of the endpoint at ``prefix``, across the cluster."""
        return await read_presence(self._client, self.namespace, normalise_prefix(prefix), None)

    async def aclose(self) -> None:
        """Close the Redis client, if this publisher made it."""
        await close_link(self._link)

    async def __aenter__(self) -> Publisher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class SyncPublisher:
    """:class:`Publisher` for code without an event loop (a cron script, a job worker).

    ::

        with SyncPublisher("redis://localhost:6379/0") as publisher:
            publisher.publish("/chat", "nightly report ready", room="user:alice")

    ``redis`` is a URL, a :class:`RedisSentinel`, or a (sync) ``redis.Redis``
    or ``redis.RedisCluster`` client.
    """

    def __init__(
        self,
        redis_: SyncRedisClient,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        stream_maxlen: int = 10_000,
        max_message_size: int = 1 << 20,
        connect_timeout: float = 5.0,
    ) -> None:
        self._link = sync_client_from(redis_, connect_timeout)
        self._client: redis.Redis | redis.RedisCluster = self._link.client
        self.namespace = namespace
        self.stream_maxlen = int(stream_maxlen)
        self.max_message_size = int(max_message_size)
        #: The publisher id written on each entry.
        self.process_id = "publisher:" + new_process_id()
        self._seqs: dict[str, int] = {}

    def publish(self, prefix: str, message: str, *, room: RoomSpec | None = None) -> str:
        """Broadcast ``message`` to the endpoint at ``prefix`` (or to ``room``); the entry id."""
        key, fields = _prepare(self, prefix, message, room)
        entry_id = self._client.xadd(
            key,
            fields,  # type: ignore[arg-type]
            maxlen=self.stream_maxlen,
            approximate=True,
        )
        return as_text(entry_id)

    def presence(self, prefix: str) -> Presence:
        """Open sessions of the endpoint at ``prefix``, across the cluster."""
        prefix = normalise_prefix(prefix)
        members: Any = self._client.smembers(processes_key(self.namespace))
        ids = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        keys = [process_key(self.namespace, i) for i in ids]
        values: Any = []
        if keys and isinstance(self._client, redis.RedisCluster):
            values = self._client.mget_nonatomic(keys)
        elif keys:
            values = self._client.mget(keys)
        return merge_presence(prefix, zip(ids, values, strict=True), None)

    def close(self) -> None:
        """Close the Redis client, if this publisher made it."""
        for client in self._link.closers:
            client.close()

    def __enter__(self) -> SyncPublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _prepare(
    publisher: Publisher | SyncPublisher, prefix: str, message: str, room: RoomSpec | None
) -> tuple[str, dict[bytes, bytes]]:
    if not isinstance(message, str):
        raise TypeError(f"SockJS messages are str, not {type(message).__name__}")
    key = stream_key(publisher.namespace, normalise_prefix(prefix))
    rooms = None if room is None else room_names(room)
    seq = publisher._seqs.get(key, 0) + 1
    fields = encode_entry(publisher.process_id, seq, rooms, message)
    if len(fields[MESSAGE]) > publisher.max_message_size:
        raise ValueError(
            f"message of {len(fields[MESSAGE])} bytes is over max_message_size "
            f"({publisher.max_message_size})"
        )
    publisher._seqs[key] = seq
    return key, fields
