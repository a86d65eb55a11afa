"""Every session rule of :class:`SessionMachine`, table-driven, with no event loop.

Each case is a sequence of events, each with the exact actions the machine
must return for it, and the state the session must end in. Receivers are
plain named tokens: the machine never looks inside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

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
    CLOSE_GO_AWAY,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_INTERRUPTED,
    CLOSE_NORMAL,
    CLOSE_QUEUE_OVERFLOW,
    CLOSE_RATE_LIMIT,
)


class Rx:
    """A receiver token; equal only to itself."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


A, B, C, D = Rx("A"), Rx("B"), Rx("C"), Rx("D")

NEW, OPEN, CLOSING, CLOSED = (
    SessionState.NEW,
    SessionState.OPEN,
    SessionState.CLOSING,
    SessionState.CLOSED,
)

#: Small numbers so that every bound is reached with a few short messages.
LIMITS = Limits(heartbeat_delay=10.0, disconnect_delay=5.0, max_queue_size=10, max_inbox_size=10)
DROP = Limits(
    heartbeat_delay=10.0,
    disconnect_delay=5.0,
    max_queue_size=10,
    queue_overflow="drop_oldest",
    max_inbox_size=10,
)


@dataclass(frozen=True)
class Ev:
    """One event: a machine method and its arguments."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self, machine: SessionMachine[Rx]) -> list[Action[Rx]]:
        result: list[Action[Rx]] = getattr(machine, self.method)(*self.args, **self.kwargs)
        return result

    def __repr__(self) -> str:
        args = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.method}({', '.join(args)})"


def attach(r: Rx, t: float = 0.0, gone: bool = False) -> Ev:
    return Ev("attach", (r, t), {"current_gone": gone})


def written(r: Rx, ok: bool = True, t: float = 0.0, interrupted: bool = False) -> Ev:
    return Ev("written", (r, ok, t), {"interrupted": interrupted})


def flush() -> Ev:
    return Ev("flush")


def detach(r: Rx, t: float = 0.0, interrupted: bool = False, code: int | None = None) -> Ev:
    kwargs: dict[str, Any] = {"interrupted": interrupted}
    if code is not None:
        kwargs["client_code"] = code
    return Ev("detach", (r, t), kwargs)


def send(message: str) -> Ev:
    return Ev("send", (message,))


def send_all(*messages: str) -> Ev:
    return Ev("send_all", (list(messages), sum(map(len, messages))))


def send_and_flush(*messages: str) -> Ev:
    return Ev("send_and_flush", (list(messages), sum(map(len, messages))))


def overflow() -> Ev:
    return Ev("overflow")


def incoming(messages: list[str], inbox: int = 0, t: float = 0.0, charged: int | None = None) -> Ev:
    kwargs = {} if charged is None else {"charged": charged}
    return Ev("incoming", (messages, sum(map(len, messages)), inbox, t), kwargs)


def consumed(inbox: int) -> Ev:
    return Ev("consumed", (inbox,))


def close(code: int = 3000, reason: str = "Go away!", t: float = 0.0) -> Ev:
    return Ev("close", (code, reason, t))


def tick(t: float, pending: bool = False) -> Ev:
    return Ev("tick", (t,), {"attach_pending": pending})


def shutdown(t: float = 0.0) -> Ev:
    return Ev("shutdown", (t,))


def fail() -> Ev:
    return Ev("fail")


def cancel() -> Ev:
    return Ev("cancel")


Step = tuple[Ev, list[Any]]

#: A receiver A attached and the ``o`` frame written to it.
OPENED: list[Step] = [(attach(A), [SendOpen(A)]), (written(A), [])]
#: As OPENED, for a polling receiver: its request is answered by the ``o`` frame.
POLLED: list[Step] = [(attach(A), [SendOpen(A)]), (written(A, ok=False), [Release(A)])]


def notify(close: tuple[int, str]) -> NotifyClosed:
    return NotifyClosed(*close)


def sendclose(r: Rx, close: tuple[int, str]) -> SendClose[Rx]:
    return SendClose(r, *close)


def run(
    steps: Sequence[Step], limits: Limits = LIMITS, websocket: bool = False
) -> SessionMachine[Rx]:
    """Apply ``steps`` to a new machine, checking each step's actions."""
    machine: SessionMachine[Rx] = SessionMachine(limits, 0.0, websocket=websocket)
    for i, (event, expected) in enumerate(steps):
        got = event(machine)
        assert got == expected, f"step {i}: {event!r}"
    return machine


# --- the o frame, and 2010 to a second receiver --------------------------------

OPEN_CASES = [
    pytest.param(
        [(attach(A), [SendOpen(A)]), (written(A), []), (tick(5.0), []), (flush(), [])],
        OPEN,
        A,
        id="first receiver gets o",
    ),
    pytest.param(
        [
            *POLLED,
            (attach(B), []),
            (flush(), []),
            (detach(B), [Release(B), CutIfStuck(A)]),
            (attach(C), []),
        ],
        OPEN,
        C,
        id="o only once: later receivers get nothing until there is something to say",
    ),
    pytest.param(
        [*OPENED, (attach(B), [sendclose(B, CLOSE_ANOTHER_CONNECTION)])],
        OPEN,
        A,
        id="2010 to a second receiver",
    ),
    pytest.param(
        [(attach(A), [SendOpen(A)]), (attach(B), [sendclose(B, CLOSE_ANOTHER_CONNECTION)])],
        OPEN,
        A,
        id="2010 while the o frame is in flight",
    ),
    pytest.param(
        [
            (attach(A), [SendOpen(A)]),
            (attach(B, gone=True), [sendclose(B, CLOSE_ANOTHER_CONNECTION)]),
        ],
        OPEN,
        A,
        id="2010 while a write is in flight, even to a gone receiver",
    ),
    pytest.param(
        [
            *OPENED,
            (detach(B, interrupted=True), []),
            (written(B), []),
        ],
        OPEN,
        A,
        id="events for a receiver that is not attached are ignored",
    ),
    pytest.param(
        [
            *OPENED,
            (
                attach(B, gone=True),
                [Release(A), notify(CLOSE_INTERRUPTED), sendclose(B, CLOSE_INTERRUPTED)],
            ),
            (attach(C), [sendclose(C, CLOSE_INTERRUPTED)]),
        ],
        CLOSING,
        None,
        id="a gone receiver is replaced: it is let go and the session is interrupted",
    ),
]


@pytest.mark.parametrize(("steps", "state", "receiver"), OPEN_CASES)
def test_open_frame_and_second_receiver(
    steps: list[Step], state: SessionState, receiver: Rx | None
) -> None:
    """The ``o`` frame goes to the first receiver only; a second one gets 2010."""
    machine = run(steps)
    assert machine.state is state
    assert machine.receiver is receiver


# --- outbound messages ----------------------------------------------------------

SEND_CASES = [
    pytest.param(
        [*OPENED, (send("x"), []), (send("yy"), []), (flush(), [SendMessages(A, ["x", "yy"])])],
        3,
        id="sends made together share one frame",
    ),
    pytest.param(
        [
            *POLLED,
            (send("x"), []),
            (flush(), []),
            (send("y"), []),
            (flush(), []),
            (attach(B), []),
            (flush(), [SendMessages(B, ["x", "y"])]),
            (written(B, ok=False), [Release(B), CutIfStuck(A)]),
        ],
        0,
        id="queued with no receiver: one frame at the next flush",
    ),
    pytest.param(
        [
            (attach(A), [SendOpen(A)]),
            (send("x"), []),
            (flush(), []),
            (written(A), []),
            (flush(), [SendMessages(A, ["x"])]),
        ],
        1,
        id="messages wait for the o frame",
    ),
    pytest.param(
        [
            *OPENED,
            (send("x"), []),
            (flush(), [SendMessages(A, ["x"])]),
            (send("y"), []),
            (send("z"), []),
            (flush(), []),
            (written(A), []),
            (flush(), [SendMessages(A, ["y", "z"])]),
        ],
        2,
        id="sends during a write go out together after it",
    ),
    pytest.param(
        [(attach(A), [SendOpen(A)]), (written(A), []), (tick(9.0), []), (flush(), [])],
        0,
        id="flush with nothing queued does nothing",
    ),
    pytest.param(
        [*OPENED, (send_all("x", "yy"), []), (flush(), [SendMessages(A, ["x", "yy"])])],
        3,
        id="send_all queues a burst for the next flush",
    ),
    pytest.param(
        [*OPENED, (send_and_flush("x", "yy"), [SendMessages(A, ["x", "yy"])]), (flush(), [])],
        3,
        id="send_and_flush to an idle receiver: the burst goes out as it is",
    ),
    pytest.param(
        [
            *OPENED,
            (send("w"), []),
            (send_and_flush("x", "y"), [SendMessages(A, ["w", "x", "y"])]),
        ],
        3,
        id="send_and_flush after queued sends: one frame, in send order",
    ),
    pytest.param(
        [
            *OPENED,
            (send_and_flush("x"), [SendMessages(A, ["x"])]),
            (send_and_flush("y", "z"), []),
            (written(A), []),
            (flush(), [SendMessages(A, ["y", "z"])]),
        ],
        2,
        id="send_and_flush during a write queues behind it",
    ),
    pytest.param(
        [
            (attach(A), [SendOpen(A)]),
            (send_and_flush("x"), []),
            (written(A), []),
            (flush(), [SendMessages(A, ["x"])]),
        ],
        1,
        id="send_and_flush waits for the o frame",
    ),
    pytest.param(
        [
            *POLLED,
            (send_and_flush("x", "y"), []),
            (attach(B), []),
            (flush(), [SendMessages(B, ["x", "y"])]),
        ],
        2,
        id="send_and_flush with no receiver queues",
    ),
]


@pytest.mark.parametrize(("steps", "backlog"), SEND_CASES)
def test_outbound_batches(steps: list[Step], backlog: int) -> None:
    """Queued messages go out in send order, all of them in one frame per flush."""
    machine = run(steps)
    assert machine.state is OPEN
    assert machine.backlog == backlog


#: What ``sends_plainly`` answers after the steps, for a burst of these messages.
PLAIN_CASES = [
    pytest.param(OPENED, ["x", "yy"], A, id="idle receiver: plain"),
    pytest.param(OPENED, ["a" * 25], A, id="one message over the bound: plain"),
    pytest.param(OPENED, ["aaaa", "bbbb", "cccc"], None, id="a burst over the bound: not"),
    pytest.param([(attach(A), [SendOpen(A)])], ["x"], None, id="o frame being written: not"),
    pytest.param(
        [*OPENED, (tick(10.0), [SendHeartbeat(A)])], ["x"], None, id="heartbeat in flight: not"
    ),
    pytest.param(
        [*OPENED, (send_and_flush("w"), [SendMessages(A, ["w"])])],
        ["x"],
        None,
        id="messages in flight: not",
    ),
    pytest.param([*OPENED, (send("w"), [])], ["x"], None, id="messages queued: not"),
    pytest.param(POLLED, ["x"], None, id="no receiver: not"),
    pytest.param(
        [*OPENED, (send("w"), []), (close(), [notify(CLOSE_GO_AWAY), SendMessages(A, ["w"])])],
        ["x"],
        None,
        id="closing: not",
    ),
]


@pytest.mark.parametrize(("steps", "messages", "receiver"), PLAIN_CASES)
def test_sends_plainly(steps: list[Step], messages: list[str], receiver: Rx | None) -> None:
    """``sends_plainly`` names the receiver exactly when the burst goes out as it is.

    When it does, ``send_and_flush`` answers that one write and its
    ``written`` nothing, leaving the machine as it was: what a driver that
    wrote the burst at once may skip.
    """
    machine = run(steps)
    size = sum(map(len, messages))
    assert machine.sends_plainly(size, len(messages)) is receiver
    if receiver is None:
        return
    before = (machine.state, machine.backlog, machine.writing, machine.deadline)
    assert machine.send_and_flush(messages, size) == [SendMessages(receiver, messages)]
    assert machine.written(receiver, True, 1.0) == []
    assert (machine.state, machine.backlog, machine.writing, machine.deadline) == before


# --- closing -------------------------------------------------------------------

CLOSE_CASES = [
    pytest.param(
        [
            *OPENED,
            (close(), [notify(CLOSE_GO_AWAY), sendclose(A, CLOSE_GO_AWAY)]),
            (attach(B, t=1.0), [sendclose(B, CLOSE_GO_AWAY)]),
            (attach(C, t=4.0), [sendclose(C, CLOSE_GO_AWAY)]),
            (tick(8.9), []),
            (tick(9.0), [CutIfStuck(A), Finished()]),
            (attach(D, t=10.0), [sendclose(D, CLOSE_GO_AWAY)]),
        ],
        CLOSED,
        CLOSE_GO_AWAY,
        id="close frame to every receiver until expiry, each attach restarting the delay",
    ),
    pytest.param(
        [
            *OPENED,
            (send("x"), []),
            (close(), [notify(CLOSE_GO_AWAY), SendMessages(A, ["x"])]),
            (written(A), [sendclose(A, CLOSE_GO_AWAY)]),
            (attach(B), [sendclose(B, CLOSE_GO_AWAY)]),
        ],
        CLOSING,
        CLOSE_GO_AWAY,
        id="queued messages go before the close frame",
    ),
    pytest.param(
        [
            *POLLED,
            (send("x"), []),
            (close(), [notify(CLOSE_GO_AWAY)]),
            (attach(B), [SendMessages(B, ["x"])]),
            (written(B, ok=False), [Release(B), CutIfStuck(A)]),
            (attach(C), [sendclose(C, CLOSE_GO_AWAY)]),
        ],
        CLOSING,
        CLOSE_GO_AWAY,
        id="closed with no receiver: the next one gets the queued messages, then the close",
    ),
    pytest.param(
        [
            *OPENED,
            (send("x"), []),
            (flush(), [SendMessages(A, ["x"])]),
            (close(), [notify(CLOSE_GO_AWAY)]),
            (written(A), [sendclose(A, CLOSE_GO_AWAY)]),
        ],
        CLOSING,
        CLOSE_GO_AWAY,
        id="close during a write: the close frame follows it",
    ),
    pytest.param(
        [
            *OPENED,
            (send("x"), []),
            (flush(), [SendMessages(A, ["x"])]),
            (send("y"), []),
            (close(), [notify(CLOSE_GO_AWAY)]),
            (written(A), [SendMessages(A, ["y"])]),
            (written(A), [sendclose(A, CLOSE_GO_AWAY)]),
        ],
        CLOSING,
        CLOSE_GO_AWAY,
        id="close during a write with more queued: the rest, then the close frame",
    ),
    pytest.param(
        [
            *OPENED,
            (send("x"), []),
            (flush(), [SendMessages(A, ["x"])]),
            (send("y"), []),
            (close(), [notify(CLOSE_GO_AWAY)]),
            (attach(B), [sendclose(B, CLOSE_GO_AWAY)]),
            (written(A), [SendMessages(A, ["y"])]),
            (written(A), [sendclose(A, CLOSE_GO_AWAY)]),
        ],
        CLOSING,
        CLOSE_GO_AWAY,
        id="a receiver arriving while closing does not take over one still being written",
    ),
    pytest.param(
        [
            *OPENED,
            (close(), [notify(CLOSE_GO_AWAY), sendclose(A, CLOSE_GO_AWAY)]),
            (send("x"), []),
            (close(3001, "again"), []),
            (overflow(), []),
            (incoming(["in"]), []),
            (attach(B), [sendclose(B, CLOSE_GO_AWAY)]),
        ],
        CLOSING,
        CLOSE_GO_AWAY,
        id="once closed: sends, closes, overflow and client messages change nothing",
    ),
    pytest.param(
        [
            *OPENED,
            (detach(A, t=1.0, interrupted=True), [Release(A), notify(CLOSE_INTERRUPTED)]),
            (attach(B, t=2.0), [sendclose(B, CLOSE_INTERRUPTED)]),
            (tick(6.9), []),
            (tick(7.0), [CutIfStuck(A), Finished()]),
        ],
        CLOSED,
        CLOSE_INTERRUPTED,
        id="1002 when a receiver's client goes away",
    ),
    pytest.param(
        [
            *OPENED,
            (send("x"), []),
            (flush(), [SendMessages(A, ["x"])]),
            (written(A, ok=False, interrupted=True), [Release(A), notify(CLOSE_INTERRUPTED)]),
            (attach(B), [sendclose(B, CLOSE_INTERRUPTED)]),
        ],
        CLOSING,
        CLOSE_INTERRUPTED,
        id="1002 when a write fails",
    ),
    pytest.param(
        [*POLLED, (detach(A), []), (attach(B), []), (detach(B), [Release(B), CutIfStuck(A)])],
        OPEN,
        None,
        id="a receiver that ends normally does not close the session",
    ),
    pytest.param(
        [*OPENED, (fail(), [notify(CLOSE_INTERNAL_ERROR), Abort(A), Release(A), Finished()])],
        CLOSED,
        CLOSE_INTERNAL_ERROR,
        id="1011 on fail(): the receiver is cut and let go",
    ),
    pytest.param(
        [
            *POLLED,
            (fail(), [notify(CLOSE_INTERNAL_ERROR), CutIfStuck(A), Finished()]),
            (fail(), []),
        ],
        CLOSED,
        CLOSE_INTERNAL_ERROR,
        id="1011 on fail() with no receiver; a second fail() does nothing",
    ),
    pytest.param(
        [
            *OPENED,
            (close(), [notify(CLOSE_GO_AWAY), sendclose(A, CLOSE_GO_AWAY)]),
            (fail(), [CutIfStuck(A), Finished()]),
        ],
        CLOSED,
        CLOSE_GO_AWAY,
        id="fail() after a close keeps the close code",
    ),
    pytest.param(
        [*OPENED, (cancel(), [notify(CLOSE_GOING_AWAY), Abort(A), Release(A), Finished()])],
        CLOSED,
        CLOSE_GOING_AWAY,
        id="1001 on cancel(): the receiver is cut and let go, nothing written",
    ),
    pytest.param(
        [
            *OPENED,
            (close(), [notify(CLOSE_GO_AWAY), sendclose(A, CLOSE_GO_AWAY)]),
            (cancel(), [CutIfStuck(A), Finished()]),
        ],
        CLOSED,
        CLOSE_GO_AWAY,
        id="cancel() after a close keeps the close code",
    ),
    pytest.param(
        [
            *OPENED,
            (
                shutdown(),
                [notify(CLOSE_GOING_AWAY), sendclose(A, CLOSE_GOING_AWAY), Finished()],
            ),
            (shutdown(), []),
            (tick(100.0), []),
        ],
        CLOSED,
        CLOSE_GOING_AWAY,
        id="1001 on shutdown(), and finished",
    ),
    pytest.param(
        [
            (attach(A), [SendOpen(A)]),
            (shutdown(), [notify(CLOSE_GOING_AWAY), Abort(A), Release(A), Finished()]),
        ],
        CLOSED,
        CLOSE_GOING_AWAY,
        id="1001 on shutdown() during a write: the write is cut and the receiver let go",
    ),
    pytest.param(
        [*POLLED, (shutdown(), [notify(CLOSE_GOING_AWAY), CutIfStuck(A), Finished()])],
        CLOSED,
        CLOSE_GOING_AWAY,
        id="1001 on shutdown() with no receiver",
    ),
]


@pytest.mark.parametrize(("steps", "state", "close_info"), CLOSE_CASES)
def test_closing(steps: list[Step], state: SessionState, close_info: tuple[int, str]) -> None:
    """Close codes: the app's, 1002, 1011, 1001; the close frame until expiry."""
    machine = run(steps)
    assert machine.state is state
    assert machine.close_info == close_info
    if state is CLOSED:
        assert machine.receiver is None
        assert machine.backlog == 0


# --- the deadline: heartbeat while attached, expiry while not --------------------

DEADLINE_CASES = [
    pytest.param(
        [(tick(4.9), []), (tick(5.0), [notify(CLOSE_INTERRUPTED), Finished()])],
        CLOSED,
        None,
        id="a session nobody attaches to expires after disconnect_delay",
    ),
    pytest.param(
        [
            (attach(A, t=1.0), [SendOpen(A)]),
            (written(A, t=1.0), []),
            (tick(10.9), []),
            (tick(11.0), [SendHeartbeat(A)]),
            (tick(21.0), []),
            (written(A, t=21.5), []),
            (tick(30.9), []),
            (tick(31.0), [SendHeartbeat(A)]),
        ],
        OPEN,
        41.0,
        id="heartbeat every heartbeat_delay while attached, none while writing",
    ),
    pytest.param(
        [
            *POLLED,
            (tick(4.9), []),
            (tick(5.0, pending=True), []),
            (tick(6.0, pending=True), []),
            (attach(B, t=6.0), []),
            (tick(15.9), []),
            (tick(16.0), [SendHeartbeat(B)]),
        ],
        OPEN,
        26.0,
        id="attach_pending keeps a due session alive for the receiver about to attach",
    ),
    pytest.param(
        [
            *POLLED,
            (attach(B, t=3.0), []),
            (detach(B, t=4.0), [Release(B), CutIfStuck(A)]),
            (tick(8.9), []),
            (tick(9.0), [notify(CLOSE_INTERRUPTED), CutIfStuck(B), Finished()]),
        ],
        CLOSED,
        9.0,
        id="expiry is disconnect_delay after the last receiver left",
    ),
    pytest.param(
        [
            *OPENED,
            (close(3000, "Go away!", t=2.0), [notify(CLOSE_GO_AWAY), sendclose(A, CLOSE_GO_AWAY)]),
            (tick(6.9), []),
            (tick(7.0), [CutIfStuck(A), Finished()]),
        ],
        CLOSED,
        7.0,
        id="a closed session expires disconnect_delay after its close frame",
    ),
]


@pytest.mark.parametrize(("steps", "state", "deadline"), DEADLINE_CASES)
def test_deadline(steps: list[Step], state: SessionState, deadline: float | None) -> None:
    """One deadline: a heartbeat while attached, expiry while not; tick before it does nothing."""
    machine = run(steps)
    assert machine.state is state
    if deadline is not None:
        assert machine.deadline == deadline


# --- the outbound bound ------------------------------------------------------------

OVERFLOW_CASES = [
    pytest.param(
        LIMITS,
        [
            *OPENED,
            (
                send_and_flush("aaaa", "bbbb", "cccc"),
                [notify(CLOSE_QUEUE_OVERFLOW), SendClose(A, *CLOSE_QUEUE_OVERFLOW)],
            ),
        ],
        0,
        id="send_and_flush: a burst over the bound is sent message by message, and closes",
    ),
    pytest.param(
        LIMITS,
        [*OPENED, (send_and_flush("a" * 25), [SendMessages(A, ["a" * 25])])],
        25,
        id="send_and_flush: one message over the bound goes out to an idle receiver",
    ),
    pytest.param(
        DROP,
        [
            *OPENED,
            (send_and_flush("aaaa", "bbbb", "cccc"), [SendMessages(A, ["bbbb", "cccc"])]),
        ],
        8,
        id="send_and_flush: drop_oldest keeps the newest of a burst over the bound",
    ),
    pytest.param(
        LIMITS,
        [
            *OPENED,
            (send("12345"), []),
            (send("67890"), []),
            (
                send("x"),
                [notify(CLOSE_QUEUE_OVERFLOW), sendclose(A, CLOSE_QUEUE_OVERFLOW)],
            ),
            (attach(B), [sendclose(B, CLOSE_QUEUE_OVERFLOW)]),
        ],
        0,
        id="close policy: 1013 past max_queue_size, the queue freed",
    ),
    pytest.param(
        LIMITS,
        [
            *OPENED,
            (send("12345"), []),
            (flush(), [SendMessages(A, ["12345"])]),
            (send("67890"), []),
            (send("x"), [notify(CLOSE_QUEUE_OVERFLOW), Abort(A)]),
            (written(A, ok=False, interrupted=True), [Release(A)]),
            (attach(B), [sendclose(B, CLOSE_QUEUE_OVERFLOW)]),
        ],
        0,
        id="close policy: the batch being written counts; a receiver mid-write is aborted",
    ),
    pytest.param(
        LIMITS,
        [
            *OPENED,
            (send("0123456789abc"), []),
            (flush(), [SendMessages(A, ["0123456789abc"])]),
        ],
        13,
        id="a message larger than the bound is accepted into an empty queue",
    ),
    pytest.param(
        LIMITS,
        [
            *OPENED,
            (send("12345"), []),
            (overflow(), [notify(CLOSE_QUEUE_OVERFLOW), sendclose(A, CLOSE_QUEUE_OVERFLOW)]),
        ],
        0,
        id="overflow() seen by the driver closes with 1013",
    ),
    pytest.param(
        DROP,
        [
            *OPENED,
            (send("1234"), []),
            (send("5678"), []),
            (send("abcd"), []),
            (flush(), [SendMessages(A, ["5678", "abcd"])]),
        ],
        8,
        id="drop_oldest: the oldest go, the newest stays",
    ),
    pytest.param(
        DROP,
        [
            *OPENED,
            (send("1234"), []),
            (send("5678"), []),
            (send("0123456789abc"), []),
            (flush(), [SendMessages(A, ["0123456789abc"])]),
        ],
        13,
        id="drop_oldest: an oversize message empties the queue and is kept",
    ),
    pytest.param(
        DROP,
        [
            *OPENED,
            (send("123456"), []),
            (flush(), [SendMessages(A, ["123456"])]),
            (send("ab"), []),
            (send("cd"), []),
            (send("gh"), []),
            (flush(), []),
            (written(A), []),
            (flush(), [SendMessages(A, ["cd", "gh"])]),
        ],
        4,
        id="drop_oldest: the batch being written counts and is never dropped",
    ),
    pytest.param(
        DROP,
        [
            *OPENED,
            (send("123456"), []),
            (flush(), [SendMessages(A, ["123456"])]),
            (send("ab"), []),
            (send("abcde"), []),
            (written(A), []),
            (flush(), [SendMessages(A, ["ab"])]),
        ],
        2,
        id="drop_oldest: a message too big to fit beside the batch in flight drops no other",
    ),
    pytest.param(
        DROP,
        [
            *OPENED,
            (send("12345678"), []),
            (flush(), [SendMessages(A, ["12345678"])]),
            (send("abcd"), []),
            (written(A), []),
            (flush(), []),
        ],
        0,
        id="drop_oldest: a message that cannot fit beside the batch in flight is dropped",
    ),
]


@pytest.mark.parametrize(("limits", "steps", "backlog"), OVERFLOW_CASES)
def test_outbound_bound(limits: Limits, steps: list[Step], backlog: int) -> None:
    """max_queue_size with either policy; the backlog left at the end."""
    machine = run(steps, limits)
    assert machine.backlog == backlog
    if limits.queue_overflow == "close" and machine.close_info is not None:
        assert machine.overflowed
        assert machine.close_info == CLOSE_QUEUE_OVERFLOW
    else:
        assert not machine.overflowed
        assert machine.state is OPEN


# --- the inbound bound and the rate limit -------------------------------------

INBOUND_CASES = [
    pytest.param(
        LIMITS,
        [
            *OPENED,
            (incoming(["abc"], inbox=0), [Deliver(["abc"])]),
            (incoming(["def", "g"], inbox=3), [Deliver(["def", "g"])]),
            (incoming(["hij"], inbox=7), [Deliver(["hij"]), PauseInbound()]),
            (incoming(["k"], inbox=10), [Deliver(["k"])]),
            (consumed(10), []),
            (consumed(7), [ResumeInbound()]),
            (consumed(3), []),
        ],
        False,
        id="pause when the inbox reaches max_inbox_size, resume once below it",
    ),
    pytest.param(
        LIMITS,
        [
            *OPENED,
            (incoming(["0123456789ab"], inbox=0), [Deliver(["0123456789ab"]), PauseInbound()]),
            (close(), [notify(CLOSE_GO_AWAY), ResumeInbound(), sendclose(A, CLOSE_GO_AWAY)]),
            (consumed(12), []),
        ],
        False,
        id="closing resumes inbound: nothing waits on a closed session",
    ),
    pytest.param(
        LIMITS,
        [
            (attach(A), [SendOpen(A)]),
            (incoming(["0123456789"], inbox=0), [Deliver(["0123456789"]), PauseInbound()]),
            (consumed(10), []),
        ],
        True,
        id="still paused while the inbox is at the bound",
    ),
    pytest.param(
        Limits(rate_limit=RateLimit(messages_per_second=2, burst=2)),
        [
            *OPENED,
            (incoming(["a", "b", "c"]), [Deliver(["a", "b", "c"])]),
            (incoming(["d"]), [Deliver(["d"])]),
            (incoming(["e"], t=0.5), [Deliver(["e"])]),
            (incoming(["f"], t=0.5), [notify(CLOSE_RATE_LIMIT), sendclose(A, CLOSE_RATE_LIMIT)]),
        ],
        False,
        id="message rate: a burst of rate*burst, refilled with time, then 1008",
    ),
    pytest.param(
        Limits(rate_limit=RateLimit(bytes_per_second=10, burst=1)),
        [
            *OPENED,
            (incoming(["12345", "678"]), [Deliver(["12345", "678"])]),
            (incoming(["9a"], t=0.0), [Deliver(["9a"])]),
            (incoming(["bcdef"], t=0.5), [Deliver(["bcdef"])]),
            (incoming(["g"], t=0.5), [notify(CLOSE_RATE_LIMIT), sendclose(A, CLOSE_RATE_LIMIT)]),
        ],
        False,
        id="byte rate: a burst of rate*burst characters, refilled with time, then 1008",
    ),
    pytest.param(
        Limits(rate_limit=RateLimit(messages_per_second=1, burst=2)),
        [
            *OPENED,
            (incoming(["a", "b"], t=0.0), [Deliver(["a", "b"])]),
            (incoming(["c", "d"], t=100.0), [Deliver(["c", "d"])]),
            (incoming(["e"], t=100.0), [notify(CLOSE_RATE_LIMIT), sendclose(A, CLOSE_RATE_LIMIT)]),
        ],
        False,
        id="an idle client saves up no more than the burst",
    ),
    pytest.param(
        Limits(rate_limit=RateLimit(messages_per_second=100, bytes_per_second=4, burst=1)),
        [
            *OPENED,
            (incoming(["abcde"]), [notify(CLOSE_RATE_LIMIT), sendclose(A, CLOSE_RATE_LIMIT)]),
        ],
        False,
        id="with both rates, either one exceeded closes",
    ),
    pytest.param(
        Limits(rate_limit=RateLimit(bytes_per_second=10, burst=1)),
        [
            *OPENED,
            (incoming(["ab"], charged=6), [Deliver(["ab"])]),
            (incoming([], charged=3), []),
            (
                incoming(["c"], charged=2),
                [notify(CLOSE_RATE_LIMIT), sendclose(A, CLOSE_RATE_LIMIT)],
            ),
        ],
        False,
        id="charged (an inflated frame) counts instead of the characters; no message, no Deliver",
    ),
]


@pytest.mark.parametrize(("limits", "steps", "paused"), INBOUND_CASES)
def test_inbound(limits: Limits, steps: list[Step], paused: bool) -> None:
    """Client messages: delivered, paused at max_inbox_size, rate-limited with 1008."""
    machine = run(steps, limits)
    assert machine.inbound_paused is paused


# --- websocket sessions live as long as their socket ---------------------------

WEBSOCKET_CASES = [
    pytest.param(
        [
            *OPENED,
            (detach(A), [Release(A), notify(CLOSE_NORMAL), Finished()]),
            (attach(B), [sendclose(B, CLOSE_NORMAL)]),
        ],
        CLOSE_NORMAL,
        id="1000 when the socket ends",
    ),
    pytest.param(
        [
            *OPENED,
            (detach(A, interrupted=True), [Release(A), notify(CLOSE_INTERRUPTED), Finished()]),
        ],
        CLOSE_INTERRUPTED,
        id="1002 when the socket is cut",
    ),
    pytest.param(
        [*OPENED, (detach(A, code=1001), [Release(A), notify(CLOSE_NORMAL), Finished()])],
        CLOSE_NORMAL,
        id="1000 when the client closes with 1000 or 1001",
    ),
    pytest.param(
        [*OPENED, (detach(A, code=4000), [Release(A), notify(CLOSE_INTERRUPTED), Finished()])],
        CLOSE_INTERRUPTED,
        id="1002 when the client closes with another code",
    ),
    pytest.param(
        [
            *OPENED,
            (send("x"), []),
            (flush(), [SendMessages(A, ["x"])]),
            (
                written(A, ok=False, interrupted=True),
                [Release(A), notify(CLOSE_INTERRUPTED), Finished()],
            ),
        ],
        CLOSE_INTERRUPTED,
        id="1002 when a write fails",
    ),
    pytest.param(
        [*OPENED, (close(), [notify(CLOSE_GO_AWAY), sendclose(A, CLOSE_GO_AWAY), Finished()])],
        CLOSE_GO_AWAY,
        id="finished when closed",
    ),
    pytest.param(
        [
            *OPENED,
            (send("x"), []),
            (close(), [notify(CLOSE_GO_AWAY), SendMessages(A, ["x"])]),
            (written(A), [sendclose(A, CLOSE_GO_AWAY), Finished()]),
        ],
        CLOSE_GO_AWAY,
        id="finished when closed, after the queued messages",
    ),
    pytest.param(
        [
            *OPENED,
            (send("1234567"), []),
            (
                send("89ab"),
                [notify(CLOSE_QUEUE_OVERFLOW), sendclose(A, CLOSE_QUEUE_OVERFLOW), Finished()],
            ),
        ],
        CLOSE_QUEUE_OVERFLOW,
        id="finished on overflow",
    ),
    pytest.param(
        [
            (attach(A), [SendOpen(A)]),
            (
                attach(B, gone=True),
                [sendclose(B, CLOSE_ANOTHER_CONNECTION)],
            ),
            (
                written(A, ok=False, interrupted=True),
                [Release(A), notify(CLOSE_INTERRUPTED), Finished()],
            ),
        ],
        CLOSE_INTERRUPTED,
        id="a second socket is refused; the session still ends with the first",
    ),
]


@pytest.mark.parametrize(("steps", "close_info"), WEBSOCKET_CASES)
def test_websocket_session(steps: list[Step], close_info: tuple[int, str]) -> None:
    """A websocket session finishes when closed or when its socket ends."""
    machine = run(steps, websocket=True)
    assert machine.state is CLOSED
    assert machine.close_info == close_info
    assert machine.receiver is None


def test_slack_is_what_fits_below_half_the_send_bound() -> None:
    """``slack(posted)``: half of ``max_queue_size`` (10) less what the machine
    holds (queued and in flight) and what waits in the driver's mailbox;
    negative once the session holds over half its bound (it is pressured)."""
    machine = run([*OPENED, (written(A), [])])
    assert machine.slack(0) == 5
    assert machine.slack(5) == 0
    assert machine.slack(6) == -1
    machine.send("abc")  # queued: 3 characters held
    assert machine.slack(0) == 2
    assert machine.slack(3) == -1
    batch = machine.flush()
    assert batch == [SendMessages(A, ["abc"])]
    assert machine.slack(0) == 2  # in flight counts as held
    machine.written(A, True, 0.0)
    assert machine.slack(0) == 5
