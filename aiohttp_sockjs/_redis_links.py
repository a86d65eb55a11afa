"""The broker's connections to Redis: a URL, Sentinel, or a client given.

:class:`RedisSentinel` configures Redis behind Sentinel; :func:`client_from`
and :func:`sync_client_from` make the redis-py client a broker or a
publisher uses, and what closing it takes (:class:`Link`); the helpers read
presence in one slot at a time on a Redis Cluster. Used by
:mod:`aiohttp_sockjs.broker`, which exports :class:`RedisSentinel`, and by
its publishers (``_publishers.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

try:
    import redis
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.asyncio.sentinel import Sentinel as AsyncSentinel
    from redis.asyncio.sentinel import SentinelConnectionPool
    from redis.backoff import NoBackoff
    from redis.sentinel import Sentinel as SyncSentinel
except ImportError as exc:  # pragma: no cover - depends on the install
    from ._extras import missing

    raise missing("aiohttp_sockjs.broker", "redis-py", "redis") from exc

from ._broker_wire import merge_presence, process_key, processes_key
from .rooms import Presence

if TYPE_CHECKING:
    from .hub import BrokerEndpoint as Endpoint


@dataclass(frozen=True)
class RedisSentinel:
    """Redis behind Sentinel: the master's name and where its sentinels listen.

    Give it instead of a URL to :class:`RedisBroker`, :class:`Publisher` or
    :class:`SyncPublisher`::

        RedisBroker(RedisSentinel("sockjs", [("10.0.0.1", 26379), ("10.0.0.2", 26379)]))

    Every connection asks the sentinels where the master is (redis-py's
    ``Sentinel.master_for``), so after a failover the broker reconnects to
    the promoted replica. ``username`` and ``password`` are the master's,
    ``sentinel_username`` and ``sentinel_password`` the sentinels' own (if
    they require one); ``ssl`` applies to the master's connections.
    """

    master: str
    sentinels: Sequence[tuple[str, int]]
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    ssl: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.master, str) or not self.master:
            raise ValueError("RedisSentinel needs the master's name")
        addresses = tuple((str(host), int(port)) for host, port in self.sentinels)
        if not addresses:
            raise ValueError("RedisSentinel needs at least one sentinel address")
        object.__setattr__(self, "sentinels", addresses)

    def __str__(self) -> str:
        where = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"master {self.master!r} of sentinels {where}"

    def _sentinel_kwargs(self, timeout: float) -> dict[str, Any]:
        # A socket timeout too: a sentinel that hangs must not hang the
        # search for the master (redis-py then asks the next one).
        kwargs: dict[str, Any] = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
        if self.sentinel_username is not None:
            kwargs["username"] = self.sentinel_username
        if self.sentinel_password is not None:
            kwargs["password"] = self.sentinel_password
        return kwargs

    def _master_kwargs(self, timeout: float) -> dict[str, Any]:
        return {
            "db": self.db,
            "username": self.username,
            "password": self.password,
            "ssl": self.ssl,
            "socket_connect_timeout": timeout,
        }


RedisClient = Union[str, RedisSentinel, aioredis.Redis, aioredis.RedisCluster]  # noqa: UP007 - a runtime alias on 3.10
AsyncClient = Union[aioredis.Redis, aioredis.RedisCluster]  # noqa: UP007
SyncRedisClient = Union[str, RedisSentinel, redis.Redis, redis.RedisCluster]  # noqa: UP007


@dataclass
class Link:
    """A redis-py client, how to close what we made of it, and where it points."""

    client: Any  # AsyncClient, or redis.Redis / redis.RedisCluster for SyncPublisher
    closers: list[Any]  # clients we made, closed in this order
    where: str
    cluster: bool


def client_from(source: RedisClient, connect_timeout: float) -> Link:
    """The asyncio client for ``source`` (a URL, a Sentinel configuration or a client)."""
    # The broker retries on its own; one quick retry covers a pooled
    # connection that went stale while Redis restarted or failed over.
    retry = Retry(NoBackoff(), 1)
    if isinstance(source, str):
        try:
            client = aioredis.Redis.from_url(
                source, socket_connect_timeout=connect_timeout, retry=retry
            )
        except ValueError as exc:
            raise ValueError(f"not a Redis URL: {exc}") from None
        return Link(client, [client], address(client.connection_pool.connection_kwargs), False)
    if isinstance(source, RedisSentinel):
        manager = AsyncSentinel(
            source.sentinels, sentinel_kwargs=source._sentinel_kwargs(connect_timeout)
        )
        client = manager.master_for(
            source.master, retry=retry, **source._master_kwargs(connect_timeout)
        )
        return Link(client, [client, *manager.sentinels], str(source), False)
    if isinstance(source, aioredis.Redis):
        kwargs = source.connection_pool.connection_kwargs
        check_decoding(kwargs)
        pool = source.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            return Link(source, [], f"master {pool.service_name!r} of its sentinels", False)
        return Link(source, [], address(kwargs), False)
    if isinstance(source, aioredis.RedisCluster):
        check_decoding(source.get_connection_kwargs())
        return Link(source, [], cluster_address(source.get_nodes()), True)
    raise TypeError(
        "need a Redis URL, a RedisSentinel, a redis.asyncio.Redis or a "
        f"redis.asyncio.RedisCluster, not {type(source).__name__}"
    )


def sync_client_from(source: SyncRedisClient, connect_timeout: float) -> Link:
    """:func:`client_from` for the synchronous redis-py clients."""
    if isinstance(source, str):
        try:
            client = redis.Redis.from_url(source, socket_connect_timeout=connect_timeout)
        except ValueError as exc:
            raise ValueError(f"not a Redis URL: {exc}") from None
        return Link(client, [client], address(client.connection_pool.connection_kwargs), False)
    if isinstance(source, RedisSentinel):
        manager = SyncSentinel(
            source.sentinels, sentinel_kwargs=source._sentinel_kwargs(connect_timeout)
        )
        client = manager.master_for(source.master, **source._master_kwargs(connect_timeout))
        return Link(client, [client, *manager.sentinels], str(source), False)
    if isinstance(source, redis.Redis):
        check_decoding(source.connection_pool.connection_kwargs)
        return Link(source, [], address(source.connection_pool.connection_kwargs), False)
    if isinstance(source, redis.RedisCluster):
        check_decoding(source.get_connection_kwargs())  # type: ignore[no-untyped-call]
        nodes = source.get_nodes()  # type: ignore[no-untyped-call]
        return Link(source, [], cluster_address(nodes), True)
    raise TypeError(
        "need a Redis URL, a RedisSentinel, a redis.Redis or a redis.RedisCluster, "
        f"not {type(source).__name__}"
    )


def check_decoding(kwargs: Mapping[str, Any]) -> None:
    """Refuse a client made with ``decode_responses``: the broker reads bytes."""
    if kwargs.get("decode_responses"):
        raise ValueError("the broker needs a Redis client with decode_responses=False")


def address(kwargs: Mapping[str, Any]) -> str:
    """Where a client's connections go, without its password."""
    where = kwargs.get("path") or f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
    return str(where)


def cluster_address(nodes: Iterable[Any]) -> str:
    """A Redis Cluster named by its first nodes, for log lines and errors."""
    names = sorted(f"{n.host}:{n.port}" for n in nodes)
    shown = ",".join(names[:3]) + (",..." if len(names) > 3 else "")
    return f"the cluster of {shown}" if names else "a Redis Cluster"


async def mget(client: AsyncClient, keys: list[str]) -> list[Any]:
    """MGET, one slot at a time on a cluster (no command spans two slots)."""
    if isinstance(client, aioredis.RedisCluster):
        return list(await client.mget_nonatomic(keys))
    return list(await client.mget(keys))


async def close_link(link: Link) -> None:
    """Close the clients the link's maker made for it (not a client it was given)."""
    for client in link.closers:
        await client.aclose()


async def read_presence(
    client: AsyncClient, namespace: str, prefix: str, local: Endpoint | None
) -> Presence:
    """Sessions and rooms across the processes of ``namespace``.

    Forgets the processes whose heartbeat has expired.
    """
    members = await client.smembers(processes_key(namespace))
    ids = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
    if local is not None and local.broker is not None:
        ids = [i for i in ids if i != local.broker.process_id]
    values = await mget(client, [process_key(namespace, i) for i in ids]) if ids else []
    dead = [i for i, v in zip(ids, values, strict=True) if v is None]
    if dead:
        await client.srem(processes_key(namespace), *dead)
    return merge_presence(prefix, zip(ids, values, strict=True), local)
