"""A hypothesis stateful test of :class:`SessionMachine` against a small model.

Hypothesis drives one machine with random interleavings of every event a
driver may legally produce: receivers attach, their clients go away, writes
are reported (ok, answered, or failed) whenever the driver gets round to it,
the application sends, closes and consumes, the client sends, the fake clock
only moves forward, the sweeper ticks, the server shuts down. After every
event the actions returned are checked against what the model expects, and
the invariants the session must keep are checked on the machine itself.

No event loop: the machine is pure, and so is this test.
"""

from __future__ import annotations

import functools
import random
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from aiohttp_sockjs.actions import (
    Abort,
    Action,
    CutIfStuck,
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
)
from aiohttp_sockjs.limits import Limits, RateLimit
from aiohttp_sockjs.machine import SessionMachine, SessionState
from aiohttp_sockjs.protocol import (
    CLOSE_ANOTHER_CONNECTION,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_INTERRUPTED,
    CLOSE_NORMAL,
    CLOSE_QUEUE_OVERFLOW,
    CLOSE_RATE_LIMIT,
)

HEARTBEAT = 10.0
DISCONNECT = 5.0
WRITES = (SendOpen, SendHeartbeat, SendMessages, SendClose)
DATA_WRITES = (SendOpen, SendHeartbeat, SendMessages)


F = TypeVar("F", bound=Callable[..., None])


def flushing(event: F) -> F:
    """After ``event`` the driver's mailbox is empty, so it flushes."""

    @functools.wraps(event)
    def run(self: SessionModel, *args: Any, **kwargs: Any) -> None:
        event(self, *args, **kwargs)
        if self.in_flight and self.rng.random() < self.prompt:
            # The write in flight completed meanwhile: the driver reports it first.
            receiver = next(iter(self.in_flight))
            self._report(receiver, receiver not in self.aborted and receiver not in self.gone)
        self._flush()

    return run  # type: ignore[return-value]


class Rx:
    """A receiver token; equal only to itself."""

    def __init__(self, number: int) -> None:
        self.number = number

    def __repr__(self) -> str:
        return f"R{self.number}"


def index(message: str) -> int:
    """The send order of a message made by :meth:`SessionModel.send`."""
    return int(message[1 : message.index(">")])


rates = st.one_of(
    st.none(),
    st.builds(
        RateLimit,
        messages_per_second=st.sampled_from([None, 2.0, 20.0]),
        bytes_per_second=st.sampled_from([None, 16.0, 200.0]),
        burst=st.sampled_from([1.0, 2.0]),
    ),
)


class SessionModel(RuleBasedStateMachine):
    """The model: what the session owes the client and the application."""

    # --- setup ------------------------------------------------------------

    @initialize(
        websocket=st.booleans(),
        max_queue_size=st.integers(10, 40),
        policy=st.sampled_from(["close", "drop_oldest"]),
        max_inbox_size=st.integers(2, 12),
        rate=rates,
        start=st.sampled_from([0.0, 1000.0]),
        lifetime=st.integers(3, 40),
        ending=st.sampled_from(["app", "client", "driver"]),
        prompt=st.sampled_from([0.0, 0.5, 0.9]),
        rng=st.randoms(use_true_random=False),
    )
    def start(
        self,
        websocket: bool,
        max_queue_size: int,
        policy: Any,
        max_inbox_size: int,
        rate: RateLimit | None,
        start: float,
        lifetime: int,
        ending: str,
        prompt: float,
        rng: random.Random,
    ) -> None:
        self.limits = Limits(
            heartbeat_delay=HEARTBEAT,
            disconnect_delay=DISCONNECT,
            max_queue_size=max_queue_size,
            queue_overflow=policy,
            max_inbox_size=max_inbox_size,
            rate_limit=rate,
        )
        self.websocket = websocket
        self.now = start
        # Machine calls made, how many to make before the session may be
        # closed, and who closes it then: the application, the client (it
        # goes away, or its websocket ends) or the driver (overflow seen by
        # the mailbox, shutdown, a bug). So most runs spend their steps on an
        # open session, and each way of closing meets it in many states. A
        # bound, the rate limit or expiry may still close it at any time.
        self.calls = 0
        self.lifetime = lifetime
        self.ending = ending
        # How often a write completes between two events (as with the
        # session's actor, which awaits each write) rather than later, with
        # other events in between (which the machine allows).
        self.prompt = prompt
        self.rng = rng
        self.machine: SessionMachine[Rx] = SessionMachine(self.limits, start, websocket=websocket)
        # Receivers, as the driver knows them.
        self.receivers: list[Rx] = []
        self.accepted: list[Rx] = []  # taken by the machine at some point
        self.ended: set[Rx] = set()  # got SendClose or Release
        self.aborted: set[Rx] = set()
        self.released: list[Rx] = []  # in the order the machine let go of them
        self.cut: list[Rx] = []  # asked CutIfStuck
        self.spared: set[Rx] = set()  # sent the close frame by shutdown
        self._held: Rx | None = None  # the machine's receiver after the last event
        self.gone: set[Rx] = set()  # their client went away
        self.in_flight: dict[Rx, list[str] | None] = {}  # write awaiting written()
        self.opened = False
        self.writes: list[Action[Rx]] = []
        # The session, as the model sees it.
        self.close_info: tuple[int, str] | None = None
        self.finished = False
        # Outbound: every message sent, the queue the model expects, what
        # went out in SendMessages batches (in order), and what was dropped.
        self.sent = 0
        self.queue: deque[str] = deque()
        self.out: list[str] = []
        self.dropped: set[str] = set()
        # Inbound: the application's inbox, and the rate limit's buckets.
        self.inbox: deque[str] = deque()
        self.paused = False
        self.rate_time = start
        self.msg_tokens = self._cap(rate.messages_per_second) if rate else 0.0
        self.byte_tokens = self._cap(rate.bytes_per_second) if rate else 0.0
        # A session is created by its first receiving request.
        new = self._new_receiver()
        actions = self._apply(self.machine.attach(new, self.now), attached=new)
        assert actions == [SendOpen(new)]

    # --- helpers ------------------------------------------------------------

    def _cap(self, rate: float | None) -> float:
        assert self.limits.rate_limit is not None
        return float("inf") if rate is None else rate * self.limits.rate_limit.burst

    def _new_receiver(self) -> Rx:
        receiver = Rx(len(self.receivers))
        self.receivers.append(receiver)
        return receiver

    @property
    def queued(self) -> int:
        return sum(map(len, self.queue))

    @property
    def inflight_chars(self) -> int:
        return sum(sum(map(len, b)) for b in self.in_flight.values() if b is not None)

    def _may_end(self, who: str) -> bool:
        return self.calls >= self.lifetime and self.ending == who

    def _is_open(self) -> bool:
        return self.close_info is None and not self.finished

    def _apply(self, actions: list[Action[Rx]], attached: Rx | None = None) -> list[Action[Rx]]:
        """Check ``actions`` one by one against the model and record them."""
        machine = self.machine
        finished_before = self.finished
        # The receiver the machine held when the event came (ended by a
        # close frame, it counts as let go of).
        machine_receiver = self._held
        self.calls += 1
        for action in actions:
            if isinstance(action, WRITES):
                receiver = action.receiver
                assert receiver not in self.ended, f"{action} after the receiver was let go"
                assert receiver not in self.aborted, f"{action} after Abort"
                assert receiver not in self.in_flight, f"{action} while a write is in flight"
                if finished_before:
                    # A finished session only answers new receivers, with the close frame.
                    assert isinstance(action, SendClose) and receiver is attached
                self.writes.append(action)
            match action:
                case SendOpen(receiver):
                    assert not self.opened, "a second o frame"
                    assert self.writes == [action], "o is not the first frame"
                    self.opened = True
                    self._take_write(receiver, None)
                case SendHeartbeat(receiver):
                    assert self.opened
                    self._take_write(receiver, None)
                case SendMessages(receiver, batch):
                    assert self.opened
                    # Every queued message, in send order, in one frame.
                    assert batch == list(self.queue), (batch, list(self.queue))
                    self.queue.clear()
                    self.out += batch
                    self._take_write(receiver, batch)
                case SendClose(receiver, code, reason):
                    assert receiver is attached or receiver in self.accepted
                    if (code, reason) == CLOSE_ANOTHER_CONNECTION:
                        assert receiver is attached
                    else:
                        assert (code, reason) == machine.close_info
                    self.ended.add(receiver)
                    if receiver is machine_receiver:
                        self.released.append(receiver)
                case Release(receiver):
                    assert receiver in self.accepted, f"{action} of a receiver never taken"
                    self.ended.add(receiver)
                    self.released.append(receiver)
                case CutIfStuck(receiver):
                    assert not self.websocket, "a websocket ends with its close handshake"
                    assert receiver in self.released[:-1] or (
                        self.finished or any(isinstance(a, Finished) for a in actions)
                    ), f"{action} of a receiver still held or not the one let go before"
                    assert receiver not in self.cut, f"{action} twice"
                    self.cut.append(receiver)
                case Abort(receiver):
                    assert receiver in self.accepted and receiver not in self.ended
                    self.aborted.add(receiver)
                case Deliver(messages):
                    self.inbox.extend(messages)
                case PauseInbound():
                    assert not self.paused
                    self.paused = True
                case ResumeInbound():
                    assert self.paused
                    self.paused = False
                case NotifyClosed(code, reason):
                    assert self.close_info is None, "NotifyClosed twice"
                    self.close_info = (code, reason)
                case Finished():
                    assert not self.finished, "Finished twice"
                    self.finished = True
                    self.queue.clear()
                case _:  # pragma: no cover
                    raise AssertionError(f"unknown action {action!r}")
        self._held = machine.receiver
        if attached is not None:
            taken = machine.receiver is attached
            answered = any(isinstance(a, SendClose) and a.receiver is attached for a in actions)
            assert taken != answered, "a new receiver must be taken or answered, not left waiting"
            if taken:
                self.accepted.append(attached)
        return actions

    def _take_write(self, receiver: Rx, batch: list[str] | None) -> None:
        assert receiver in self.accepted or receiver is self.machine.receiver
        # At most one write in flight for the whole session.
        assert not self.in_flight, f"a write to {receiver} while {self.in_flight} in flight"
        self.in_flight[receiver] = batch

    # --- events -------------------------------------------------------------

    @rule(client_gone=st.booleans())
    @flushing
    def attach(self, client_gone: bool) -> None:
        """A new receiving request; the driver tells whether the current one is gone."""
        machine = self.machine
        current = machine.receiver
        if client_gone and current is not None and self._may_end("client"):
            self.gone.add(current)
        gone = current is not None and current in self.gone
        writing = current in self.in_flight
        was_closed = self.close_info
        queued = list(self.queue)
        new = self._new_receiver()
        actions = self._apply(machine.attach(new, self.now, current_gone=gone), attached=new)
        if was_closed is not None:
            # Closed: the queued messages first, then the close frame, to
            # every receiver until the session expires (and after, the close frame).
            if queued and current is None and not self.finished:
                assert actions == [SendMessages(new, queued)]
            else:
                assert actions == [SendClose(new, *was_closed)]
        elif gone and not writing:
            # The gone receiver is let go: the session was interrupted.
            assert actions[0] == Release(current)
            assert self.close_info == CLOSE_INTERRUPTED
        elif current is not None:
            assert actions == [SendClose(new, *CLOSE_ANOTHER_CONNECTION)]
        else:
            assert actions == []
            assert machine.deadline == self.now + HEARTBEAT

    @precondition(lambda self: bool(self.in_flight))
    @rule()
    @flushing
    def write_done(self) -> None:
        """The driver reports the oldest write in flight, done if it can be."""
        receiver = next(iter(self.in_flight))
        self._report(receiver, receiver not in self.aborted and receiver not in self.gone)

    @precondition(lambda self: bool(self.in_flight))
    @rule(data=st.data())
    @flushing
    def report_write(self, data: st.DataObject) -> None:
        """The driver reports a write: done, connection answered, or failed."""
        receiver = data.draw(st.sampled_from(sorted(self.in_flight, key=lambda r: r.number)))
        ok = receiver not in self.aborted and receiver not in self.gone
        # A websocket takes every frame until its client goes; a polling
        # request is answered by one, a stream may reach its size limit.
        self._report(receiver, ok and (self.websocket or data.draw(st.booleans(), label="ok")))

    def _report(self, receiver: Rx, ok: bool) -> None:
        # A write cut by Abort, or to a client that went away, fails as
        # interrupted; any other may be done or answered (a polling request).
        interrupted = receiver in self.aborted or receiver in self.gone
        del self.in_flight[receiver]
        machine = self.machine
        if machine.receiver is not receiver:
            # Let go of meanwhile (shutdown, fail): the report changes nothing.
            assert self._apply(machine.written(receiver, ok, self.now)) == []
            return
        before = self.close_info
        queued = list(self.queue)
        actions = self._apply(machine.written(receiver, ok, self.now, interrupted=interrupted))
        if not ok:
            assert actions[0] == Release(receiver)
            if interrupted and before is None:
                assert self.close_info == CLOSE_INTERRUPTED
        elif before is not None:
            # Closing: what was queued before the close, then the close frame.
            if queued:
                assert actions == [SendMessages(receiver, queued)]
            else:
                assert actions[0] == SendClose(receiver, *before)
        else:
            assert actions == []
        if self.websocket and (not ok or (before is not None and not queued)):
            assert self.finished

    @precondition(
        lambda self: self._may_end("client") and any(r not in self.ended for r in self.accepted)
    )
    @rule(data=st.data())
    def client_leaves(self, data: st.DataObject) -> None:
        """A client goes away; the driver learns it later (detach, a failed write, attach)."""
        live = [r for r in self.accepted if r not in self.ended]
        self.gone.add(data.draw(st.sampled_from(live)))

    @precondition(lambda self: any(r not in self.in_flight for r in self.accepted))
    @rule(data=st.data())
    @flushing
    def detach(self, data: st.DataObject) -> None:
        """A receiving request ends (never while the driver awaits a write to it)."""
        receiver = data.draw(st.sampled_from([r for r in self.accepted if r not in self.in_flight]))
        interrupted = receiver in self.gone or (
            self._may_end("client") and data.draw(st.booleans(), label="interrupted")
        )
        current = self.machine.receiver is receiver
        before = self.close_info
        actions = self._apply(self.machine.detach(receiver, self.now, interrupted=interrupted))
        if not current:
            assert actions == []
            return
        assert actions[0] == Release(receiver)
        if before is None:
            if interrupted:
                assert self.close_info == CLOSE_INTERRUPTED
            elif self.websocket:
                assert self.close_info == CLOSE_NORMAL
            else:
                assert self.close_info is None
        if self.websocket:
            assert self.finished
        if not self.finished:
            assert self.machine.deadline == self.now + DISCONNECT

    @rule(size=st.integers(0, 6) | st.integers(7, 30), then_flush=st.booleans())
    def send(self, size: int, then_flush: bool) -> None:
        """The application sends a message (sizes around the bound).

        Unless ``then_flush``, more commands wait in the driver's mailbox:
        the next event comes before the flush.
        """
        message = self._make_message(size)
        expect_overflow = self._expect_send(message)
        actions = self._apply(self.machine.send(message))
        self._check_send(actions, expect_overflow, [])
        if then_flush:
            self._flush()

    @rule(
        sizes=st.lists(st.integers(0, 3), min_size=2, max_size=3)
        | st.lists(st.integers(0, 30), min_size=1, max_size=4),
        last=st.booleans(),
        direct=st.booleans(),
    )
    def send_burst(self, sizes: list[int], last: bool, direct: bool) -> None:
        """Sends made back to back, as one command.

        ``send_all``, or ``send_and_flush`` when the command was the last in
        the driver's mailbox: the same as one ``send`` each, then the flush.
        When the last, the driver first asks ``sends_plainly``; with
        ``direct`` it then writes a plain burst at once, successfully, and
        calls neither ``send_and_flush`` nor ``written``.
        """
        messages = [self._make_message(size) for size in sizes]
        idle = not self.queue
        expect_overflow = False
        for message in messages:
            # Once the bound closes the session, the rest are not sent.
            if not expect_overflow:
                expect_overflow = self._expect_send(message)
        receiver = self.machine.receiver
        due = (
            last
            and not expect_overflow
            and receiver is not None
            and receiver not in self.in_flight
            and bool(self.queue)
            and self._is_open()
        )
        queued = list(self.queue)
        if last:
            plain = self.machine.sends_plainly(sum(map(len, messages)), len(messages))
            # Plain: nothing queued before, and the burst is exactly the
            # frame that goes out now.
            assert plain is (receiver if due and idle and queued == messages else None)
            if plain is not None and direct and plain not in self.gone:
                self.writes.append(SendMessages(plain, messages))
                self.queue.clear()
                self.out += messages
                return
        event = self.machine.send_and_flush if last else self.machine.send_all
        actions = self._apply(event(messages, sum(map(len, messages))))
        self._check_send(actions, expect_overflow, [SendMessages(receiver, queued)] if due else [])

    def _check_send(
        self, actions: list[Action[Rx]], expect_overflow: bool, writes: list[Action[Rx]]
    ) -> None:
        """After a send: the overflow closed the session, or ``writes`` are its only writes."""
        if expect_overflow:
            self.dropped.update(self.queue)
            self.queue.clear()
            assert self.close_info == CLOSE_QUEUE_OVERFLOW
            assert self.machine.overflowed
        else:
            assert not any(isinstance(a, NotifyClosed) for a in actions)
            assert [a for a in actions if isinstance(a, DATA_WRITES)] == writes

    def _make_message(self, size: int) -> str:
        message = f"<{self.sent}>" + "x" * size
        self.sent += 1
        return message

    def _expect_send(self, message: str) -> bool:
        """What one send of ``message`` does to the model; True if it overflows."""
        was_open = self._is_open()
        held = self.queued + self.inflight_chars
        limit = self.limits.max_queue_size
        expect_overflow = False
        if was_open:
            if not held or held + len(message) <= limit:
                self.queue.append(message)
            elif self.limits.queue_overflow == "close":
                expect_overflow = True
            elif self.inflight_chars and self.inflight_chars + len(message) > limit:
                # It cannot fit beside the batch being written: only it goes.
                self.dropped.add(message)
            else:
                # Keep the newest: drop from the oldest end until it fits.
                self.queue.append(message)
                while len(self.queue) > 1 and self.queued + self.inflight_chars > limit:
                    self.dropped.add(self.queue.popleft())
        return expect_overflow

    def _flush(self) -> None:
        """The driver's mailbox is empty: whatever is queued goes out now, in one frame."""
        receiver = self.machine.receiver
        due = (
            receiver is not None
            and receiver not in self.in_flight
            and bool(self.queue)
            and self._is_open()
        )
        queued = list(self.queue)
        actions = self._apply(self.machine.flush())
        assert actions == ([SendMessages(receiver, queued)] if due else [])

    @rule(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=3))
    @flushing
    def incoming(self, sizes: list[int]) -> None:
        """The client sends a batch of messages."""
        messages = ["i" * n for n in sizes]
        size = sum(sizes)
        inbox_size = sum(map(len, self.inbox))
        was_open = self._is_open()
        was_paused = self.paused
        # The driver's shortcut: when the machine says its answer would be
        # only to deliver, the driver delivers without asking (see
        # Mailbox._enter). It must say so exactly then.
        plain = self.machine.delivers_plainly(size, inbox_size)
        assert plain is (
            was_open
            and self.limits.rate_limit is None
            and inbox_size + size < self.limits.max_inbox_size
        )
        admitted = self._admit(len(messages), size) if was_open else False
        actions = self._apply(self.machine.incoming(messages, size, inbox_size, self.now))
        if plain:
            assert actions == [Deliver(messages)]
        if not was_open:
            assert actions == []
        elif admitted:
            # Always delivered; past the inbox bound the client is paused.
            pause = inbox_size + size >= self.limits.max_inbox_size and not was_paused
            assert actions == [Deliver(messages)] + ([PauseInbound()] if pause else [])
        else:
            assert self.close_info == CLOSE_RATE_LIMIT
            assert not any(isinstance(a, Deliver) for a in actions)

    def _admit(self, count: int, size: int) -> bool:
        rate = self.limits.rate_limit
        if rate is None:
            return True
        elapsed = self.now - self.rate_time
        self.rate_time = self.now
        ok = True
        if rate.messages_per_second is not None:
            self.msg_tokens = (
                min(
                    self._cap(rate.messages_per_second),
                    self.msg_tokens + elapsed * rate.messages_per_second,
                )
                - count
            )
            ok = self.msg_tokens >= 0
        if rate.bytes_per_second is not None:
            self.byte_tokens = (
                min(
                    self._cap(rate.bytes_per_second),
                    self.byte_tokens + elapsed * rate.bytes_per_second,
                )
                - size
            )
            ok = ok and self.byte_tokens >= 0
        return ok

    @precondition(lambda self: bool(self.inbox))
    @rule(count=st.integers(1, 3))
    @flushing
    def consume(self, count: int) -> None:
        """The application takes messages from its inbox."""
        for _ in range(min(count, len(self.inbox))):
            self.inbox.popleft()
        inbox_size = sum(map(len, self.inbox))
        was_paused = self.paused
        actions = self._apply(self.machine.consumed(inbox_size))
        resume = was_paused and inbox_size < self.limits.max_inbox_size
        assert actions == ([ResumeInbound()] if resume else [])

    @precondition(lambda self: self._may_end("app"))
    @rule(code=st.sampled_from([3000, 3001, 4000]))
    @flushing
    def close(self, code: int) -> None:
        """The application (or a policy) closes the session."""
        was_open = self._is_open()
        actions = self._apply(self.machine.close(code, "bye", self.now))
        if was_open:
            assert actions[0] == NotifyClosed(code, "bye")
        else:
            assert actions == []

    @rule(seconds=st.sampled_from([0.25, 1.0, 2.5, 4.0, 9.0, 30.0]))
    def advance(self, seconds: float) -> None:
        """Time passes (the fake clock only moves forward)."""
        self.now += seconds

    @rule(pending=st.booleans(), to_deadline=st.booleans(), direct=st.booleans())
    @flushing
    def tick(self, pending: bool, to_deadline: bool, direct: bool) -> None:
        """The sweeper ticks the session, maybe exactly at its deadline.

        The driver first asks ``ticks_plainly``: the receiver when the tick
        would only send it a heartbeat; ``direct``, the driver then writes
        it and reports ``beat``, which must leave the machine as the tick
        and its ``written()`` would.
        """
        if to_deadline:
            self.now = max(self.now, self.machine.deadline)
        due = self.now >= self.machine.deadline and not self.finished
        receiver = self.machine.receiver
        writing = receiver in self.in_flight
        was_closed = self.close_info is not None
        plain = self.machine.ticks_plainly(self.now)
        idle = receiver is not None and not writing and not self.queue
        assert plain is (receiver if due and idle and not was_closed else None)
        if plain is not None and direct and not pending and plain not in self.gone:
            self.writes.append(SendHeartbeat(plain))
            self.calls += 1
            self.machine.beat(self.now)
            assert self.machine.deadline == self.now + HEARTBEAT
            assert self.machine.receiver is plain and not self.machine.writing
            return
        actions = self._apply(self.machine.tick(self.now, attach_pending=pending))
        if not due:
            assert actions == [], "a tick before the deadline did something"
        elif receiver is None:
            if pending:
                assert actions == []
            else:
                assert actions[-1] == Finished()
                if not was_closed:
                    assert self.close_info == CLOSE_INTERRUPTED
        elif writing or was_closed:
            assert actions == []
        else:
            assert actions == [SendHeartbeat(receiver)]
            assert self.machine.deadline == self.now + HEARTBEAT

    @precondition(lambda self: self._may_end("driver"))
    @rule(how=st.sampled_from(["overflow", "shutdown", "fail", "cancel"]))
    def driver_closes(self, how: str) -> None:
        """The driver's mailbox saw the send bound crossed; or shutdown; or a bug."""
        was_open = self._is_open()
        receiver = self.machine.receiver
        writing = receiver in self.in_flight
        if how == "overflow":
            if self.limits.queue_overflow != "close":
                return  # the driver only sees overflow with the close policy
            if was_open:
                self.dropped.update(self.queue)
                self.queue.clear()
            actions = self._apply(self.machine.overflow())
            if not was_open:
                assert actions == []
                return
            assert self.close_info == CLOSE_QUEUE_OVERFLOW
            if writing:
                assert Abort(receiver) in actions  # type: ignore[arg-type]
            self._flush()
            return
        if how == "shutdown":
            # The connection shutdown sends the close frame to is left to
            # send it: shutdown has a timeout of its own.
            if receiver is not None:
                self.spared.add(receiver)
            self._apply(self.machine.shutdown(self.now))
            expected = CLOSE_GOING_AWAY
        elif how == "cancel":
            actions = self._apply(self.machine.cancel())
            assert not any(isinstance(a, WRITES) for a in actions), actions
            expected = CLOSE_GOING_AWAY
        else:
            self._apply(self.machine.fail())
            expected = CLOSE_INTERNAL_ERROR
        assert self.finished
        if was_open:
            assert self.close_info == expected

    # --- invariants --------------------------------------------------------------

    @invariant()
    def closing_is_final(self) -> None:
        """close_info is set once, by the one NotifyClosed, and never changes."""
        machine = self.machine
        assert machine.close_info == self.close_info
        if machine.close_info is None:
            assert machine.state in (SessionState.NEW, SessionState.OPEN)
        assert (machine.state is SessionState.CLOSED) == self.finished

    @invariant()
    def finished_holds_nothing(self) -> None:
        """A finished session holds no receiver, no messages, no paused client."""
        if self.finished:
            assert self.machine.receiver is None
            assert self.machine.backlog == 0
            assert not self.machine.inbound_paused

    @invariant()
    def one_receiver(self) -> None:
        """The machine holds at most one receiver, one it took and has not let go."""
        receiver = self.machine.receiver
        if receiver is not None:
            assert receiver in self.accepted
            assert receiver not in self.ended
        # Every receiver it took and no longer holds was answered or released.
        for r in self.accepted:
            if r is not receiver:
                assert r in self.ended, f"{r} was let go without SendClose or Release"

    @invariant()
    def let_go_connections_are_checked(self) -> None:
        """Each connection let go of (but the last, while the session lasts) is
        asked CutIfStuck, or was aborted: none outlives the session unnoticed."""
        if self.websocket:
            assert not self.cut
            return
        checked = set(self.cut) | self.aborted | self.spared
        waiting = self.released if self.finished else self.released[:-1]
        assert all(r in checked for r in waiting), (self.released, self.cut)

    @invariant()
    def outbound_in_order(self) -> None:
        """Messages go out at most once, in send order; none is lost while open."""
        numbers = [index(m) for m in self.out]
        assert numbers == sorted(set(numbers)), numbers
        assert not self.dropped & set(self.out)
        if self.close_info is None:
            accounted = set(self.out) | set(self.queue) | self.dropped
            assert len(accounted) == self.sent

    @invariant()
    def outbound_bound(self) -> None:
        """The backlog is what the model holds, and within max_queue_size but for one."""
        machine = self.machine
        expected = 0 if self.finished else self.queued + self.inflight_chars
        assert machine.backlog == expected
        if machine.backlog > self.limits.max_queue_size:
            held = list(self.queue) + [m for b in self.in_flight.values() if b for m in b]
            assert len(held) == 1, held

    @invariant()
    def inbound_pause(self) -> None:
        """Inbound is paused exactly when the model says, and never once closed."""
        assert self.machine.inbound_paused == self.paused
        if self.close_info is not None:
            assert not self.paused

    @invariant()
    def writing_matches(self) -> None:
        """The machine's own in-flight flag agrees with the driver's view."""
        receiver = self.machine.receiver
        if receiver is not None:
            assert self.machine.writing == (receiver in self.in_flight)


SessionModel.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SessionModel.TestCase.__doc__ = "Random legal event sequences keep every session invariant."
# A run takes seconds; the long timeout is for shrinking a failure to a
# short sequence, which takes minutes.
TestSessionModel = pytest.mark.timeout(600)(SessionModel.TestCase)
