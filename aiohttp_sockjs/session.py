"""The session actor: one task that drives a session's :class:`SessionMachine`.

A :class:`Session` is what the application holds. Its actor is the only
caller of the session's :class:`~aiohttp_sockjs.machine.SessionMachine`:
everyone else (the application's ``send``/``close``, the transports, the
sweeper, shutdown) posts a typed command to the session's mailbox, and the
actor applies commands in order, performing the actions the machine
returns. Two channels cross the actor's boundary and nothing else does:

- the mailbox (anyone → actor), which also bounds what waits in it, so a
  sender cannot grow memory while the actor is busy writing;
- the inbox (actor → application), the client's messages not taken yet.

Transports talk to the session through the :class:`Receiver` interface and
a few ``_``-prefixed entry points; the session knows no transport.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import types
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from . import protocol
from .exceptions import SessionClosed, SessionMisuse
from .machine import (
    Abort,
    Action,
    Deliver,
    Finished,
    NotifyClosed,
    PauseInbound,
    Release,
    ResumeInbound,
    SendClose,
    SendHeartbeat,
    SendMessages,
    SendOpen,
    SessionMachine,
    SessionState,
    admits,
)

if TYPE_CHECKING:
    from aiohttp import web

    from ._transports import SenderTurn
    from .endpoint import Endpoint

__all__ = ["Receiver", "Session", "SessionState"]

log = logging.getLogger("aiohttp_sockjs")

_CLOSED: Final = SessionState.CLOSED


class Receiver(abc.ABC):
    """A connection that carries frames to the client, as the session sees it.

    Each receiving transport implements this. The session calls these
    methods from its actor only, one at a time. A ``send_*`` method returns
    ``False`` when the connection takes no more frames (a polling request
    answered, a streaming response past its size limit, a write that
    failed); the session then forgets the receiver.
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

        Besides the actor, the mailbox calls this when the send bound is
        crossed while the actor waits on a write to this connection: the
        write then fails, and the actor carries on. It touches the
        connection only, never the session.
        """

    #: Whether the ``*_now`` methods below can ever succeed.
    sends_now: bool = False
    #: Whether the connection carries one frame only (a polling request):
    #: after a ``*_now`` method wrote, the session lets it go, as when the
    #: awaited twin returns ``False``.
    single_frame: bool = False

    def send_messages_now(self, messages: list[str]) -> bool:
        """Deliver ``messages`` at once, without waiting, if the connection allows.

        Returns ``True`` only if the frame was written exactly as
        :meth:`send_messages` would have written it, in a call that would
        have completed without suspending and returned ``True``. Returns
        ``False`` with nothing written otherwise; the session then awaits
        :meth:`send_messages`. The default never writes. (A heartbeat's
        ping may also report ``False`` when its write found the connection
        gone: the awaited twin then fails at once, as it should.)
        """
        return False

    def send_heartbeat_now(self) -> bool:
        """:meth:`send_heartbeat` without waiting, on the terms of :meth:`send_messages_now`."""
        return False

    def send_open_now(self) -> bool:
        """:meth:`send_open` without waiting, on the terms of :meth:`send_messages_now`."""
        return False

    def release(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """The session has let go of this connection: end it if it still waits."""

    def unanswered(self) -> bool:
        """Whether the liveness probe sent with the last heartbeat is still unanswered.

        A websocket sends a ping with each heartbeat; the session asks this
        at the next one. Connections that send no probe answer ``False``.
        """
        return False


# --- commands --------------------------------------------------------------


@dataclass(slots=True)
class Attach:
    """A connection that can carry frames arrived."""

    receiver: Receiver


@dataclass(slots=True)
class Detach:
    """A connection ended; ``interrupted`` if its client went away."""

    receiver: Receiver
    interrupted: bool


@dataclass(slots=True)
class Send:
    """The application queued encoded messages (``size`` characters in all).

    Sends made back to back join the Send at the mailbox's tail: one
    command per burst, not per message.
    """

    messages: list[str]
    size: int


@dataclass(slots=True, frozen=True)
class Batch:
    """A batch of encoded messages sent whole (``send_many``, ``broadcast_many``).

    Never changed once made, so that every recipient of a broadcast can
    hold the same one; a later send joins it into a new :class:`Send`.
    """

    messages: tuple[str, ...]
    size: int


@dataclass(slots=True)
class Incoming:
    """The client sent messages (``size`` characters in all)."""

    messages: list[str]
    size: int
    processed: asyncio.Future[None] | None = None


@dataclass(slots=True)
class Consumed:
    """The application took messages while inbound was paused."""


@dataclass(slots=True)
class Close:
    """Close the session."""

    code: int
    reason: str


@dataclass(slots=True)
class Tick:
    """The sweeper found the session's deadline due."""


@dataclass(slots=True)
class Overflow:
    """The mailbox saw the send bound crossed while the actor was writing."""


@dataclass(slots=True)
class Shutdown:
    """The server is going away."""


# A lone encoded message is posted as the bare string, a Send of one, and
# a batch as a Batch that every recipient of a broadcast shares: a
# broadcast then leaves no new container for the collector in each
# recipient's mailbox until its step (with thousands of sessions, those
# containers were what made broadcasts trigger full collections). A later
# send joins them into a Send.
Command = (
    Attach | Detach | Send | str | Batch | Incoming | Consumed | Close | Tick | Overflow | Shutdown
)


def _as_send(command: Command) -> Send | None:
    """``command`` as a Send that may grow, if it is a send.

    A lone message or a batch gives a new Send of its messages (a batch is
    never grown in place: it may be shared); a Send is itself.
    """
    if type(command) is Send:
        return command
    if type(command) is str:
        return Send([command], len(command))
    if type(command) is Batch:
        return Send(list(command.messages), command.size)
    return None


_TICK: Final = Tick()
_CONSUMED: Final = Consumed()
_OVERFLOW: Final = Overflow()
_SHUTDOWN: Final = Shutdown()
_WRITES: Final = (SendMessages, SendHeartbeat, SendOpen, SendClose)

Write = SendOpen[Receiver] | SendHeartbeat[Receiver] | SendMessages[Receiver] | SendClose[Receiver]


class Session:
    """One SockJS session, as the application sees it.

    Iterate it to receive messages (``async for message in session``), call
    :meth:`send` to queue a message and :meth:`close` to end it. The session
    ends when the handler returns, when the client goes away, or when it
    expires with no connection.
    """

    __slots__ = (
        "__weakref__",
        "_actions",
        "_busy",
        "_close_info",
        "_close_waiter",
        "_data",
        "_endpoint",
        "_finished",
        "_gate",
        "_handler_task",
        "_id",
        "_inbox",
        "_inbox_size",
        "_inbox_waiter",
        "_machine",
        "_mailbox",
        "_overflow_posted",
        "_owed",
        "_pace_until",
        "_parked",
        "_pending_incoming",
        "_pending_sends",
        "_pressured",
        "_raw",
        "_sender_turn",
        "_slack",
        "_streak",
        "_task",
        "_traffic",
        "_websocket",
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
        # The endpoint's counters, held here to save a lookup per batch.
        self._traffic = endpoint._traffic
        # The id the client chose (None for a raw websocket). Not public: it
        # is neither a secret nor a user identity, and apps have no use for it.
        self._id = session_id
        #: The aiohttp request that opened the session (headers, cookies,
        #: remote address, match info); kept for the session's whole life.
        self.request = request
        #: The name of the transport that opened the session, e.g. ``"websocket"``.
        self.transport = transport
        # Made on first use: most sessions of a simple app never need one.
        self._data: dict[str, Any] | None = None
        self._raw = raw
        self._websocket = websocket
        self._machine: SessionMachine[Receiver] = SessionMachine(
            endpoint.limits, endpoint.clock(), websocket=websocket
        )
        # Written by the actor only (NotifyClosed, Finished); read by anyone.
        self._close_info: tuple[int, str] | None = None
        self._finished = False
        self._close_waiter: asyncio.Future[None] | None = None
        # The mailbox. A list, not a deque: an empty deque is 760 bytes, an
        # empty list 56, and it rarely holds more than a command or two.
        self._mailbox: list[Command] = []
        self._pending_sends = 0  # characters of the Send commands in it
        self._pending_incoming = 0  # characters of the Incoming commands in it
        # How many more characters may be posted before a send must be
        # checked against the bound the long way (_admit_send): at most half
        # the bound minus what the machine and the mailbox hold, so that
        # sends within it cross neither the bound nor the pressure mark.
        # Only _put_send adds to what is held, and it takes from this as it
        # does; the actor only takes away (it writes, or drops), which
        # leaves this a safe underestimate. Negative once sends are dropped
        # (an overflow posted, the session finished), so that every send
        # goes the long way and finds out.
        self._slack = 0
        self._overflow_posted = False
        # Whether the actor is idle: no step running or scheduled, no write
        # in progress, no task. Whoever turns it False owns the next step.
        # Starts False: _start schedules the first step.
        self._parked = False
        # Whether the handler's task owns the next step: it turned _parked
        # False by a send, and _HandlerRun runs the step as it suspends.
        self._owed = False
        # Actions the machine returned and the actor has yet to perform:
        # the running step's list, kept while the actor awaits a write;
        # None while the actor is parked, so an idle session holds no list.
        self._actions: list[Action[Receiver]] | None = None
        # The receiver the actor is awaiting a write to, if any.
        self._busy: Receiver | None = None
        # The inbox: made with the first message, idle sessions need none.
        self._inbox: deque[str] | None = None
        self._inbox_size = 0
        self._inbox_waiter: asyncio.Future[None] | None = None
        self._streak = False
        # Whether this session's backlog is over half its bound (published
        # to the endpoint by the actor), and until when a handler's batch may
        # wait for such sessions to drain.
        self._pressured = False
        self._pace_until = 0.0
        # Set while inbound is paused; transports wait on it before reading more.
        self._gate: asyncio.Future[None] | None = None
        self._sender_turn: SenderTurn | None = None
        self._task: asyncio.Task[None] | None = None
        self._handler_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Session {self.transport} {self._machine.state.value}>"

    # --- the application's side ------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint this session belongs to (for broadcast and the session list)."""
        return self._endpoint

    @property
    def data(self) -> dict[str, Any]:
        """Free storage for the application's per-session state (a dict)."""
        data = self._data
        if data is None:
            data = self._data = {}
        return data

    @data.setter
    def data(self, value: dict[str, Any]) -> None:
        self._data = value

    @property
    def state(self) -> SessionState:
        """The session's current :class:`SessionState`."""
        return self._machine.state

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

    # --- rooms (issue 10): the registry lives on the endpoint ---

    def join(self, room: str) -> None:
        """Join ``room``: broadcasts to it reach this session (see :meth:`Endpoint.broadcast`).

        Joining twice is the same as once. The session leaves its rooms when
        it ends; a closed session joins nothing.
        """
        self._endpoint.rooms.join(self, room)

    def leave(self, room: str) -> None:
        """Leave ``room``; leaving a room the session is not in does nothing."""
        self._endpoint.rooms.leave(self, room)

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this session is in."""
        return self._endpoint.rooms.rooms_of(self)

    def send(self, message: str) -> None:
        """Queue ``message`` for the client.

        It goes out on the current connection, or with the next one the
        client opens. Sending on a closed session does nothing: iterate the
        session (or check :attr:`closed`) to learn that it has ended. Never
        waits; past ``max_queue_size`` undelivered characters the endpoint's
        ``queue_overflow`` policy applies.
        """
        if self._close_info is not None:
            return
        if self._raw:
            if type(message) is not str:
                raise TypeError(f"SockJS messages are str, not {type(message).__name__}")
            self._put_send(message)
        else:
            self._put_send(protocol.encode_message(message))

    def send_many(self, messages: Iterable[str]) -> None:
        """Queue several messages for the client, in order.

        The same as calling :meth:`send` for each, but cheaper per message,
        and the batch goes out in one frame when the connection takes it at
        once (a websocket that is not busy writing, say). Use it when a
        handler has several messages to send at the same moment: the
        replies to a :meth:`receive_many` batch, or a burst of updates.
        """
        if self._close_info is not None:
            return
        if self._raw:
            batch = tuple(messages)
            for message in batch:
                if type(message) is not str:
                    raise TypeError(f"SockJS messages are str, not {type(message).__name__}")
        else:
            batch = tuple([protocol.encode_message(m) for m in messages])
        if batch:
            self._put_sends(Batch(batch, sum(map(len, batch))))

    def _send_encoded(self, raw: str, encoded: str) -> None:
        # For broadcast: the message is encoded once for every session.
        if self._close_info is None:
            self._put_send(raw if self._raw else encoded)

    def _send_encoded_many(self, raw: Batch, encoded: Batch) -> None:
        # For broadcast_many: each batch is made once for every session.
        if self._close_info is None:
            self._put_sends(raw if self._raw else encoded)

    async def close(self, code: int = 3000, reason: str = "Go away!") -> None:
        """Close the session with ``code`` and ``reason``.

        The client gets the close frame on its current connection, or on the
        next one it opens. Returns once the session has taken the close.
        Closing a closed session does nothing.
        """
        if self._close_info is not None:
            return
        self._post(Close(int(code), str(reason)))
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
            message = inbox.popleft()
            self._inbox_size -= len(message)
            if self._gate is not None and _CONSUMED not in self._mailbox:
                self._post(_CONSUMED)
            return message
        if self._close_info is not None:
            return None
        if self._inbox_waiter is not None:
            raise SessionMisuse("Concurrent call to receive() is not allowed")
        waiter = self._inbox_waiter = asyncio.get_running_loop().create_future()
        return waiter

    async def _fair(self) -> None:
        # While some session of the endpoint holds more than half its send
        # bound, the next message of a batch waits for it to drain (a
        # streaming client reconnecting, say), for at most disconnect_delay
        # per batch: one client's large batch then cannot overflow the
        # queues of readers that keep up. Otherwise messages are handed out
        # back to back, and what the handler sends for them shares frames.
        # The batch's allowance starts with its first wait, so a batch that
        # never meets pressure reads no clock.
        endpoint = self._endpoint
        if not self._pace_until:
            self._pace_until = endpoint.clock() + endpoint.limits.disconnect_delay
        await asyncio.sleep(0)  # let the actors flush what is queued
        await endpoint._relief(self._pace_until - endpoint.clock())

    async def receive(self) -> str:
        """Wait for the next message from the client.

        Raises :class:`SessionClosed` once the session is closed and every
        message that arrived before has been received.
        """
        if self._streak and self._endpoint._pressured and self._inbox:
            await self._fair()
        while True:
            got = self._next_message()
            if isinstance(got, str):
                # A message handed out without waiting is part of a batch.
                self._streak = True
                return got
            await self._wait_for_message(got)

    async def _wait_for_message(self, waiter: asyncio.Future[None] | None) -> None:
        """Await ``waiter`` from :meth:`_next_message`; its ``None`` (closed) raises."""
        if waiter is None:
            assert self._close_info is not None
            raise SessionClosed(*self._close_info)
        # Waiting: the batch, if any, is over.
        self._streak = False
        self._pace_until = 0.0
        try:
            await waiter
        finally:
            self._inbox_waiter = None

    async def receive_many(self, limit: int | None = None) -> list[str]:
        """Wait for the next messages from the client, and take all that arrived.

        Returns at least one message, and at most ``limit`` when given: the
        messages of one client frame, or of several that arrived together.
        Raises :class:`SessionClosed` like :meth:`receive`. While the
        endpoint holds back fast senders (see ``max_queue_size``), it
        returns one message at a time, as :meth:`receive` paces them.

        With :meth:`send_many` this makes the Python work per batch rather
        than per message, which is what a busy echo, relay or game loop
        wants.
        """
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        if self._endpoint._pressured:
            return [await self.receive()]
        while not (inbox := self._inbox):
            got = self._next_message()  # with the inbox empty: None or a waiter
            assert not isinstance(got, str)
            await self._wait_for_message(got)
        if self._endpoint._pressured:
            limit = 1  # it came while this waited: the next call paces
        if limit is None or limit >= len(inbox):
            batch = list(inbox)
            inbox.clear()
        else:
            batch = [inbox.popleft() for _ in range(limit)]
        self._inbox_size -= sum(map(len, batch))
        self._streak = True
        if self._gate is not None and _CONSUMED not in self._mailbox:
            self._post(_CONSUMED)
        return batch

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        # Not a call to receive(): a handler idling in ``async for`` then
        # holds one coroutine, not two.
        while True:
            inbox = self._inbox
            if inbox and self._gate is None and not (self._streak and self._endpoint._pressured):
                # _next_message() spelled out for the common case, with no
                # pacing or paused inbound to see to: this runs once per
                # client message.
                message = inbox.popleft()
                self._inbox_size -= len(message)
                self._streak = True
                return message
            if self._streak and self._endpoint._pressured and inbox:
                await self._fair()
            got = self._next_message()
            if isinstance(got, str):
                self._streak = True
                return got
            if got is None:
                raise StopAsyncIteration
            # Waiting: the batch, if any, is over.
            self._streak = False
            self._pace_until = 0.0
            try:
                await got
            finally:
                self._inbox_waiter = None

    # --- the mailbox ------------------------------------------------------

    def _post(self, command: Command) -> None:
        """Queue ``command`` for the actor and wake it if it is parked."""
        if self._finished:
            # Found just before the session ended: do not leave it waiting.
            if type(command) is Attach:
                command.receiver.release()
            elif type(command) is Incoming and command.processed is not None:
                command.processed.set_result(None)
            return
        self._mailbox.append(command)
        self._post_wake()

    def _put_send(self, message: str) -> None:
        """Post a Send, keeping what waits for the actor within the send bound.

        The actor may be awaiting a write to a client that stopped reading;
        the sends made meanwhile wait here, so the bound is checked here too,
        by the machine's own rule, against what the machine holds plus what
        waits in the mailbox.
        """
        size = len(message)
        slack = self._slack - size
        if slack < 0:
            checked = self._admit_send(size)
            if checked is None:
                return
            slack = checked
        self._slack = slack
        self._pending_sends += size
        mailbox = self._mailbox
        if mailbox:
            last = mailbox[-1]
            if type(last) is Send:
                # The burst's next message: _tail_send() spelled out for
                # the common case, as this runs for every message sent.
                last.messages.append(message)
                last.size += size
                return
            tail = self._tail_send()
            if tail is not None:
                tail.messages.append(message)
                tail.size += size
                return
        # _post() and _post_wake() spelled out (the checks of _finished and
        # of the overflow are made by _admit_send, see _slack): this runs
        # for every burst a handler sends, and for every recipient of a
        # broadcast.
        mailbox.append(message)
        if self._parked:
            self._wake_for_send()

    def _put_sends(self, batch: Batch) -> None:
        """Post a batch of messages, in order.

        A batch within the bound is posted as one command; one that would
        cross it goes through :meth:`_put_send` message by message, so that
        the bound applies to each as if it had been sent alone.
        """
        size = batch.size
        slack = self._slack - size
        if slack < 0:
            held = self._machine.backlog + self._pending_sends
            if held + size > self._endpoint.limits.max_queue_size:
                for message in batch.messages:
                    self._put_send(message)
                return
            checked = self._admit_send(size)
            if checked is None:
                return
            slack = checked
        self._slack = slack
        self._pending_sends += size
        tail = self._tail_send()
        if tail is not None:
            tail.messages.extend(batch.messages)
            tail.size += size
            return
        self._mailbox.append(batch)
        if self._parked:
            self._wake_for_send()

    def _tail_send(self) -> Send | None:
        """The mailbox's last command as a Send that may grow, if it is a send."""
        mailbox = self._mailbox
        if not mailbox:
            return None
        tail = _as_send(mailbox[-1])
        if tail is not None:
            mailbox[-1] = tail
        return tail

    def _wake_for_send(self) -> None:
        """Have the parked actor take the Send just posted."""
        self._parked = False
        endpoint = self._endpoint
        if endpoint._running_handler is self:
            # Sent by this session's own handler: its task steps the actor
            # as it suspends, the reply then goes out with no loop callback
            # (see _HandlerRun).
            self._owed = True
            return
        # Endpoint._wake() spelled out: this runs for every recipient of a
        # broadcast.
        ready = endpoint._ready
        if not ready:
            asyncio.get_running_loop().call_soon(endpoint._step_ready)
        ready.append(self)

    def _admit_send(self, size: int) -> int | None:
        """Apply the send bound to a send of ``size`` characters, the long way.

        Returns the new :attr:`_slack` once the send may be posted, or
        ``None`` when it must be dropped.
        """
        if self._overflow_posted or self._finished:
            return None
        limits = self._endpoint.limits
        held = self._machine.backlog + self._pending_sends
        # The machine's rule, admits(), spelled out.
        if held and held + size > limits.max_queue_size:
            if limits.queue_overflow == "close":
                # Counted when the session closes for it (NotifyClosed).
                self._overflow_posted = True
                self._pending_sends = 0
                self._slack = -1
                # Ahead of everything, and the sends waiting here dropped.
                self._mailbox[:] = [
                    _OVERFLOW,
                    *(c for c in self._mailbox if type(c) not in (Send, str, Batch)),
                ]
                busy = self._busy
                if busy is not None:
                    busy.abort()  # unblock the actor's write; see Receiver.abort
                self._post_wake()
                return None
            # drop_oldest: drop the oldest sends still waiting here; the
            # machine drops from its own queue as it takes this one.
            self._endpoint._overflows += 1
            mailbox = self._mailbox
            for i, command in enumerate(mailbox):
                send = _as_send(command)
                if send is None:
                    continue
                mailbox[i] = send
                waiting = send.messages
                while waiting and not admits(
                    self._machine.backlog + self._pending_sends, size, limits.max_queue_size
                ):
                    dropped = len(waiting.pop(0))
                    send.size -= dropped
                    self._pending_sends -= dropped
            held = self._machine.backlog + self._pending_sends
        held += size
        if not self._pressured and 2 * held > limits.max_queue_size:
            # Raised here, at once, so that a handler's next message waits
            # (see _fair); only the actor lowers it, once the queue drains.
            self._pressured = True
            self._endpoint._pressure(True)
        return limits.max_queue_size // 2 - held

    def _post_wake(self) -> None:
        """Have a parked actor take what the mailbox holds (see _step_parked)."""
        if self._parked:
            self._parked = False
            self._endpoint._wake(self)

    # --- entry points for transports and the endpoint ----------------------

    def _attach(self, receiver: Receiver) -> None:
        if self._parked:
            # As _tick: the actor is parked with nothing in progress, so the
            # connection is taken here, under the invariant of
            # _step_parked: a poll is answered from what is queued before
            # its handler even awaits, with no loop callback in between.
            self._parked = False
            self._mailbox.append(Attach(receiver))
            self._step_parked()
            return
        self._post(Attach(receiver))

    def _detach(self, receiver: Receiver, interrupted: bool) -> None:
        self._post(Detach(receiver, interrupted))

    def _deliver(
        self, messages: list[str], size: int, wait: bool = False
    ) -> asyncio.Future[None] | None:
        """Hand client messages to the session.

        Returns ``None`` when they were taken at once, or may be left
        queued for the actor; else a future that is done once the actor has
        taken them. That is when ``wait`` asks for it, or when what waits
        for the actor would pass ``max_inbox_size``; a websocket then reads
        no more until the actor has caught up. Either way, the caller then
        waits for :meth:`_room` before reading more from the client.
        """
        if self._parked:
            # The actor is parked with nothing in progress (the invariant of
            # _step_parked), so its step would take this command first.
            if self._machine.delivers_plainly(size, self._inbox_size):
                # ...and the machine's answer would be only to deliver, which
                # is nearly always the case: do that here, leaving the actor
                # parked. No command, no step, no task switch per frame.
                self._take_in(messages, size)
                return None
            self._parked = False
            self._mailbox.append(Incoming(messages, size))
            self._step_parked()
            return None
        self._pending_incoming += size
        if wait or self._pending_incoming > self._endpoint.limits.max_inbox_size:
            processed = asyncio.get_running_loop().create_future()
            self._post(Incoming(messages, size, processed))
            return processed
        self._post(Incoming(messages, size))
        return None

    async def _room(self) -> None:
        """Wait until the application's inbox has room for more client messages."""
        gate = self._gate
        if gate is not None:
            await asyncio.shield(gate)

    def _tick(self) -> None:
        """The sweeper found the deadline due (see :meth:`Endpoint.sweep`)."""
        if self._parked:
            # The actor is parked with nothing in progress: take the tick
            # now, from the sweeper, under the invariant of _step_parked
            # (see there), so a heartbeat that can be written at once
            # starts no task and schedules no callback. The caller must not
            # be iterating the endpoint's session table: the step may finish
            # the session, which then leaves it.
            self._parked = False
            self._mailbox.append(_TICK)
            self._step_parked()
            return
        busy = self._busy
        if busy is not None and self._machine.write_overdue(self._endpoint.clock()):
            # The actor is stuck writing to a client that stopped reading;
            # cut the connection, as the mailbox does on overflow (see
            # Receiver.abort): the write fails and the actor carries on.
            busy.abort()
        if _TICK not in self._mailbox:
            self._post(_TICK)

    def _shutdown(self) -> None:
        self._post(_SHUTDOWN)

    # --- the actor --------------------------------------------------------

    def _start(self, handler: Callable[[Session], Any]) -> None:
        """Start the actor and then the application's handler."""
        # The first step (the o frame, usually) runs here: nobody else can
        # own it yet (a new session is not parked, so posts only queue).
        self._step_parked()
        try:
            coro = handler(self)
        except Exception as exc:  # a handler that failed before it could await
            coro = _reraise(exc)
        if type(coro) is types.CoroutineType:
            self._handler_task = asyncio.ensure_future(_HandlerRun(self, coro))
        else:
            task = self._handler_task = asyncio.ensure_future(coro)
            task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        # The done callback of a handler that is not a coroutine (those end
        # in _HandlerRun, with no callback to hold).
        if task.cancelled():
            self._handler_task = None
            self._endpoint._handler_tasks.discard(task)
            return
        self._handler_ended(task.exception())

    def _handler_ended(self, error: BaseException | None) -> None:
        """The handler returned, or failed with ``error``: close the session for it."""
        task = self._handler_task
        if task is not None:
            # The task holds its _HandlerRun, which holds this session: let
            # go of it, or the three would be garbage only the cyclic
            # collector finds.
            self._handler_task = None
            self._endpoint._handler_tasks.discard(task)
        if error is not None and not isinstance(error, SessionClosed):
            log.error("SockJS handler failed; closing its session", exc_info=error)
            # A plain close: the client must still learn the reason on its
            # next request, until the session expires.
            self._post(Close(*protocol.CLOSE_INTERNAL_ERROR))
            return
        self._post(Close(*protocol.CLOSE_GO_AWAY))

    def _step_parked(self) -> None:
        """Run the actor's next step here; hand a write that must wait to a task.

        The caller has just turned ``_parked`` False (or is the endpoint's
        callback for the one who did): the actor has an empty action list,
        nothing in progress and no task, and the caller is the only one
        allowed to step it. Running :meth:`_step` here is then exactly what
        an actor task would do: the same step, in the same order. When the
        step returns a write that cannot complete at once, a task is made
        for it (:meth:`_drive`) and owns the actor until it parks again; an
        idle session holds no task at all.
        """
        try:
            action = self._step()
        except Exception:
            log.exception("SockJS session failed; closing it")
            self._fail()
            action = None
        if action is not None:
            self._task = asyncio.ensure_future(self._drive(action))
        elif not self._finished:
            self._parked = True
        elif self._mailbox:
            self._task = asyncio.ensure_future(self._answer_late())

    async def _drive(self, action: Write) -> None:
        """The actor while it waits on writes: write, step, until it may park."""
        try:
            while True:
                await self._write(action)
                if self._finished:
                    break
                try:
                    next_action = self._step()
                except Exception:
                    log.exception("SockJS session failed; closing it")
                    self._fail()
                    break
                if next_action is None:
                    if not self._finished:
                        self._parked = True
                        return
                    break
                action = next_action
        except asyncio.CancelledError:
            # Shutdown cancels an actor stuck on a client: still end cleanly.
            self._fail(quiet=True)
            raise
        finally:
            self._busy = None
            if self._finished:
                await self._answer_late()

    async def _answer_late(self) -> None:
        """Answer the connections that arrived while the session was ending.

        They get its close frame rather than waiting forever.
        """
        close = self._close_info or protocol.CLOSE_INTERRUPTED
        mailbox = self._mailbox
        while mailbox:
            command = mailbox.pop(0)
            if type(command) is Attach:
                try:
                    await command.receiver.send_close(*close)
                except BaseException:
                    command.receiver.release()
                    raise
            elif type(command) is Incoming and command.processed is not None:
                command.processed.set_result(None)

    def _step(self) -> Write | None:
        """Apply commands and perform their actions until one must be awaited.

        The one place that calls the machine. Returns the write to await,
        or ``None`` once the mailbox is empty (or the session finished).
        """
        actions = self._actions
        if actions is None:
            actions = self._actions = []
        mailbox = self._mailbox
        machine = self._machine
        # Whether the last command taken was flushed with it (send_and_flush):
        # nothing has been queued since, so no flush() is due.
        flushed = False
        while True:
            while actions:
                action = actions.pop(0)
                if type(action) in _WRITES:
                    if self._write_now(action, actions):  # type: ignore[arg-type]
                        continue
                    if self._pressured:
                        self._publish_pressure()
                    return action  # type: ignore[return-value]
                self._perform(action)
            if self._finished:
                return None
            if not mailbox:
                # Every command applied: what they queued goes out together.
                batch = [] if flushed else machine.flush()
                if not batch:
                    self._actions = None
                    if self._pressured:
                        self._publish_pressure()
                    return None
                actions.extend(batch)
                continue
            command = mailbox.pop(0)
            # Sends, the most frequent commands by far, ahead of the match.
            messages: list[str] | None
            if type(command) is str:
                messages = [command]
                size = len(command)
            elif type(command) is Send:
                messages = command.messages
                size = command.size
            elif type(command) is Batch:
                messages = list(command.messages)
                size = command.size
            else:
                messages = None
            if messages is not None:
                self._pending_sends -= size
                if mailbox:
                    actions.extend(machine.send_all(messages, size))
                    continue
                flushed = True
                receiver = machine.sends_plainly(size, len(messages))
                if (
                    receiver is not None
                    and receiver.sends_now
                    and not receiver.single_frame
                    and receiver.send_messages_now(messages)
                ):
                    # The burst went straight out, and successfully: by the
                    # terms of sends_plainly, send_and_flush() and written()
                    # would have left the machine as it is. Counted as
                    # _write_now counts it. No action is left and the
                    # mailbox is empty: the step is over.
                    traffic = self._traffic
                    traffic.messages_out += len(messages)
                    traffic.chars_out += size
                    self._actions = None
                    if self._pressured:
                        self._publish_pressure()
                    return None
                actions.extend(machine.send_and_flush(messages, size))
                continue
            flushed = False
            now = self._endpoint.clock()
            # Cases by how often they come: ticks (the sweeper, for every
            # idle session), client messages, then the rest.
            match command:
                case Tick():
                    pending = bool(mailbox) and any(type(c) is Attach for c in mailbox)
                    receiver = machine.receiver
                    if receiver is None:
                        actions.extend(machine.tick(now, attach_pending=pending))
                    else:
                        actions.extend(
                            machine.tick(
                                now,
                                attach_pending=pending,
                                lost=receiver.interrupted(),
                                unanswered=receiver.unanswered(),
                            )
                        )
                case Incoming(messages, size, processed):
                    if self._pending_incoming:
                        self._pending_incoming = max(0, self._pending_incoming - size)
                    actions.extend(machine.incoming(messages, size, self._inbox_size, now))
                    if processed is not None:
                        processed.set_result(None)
                case Attach(receiver):
                    current = machine.receiver
                    gone = current is not None and current.interrupted()
                    actions.extend(machine.attach(receiver, now, current_gone=gone))
                case Detach(receiver, interrupted):
                    actions.extend(machine.detach(receiver, now, interrupted=interrupted))
                case Close(code, reason):
                    actions.extend(machine.close(code, reason, now))
                case Consumed():
                    actions.extend(machine.consumed(self._inbox_size))
                case Overflow():
                    self._overflow_posted = False
                    actions.extend(machine.overflow())
                case Shutdown():
                    actions.extend(machine.shutdown(now))

    def _publish_pressure(self) -> None:
        """Tell the endpoint once this session holds no more than half its send bound.

        Called while the flag is up (the caller checks, to save a call).

        Only the mailbox raises the flag (``_put_send``, as a send crosses
        half the bound): what the machine holds plus what waits for it grows
        only there, so the actor only ever lowers it.
        """
        if self._pressured and 2 * (self._machine.backlog + self._pending_sends) <= (
            self._endpoint.limits.max_queue_size
        ):
            self._pressured = False
            self._endpoint._pressure(False)

    def _write_now(self, action: Write, actions: list[Action[Receiver]]) -> bool:
        """Perform a write without waiting, if its connection allows; report it.

        Called from :meth:`_step` only, with the step's action list, to
        which the machine's answer to ``written`` is added. A receiver's
        ``*_now`` method writes only what its awaited twin would have
        written without suspending, so reporting ``written`` here is what
        :meth:`_write` would report.
        """
        receiver = action.receiver
        if not receiver.sends_now:
            return False
        kind = type(action)
        if kind is SendMessages:
            messages = action.messages  # type: ignore[union-attr]
            ok = receiver.send_messages_now(messages)
            if ok:
                # Counted as _write counts it, here rather than in a shared
                # helper: this runs once per delivery, and a call would cost
                # as much as the counting. Most batches hold one message.
                traffic = self._traffic
                count = len(messages)
                traffic.messages_out += count
                traffic.chars_out += len(messages[0]) if count == 1 else sum(map(len, messages))
        elif kind is SendHeartbeat:
            ok = receiver.send_heartbeat_now()
            if ok:
                self._traffic.heartbeats += 1  # as _write counts it
        elif kind is SendOpen:
            ok = receiver.send_open_now()
        else:
            return False
        if not ok:
            return False
        actions.extend(
            self._machine.written(receiver, not receiver.single_frame, self._endpoint.clock())
        )
        return True

    async def _write(self, action: Write) -> None:
        """Perform a write the machine asked for, and report its outcome."""
        receiver = action.receiver
        self._busy = receiver
        try:
            match action:
                case SendOpen():
                    ok = await receiver.send_open()
                case SendHeartbeat():
                    self._traffic.heartbeats += 1
                    ok = await receiver.send_heartbeat()
                case SendMessages(_, messages):
                    # Counted where the batch is handed to its connection.
                    traffic = self._traffic
                    traffic.messages_out += len(messages)
                    traffic.chars_out += sum(map(len, messages))
                    ok = await receiver.send_messages(messages)
                case SendClose(_, code, reason):
                    await receiver.send_close(code, reason)
                    return
        except Exception:
            log.exception("SockJS session failed; closing it")
            self._fail()
            return
        finally:
            self._busy = None
        interrupted = not ok and receiver.interrupted()
        now = self._endpoint.clock()
        actions = self._machine.written(receiver, ok, now, interrupted=interrupted)
        if self._actions is None:  # not expected: _step left its list for this write
            self._actions = actions
        else:
            self._actions.extend(actions)

    def _perform(self, action: Action[Receiver]) -> None:
        """Perform an action that needs no waiting."""
        match action:
            case Deliver(messages):
                self._take_in(messages, sum(map(len, messages)))
            case PauseInbound():
                self._gate = asyncio.get_running_loop().create_future()
            case ResumeInbound():
                gate = self._gate
                self._gate = None
                if gate is not None and not gate.done():
                    gate.set_result(None)
            case NotifyClosed(code, reason):
                self._close_info = (code, reason)
                endpoint = self._endpoint
                closed = endpoint._closed
                closed[code] = closed.get(code, 0) + 1
                if self._machine.overflowed:
                    endpoint._overflows += 1
                    log.info(
                        "SockJS session %s: send queue over %d characters; closing it",
                        protocol.loggable(self._id or self.transport),
                        self._endpoint.limits.max_queue_size,
                    )
                elif (code, reason) == protocol.CLOSE_RATE_LIMIT:
                    endpoint._refused["rate_limit"] += 1
                    log.info(
                        "SockJS session %s: over its rate limit; closing it",
                        protocol.loggable(self._id or self.transport),
                    )
                if self._close_waiter is not None and not self._close_waiter.done():
                    self._close_waiter.set_result(None)
                waiter = self._inbox_waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            case Release(receiver):
                receiver.release()
            case Abort(receiver):
                receiver.abort()
            case Finished():
                self._finished = True
                self._slack = -1
                if self._pressured:
                    self._pressured = False
                    self._endpoint._pressure(False)
                if self._actions:
                    self._actions.clear()  # the running step's: nothing more to perform
                self._actions = None
                self._pending_sends = 0
                # Drop every command but the attaches, which the actor answers.
                self._mailbox[:] = [c for c in self._mailbox if type(c) in (Attach, Incoming)]
                self._endpoint._forget(self)

    def _take_in(self, messages: list[str], size: int) -> None:
        """Append client messages to the inbox and wake the handler waiting for one."""
        inbox = self._inbox
        if inbox is None:
            self._inbox = deque(messages)
        else:
            inbox.extend(messages)
        self._inbox_size += size
        traffic = self._traffic
        traffic.messages_in += len(messages)
        traffic.chars_in += size
        waiter = self._inbox_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, quiet: bool = False) -> None:
        """End the session after a bug (ours or a receiver's), touching no other."""
        if self._finished:
            return
        machine = self._machine
        actions = machine.shutdown(self._endpoint.clock()) if quiet else machine.fail()
        for action in actions:
            if type(action) in _WRITES:
                # No waiting now: cut the connection instead.
                receiver: Receiver = action.receiver  # type: ignore[union-attr]
                receiver.abort()
                receiver.release()
                continue
            self._perform(action)


async def _reraise(exc: Exception) -> None:
    raise exc


class _HandlerRun(Coroutine[Any, Any, Any]):
    """A handler's coroutine, as its task runs it, stepping its session's actor as it suspends.

    The task drives this as it would the coroutine itself (``send`` and
    ``throw``). While the handler runs, the endpoint knows it
    (``_running_handler``), so a send to its own session leaves the actor's
    step to this task (``_owed``) instead of scheduling the endpoint's
    callback. The step then runs each time the handler suspends, whatever
    it waits for, and when it ends: what it sent since it last suspended
    goes out as one frame (a reply, typically), with no loop iteration of
    its own. An object of two slots rather than a wrapper coroutine: it
    costs an idle session 56 bytes, where a generator costs about 360.
    """

    __slots__ = ("_coro", "_session")

    def __init__(self, session: Session, coro: Coroutine[Any, Any, Any]) -> None:
        self._session = session
        self._coro = coro

    def send(self, value: Any) -> Any:
        """Resume the handler with ``value``."""
        return self._resume(self._coro.send, value)

    def throw(self, *args: Any) -> Any:
        """Resume the handler with an exception (the task's cancellation, say)."""
        return self._resume(self._coro.throw, *args)

    def _resume(self, method: Callable[..., Any], *args: Any) -> Any:
        session = self._session
        endpoint = session._endpoint
        outer = endpoint._running_handler
        endpoint._running_handler = session
        try:
            return method(*args)
        except StopIteration:
            session._handler_ended(None)
            raise
        except Exception as exc:
            # The handler failed. Dealt with here, the task then ends
            # plainly: it holds no exception that nobody would retrieve, and
            # needs no done callback (128 bytes a session).
            session._handler_ended(exc)
            raise StopIteration from None
        finally:
            endpoint._running_handler = outer
            if session._owed:
                # The handler turned _parked False (in _put_send) and so
                # owns this step, as a transport's task owns the one it runs.
                session._owed = False
                session._step_parked()

    def close(self) -> None:
        """Close the handler's coroutine."""
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._coro.__await__()
