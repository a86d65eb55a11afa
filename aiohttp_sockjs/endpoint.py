"""The endpoint: one SockJS service under one URL prefix, and its manager.

The endpoint holds the options, the sessions and the one sweeper coroutine
that drives every session's heartbeat and expiry. Each session keeps a
single deadline ("next heartbeat" while a connection is attached, "expire"
while none is); the sweeper compares it with a monotonic clock and posts a
tick to the sessions that are due. There is no timer per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

from . import actor, protocol
from .clients import Clients
from .commands import Batch
from .hub import Hub
from .options import TRANSPORTS, Options
from .rooms import LOCAL_PROCESS, Presence, Rooms, RoomSpec
from .session import Session
from .stats import HELD_STATES, EndpointStats

__all__ = ["Endpoint", "Handler"]

log = logging.getLogger("aiohttp_sockjs")

#: An application handler: runs once per session, for the session's life.
Handler = Callable[[Session], Awaitable[None]]
_F = TypeVar("_F", bound=Callable[..., Any])


class Endpoint:
    """One SockJS endpoint: its options, its sessions and their manager.

    Made by :func:`aiohttp_sockjs.setup`; see there for the options. The
    keyword-only ``clock`` and ``sweep_interval`` are the test seam (see
    :mod:`aiohttp_sockjs.testing`), not options.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        options: Options | None = None,
        *,
        prefix: str = "",
        clock: Callable[[], float] = time.monotonic,
        sweep_interval: float | None = None,
    ) -> None:
        self.prefix = prefix
        #: The validated options.
        self.options = options = options or Options()
        self.limits = options.limits
        self.clock = clock
        if sweep_interval is None:
            sweep_interval = min(1.0, options.heartbeat_delay / 5, options.disconnect_delay / 5)
        self.sweep_interval = float(sweep_interval)
        self._handler = handler
        self._on_open: Callable[[Session], Any] | None = None
        self._on_message: Callable[[Session, str], Any] | None = None
        self._on_close: Callable[[Session], Any] | None = None
        # What the sessions share with their endpoint: the table, the
        # counters, the loop callback that steps them (see hub.Hub).
        hub: Hub[Session] = Hub(self, options.limits, clock)
        self.hub = hub
        self._sessions = hub.sessions
        self._by_id = hub.by_id
        self._sweeper: asyncio.Task[None] | None = None
        #: Whether the endpoint is shutting down (new sessions are refused).
        self.closing = False
        # --- rooms and broker (issue 10) ---
        #: The endpoint's rooms: which sessions are in which room.
        self.rooms: Rooms[Session] = hub.rooms
        # Issue 21: a join past these raises RoomLimitExceeded.
        self.rooms.max_rooms_per_session = options.max_rooms_per_session
        self.rooms.max_room_name_length = options.max_room_name_length
        #: Sessions and rates per client (issue 21); ``None`` when no
        #: per-client option is set. The hub forgets a session there too.
        self.clients = hub.clients = Clients.for_limits(
            options.client_key,
            options.max_sessions_per_client,
            options.client_rate_limit,
            clock,
        )
        #: The broker that carries broadcasts to the other processes, if any.
        self.broker = broker = options.broker
        if broker is not None:
            broker.register_endpoint(self)
        # --- counters for stats() (issue 11) ---
        # Plain integers, bumped where the actor or a transport already acts
        # and read by stats(); sessions count here directly, so they need no
        # counters of their own and nothing is lost when they end.
        self._opened = dict.fromkeys(sorted(TRANSPORTS), 0)
        self._sweeps = 0
        self._sweep_seconds: float | None = None

    def __repr__(self) -> str:
        return f"<Endpoint {self.prefix!r} sessions={len(self._sessions)}>"

    # --- sessions ---------------------------------------------------------

    @property
    def sessions(self) -> list[Session]:
        """The open sessions (a snapshot)."""
        return [s for s in self._sessions if not s.closed]

    def __len__(self) -> int:
        """How many sessions are open."""
        return sum(1 for s in self._sessions if not s.closed)

    def __iter__(self) -> Iterator[Session]:
        """Iterate over a snapshot of the open sessions."""
        return iter(self.sessions)

    def broadcast(
        self,
        message: str,
        *,
        room: RoomSpec | None = None,
        sessions: Iterable[Session] | None = None,
        exclude: Session | None = None,
    ) -> None:
        """Send ``message`` to every open session, to a room, or to ``sessions``.

        ``room`` is one room name or several: the message reaches the
        members of any of them, each session once. ``sessions`` names the
        sessions instead (of this process only); give one or the other.
        ``exclude`` leaves one session out (typically the sender).

        The message is encoded once for all sessions. Like ``session.send``,
        this never waits: each session queues the message and delivers it
        when its client is reachable; closed sessions are skipped. With a
        broker, a broadcast to everyone or to rooms also goes to the
        sessions of every other process of the endpoint (see the broker for
        what is guaranteed); local sessions get it at once. A room name
        longer than ``max_room_name_length`` raises
        :class:`~aiohttp_sockjs.RoomLimitExceeded` (no session can be in it).
        """
        rooms = self._rooms_of(room, sessions)
        if self.broker is not None and sessions is None:
            self.broker.publish_from(self, (message,), rooms)
        self.deliver_local(message, rooms, sessions, exclude)

    def broadcast_many(
        self,
        messages: Iterable[str],
        *,
        room: RoomSpec | None = None,
        sessions: Iterable[Session] | None = None,
        exclude: Session | None = None,
    ) -> None:
        """Send several messages, in order, as :meth:`broadcast` sends one.

        Each session is visited once for the whole batch, which every
        recipient shares, and gets it in one frame when its connection
        takes it at once: for a burst of updates this costs a fraction of
        one :meth:`broadcast` per message. Each message is encoded once
        for all sessions. With a broker, the other processes get the
        messages one by one, in the same order.
        """
        batch = tuple(messages)
        for message in batch:
            if type(message) is not str:
                raise TypeError(f"SockJS messages are str, not {type(message).__name__}")
        rooms = self._rooms_of(room, sessions)
        if not batch:
            return
        if self.broker is not None and sessions is None:
            self.broker.publish_from(self, batch, rooms)
        encoded = tuple([protocol.encode_message(m) for m in batch])
        raw = Batch(batch, sum(map(len, batch)))
        shared = Batch(encoded, sum(map(len, encoded)))
        if rooms is not None:
            sessions = self.rooms.members(rooms)
        post = actor.post_encoded_many
        for session in self._sessions if sessions is None else sessions:
            if session is not exclude:
                post(session, raw, shared)

    def _rooms_of(
        self, room: RoomSpec | None, sessions: Iterable[Session] | None
    ) -> tuple[str, ...] | None:
        if room is None:
            return None
        if sessions is not None:
            raise ValueError("give room= or sessions=, not both")
        return self.rooms.names(room)  # issue 21: names past max_room_name_length raise

    def deliver_local(
        self,
        message: str,
        rooms: tuple[str, ...] | None,
        sessions: Iterable[Session] | None = None,
        exclude: Session | None = None,
    ) -> None:
        """Deliver a broadcast to this process's sessions (the broker calls this too)."""
        encoded = protocol.encode_message(message)
        if rooms is not None:
            sessions = self.rooms.members(rooms)
        post = actor.post_encoded
        for session in self._sessions if sessions is None else sessions:
            if session is not exclude:
                post(session, message, encoded)

    async def presence(self) -> Presence:
        """Open sessions in total and per room, across the cluster.

        With a broker this asks Redis (see the broker for how fresh the
        figures of the other processes are); without, it counts this
        process's sessions.
        """
        if self.broker is not None:
            return await self.broker.presence(self.prefix)
        total = len(self)
        return Presence(total, self.rooms.counts(), {LOCAL_PROCESS: total})

    # --- the decorator style ------------------------------------------------

    def on_open(self, func: _F) -> _F:
        """Decorate ``func(session)``, called when a session opens."""
        self._check_callbacks()
        self._on_open = func
        return func

    def on_message(self, func: _F) -> _F:
        """Decorate ``func(session, message)``, called for each message."""
        self._check_callbacks()
        self._on_message = func
        return func

    def on_close(self, func: _F) -> _F:
        """Decorate ``func(session)``, called once a session has closed."""
        self._check_callbacks()
        self._on_close = func
        return func

    def _check_callbacks(self) -> None:
        if self._handler is not None:
            raise ValueError("this endpoint has a handler; use it or the callbacks, not both")

    async def _callback_handler(self, session: Session) -> None:
        try:
            if self._on_open is not None:
                await _maybe_await(self._on_open(session))
            async for message in session:
                if self._on_message is not None:
                    await _maybe_await(self._on_message(session, message))
        finally:
            if self._on_close is not None:
                if not session.closed:
                    await session.close()
                await _maybe_await(self._on_close(session))

    # --- the seam for the transports ----------------------------------------
    #
    # What the request handlers (_routes, _transports, _websocket_routes) call: find,
    # create and start sessions, and count refusals. Not for applications.

    def find_session(self, session_id: str) -> Session | None:
        """The live session with the id its client chose, if any (for the transports)."""
        session = self._by_id.get(session_id)
        if session is not None and actor.finished(session):
            return None
        return session

    def create_session(
        self,
        session_id: str | None,
        request: Any,
        transport: str,
        *,
        websocket: bool = False,
        raw: bool = False,
    ) -> Session:
        """A new session, in the table but not started (for the transports)."""
        session = Session(self.hub, session_id, request, transport, websocket=websocket, raw=raw)
        self._opened[transport] += 1
        if session_id is not None and not websocket:
            self._by_id[session_id] = session
        self._sessions[session] = None
        if self.clients is not None:
            self.clients.add(session)
        return session

    def full(self) -> bool:
        """Whether a new session would go over ``max_sessions``."""
        limit = self.options.max_sessions
        return limit is not None and len(self._sessions) >= limit

    def start_session(self, session: Session) -> None:
        """Run the session once its first receiver has been attached."""
        actor.start(session, self._handler or self._callback_handler)
        task = actor.handler_task(session)
        assert task is not None
        if session not in self._sessions and not task.done():
            self.hub.handler_tasks.add(task)

    # --- statistics ---------------------------------------------------------

    def stats(self) -> EndpointStats:
        """A snapshot of this endpoint's sessions, traffic and refusals.

        Cheap: it copies counters the endpoint keeps as it works and counts
        the sessions it holds (one pass over them). See
        :class:`~aiohttp_sockjs.stats.EndpointStats` for each figure, and
        :mod:`aiohttp_sockjs.metrics` to export them to Prometheus.
        """
        held = dict.fromkeys(
            [(t, state) for t in sorted(self.options.transports) for state in HELD_STATES], 0
        )
        for session in self._sessions:
            key = (session.transport, session.state)
            held[key] = held.get(key, 0) + 1
        hub = self.hub
        traffic = hub.traffic
        return EndpointStats(
            prefix=self.prefix,
            sessions=held,
            opened=dict(self._opened),
            closed=dict(sorted(hub.closed.items())),
            messages_in=traffic.messages_in,
            messages_out=traffic.messages_out,
            chars_in=traffic.chars_in,
            chars_out=traffic.chars_out,
            queue_overflows=hub.overflows,
            refused=dict(hub.refused),
            heartbeats=traffic.heartbeats,
            sweeps=self._sweeps,
            last_sweep_seconds=self._sweep_seconds,
        )

    def count_refusal(self, reason: str) -> None:
        """Count a refusal; ``reason`` is one of :data:`~aiohttp_sockjs.stats.REFUSAL_REASONS`."""
        self.hub.refused[reason] += 1

    # --- the manager --------------------------------------------------------

    def sweep(self) -> None:
        """Tick every session whose deadline has passed; drop dead receivers.

        The sweeper coroutine calls this every ``sweep_interval`` seconds;
        tests call it directly with an injected clock.
        """
        started = time.perf_counter()
        now = self.clock()
        # Ticked after the walk: a tick may run a parked actor's step at
        # once, and a session that finishes leaves the table.
        for session in actor.sweep(self._sessions, now):
            actor.tick(session)
        self._sweeps += 1
        self._sweep_seconds = time.perf_counter() - started

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                self.sweep()
            except Exception:  # pragma: no cover - a bug; keep sweeping
                log.exception("SockJS sweeper failed")

    async def start(self) -> None:
        """Start the sweeper. Done for you when the app starts."""
        self.closing = False
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep_forever())
        if self.broker is not None:
            await self.broker.start_endpoint(self)

    async def shutdown(self, timeout: float = 1.0) -> None:
        """Close every session with 1001 "Going away" and stop the sweeper.

        Clients get the close frame, handlers see their session closed. A
        handler or connection still busy after ``timeout`` seconds is
        cancelled, so this always returns.
        """
        self.closing = True
        await actor.shutdown_all(list(self._sessions), self.hub.handler_tasks, timeout)
        hub = self.hub
        for session in list(self._sessions):
            hub.forget(session, actor.session_id(session), actor.handler_task(session))
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self.broker is not None:
            # Last, so that what handlers broadcast as they end still goes out.
            await self.broker.stop_endpoint(self)


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value
