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
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import protocol
from .session import _SEND, Session, SessionState

if TYPE_CHECKING:
    import aiohttp_cors

__all__ = ["TRANSPORTS", "Endpoint", "Handler"]

log = logging.getLogger("aiohttp_sockjs")

#: An application handler: runs once per session, for the session's life.
Handler = Callable[[Session], Awaitable[None]]
_F = TypeVar("_F", bound=Callable[..., Any])

#: Every transport an endpoint can serve, by the name used in URLs and in
#: the ``transports`` option. ``raw_websocket`` is ``base/websocket``.
TRANSPORTS: Final = frozenset(
    {
        "websocket",
        "raw_websocket",
        "xhr",
        "xhr_streaming",
        "eventsource",
        "htmlfile",
        "jsonp",
    }
)


class Endpoint:
    """One SockJS endpoint: its options, its sessions and their manager.

    Made by :func:`aiohttp_sockjs.setup`; see there for the options.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        prefix: str = "",
        heartbeat_delay: float = 25.0,
        disconnect_delay: float = 5.0,
        response_limit: int = 128 * 1024,
        sockjs_url: str = protocol.DEFAULT_SOCKJS_URL,
        cookie_needed: bool = False,
        disabled_transports: frozenset[str] | set[str] = frozenset(),
        max_message_size: int = 1 << 20,
        max_request_size: int = 8 << 20,
        websocket_ping_interval: float | None = None,
        cors_config: aiohttp_cors.CorsConfig | None = None,
        sweep_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        unknown = set(disabled_transports) - TRANSPORTS
        if unknown:
            raise ValueError(f"unknown transports: {sorted(unknown)}")
        if heartbeat_delay <= 0 or disconnect_delay <= 0:
            raise ValueError("heartbeat_delay and disconnect_delay must be positive")
        self.prefix = prefix
        self.heartbeat_delay = float(heartbeat_delay)
        self.disconnect_delay = float(disconnect_delay)
        self.response_limit = int(response_limit)
        self.sockjs_url = sockjs_url
        self.cookie_needed = bool(cookie_needed)
        self.transports: frozenset[str] = TRANSPORTS - set(disabled_transports)
        self.max_message_size = int(max_message_size)
        self.max_request_size = int(max_request_size)
        self.websocket_ping_interval = websocket_ping_interval
        self.cors_config = cors_config
        self.clock = clock
        if sweep_interval is None:
            sweep_interval = min(1.0, self.heartbeat_delay / 5, self.disconnect_delay / 5)
        self.sweep_interval = float(sweep_interval)
        self._handler = handler
        self._on_open: Callable[[Session], Any] | None = None
        self._on_message: Callable[[Session, str], Any] | None = None
        self._on_close: Callable[[Session], Any] | None = None
        self._by_id: dict[str, Session] = {}
        self._sessions: dict[Session, None] = {}
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = False

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
        sessions: Iterable[Session] | None = None,
        exclude: Session | None = None,
    ) -> None:
        """Send ``message`` to every open session, or to ``sessions``.

        The message is encoded once for all sessions. ``exclude`` leaves one
        session out (typically the sender). Like ``session.send``, this never
        waits: each session queues the message and delivers it when its
        client is reachable; closed sessions are skipped.
        """
        encoded = protocol.encode_message(message)
        # One command tuple for all sessions; raw websockets take the message
        # itself. The checks of Session._send_encoded, inlined: this loop runs
        # once per session per message.
        command = (_SEND, encoded)
        raw_command = (_SEND, message)
        for session in self._sessions if sessions is None else sessions:
            if session._close_info is None and session is not exclude:
                session._enqueue(raw_command if session._raw else command)

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
        if session is not None and session._state is SessionState.CLOSED:
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
        if session_id is not None and not websocket:
            self._by_id[session_id] = session
        self._sessions[session] = None
        return session

    def _start(self, session: Session) -> None:
        """Run the session once its first receiver has been attached."""
        session._start(self._handler or self._callback_handler)
        task = session._handler_task
        assert task is not None
        # The session's own done callback discards it again.
        self._handler_tasks.add(task)

    def _forget(self, session: Session) -> None:
        self._sessions.pop(session, None)
        sid = session._id
        if sid is not None and self._by_id.get(sid) is session:
            del self._by_id[sid]

    # --- the manager --------------------------------------------------------

    def sweep(self) -> None:
        """Tick every session whose deadline has passed; drop dead receivers.

        The sweeper coroutine calls this every ``sweep_interval`` seconds;
        tests call it directly with an injected clock.
        """
        now = self.clock()
        for session in self._sessions:
            # A websocket session's own read loop sees its socket end and
            # detaches; only polling and streaming requests need looking at.
            # Skipping them halves the cost of a sweep over idle websockets.
            if not session._websocket:
                receiver = session._receiver
                if receiver is not None and receiver.interrupted():
                    session._detach(receiver, True)
            if session._deadline <= now:
                session._tick()

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
        actors = [s._task for s in sessions if s._task is not None]
        pending = [t for t in actors if not t.done()] + list(self._handler_tasks)
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=timeout)
        for session in list(self._sessions):
            session._finish()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value
