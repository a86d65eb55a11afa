"""The session actor.

A :class:`Session` is owned by one task, its actor, which reads commands
from the session's mailbox and applies them in order: attach or detach a
receiving connection, deliver client messages to the application, queue and
flush outgoing messages, close, and act on a sweeper tick. Nothing else
writes the session's state, so no locks are needed. Transports reach the
session only through :meth:`Session._post` and the :class:`Receiver`
interface below; the session knows no transport.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final

from . import protocol
from .exceptions import SessionClosed, SessionMisuse

if TYPE_CHECKING:
    from aiohttp import web

    from .endpoint import Endpoint

__all__ = ["Receiver", "Session", "SessionState"]

log = logging.getLogger("aiohttp_sockjs")


class SessionState(enum.Enum):
    """Where a session is in its life."""

    #: Created; the ``o`` frame has not reached a receiver yet.
    NEW = "new"
    #: Open: messages flow both ways.
    OPEN = "open"
    #: Closed by the application or the network; every receiving request
    #: still gets the close frame until the session expires.
    CLOSING = "closing"
    #: Gone: expired, or its websocket ended.
    CLOSED = "closed"


# Module constants: reading an Enum member off its class is a Python-level
# descriptor call on 3.11, and these are read on every command.
_OPEN: Final[SessionState] = SessionState.OPEN
_CLOSED: Final[SessionState] = SessionState.CLOSED

# The one table of legal state changes.
_TRANSITIONS: Final = {
    SessionState.NEW: {SessionState.OPEN, SessionState.CLOSING, SessionState.CLOSED},
    SessionState.OPEN: {SessionState.CLOSING, SessionState.CLOSED},
    SessionState.CLOSING: {SessionState.CLOSED},
    SessionState.CLOSED: set(),
}


class Receiver(abc.ABC):
    """A connection that carries frames to the client, as the session sees it.

    Each receiving transport implements this. The session calls these
    methods from its actor task only, one at a time. A ``send_*`` method
    returns ``False`` when the connection takes no more frames (a polling
    request answered, a streaming response past its size limit, a write
    that failed); the session then forgets the receiver.
    """

    __slots__ = ()

    @abc.abstractmethod
    async def send_open(self) -> bool:
        """Tell the client the session is open."""

    @abc.abstractmethod
    async def send_heartbeat(self) -> bool:
        """Keep the connection alive."""

    @abc.abstractmethod
    async def send_messages(self, messages: list[str]) -> bool:
        """Deliver messages, in the form the session queued them."""

    @abc.abstractmethod
    async def send_close(self, code: int, reason: str) -> None:
        """Deliver a close frame and end this connection."""

    @abc.abstractmethod
    def interrupted(self) -> bool:
        """Whether the client has gone away (the connection was cut)."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Cut the connection now, dropping whatever it has not written.

        The one method called from outside the actor: it unblocks an actor
        stuck writing to a client that stopped reading. The write in
        progress then fails and the session carries on without it.
        """

    #: Whether :meth:`send_messages_now` can ever succeed; the session only
    #: schedules a synchronous flush for receivers that say so.
    sends_now: bool = False

    def send_messages_now(self, messages: list[str]) -> bool:
        """Deliver ``messages`` at once, without waiting, if the connection allows.

        Returns ``True`` only if the frame was written exactly as
        :meth:`send_messages` would have written it, in a call that would
        have completed without suspending and returned ``True``. Returns
        ``False`` with nothing written otherwise (a write that would have
        to wait for the client, a connection that is ending); the session
        then takes the ordinary path. The default never writes.
        """
        return False

    def release(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """The session has let go of this connection: end it if it still waits.

        Called when the session unlinks the receiver (the client went away,
        or the session ended), so no request handler waits forever for a
        frame that will never come. The default does nothing.
        """


# Mailbox commands. Tuples of (op, argument) keep posting cheap.
_SEND: Final = 0
_ATTACH: Final = 1
_DETACH: Final = 2
_INCOMING: Final = 3
_CLOSE: Final = 4
_TICK: Final = 5
_SHUTDOWN: Final = 6


class Session:
    """One SockJS session, as the application sees it.

    Iterate it to receive messages (``async for message in session``), call
    :meth:`send` to queue a message and :meth:`close` to end it. The session
    ends when the handler returns, when the client goes away, or when it
    expires with no connection.
    """

    __slots__ = (
        "__weakref__",
        "_busy",
        "_close_info",
        "_close_waiter",
        "_deadline",
        "_endpoint",
        "_handler_task",
        "_id",
        "_inbox",
        "_inbox_waiter",
        "_inflight",
        "_mailbox",
        "_outbox",
        "_overflow",
        "_queued",
        "_raw",
        "_receiver",
        "_state",
        "_task",
        "_wakeup",
        "_websocket",
        "data",
        "request",
        "transport",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        session_id: str | None,
        request: web.Request,
        transport: str,
        *,
        websocket: bool = False,
        raw: bool = False,
    ) -> None:
        self._endpoint = endpoint
        # The id the client chose (None for a raw websocket). Not public: it
        # is neither a secret nor a user identity, and apps have no use for it.
        self._id = session_id
        #: The aiohttp request that opened the session (headers, cookies,
        #: remote address, match info); kept for the session's whole life.
        self.request = request
        #: The name of the transport that opened the session, e.g. ``"websocket"``.
        self.transport = transport
        #: Free storage for the application's per-session state.
        self.data: dict[str, Any] = {}
        self._websocket = websocket
        self._raw = raw
        self._state = SessionState.NEW
        self._close_info: tuple[int, str] | None = None
        self._close_waiter: asyncio.Future[None] | None = None
        # A list, not a deque: an empty deque is 760 bytes, an empty list 56,
        # and a mailbox rarely holds more than a command or two, so pop(0)
        # costs no more than popleft().
        self._mailbox: list[tuple[int, Any]] = []
        self._wakeup: asyncio.Future[None] | None = None
        # Created with the first message: idle sessions need none.
        self._inbox: deque[str] | None = None
        self._inbox_waiter: asyncio.Future[None] | None = None
        # Undelivered messages. Like the mailbox, senders append and the
        # actor drains; ``_queued`` counts their characters and ``_inflight``
        # those of the batch the actor is writing, so the bound holds even
        # while the actor waits on a client that stopped reading.
        # Created with the first send: an empty deque is 760 bytes, and idle
        # sessions need none.
        self._outbox: deque[str] | None = None
        self._queued = 0
        self._inflight = 0
        self._overflow = False
        self._busy = False
        self._receiver: Receiver | None = None
        self._deadline = endpoint.clock() + endpoint.disconnect_delay
        self._task: asyncio.Task[None] | None = None
        self._handler_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Session {self.transport} {self._state.value}>"

    # --- the application's side ------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint this session belongs to (for broadcast and the session list)."""
        return self._endpoint

    @property
    def state(self) -> SessionState:
        """The session's current :class:`SessionState`."""
        return self._state

    @property
    def closed(self) -> bool:
        """Whether the session is closing or closed: no more sends go out."""
        return self._close_info is not None

    @property
    def close_code(self) -> int | None:
        """The close code once the session is closed, else ``None``."""
        return None if self._close_info is None else self._close_info[0]

    @property
    def close_reason(self) -> str | None:
        """The close reason once the session is closed, else ``None``."""
        return None if self._close_info is None else self._close_info[1]

    def send(self, message: str) -> None:
        """Queue ``message`` for the client.

        It goes out on the current connection, or with the next one the
        client opens. Sending on a closed session does nothing: iterate the
        session (or check :attr:`closed`) to learn that it has ended.
        """
        if self._close_info is not None:
            return
        if self._raw:
            if type(message) is not str:
                raise TypeError(f"SockJS messages are str, not {type(message).__name__}")
            self._enqueue(message)
        else:
            self._enqueue(protocol.encode_message(message))

    def _send_encoded(self, raw: str, encoded: str) -> None:
        # For broadcast: the message is encoded once for every session.
        if self._close_info is None:
            self._enqueue(raw if self._raw else encoded)

    def _enqueue(self, item: str) -> None:
        """Queue an encoded message, keeping the queue within its bound."""
        if self._overflow or self._state is _CLOSED:
            return
        size = len(item)
        limit = self._endpoint.max_queue_size
        # An empty queue takes any one message, so a message larger than the
        # bound still goes out to a client that keeps up.
        if self._queued + self._inflight and self._queued + self._inflight + size > limit:
            if self._endpoint.queue_overflow == "drop_oldest":
                outbox = self._outbox
                while outbox and self._queued + self._inflight + size > limit:
                    self._queued -= len(outbox.popleft())
                if self._inflight and self._inflight + size > limit:
                    return  # the batch being written fills the queue: drop this one
            else:
                self._on_overflow()
                return
        outbox = self._outbox
        if outbox is None:
            outbox = self._outbox = deque()
        outbox.append(item)
        self._queued += size
        if len(outbox) == 1:
            wakeup = self._wakeup
            receiver = self._receiver
            if wakeup is not None and (receiver is None or receiver.sends_now):
                # The actor is parked with an empty mailbox. Queue the _SEND
                # but, instead of waking the actor, run it from a callback
                # (_send_soon) once this task yields: sends made until then
                # still go out as one frame, and a write that needs no
                # waiting skips the actor's wakeup and task step.
                # _wakeup stays None meanwhile, so later posts queue behind
                # the _SEND without waking the actor: _send_soon owns the
                # wakeup until it runs.
                self._wakeup = None
                self._mailbox.append((_SEND, None))
                wakeup.get_loop().call_soon(self._send_soon, wakeup)
            else:
                self._post(_SEND)

    def _send_soon(self, wakeup: asyncio.Future[None]) -> None:
        """Apply a deferred _SEND for the parked actor, or wake it to do so.

        The actor is still parked on ``wakeup`` and nothing has run since
        the _SEND was queued. If the _SEND is still the only command, and
        flushing needs no waiting, applying it here is what the actor would
        do if it ran now: pop it, flush without suspending, find the mailbox
        empty and park again (here, on the same future). Otherwise the actor
        is woken and applies the _SEND and whatever came after, in order.
        """
        if wakeup.done():  # the actor was cancelled meanwhile
            return
        mailbox = self._mailbox
        if len(mailbox) == 1 and mailbox[0][0] == _SEND and self._state is not _CLOSED:
            try:
                applied = self._flush_now()
            except Exception:
                # As in _run: this session ends, no other is touched; the
                # woken actor then answers pending attaches and exits.
                log.exception("SockJS session failed; closing it")
                self._fail()
                applied = False
            if applied:
                mailbox.clear()
                self._wakeup = wakeup
                return
        wakeup.set_result(None)

    def _on_overflow(self) -> None:
        # Close policy: free the queue now, close ahead of anything queued,
        # and unblock the actor if it is stuck writing to this client.
        self._overflow = True
        self._outbox = None
        self._queued = 0
        log.info(
            "SockJS session %s: send queue over %d characters; closing it",
            self._id or self.transport,
            self._endpoint.max_queue_size,
        )
        self._mailbox.insert(0, (_CLOSE, protocol.CLOSE_QUEUE_OVERFLOW))
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set_result(None)
        elif self._busy and self._receiver is not None:
            self._receiver.abort()

    async def close(self, code: int = 3000, reason: str = "Go away!") -> None:
        """Close the session with ``code`` and ``reason``.

        The client gets the close frame on its current connection, or on the
        next one it opens. Returns once the session has taken the close.
        Closing a closed session does nothing.
        """
        if self._close_info is not None:
            return
        self._post(_CLOSE, (int(code), str(reason)))
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the session is closed, by either side."""
        if self._close_info is not None:
            return
        if self._close_waiter is None:
            self._close_waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._close_waiter)

    def _next_message(self) -> str | asyncio.Future[None] | None:
        """A queued message, else ``None`` once closed, else a waiter to await."""
        inbox = self._inbox
        if inbox:
            return inbox.popleft()
        if self._close_info is not None:
            return None
        if self._inbox_waiter is not None:
            raise SessionMisuse("Concurrent call to receive() is not allowed")
        waiter = self._inbox_waiter = asyncio.get_running_loop().create_future()
        return waiter

    async def receive(self) -> str:
        """Wait for the next message from the client.

        Raises :class:`SessionClosed` once the session is closed and every
        message that arrived before has been received.
        """
        while True:
            got = self._next_message()
            if isinstance(got, str):
                return got
            if got is None:
                assert self._close_info is not None
                raise SessionClosed(*self._close_info)
            try:
                await got
            finally:
                self._inbox_waiter = None

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        # Not a call to receive(): a handler idling in ``async for`` then
        # holds one coroutine, not two.
        while True:
            got = self._next_message()
            if isinstance(got, str):
                return got
            if got is None:
                raise StopAsyncIteration
            try:
                await got
            finally:
                self._inbox_waiter = None

    # --- the commands -----------------------------------------------------

    def _post(self, op: int, arg: Any = None) -> None:
        if self._state is SessionState.CLOSED:
            if op == _ATTACH:
                # Found just before the session ended: do not leave it waiting.
                arg.release()
            return
        self._mailbox.append((op, arg))
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set_result(None)

    def _attach(self, receiver: Receiver) -> None:
        self._post(_ATTACH, receiver)

    def _detach(self, receiver: Receiver, interrupted: bool) -> None:
        self._post(_DETACH, (receiver, interrupted))

    def _incoming(self, messages: list[str]) -> None:
        if self._wakeup is not None:
            # The actor is parked with an empty mailbox (posting, and a
            # deferred _SEND, clear _wakeup), so this command would be the next and only one it
            # runs: run it now and save two task switches per batch of
            # frames. Order is kept: anything queued takes the mailbox path.
            self._on_incoming(messages)
        else:
            self._post(_INCOMING, messages)

    def _tick(self) -> None:
        self._post(_TICK)

    def _shutdown(self) -> None:
        self._post(_SHUTDOWN)

    def _force_close(self, code: int, reason: str) -> None:
        # A close decided by the library (a fault, a policy), not the app.
        self._post(_CLOSE, (code, reason))

    # --- the actor --------------------------------------------------------

    def _start(self, handler: Callable[[Session], Any]) -> None:
        """Start the actor and then the application's handler."""
        self._task = asyncio.ensure_future(self._run())
        # The handler runs as its own task with a done callback, not inside a
        # wrapper coroutine: one coroutine frame less for every live session.
        try:
            task = asyncio.ensure_future(handler(self))
        except Exception as exc:  # a handler that failed before it could await
            task = asyncio.ensure_future(_reraise(exc))
        self._handler_task = task
        task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        self._endpoint._handler_tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, SessionClosed):
            log.error("SockJS handler failed; closing its session", exc_info=exc)
            # A plain close, not a forced one: the client must still learn the
            # reason on its next request, until the session expires.
            self._post(_CLOSE, protocol.CLOSE_INTERNAL_ERROR)
            return
        self._post(_CLOSE, protocol.CLOSE_GO_AWAY)

    async def _run(self) -> None:
        mailbox = self._mailbox
        try:
            while self._state is not _CLOSED:
                if not mailbox:
                    wakeup = self._wakeup = asyncio.get_running_loop().create_future()
                    await wakeup
                    continue
                op, arg = mailbox.pop(0)
                self._busy = True
                try:
                    await self._apply(op, arg)
                except Exception:
                    # A bug, ours or a receiver's: this session ends, with a
                    # close frame where possible; no other session is touched.
                    log.exception("SockJS session failed; closing it")
                    self._fail()
                self._busy = False
            # Connections that arrived while the session was ending get its
            # close frame rather than waiting forever.
            close = self._close_info or protocol.CLOSE_INTERRUPTED
            while mailbox:
                op, arg = mailbox.pop(0)
                if op == _ATTACH:
                    try:
                        await arg.send_close(*close)
                    except Exception:
                        arg.release()
        finally:
            self._busy = False
            if self._state is not SessionState.CLOSED:
                # Cancelled (shutdown of a stuck session): still end cleanly.
                self._finish()
            while mailbox:
                op, arg = mailbox.pop(0)
                if op == _ATTACH:
                    arg.release()

    async def _apply(self, op: int, arg: Any) -> None:
        if op == _SEND:
            await self._flush()
        elif op == _ATTACH:
            await self._on_attach(arg)
        elif op == _DETACH:
            self._on_detach(*arg)
        elif op == _INCOMING:
            self._on_incoming(arg)
        elif op == _CLOSE:
            await self._on_close(*arg)
        elif op == _TICK:
            await self._on_tick()
        elif op == _SHUTDOWN:
            await self._on_close(*protocol.CLOSE_GOING_AWAY)
            self._finish()

    def _fail(self) -> None:
        receiver = self._receiver
        if self._close_info is None:
            self._mark_closed(*protocol.CLOSE_INTERNAL_ERROR)
        if receiver is not None:
            self._receiver = None
            receiver.abort()
        self._finish()

    def _set_state(self, state: SessionState) -> None:
        assert state in _TRANSITIONS[self._state], (self._state, state)
        self._state = state

    def _flush_now(self) -> bool:
        """Apply a _SEND without suspending, if possible; ``False`` if not.

        The synchronous twin of :meth:`_flush`: same effect when it returns
        ``True``, no effect at all when it returns ``False``.
        """
        receiver = self._receiver
        outbox = self._outbox
        if receiver is None or self._state is not _OPEN or not outbox:
            return True  # _flush would do nothing
        if not receiver.send_messages_now(list(outbox)):
            return False
        outbox.clear()
        self._queued = 0
        return True

    async def _flush(self) -> None:
        receiver = self._receiver
        if receiver is None or self._state is not _OPEN or not self._outbox:
            return
        # Every message queued so far goes out as one frame.
        messages = list(self._outbox)
        self._outbox.clear()
        self._inflight, self._queued = self._queued, 0
        try:
            ok = await receiver.send_messages(messages)
        finally:
            self._inflight = 0
        if not ok:
            self._on_detach(receiver, receiver.interrupted())

    async def _on_attach(self, receiver: Receiver) -> None:
        endpoint = self._endpoint
        current = self._receiver
        if current is not None and current.interrupted():
            self._on_detach(current, True)
            current = None
        if self._close_info is not None:
            # Closed: messages queued before the close, then the close frame,
            # to every receiver until the session expires.
            self._deadline = endpoint.clock() + endpoint.disconnect_delay
            if self._outbox:
                messages = list(self._outbox)
                self._outbox.clear()
                self._queued = 0
                if not await receiver.send_messages(messages):
                    return
            await receiver.send_close(*self._close_info)
            return
        if current is not None:
            await receiver.send_close(*protocol.CLOSE_ANOTHER_CONNECTION)
            return
        self._receiver = receiver
        self._deadline = endpoint.clock() + endpoint.heartbeat_delay
        if self._state is SessionState.NEW:
            self._set_state(SessionState.OPEN)
            if not await receiver.send_open():
                self._on_detach(receiver, receiver.interrupted())
                return
        await self._flush()

    def _on_detach(self, receiver: Receiver, interrupted: bool) -> None:
        if receiver is not self._receiver:
            return
        self._receiver = None
        receiver.release()
        self._deadline = self._endpoint.clock() + self._endpoint.disconnect_delay
        if interrupted and self._close_info is None:
            if self._overflow:
                self._mark_closed(*protocol.CLOSE_QUEUE_OVERFLOW)
            else:
                self._mark_closed(*protocol.CLOSE_INTERRUPTED)
        if self._websocket:
            # A websocket session lives exactly as long as its socket.
            if self._close_info is None:
                self._mark_closed(*protocol.CLOSE_NORMAL)
            self._finish()

    def _on_incoming(self, messages: list[str]) -> None:
        if self._close_info is not None:
            return
        if self._inbox is None:
            self._inbox = deque(messages)
        else:
            self._inbox.extend(messages)
        waiter = self._inbox_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _on_close(self, code: int, reason: str) -> None:
        if self._close_info is not None:
            return
        self._mark_closed(code, reason)
        receiver = self._receiver
        if receiver is not None:
            self._receiver = None
            self._deadline = self._endpoint.clock() + self._endpoint.disconnect_delay
            await receiver.send_close(code, reason)
        if self._websocket:
            self._finish()

    async def _on_tick(self) -> None:
        now = self._endpoint.clock()
        if now < self._deadline:
            return
        receiver = self._receiver
        if receiver is None:
            if not any(op == _ATTACH for op, _ in self._mailbox):
                self._finish()
            return
        self._deadline = now + self._endpoint.heartbeat_delay
        if not await receiver.send_heartbeat():
            self._on_detach(receiver, receiver.interrupted())

    def _mark_closed(self, code: int, reason: str) -> None:
        """Record the close and let the application see it."""
        self._close_info = (code, reason)
        if self._state is not SessionState.CLOSING:
            self._set_state(SessionState.CLOSING)
        if self._close_waiter is not None and not self._close_waiter.done():
            self._close_waiter.set_result(None)
        waiter = self._inbox_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _finish(self) -> None:
        """End the session for good and leave the endpoint."""
        if self._state is SessionState.CLOSED:
            return
        if self._close_info is None:
            self._mark_closed(*protocol.CLOSE_INTERRUPTED)
        self._set_state(SessionState.CLOSED)
        if self._receiver is not None:
            self._receiver.release()
            self._receiver = None
        self._outbox = None
        self._queued = 0
        # Drop every command but the attaches, which the actor still answers.
        self._mailbox[:] = [command for command in self._mailbox if command[0] == _ATTACH]
        self._endpoint._forget(self)


async def _reraise(exc: Exception) -> None:
    raise exc
