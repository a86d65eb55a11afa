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
from typing import TYPE_CHECKING, Any, TypeVar

from . import protocol
from .options import TRANSPORTS, Options
from .rooms import LOCAL_PROCESS, Presence, Rooms, RoomSpec, room_names
from .session import Batch, Session
from .stats import HELD_STATES, REFUSAL_REASONS, EndpointStats

if TYPE_CHECKING:
    pass

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
        self._by_id: dict[str, Session] = {}
        self._sessions: dict[Session, None] = {}
        # Handlers still running for sessions that have left _sessions (a
        # live session holds its own); kept here so none is lost or left
        # out of shutdown. The session's done callback discards them.
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = False
        # Sessions holding over half their send bound, and a future done
        # when there are none left (see Session._fair).
        self._pressured = 0
        self._relieved: asyncio.Future[None] | None = None
        # Parked actors with commands to take, stepped by one loop callback
        # (see Session._post_wake): a broadcast to 10,000 sessions schedules
        # one callback, not 10,000.
        self._ready: list[Session] = []
        # The session whose handler's coroutine is running right now, if any
        # (see session._HandlerRun).
        self._running_handler: Session | None = None
        # --- rooms and broker (issue 10) ---
        #: The endpoint's rooms: which sessions are in which room.
        self.rooms = Rooms()
        #: The broker that carries broadcasts to the other processes, if any.
        self.broker = broker = options.broker
        if broker is not None:
            broker._register(self)
        # --- counters for stats() (issue 11) ---
        # Plain integers, bumped where the actor or a transport already acts
        # and read by stats(); sessions count here directly, so they need no
        # counters of their own and nothing is lost when they end.
        self._opened = dict.fromkeys(sorted(TRANSPORTS), 0)
        self._closed: dict[int, int] = {}
        # Those bumped per batch of messages live in slots (see _Traffic).
        self._traffic = _Traffic()
        self._overflows = 0
        self._refused = dict.fromkeys(REFUSAL_REASONS, 0)
        self._sweeps = 0
        self._sweep_seconds: float | None = None

    def __repr__(self) -> str:
        return f"<Endpoint {self.prefix!r} sessions={len(self._sessions)}>"

    # --- sessions ---------------------------------------------------------

    @property
    def sessions(self) -> list[Session]:
        """The open sessions (a snapshot)."""
        return [s for s in self._sessions if s._close_info is None]

    def __len__(self) -> int:
        """How many sessions are open."""
        return sum(1 for s in self._sessions if s._close_info is None)

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
        what is guaranteed); local sessions get it at once.
        """
        rooms = self._rooms_of(room, sessions)
        if self.broker is not None and sessions is None:
            self.broker._publish(self, (message,), rooms)
        self._deliver(message, rooms, sessions, exclude)

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
            self.broker._publish(self, batch, rooms)
        encoded = tuple([protocol.encode_message(m) for m in batch])
        raw = Batch(batch, sum(map(len, batch)))
        shared = Batch(encoded, sum(map(len, encoded)))
        if rooms is not None:
            sessions = self.rooms.members(rooms)
        for session in self._sessions if sessions is None else sessions:
            if session is not exclude:
                session._send_encoded_many(raw, shared)

    @staticmethod
    def _rooms_of(
        room: RoomSpec | None, sessions: Iterable[Session] | None
    ) -> tuple[str, ...] | None:
        if room is None:
            return None
        if sessions is not None:
            raise ValueError("give room= or sessions=, not both")
        return room_names(room)

    def _deliver(
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
        for session in self._sessions if sessions is None else sessions:
            if session is not exclude:
                session._send_encoded(message, encoded)

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

    # --- used by transports -------------------------------------------------

    def _get(self, session_id: str) -> Session | None:
        session = self._by_id.get(session_id)
        if session is not None and session._finished:
            return None
        return session

    def _create(
        self,
        session_id: str | None,
        request: Any,
        transport: str,
        *,
        websocket: bool = False,
        raw: bool = False,
    ) -> Session:
        session = Session(self, session_id, request, transport, websocket=websocket, raw=raw)
        self._opened[transport] += 1
        if session_id is not None and not websocket:
            self._by_id[session_id] = session
        self._sessions[session] = None
        return session

    def _full(self) -> bool:
        """Whether a new session would go over ``max_sessions``."""
        limit = self.options.max_sessions
        return limit is not None and len(self._sessions) >= limit

    def _start(self, session: Session) -> None:
        """Run the session once its first receiver has been attached."""
        session._start(self._handler or self._callback_handler)
        task = session._handler_task
        assert task is not None
        if session not in self._sessions and not task.done():
            self._handler_tasks.add(task)

    def _forget(self, session: Session) -> None:
        self._sessions.pop(session, None)
        self.rooms.leave_all(session)
        task = session._handler_task
        if task is not None and not task.done():
            self._handler_tasks.add(task)
        sid = session._id
        if sid is not None and self._by_id.get(sid) is session:
            del self._by_id[sid]

    def _wake(self, session: Session) -> None:
        """Have ``session``'s parked actor step soon, once the running task yields."""
        ready = self._ready
        if not ready:
            asyncio.get_running_loop().call_soon(self._step_ready)
        ready.append(session)

    def _step_ready(self) -> None:
        ready = self._ready
        self._ready = []
        done = 0
        try:
            for session in ready:
                done += 1
                session._step_parked()
        except BaseException:
            # Not expected (a step catches its own failures), but no session
            # may be left unparked with commands it will never take.
            for session in ready[done:]:
                self._wake(session)
            raise

    def _pressure(self, on: bool) -> None:
        """A session's backlog crossed half its bound (up with ``on``, or back down)."""
        self._pressured += 1 if on else -1
        if not self._pressured and self._relieved is not None:
            if not self._relieved.done():
                self._relieved.set_result(None)
            self._relieved = None

    async def _relief(self, timeout: float) -> None:
        """Wait until no session holds over half its send bound, for at most ``timeout``."""
        if not self._pressured or timeout <= 0:
            return
        if self._relieved is None:
            self._relieved = asyncio.get_running_loop().create_future()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._relieved), timeout)

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
            key = (session.transport, session._machine.state)
            held[key] = held.get(key, 0) + 1
        traffic = self._traffic
        return EndpointStats(
            prefix=self.prefix,
            sessions=held,
            opened=dict(self._opened),
            closed=dict(sorted(self._closed.items())),
            messages_in=traffic.messages_in,
            messages_out=traffic.messages_out,
            chars_in=traffic.chars_in,
            chars_out=traffic.chars_out,
            queue_overflows=self._overflows,
            refused=dict(self._refused),
            heartbeats=traffic.heartbeats,
            sweeps=self._sweeps,
            last_sweep_seconds=self._sweep_seconds,
        )

    def _refuse(self, reason: str) -> None:
        """Count a refusal; ``reason`` is one of :data:`~aiohttp_sockjs.stats.REFUSAL_REASONS`."""
        self._refused[reason] += 1

    # --- the manager --------------------------------------------------------

    def sweep(self) -> None:
        """Tick every session whose deadline has passed; drop dead receivers.

        The sweeper coroutine calls this every ``sweep_interval`` seconds;
        tests call it directly with an injected clock.
        """
        started = time.perf_counter()
        now = self.clock()
        due = []
        for session in self._sessions:
            # The sweeper only reads a session's state and posts commands.
            machine = session._machine
            # A websocket session's own read loop sees its socket end and
            # detaches, so only polling and streaming requests are asked:
            # this halves the cost of a sweep over idle websockets.
            if not session._websocket:
                receiver = machine.receiver
                if receiver is not None and receiver.interrupted():
                    session._detach(receiver, True)
            if machine.deadline <= now:
                due.append(session)
        # Ticked after the walk: a tick may run a parked actor's step at
        # once (see Session._tick), and a session that finishes leaves
        # the table.
        for session in due:
            session._tick()
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
        self._closing = False
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep_forever())
        if self.broker is not None:
            await self.broker._attach(self)

    async def shutdown(self, timeout: float = 1.0) -> None:
        """Close every session with 1001 "Going away" and stop the sweeper.

        Clients get the close frame, handlers see their session closed. A
        handler or connection still busy after ``timeout`` seconds is
        cancelled, so this always returns.
        """
        self._closing = True
        sessions = list(self._sessions)
        for session in sessions:
            session._shutdown()
        # Parked actors take the Shutdown from the endpoint's next callback;
        # one that must then wait on a write starts a task, waited for below.
        await asyncio.sleep(0)
        actors = [s._task for s in sessions if s._task is not None]
        handlers = [s._handler_task for s in sessions if s._handler_task is not None]
        pending = [t for t in actors + handlers if not t.done()] + list(self._handler_tasks)
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout)
            for session in sessions:
                busy = session._busy
                if session._task in still and busy is not None:
                    # Stuck writing to a client that stopped reading: cut it.
                    busy.abort()
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=timeout)
        for session in list(self._sessions):
            self._forget(session)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self.broker is not None:
            # Last, so that what handlers broadcast as they end still goes out.
            await self.broker._detach(self)


class _Traffic:
    """The counters of stats() bumped for every batch of messages and every heartbeat.

    In slots rather than on the endpoint: a slot store costs about half a
    dict attribute store, and these run once per delivery.
    """

    __slots__ = ("chars_in", "chars_out", "heartbeats", "messages_in", "messages_out")

    def __init__(self) -> None:
        self.messages_in = 0
        self.messages_out = 0
        self.chars_in = 0
        self.chars_out = 0
        self.heartbeats = 0


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value
