"""Cluster-wide broadcast and presence through Redis (or Valkey).

Needs redis-py, which the ``redis`` extra brings.

One :class:`RedisBroker` per process, given to :func:`aiohttp_sockjs.setup`
as ``broker=``, carries the broadcasts of one or several endpoints to every
other process of the cluster::

    broker = RedisBroker("redis://localhost:6379/0")
    aiohttp_sockjs.setup(app, "/chat", chat, broker=broker)
    aiohttp_sockjs.setup(app, "/news", news, broker=broker)

How it works, and what it guarantees:

- Each endpoint has one Redis stream, ``{namespace}:stream:{prefix}``,
  capped at about ``stream_maxlen`` entries (``XADD MAXLEN ~``). A
  broadcast to everyone or to rooms is delivered to this process's
  sessions at once and appended to the stream; every process reads the
  streams of its endpoints with one blocking ``XREAD`` from the last entry
  it has seen, so broadcasts arrive in stream order, each encoded once per
  process. Only commands that Redis 5+ and Valkey share are used.
- Through a Redis outage, local delivery goes on. Broadcasts meant for
  other processes wait in a bounded outbox (``max_outbox_size``
  characters; past it the oldest are dropped and counted) and are written,
  in order, once Redis is back. A process whose connection dropped reads
  on from its last entry when it reconnects, so it misses nothing as long
  as fewer than ``stream_maxlen`` entries were appended to that endpoint's
  stream meanwhile. If Redis itself restarted empty, the stream is read
  from its start. Entries carry their publisher's sequence number, so a
  retried write is delivered once, and a gap is logged.
- One warning is logged when Redis becomes unreachable, and one line when
  it is back; never one per message.
- Redis behind Sentinel (:class:`RedisSentinel`) is followed through a
  failover like any outage; writes the old master had not passed to its
  replica are gone from the stream, which only processes that had not
  read them yet notice (a logged gap). On a Redis Cluster no command
  spans two slots: each stream is read on its own, and presence one slot
  at a time.
- Presence: every ``heartbeat_interval`` seconds each process writes its
  session counts (in total and per room, per endpoint) to a key that
  expires after ``process_ttl`` seconds. A process that dies stops
  refreshing it, so its sessions drop out of :meth:`RedisBroker.presence`
  within ``process_ttl`` seconds. The asking process's own figures are
  always live.

From a process with no sessions, :class:`Publisher` (asyncio) and
:class:`SyncPublisher` broadcast to an endpoint or its rooms and read its
presence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

try:
    import redis
except ImportError as exc:  # pragma: no cover - depends on the install
    from ._extras import missing

    raise missing("aiohttp_sockjs.broker", "redis-py", "redis") from exc

from ._broker_wire import (
    DEFAULT_NAMESPACE,
    MESSAGE,
    BadEntry,
    Entry,
    as_bytes,
    as_text,
    decode_entry,
    encode_entry,
    heartbeat_value,
    new_process_id,
    normalise_prefix,
    process_key,
    processes_key,
    stream_key,
)
from ._publishers import Publisher, SyncPublisher
from ._redis_links import (
    AsyncClient,
    RedisClient,
    RedisSentinel,
    client_from,
    close_link,
    mget,
    read_presence,
)
from .exceptions import BrokerError
from .rooms import Presence

if TYPE_CHECKING:
    from .hub import BrokerEndpoint as Endpoint

__all__ = [
    "BadEntry",
    "Entry",
    "Presence",
    "Publisher",
    "RedisBroker",
    "RedisSentinel",
    "SyncPublisher",
    "decode_entry",
    "encode_entry",
]

log = logging.getLogger("aiohttp_sockjs.broker")

# Each outbox entry costs its message plus this, so many tiny broadcasts
# are bounded too.
_ENTRY_OVERHEAD: Final = 64
# Most entries written in one pipeline, and read in one XREAD.
_BATCH: Final = 512
# How long one XREAD blocks. New endpoints join the read this often; the
# latency of delivery does not depend on it.
_BLOCK_MS: Final = 1000
# Forget the sequence number of a publisher not heard from for this long.
_SEQ_MEMORY: Final = 600.0


# --- the broker ---------------------------------------------------------------


class RedisBroker:
    """Carries broadcasts and presence of this process's endpoints through Redis.

    ``redis`` is a URL (``redis://host:6379/0``, ``rediss://``,
    ``unix:///path``), a :class:`RedisSentinel` (Redis behind Sentinel,
    followed through a failover), or a ``redis.asyncio.Redis`` or
    ``redis.asyncio.RedisCluster`` client made with
    ``decode_responses=False`` (the broker closes only a client it made).
    One broker serves every endpoint of the process it is given to; it
    starts with the first endpoint and stops with the last. Each process
    holds two Redis connections for it: one blocked reading, one writing
    (on a Redis Cluster, where a command reads one slot, one reading
    connection per endpoint).

    Options:

    - ``namespace`` (``"sockjs"``): prefix of every key, so several
      clusters can share one Redis.
    - ``stream_maxlen`` (10,000): about how many broadcasts each endpoint's
      stream keeps; the backlog a process can catch up on after losing Redis.
    - ``max_outbox_size`` (16 MiB): characters of broadcasts kept for other
      processes while Redis is unreachable; past it the oldest are dropped.
    - ``max_message_size`` (1 MiB): the largest broadcast, in UTF-8 bytes,
      sent through Redis; larger ones raise :class:`ValueError` at
      ``broadcast()``, and larger entries read from Redis are dropped.
    - ``heartbeat_interval`` (5.0) and ``process_ttl`` (15.0): how often
      each process refreshes its presence, and how long after its last
      refresh a silent process stops counting.
    - ``retry_interval`` (1.0): the longest wait between attempts to reach
      Redis while it is down (attempts start at 50 ms and double).
    - ``connect_timeout`` (5.0): how long app start waits for Redis before
      failing with :class:`~aiohttp_sockjs.BrokerError`.
    - ``process_id``: this process's name in presence (default
      ``host:pid:random``).
    """

    def __init__(
        self,
        redis: RedisClient,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        stream_maxlen: int = 10_000,
        max_outbox_size: int = 16 << 20,
        max_message_size: int = 1 << 20,
        heartbeat_interval: float = 5.0,
        process_ttl: float = 15.0,
        retry_interval: float = 1.0,
        connect_timeout: float = 5.0,
        process_id: str | None = None,
    ) -> None:
        if stream_maxlen < 1 or max_outbox_size < 1 or max_message_size < 1:
            raise ValueError("stream_maxlen, max_outbox_size and max_message_size must be positive")
        if heartbeat_interval <= 0 or process_ttl <= heartbeat_interval:
            raise ValueError("need 0 < heartbeat_interval < process_ttl")
        if retry_interval <= 0 or connect_timeout <= 0:
            raise ValueError("retry_interval and connect_timeout must be positive")
        self._link = client_from(redis, connect_timeout)
        self._client: AsyncClient = self._link.client
        self._where = self._link.where
        self.namespace = namespace
        self.stream_maxlen = int(stream_maxlen)
        self.max_outbox_size = int(max_outbox_size)
        self.max_message_size = int(max_message_size)
        self.heartbeat_interval = float(heartbeat_interval)
        self.process_ttl = float(process_ttl)
        self.retry_interval = float(retry_interval)
        self.connect_timeout = float(connect_timeout)
        #: This process's name in presence and on the entries it writes.
        self.process_id = process_id or new_process_id()
        #: Broadcasts dropped from the outbox, since the broker was made.
        self.dropped = 0
        self._endpoints: dict[str, Endpoint] = {}  # attached, by prefix
        self._by_key: dict[bytes, Endpoint] = {}
        self._last_ids: dict[bytes, bytes] = {}
        self._unread: set[bytes] = set()  # attached streams the reader has yet to find
        self._seqs: dict[str, int] = {}  # our next sequence number, by stream
        # Newest sequence number seen per (stream, publisher), and when.
        self._seen: dict[tuple[bytes, str], tuple[int, float]] = {}
        # (number, stream key, fields, cost): written in order, removed
        # only once Redis has taken them.
        self._outbox: deque[tuple[int, str, dict[bytes, bytes], int]] = deque()
        self._outbox_chars = 0
        self._outbox_count = 0
        self._wake = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        # On a Redis Cluster, one reader per stream: a command reads one slot.
        self._stream_readers: dict[bytes, asyncio.Task[None]] = {}
        self._writer: asyncio.Task[None] | None = None
        self._down_since: float | None = None
        self._dropped_in_outage = 0
        # The loops also check this: on 3.11, wait_for() can swallow a
        # cancellation that races with the command's own error.
        self._running = False

    def __repr__(self) -> str:
        state = "down" if self._down_since is not None else "up"
        return f"<RedisBroker {self._where} {self.process_id} {state}>"

    @property
    def connected(self) -> bool:
        """Whether the last exchange with Redis went through."""
        return self._down_since is None

    async def presence(self, prefix: str) -> Presence:
        """Open sessions of the endpoint at ``prefix``, across the cluster.

        This process's figures are live; the others' are their last
        heartbeat. Raises ``redis.RedisError`` if Redis cannot be reached.
        """
        prefix = normalise_prefix(prefix)
        return await read_presence(
            self._client, self.namespace, prefix, self._endpoints.get(prefix)
        )

    async def processes(self) -> frozenset[str]:
        """The ids of the processes whose heartbeat is fresh (this one included)."""
        members = await self._client.smembers(processes_key(self.namespace))
        ids = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        values = await mget(self._client, [process_key(self.namespace, i) for i in ids])
        alive = {i for i, v in zip(ids, values, strict=True) if v is not None}
        if self._running:
            alive.add(self.process_id)
        return frozenset(alive)

    # --- called by the endpoint -------------------------------------------

    def register_endpoint(self, endpoint: Endpoint) -> None:
        """Check that ``endpoint`` may use this broker (called by the endpoint)."""
        other = self._endpoints.get(endpoint.prefix)
        if other is not None and other is not endpoint:
            raise ValueError(f"this broker already serves an endpoint at {endpoint.prefix!r}")

    async def start_endpoint(self, endpoint: Endpoint) -> None:
        """Start carrying ``endpoint``'s broadcasts (on the endpoint's start)."""
        self.register_endpoint(endpoint)
        if self._endpoints.get(endpoint.prefix) is endpoint:
            return
        key = stream_key(self.namespace, endpoint.prefix).encode()
        self._by_key[key] = endpoint
        self._endpoints[endpoint.prefix] = endpoint
        if self._running:
            # The reader finds where the stream ends before its next read,
            # on its own connection: the process keeps one pair.
            self._unread.add(key)
            self._start_reader(key)
            self._wake.set()  # a heartbeat now, with this endpoint in it
            return
        try:
            await asyncio.wait_for(self._client.ping(), self.connect_timeout)
            self._last_ids[key] = await asyncio.wait_for(self._newest(key), self.connect_timeout)
        except (redis.RedisError, OSError, asyncio.TimeoutError) as exc:
            del self._by_key[key], self._endpoints[endpoint.prefix]
            raise BrokerError(
                f"cannot reach Redis at {self._where} for the SockJS broker: "
                f"{exc or type(exc).__name__}"
            ) from exc
        if not self._running:
            self._down_since = None
            self._running = True
            self._start_reader(key)
            self._writer = asyncio.ensure_future(self._write_forever())

    def _start_reader(self, key: bytes) -> None:
        if self._link.cluster:
            self._stream_readers[key] = asyncio.ensure_future(self._read_forever(key))
        elif self._reader is None:
            self._reader = asyncio.ensure_future(self._read_forever(None))

    async def _newest(self, key: bytes) -> bytes:
        """The id of the last entry of stream ``key`` (``0-0`` if it has none)."""
        newest = await self._client.xrevrange(key, count=1)
        return as_bytes(newest[0][0] or b"0-0") if newest else b"0-0"

    async def stop_endpoint(self, endpoint: Endpoint) -> None:
        """Stop carrying ``endpoint``'s broadcasts; the last one stops the broker."""
        if self._endpoints.get(endpoint.prefix) is not endpoint:
            return
        del self._endpoints[endpoint.prefix]
        key = stream_key(self.namespace, endpoint.prefix).encode()
        self._by_key.pop(key, None)
        self._last_ids.pop(key, None)
        self._unread.discard(key)
        reader = self._stream_readers.pop(key, None)
        if reader is not None:
            reader.cancel()
            await asyncio.wait([reader], timeout=1.0)
        if not self._endpoints:
            await self._stop()

    def publish_from(
        self, endpoint: Endpoint, messages: Sequence[str], rooms: tuple[str, ...] | None
    ) -> None:
        """Queue broadcasts for the other processes (called by ``Endpoint.broadcast``).

        Every message is checked before any is queued: a batch goes out whole
        or not at all.
        """
        key = stream_key(self.namespace, endpoint.prefix)
        seq = self._seqs.get(key, 0)
        entries = []
        for message in messages:
            seq += 1
            fields = encode_entry(self.process_id, seq, rooms, message)
            size = len(fields[MESSAGE])
            if size > self.max_message_size:
                raise ValueError(
                    f"message of {size} bytes is over the broker's max_message_size "
                    f"({self.max_message_size})"
                )
            entries.append((fields, len(message) + _ENTRY_OVERHEAD))
        self._seqs[key] = seq
        for fields, cost in entries:
            self._outbox_count += 1
            self._outbox.append((self._outbox_count, key, fields, cost))
            self._outbox_chars += cost
        while self._outbox_chars > self.max_outbox_size and len(self._outbox) > 1:
            self._outbox_chars -= self._outbox.popleft()[3]
            self.dropped += 1
            self._dropped_in_outage += 1
        self._wake.set()

    # --- the two loops ------------------------------------------------------

    async def _write_forever(self) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time()
        failures = 0
        while self._running:
            try:
                if loop.time() >= next_beat or (self._wake.is_set() and not self._outbox):
                    self._wake.clear()
                    await self._heartbeat()
                    next_beat = loop.time() + self.heartbeat_interval
                if self._outbox:
                    await self._write_batch()
                failures = 0
            except (redis.RedisError, OSError, asyncio.TimeoutError) as exc:
                self._trouble(exc)
                failures += 1
                await asyncio.sleep(min(self.retry_interval, 0.05 * 2 ** min(failures, 10)))
                continue
            if not self._outbox:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, next_beat - loop.time()))

    async def _write_batch(self) -> None:
        batch = [self._outbox[i] for i in range(min(_BATCH, len(self._outbox)))]
        pipe = self._client.pipeline(transaction=False)
        for _, key, fields, _ in batch:
            pipe.xadd(key, fields, maxlen=self.stream_maxlen, approximate=True)  # type: ignore[arg-type]
        await asyncio.wait_for(pipe.execute(), self.connect_timeout + 5)
        # Entries may have been dropped from the front meanwhile: remove by number.
        last = batch[-1][0]
        outbox = self._outbox
        while outbox and outbox[0][0] <= last:
            self._outbox_chars -= outbox.popleft()[3]
        if not outbox:
            self._wake.clear()

    async def _heartbeat(self) -> None:
        ttl_ms = int(self.process_ttl * 1000)
        pipe = self._client.pipeline(transaction=False)
        pipe.set(
            process_key(self.namespace, self.process_id),
            heartbeat_value(self._endpoints.values()),
            px=ttl_ms,
        )
        pipe.sadd(processes_key(self.namespace), self.process_id)
        await asyncio.wait_for(pipe.execute(), self.connect_timeout + 5)
        now = time.monotonic()
        for source, (_, seen) in list(self._seen.items()):
            if now - seen > _SEQ_MEMORY:
                del self._seen[source]

    async def _read_forever(self, only: bytes | None) -> None:
        """Read the streams of every endpoint (or only stream ``only``), for ever."""
        failures = 0
        while self._running:
            try:
                if failures:
                    await self._resync(only)
                for key in list(self._unread):
                    if only is not None and key != only:
                        continue
                    newest = await self._newest(key)
                    if key in self._unread:
                        self._unread.discard(key)
                        self._last_ids[key] = newest
                streams = {k: v for k, v in self._last_ids.items() if only is None or k == only}
                if not streams:
                    await asyncio.sleep(_BLOCK_MS / 1000)
                    continue
                response = await asyncio.wait_for(
                    self._client.xread(streams, count=_BATCH, block=_BLOCK_MS),  # type: ignore[arg-type]
                    _BLOCK_MS / 1000 + self.connect_timeout + 5,
                )
            except (redis.RedisError, OSError, asyncio.TimeoutError) as exc:
                self._trouble(exc)
                failures += 1
                await asyncio.sleep(min(self.retry_interval, 0.05 * 2 ** min(failures, 10)))
                continue
            failures = 0
            self._recovered()
            if not response:
                continue
            items = response.items() if isinstance(response, dict) else response
            for stream, entries in items:
                if isinstance(entries, list) and entries and isinstance(entries[0], list):
                    entries = entries[0]  # RESP3 shape: {key: [[entries]]}
                self._handle(stream, entries)

    async def _resync(self, only: bytes | None) -> None:
        """After losing Redis: read on from our last entry, or from the start.

        If the last entry we read is gone, the stream was trimmed past it
        (every entry left is newer) or Redis restarted empty (every entry
        is new to us): either way reading from the start misses nothing.
        """
        for key, last in list(self._last_ids.items()):
            if last == b"0-0" or (only is not None and key != only):
                continue
            found = await self._client.xrange(key, min=last, max=last, count=1)
            if not found and key in self._last_ids:
                self._last_ids[key] = b"0-0"

    def _handle(self, stream: bytes | str, entries: Iterable[Any]) -> None:
        key = as_bytes(stream)
        endpoint = self._by_key.get(key)
        for entry_id, fields in entries:
            if key in self._last_ids:
                self._last_ids[key] = as_bytes(entry_id)
            try:
                entry = decode_entry(fields, self.max_message_size)
            except BadEntry as exc:
                log.warning(
                    "SockJS broker: dropped entry %s of %s: %s",
                    as_text(entry_id),
                    as_text(key),
                    exc,
                )
                continue
            if entry.origin == self.process_id or endpoint is None:
                continue
            source = (key, entry.origin)
            previous = self._seen.get(source)
            if previous is not None:
                if entry.seq <= previous[0]:
                    continue  # a write retried after a lost answer: delivered already
                if entry.seq > previous[0] + 1:
                    log.warning(
                        "SockJS broker: %d broadcasts from %s to %s were lost "
                        "(dropped while Redis was down, or trimmed from the stream)",
                        entry.seq - previous[0] - 1,
                        entry.origin,
                        as_text(key),
                    )
            self._seen[source] = (entry.seq, time.monotonic())
            try:
                endpoint.deliver_local(entry.message, entry.rooms)
            except Exception:  # pragma: no cover - a bug; keep reading
                log.exception("SockJS broker: delivering a broadcast failed")

    # --- outages ------------------------------------------------------------

    def _trouble(self, exc: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._dropped_in_outage = 0
            log.warning(
                "SockJS broker: Redis at %s is unreachable (%s); local delivery goes on, "
                "broadcasts for other processes wait (up to %d characters) until it is back",
                self._where,
                str(exc) or type(exc).__name__,
                self.max_outbox_size,
            )

    def _recovered(self) -> None:
        if self._down_since is not None:
            took = time.monotonic() - self._down_since
            self._down_since = None
            log.log(
                logging.WARNING if self._dropped_in_outage else logging.INFO,
                "SockJS broker: Redis at %s is back after %.1f s; %d broadcasts were dropped",
                self._where,
                took,
                self._dropped_in_outage,
            )

    async def _stop(self) -> None:
        tasks = [t for t in (self._reader, self._writer) if t is not None]
        tasks += self._stream_readers.values()
        self._stream_readers.clear()
        self._reader = self._writer = None
        self._running = False
        while tasks:
            for task in tasks:
                task.cancel()
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            tasks = list(pending)
        # Hand over what is still queued, then leave presence at once
        # rather than after process_ttl; both only if Redis answers quickly.
        with contextlib.suppress(redis.RedisError, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self._leave(), 1.0)
        self._outbox.clear()
        self._outbox_chars = 0
        await close_link(self._link)

    async def _leave(self) -> None:
        while self._outbox:
            await self._write_batch()
        pipe = self._client.pipeline(transaction=False)
        pipe.delete(process_key(self.namespace, self.process_id))
        pipe.srem(processes_key(self.namespace), self.process_id)
        await pipe.execute()
