"""The rules of one SockJS session, as a pure state machine (sans-I/O).

:class:`SessionMachine` owns every decision a session makes: the ``o``
frame once, 2010 to a second receiver, the close frame repeated to every
receiver until the session expires, 1002 when the client goes away, 1011
after a handler error, 1001 on shutdown, the one deadline that means "next
heartbeat" or "expire", the bound on undelivered outbound messages and its
policy, the bound on undelivered inbound messages, and the inbound rate
limit. It takes events (method calls, with the current time where time
matters) and returns :data:`Action` values for its driver to perform. It
knows no asyncio, no aiohttp and no transport: a receiver is an opaque
token to it.

The driver is the session's actor (:mod:`aiohttp_sockjs.actor`). After a
write action (:class:`~aiohttp_sockjs.actions.SendOpen`,
:class:`~aiohttp_sockjs.actions.SendHeartbeat`,
:class:`~aiohttp_sockjs.actions.SendMessages`) it reports the outcome with
:meth:`SessionMachine.written`; until then the machine counts that batch
as in flight and writes nothing else to that receiver. The actions are in
:mod:`aiohttp_sockjs.actions`, the limits in :mod:`aiohttp_sockjs.limits`.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Final, Generic, TypeVar

from .actions import (
    FINISHED,
    PAUSE,
    RESUME,
    Abort,
    Action,
    CutIfStuck,
    Deliver,
    NotifyClosed,
    Release,
    SendClose,
    SendHeartbeat,
    SendMessages,
    SendOpen,
)
from .limits import Limits, RateBucket, admits
from .protocol import (
    CLOSE_ANOTHER_CONNECTION,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_INTERRUPTED,
    CLOSE_NORMAL,
    CLOSE_QUEUE_OVERFLOW,
    CLOSE_RATE_LIMIT,
)

__all__ = ["SessionMachine", "SessionState"]

R = TypeVar("R")


class SessionState(enum.Enum):
    """Where a session is in its life."""

    #: Created; the ``o`` frame has not reached a receiver yet.
    NEW = "new"
    #: Open: messages flow both ways.
    OPEN = "open"
    #: Closed by either side; every receiving request still gets the close
    #: frame until the session expires.
    CLOSING = "closing"
    #: Gone: expired, or its websocket ended.
    CLOSED = "closed"


_NEW: Final = SessionState.NEW
_OPEN: Final = SessionState.OPEN
_CLOSING: Final = SessionState.CLOSING
_CLOSED: Final = SessionState.CLOSED


#: The codes of a client's websocket close frame that end its session normally.
_CLIENT_CLOSED_NORMALLY: Final = frozenset({1000, 1001})


class SessionMachine(Generic[R]):
    """The state and rules of one session; see the module docstring.

    ``websocket`` sessions live exactly as long as their one socket: when
    it ends, or the session closes, the session is finished.
    """

    __slots__ = (
        "_close",
        "_inbound_paused",
        "_inflight",
        "_last",
        "_limits",
        "_outbox",
        "_overflowed",
        "_queued",
        "_rate",
        "_receiver",
        "_state",
        "_websocket",
        "_writing",
        "deadline",
    )

    def __init__(self, limits: Limits, now: float, *, websocket: bool = False) -> None:
        self._limits = limits
        self._websocket = websocket
        self._state = _NEW
        self._close: tuple[int, str] | None = None
        #: When :meth:`tick` has something to do: a heartbeat, or expiry.
        #: A plain attribute, not a property: the sweeper reads it for every
        #: session on every sweep. Drivers read it; only the machine writes it.
        self.deadline = now + limits.disconnect_delay
        self._receiver: R | None = None
        # The receiver let go of last (see CutIfStuck).
        self._last: R | None = None
        # Whether a write to the receiver is in flight (reported by written()).
        self._writing = False
        # Undelivered encoded messages; _queued counts their characters and
        # _inflight those of the batch being written, so the bound holds
        # while a write waits on a client that stopped reading. Made with
        # the first message: idle sessions need none.
        self._outbox: deque[str] | None = None
        self._queued = 0
        self._inflight = 0
        self._overflowed = False
        self._inbound_paused = False
        rate = limits.rate_limit
        # The session's buckets, made only under a rate limit.
        self._rate = RateBucket(rate, now) if rate else None

    # --- what the driver may read -----------------------------------------

    @property
    def state(self) -> SessionState:
        """The session's :class:`SessionState`."""
        return self._state

    @property
    def close_info(self) -> tuple[int, str] | None:
        """``(code, reason)`` once the session is closing or closed."""
        return self._close

    @property
    def receiver(self) -> R | None:
        """The attached receiver, if any."""
        return self._receiver

    @property
    def writing(self) -> bool:
        """Whether a write to the receiver is in flight."""
        return self._writing

    @property
    def backlog(self) -> int:
        """Characters of outbound messages queued or being written."""
        return self._queued + self._inflight

    @property
    def overflowed(self) -> bool:
        """Whether the outbound bound closed this session."""
        return self._overflowed

    @property
    def inbound_paused(self) -> bool:
        """Whether client messages wait for room in the application's inbox."""
        return self._inbound_paused

    # --- events -------------------------------------------------------------

    def attach(self, receiver: R, now: float, *, current_gone: bool = False) -> list[Action[R]]:
        """A connection that can carry frames to the client arrived.

        ``current_gone`` says whether the receiver attached so far has lost
        its client (the driver asks the connection; the machine cannot).
        """
        actions: list[Action[R]] = []
        if self._state is _CLOSED:
            actions.append(SendClose(receiver, *(self._close or CLOSE_INTERRUPTED)))
            return actions
        current = self._receiver
        if current is not None and current_gone and not self._writing:
            actions += self.detach(current, now, interrupted=True)
            if self.state is _CLOSED:  # a websocket session ends with its socket
                actions.append(SendClose(receiver, *(self._close or CLOSE_INTERRUPTED)))
                return actions
            current = None
        if self._close is not None:
            # Closed: queued messages first, then the close frame, to every
            # receiver until the session expires. Queued messages go to the
            # receiver still being written to, if there is one.
            self.deadline = now + self._limits.disconnect_delay
            if self._outbox and current is None:
                self._receiver = receiver
                actions.append(self._take_batch(receiver))
                return actions
            actions.append(SendClose(receiver, *self._close))
            return actions
        if current is not None:
            actions.append(SendClose(receiver, *CLOSE_ANOTHER_CONNECTION))
            return actions
        self._receiver = receiver
        self.deadline = now + self._limits.heartbeat_delay
        if self._state is _NEW:
            self._state = _OPEN
            self._writing = True
            actions.append(SendOpen(receiver))
        return actions

    def written(
        self, receiver: R, ok: bool, now: float, *, interrupted: bool = False
    ) -> list[Action[R]]:
        """The write asked for last finished; ``ok`` is False if the connection took no more.

        A connection that takes no more is a polling request that was
        answered, a stream at its size limit, or a write that failed
        (``interrupted``: the client went away).
        """
        if receiver is not self._receiver:
            return []
        self._writing = False
        self._inflight = 0
        if not ok:
            return self.detach(receiver, now, interrupted=interrupted)
        if self._close is not None:
            if self._outbox:
                # Sent before the close, queued during that write: first these.
                return [self._take_batch(receiver)]
            # What was queued before the close went out: now the close frame.
            self._receiver = None
            self.deadline = now + self._limits.disconnect_delay
            actions: list[Action[R]] = [SendClose(receiver, *self._close)]
            if self._websocket:
                actions += self._finish()
            else:
                self._let_go(receiver, actions)
            return actions
        return []

    def flush(self) -> list[Action[R]]:
        """The driver has applied every command it had: write what is queued.

        Every message queued since the last write goes out as one frame,
        so sends made together share a frame.
        """
        receiver = self._receiver
        if receiver is None or self._writing or not self._outbox or self._state is not _OPEN:
            return []
        if self._close is not None:
            return []
        return [self._take_batch(receiver)]

    def detach(
        self, receiver: R, now: float, *, interrupted: bool, client_code: int | None = None
    ) -> list[Action[R]]:
        """``receiver`` ended; ``interrupted`` if its client went away.

        ``client_code``: the code of the client's websocket close frame, if
        one came. Any code but 1000 (normal closure) and 1001 (going away)
        means the client did not end the session normally: interrupted too.
        """
        if client_code is not None and client_code not in _CLIENT_CLOSED_NORMALLY:
            interrupted = True
        if receiver is not self._receiver:
            return []
        self._receiver = None
        self._writing = False
        self._inflight = 0
        actions: list[Action[R]] = [Release(receiver)]
        if not self._websocket:
            self._let_go(receiver, actions)
        if self._state is _CLOSED:
            return actions
        self.deadline = now + self._limits.disconnect_delay
        if interrupted and self._close is None:
            code = CLOSE_QUEUE_OVERFLOW if self._overflowed else CLOSE_INTERRUPTED
            actions += self._mark_closed(*code)
        if self._websocket:
            # A websocket session lives exactly as long as its socket.
            if self._close is None:
                actions += self._mark_closed(*CLOSE_NORMAL)
            actions += self._finish()
        return actions

    def send(self, message: str) -> list[Action[R]]:
        """The application queued ``message`` (already encoded).

        It goes out with the next :meth:`flush`.
        """
        if self._close is not None or self._state is _CLOSED:
            return []
        size = len(message)
        limits = self._limits
        if not admits(self._queued + self._inflight, size, limits.max_queue_size):
            if limits.queue_overflow == "close":
                return self.overflow()
            if self._inflight and self._inflight + size > limits.max_queue_size:
                # It cannot fit beside the batch being written, whatever is
                # dropped: drop this one and keep the queue.
                return []
            outbox = self._outbox
            while outbox and self._queued + self._inflight + size > limits.max_queue_size:
                self._queued -= len(outbox.popleft())
        outbox = self._outbox
        if outbox is None:
            outbox = self._outbox = deque()
        outbox.append(message)
        self._queued += size
        return []

    def send_all(self, messages: list[str], size: int) -> list[Action[R]]:
        """The application queued ``messages`` (``size`` characters in all), in order.

        The same as :meth:`send` for each, in one call.
        """
        held = self._queued + self._inflight
        if (
            self._close is None
            and self._state is not _CLOSED
            and (held + size <= self._limits.max_queue_size or (not held and len(messages) == 1))
        ):
            outbox = self._outbox
            if outbox is None:
                outbox = self._outbox = deque()
            outbox.extend(messages)
            self._queued += size
            return []
        actions: list[Action[R]] = []
        for message in messages:
            actions += self.send(message)
        return actions

    def send_and_flush(self, messages: list[str], size: int) -> list[Action[R]]:
        """:meth:`send_all`, then :meth:`flush`: for a driver whose last command was a send.

        With nothing queued or being written, ``messages`` go out as they
        are, as one batch (the action holds the list given here).
        """
        receiver = self.sends_plainly(size, len(messages))
        if receiver is not None:
            self._inflight = size
            self._writing = True
            return [SendMessages(receiver, messages)]
        actions = self.send_all(messages, size)
        actions += self.flush()
        return actions

    def sends_plainly(self, size: int, count: int) -> R | None:
        """The receiver a burst of ``count`` messages would go straight out to, if any.

        Returns the receiver when :meth:`send_and_flush` of the burst
        (``size`` characters) would answer only ``[SendMessages(receiver,
        messages)]`` and :meth:`written` of that write, succeeding, nothing:
        the two together then leave the machine as it was, so a driver that
        writes the burst at once, and successfully, may skip both calls.
        Otherwise ``None``. Changes nothing.
        """
        receiver = self._receiver
        if (
            receiver is not None
            and not self._writing
            and not self._outbox
            and not self._inflight
            and self._state is _OPEN
            and self._close is None
            and (size <= self._limits.max_queue_size or count == 1)
        ):
            return receiver
        return None

    def admit_posted(self, posted: int, size: int) -> int | None:
        """The send bound, for a send of ``size`` characters beside ``posted`` waiting ones.

        A query for the driver's mailbox, where sends wait while the driver
        is busy writing: what the machine holds, plus what waits, plus this
        send must stay within ``max_queue_size`` (an empty queue takes any
        one message). ``None``: the send may be posted. ``-1``: it may not,
        and the policy is ``"close"``: drop what waits and enter
        :meth:`overflow`. Otherwise (``"drop_oldest"``): drop the oldest
        waiting messages until at most that many characters wait, then post
        it; the machine drops from its own queue as it takes the send.
        Changes nothing.
        """
        limits = self._limits
        held = self._queued + self._inflight
        if admits(held + posted, size, limits.max_queue_size):
            return None
        if limits.queue_overflow == "close":
            return -1
        return max(0, limits.max_queue_size - size - held)

    def slack(self, posted: int) -> int:
        """How many characters the session may take before it holds over half its send bound.

        ``posted``: characters waiting in the driver's mailbox, beside what
        the machine holds. Negative: the session is over half its bound, and
        its endpoint counts it as pressured (broadcasts and a handler's
        sends then wait for relief); it is relieved at zero or more.
        Changes nothing.
        """
        return self._limits.max_queue_size // 2 - (self._queued + self._inflight + posted)

    def overflow(self) -> list[Action[R]]:
        """The outbound bound was crossed (by :meth:`send` or seen by the driver's channel).

        Frees the queue and closes the session with 1013; a write stuck on
        a client that stopped reading is cut.
        """
        if self._close is not None or self._state is _CLOSED:
            return []
        self._overflowed = True
        self._outbox = None
        self._queued = 0
        actions = self._mark_closed(*CLOSE_QUEUE_OVERFLOW)
        receiver = self._receiver
        if receiver is None:
            return actions
        if self._writing:
            # The write in flight fails once cut; written() then ends it.
            actions.append(Abort(receiver))
            return actions
        self._receiver = None
        actions.append(SendClose(receiver, *CLOSE_QUEUE_OVERFLOW))
        if self._websocket:
            actions += self._finish()
        else:
            self._let_go(receiver, actions)
        return actions

    def incoming(
        self,
        messages: list[str],
        size: int,
        inbox_size: int,
        now: float,
        *,
        charged: int | None = None,
    ) -> list[Action[R]]:
        """The client sent ``messages`` (``size`` characters in all).

        ``inbox_size`` is how many characters the application has not taken
        yet. The messages are always delivered (the driver reads no more
        while inbound is paused); past ``max_inbox_size`` inbound pauses.
        ``charged``, when given, is what the rate limit's bytes count
        instead of ``size``: all the client made the server inflate.
        """
        if self._close is not None or self._state is _CLOSED:
            return []
        buckets = self._rate
        if buckets is not None:
            spent = size if charged is None else charged
            rate = self._limits.rate_limit
            assert rate is not None  # the buckets are made with it
            if not buckets.take(rate, len(messages), spent, now):
                return self.close(*CLOSE_RATE_LIMIT, now)
        if not messages:
            return []  # only charged (a frame of whitespace)
        actions: list[Action[R]] = [Deliver(messages)]
        if inbox_size + size >= self._limits.max_inbox_size and not self._inbound_paused:
            self._inbound_paused = True
            actions.append(PAUSE)
        return actions

    def delivers_plainly(self, size: int, inbox_size: int) -> bool:
        """Whether :meth:`incoming` of ``size`` characters would only deliver them.

        True while the session is open, no rate limit applies and the
        inbox stays under its bound; :meth:`incoming` would then answer
        ``[Deliver(messages)]`` and change nothing, so the driver may hand
        the messages over itself. Changes nothing.
        """
        return (
            self._close is None
            and self._state is _OPEN
            and self._limits.rate_limit is None
            and inbox_size + size < self._limits.max_inbox_size
        )

    def consumed(self, inbox_size: int) -> list[Action[R]]:
        """The application took messages; ``inbox_size`` characters are left."""
        if self._inbound_paused and (
            inbox_size < self._limits.max_inbox_size or self._close is not None
        ):
            self._inbound_paused = False
            return [RESUME]
        return []

    def close(self, code: int, reason: str, now: float) -> list[Action[R]]:
        """Close the session with ``code`` and ``reason`` (either side's decision)."""
        if self._close is not None or self._state is _CLOSED:
            return []
        actions = self._mark_closed(code, reason)
        receiver = self._receiver
        if receiver is not None and not self._writing and self._outbox:
            # What was sent before the close goes first; written() then
            # sends the close frame.
            actions.append(self._take_batch(receiver))
        elif receiver is not None and not self._writing:
            self._receiver = None
            self.deadline = now + self._limits.disconnect_delay
            actions.append(SendClose(receiver, code, reason))
            if self._websocket:
                actions += self._finish()
            else:
                self._let_go(receiver, actions)
        # With a write in flight, written() sends the close frame after it.
        return actions

    def tick(
        self,
        now: float,
        *,
        attach_pending: bool = False,
        lost: bool = False,
        unanswered: bool = False,
    ) -> list[Action[R]]:
        """The sweeper found the deadline due: a heartbeat, or expiry.

        ``attach_pending``: a connection is already waiting to attach, so
        the session must not expire under it. ``lost``: the attached
        connection's client has gone (the driver asks the connection).
        ``unanswered``: the client has not answered the liveness probe sent
        with the last heartbeat (a websocket ping). Either drops the
        connection as interrupted, except that an unanswered probe is not
        held against a client while inbound is paused: its answer waits
        unread behind the messages the application has not made room for.
        """
        if now < self.deadline or self._state is _CLOSED:
            return []
        receiver = self._receiver
        if receiver is None:
            if attach_pending:
                return []
            return self._finish()
        if (lost or (unanswered and not self._inbound_paused)) and not self._writing:
            return [Abort(receiver), *self.detach(receiver, now, interrupted=True)]
        self.deadline = now + self._limits.heartbeat_delay
        if self._writing or self._close is not None:
            return []
        self._writing = True
        return [SendHeartbeat(receiver)]

    def ticks_plainly(self, now: float) -> R | None:
        """The receiver a due tick would only send a heartbeat to, if that is all.

        A query for the driver's plain tick: when the session is open and
        not closing, its receiver attached and idle, nothing queued, and the
        deadline due, :meth:`tick` (with the receiver live and its probe
        answered) would answer exactly ``[SendHeartbeat(receiver)]``, and
        ``written(receiver, True)`` then nothing. The driver may then write
        the heartbeat at once itself and report :meth:`beat` instead.
        Changes nothing.
        """
        if (
            now >= self.deadline
            and self._state is _OPEN
            and self._close is None
            and not self._writing
            and not self._outbox
        ):
            return self._receiver
        return None

    def beat(self, now: float) -> None:
        """A heartbeat went out at once (see :meth:`ticks_plainly`): the next is a period away.

        What :meth:`tick` and then ``written(receiver, True)`` would have
        left the machine as.
        """
        self.deadline = now + self._limits.heartbeat_delay

    def write_overdue(self, now: float) -> bool:
        """Whether the write in flight has outlived a whole heartbeat period past the deadline.

        A query for whoever finds the deadline due while the driver waits on
        a write (the tick cannot be taken meanwhile): the client stopped
        reading, and the write, started after the last heartbeat, has waited
        between one and two heartbeat periods. The driver then cuts the
        connection, and the write's failure detaches it as interrupted.
        """
        return self._writing and now >= self.deadline + self._limits.heartbeat_delay

    def shutdown(self, now: float) -> list[Action[R]]:
        """The server is going away: close with 1001 and finish."""
        held = self._receiver
        actions = self.close(*CLOSE_GOING_AWAY, now)
        receiver = self._receiver
        if receiver is not None:
            # Still writing: no waiting for it now. _finish() releases it.
            actions.append(Abort(receiver))
        # The close frame just sent is left to go out (shutdown has a timeout).
        return actions + self._finish(spare=held)

    def fail(self) -> list[Action[R]]:
        """A bug in the driver or a receiver: close with 1011 and finish, cutting the connection."""
        return self._cut_and_finish(CLOSE_INTERNAL_ERROR)

    def cancel(self) -> list[Action[R]]:
        """The driver was cancelled (shutdown's timeout, while it waited on a write).

        Close with 1001 and finish, with nothing more written: the
        connection is cut, its write in flight fails.
        """
        return self._cut_and_finish(CLOSE_GOING_AWAY)

    # --- helpers --------------------------------------------------------------

    def _take_batch(self, receiver: R) -> SendMessages[R]:
        # Every message queued so far goes out as one frame.
        outbox = self._outbox
        assert outbox
        messages = list(outbox)
        outbox.clear()
        self._inflight, self._queued = self._queued, 0
        self._writing = True
        return SendMessages(receiver, messages)

    def _mark_closed(self, code: int, reason: str) -> list[Action[R]]:
        self._close = (code, reason)
        if self._state is not _CLOSED:
            self._state = _CLOSING
        if self._inbound_paused:
            self._inbound_paused = False
            return [NotifyClosed(code, reason), RESUME]
        return [NotifyClosed(code, reason)]

    def _let_go(self, receiver: R, actions: list[Action[R]]) -> None:
        """Keep ``receiver`` as the last connection let go of (not a websocket's)."""
        previous, self._last = self._last, receiver
        if previous is not None:
            actions.append(CutIfStuck(previous))

    def _cut_and_finish(self, code: tuple[int, str]) -> list[Action[R]]:
        """Close with ``code`` unless closed already, cut the connection, finish: no writes."""
        actions: list[Action[R]] = []
        if self._close is None:
            actions += self._mark_closed(*code)
        receiver = self._receiver
        if receiver is not None:
            actions.append(Abort(receiver))  # _finish() releases it
        return actions + self._finish()

    def _finish(self, spare: R | None = None) -> list[Action[R]]:
        if self._state is _CLOSED:
            return []
        actions: list[Action[R]] = []
        if self._close is None:
            actions += self._mark_closed(*CLOSE_INTERRUPTED)
        self._state = _CLOSED
        receiver = self._receiver
        if receiver is not None:
            # Cut already where it must be (shutdown, fail).
            self._receiver = None
            actions.append(Release(receiver))
        last = self._last
        if last is not None:
            self._last = None
            if last is not spare:
                actions.append(CutIfStuck(last))
        self._outbox = None
        self._queued = 0
        self._inflight = 0
        self._writing = False
        actions.append(FINISHED)
        return actions
