"""The session actor and the sweeper, driven with an injected clock.

No sockets and no sleeping: a fake clock decides what is due, and a
recording receiver stands in for a transport's connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiohttp_sockjs import Endpoint, Session, SessionState, testing
from aiohttp_sockjs.session import Receiver
from tests.wire import ManualClock


class Recorder(Receiver):
    """Records frames; takes ``capacity`` frames, then reports itself full."""

    def __init__(self, capacity: int = 1000) -> None:
        self.frames: list[Any] = []
        self.capacity = capacity
        self.gone = False

    def _take(self, frame: Any) -> bool:
        self.frames.append(frame)
        return len(self.frames) < self.capacity

    async def send_open(self) -> bool:
        return self._take("o")

    async def send_heartbeat(self) -> bool:
        return self._take("h")

    async def send_messages(self, messages: list[str]) -> bool:
        return self._take(("a", list(messages)))

    async def send_close(self, code: int, reason: str) -> None:
        self.frames.append(("c", code, reason))

    def interrupted(self) -> bool:
        return self.gone

    def abort(self) -> None:
        self.gone = True


async def settle() -> None:
    """Loop turns, no real time: the actors run what was posted to them while
    the injected clock stands still."""
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make(clock: ManualClock, handler: Any = None, **options: Any) -> Endpoint:
    async def echo(session: Session) -> None:
        async for message in session:
            session.send(message)

    return testing.make_endpoint(
        handler or echo, clock=clock, heartbeat_delay=10, disconnect_delay=5, **options
    )


async def open_session(endpoint: Endpoint, receiver: Receiver, sid: str = "s1") -> Session:
    session = testing.open_session(endpoint, receiver, sid)
    await settle()
    return session


async def test_open_then_messages_in_order(clock: ManualClock) -> None:
    """The first receiver gets "o"; echoes come back in order."""
    endpoint = make(clock)
    rec = Recorder()
    session = await open_session(endpoint, rec)
    assert rec.frames == ["o"]
    assert session.state is SessionState.OPEN
    testing.deliver(session, ["1", "2", "3"])
    await settle()
    flat = [m for f in rec.frames[1:] for m in f[1]]
    assert flat == ['"1"', '"2"', '"3"']
    await endpoint.shutdown()


async def test_sends_coalesce_while_no_receiver(clock: ManualClock) -> None:
    """Messages queued with no receiver go out together in one frame."""
    endpoint = make(clock)
    poll = Recorder(capacity=1)
    session = await open_session(endpoint, poll)
    assert poll.frames == ["o"]
    for i in range(5):
        session.send(str(i))
    await settle()
    nxt = Recorder(capacity=1)
    testing.attach(session, nxt)
    await settle()
    assert nxt.frames == [("a", ['"0"', '"1"', '"2"', '"3"', '"4"'])]
    await endpoint.shutdown()


async def test_second_receiver_is_refused(clock: ManualClock) -> None:
    """One receiver at a time: the second gets 2010 and the first keeps working."""
    endpoint = make(clock)
    first = Recorder()
    session = await open_session(endpoint, first)
    second = Recorder()
    testing.attach(session, second)
    await settle()
    assert second.frames == [("c", 2010, "Another connection still open")]
    session.send("still here")
    await settle()
    assert first.frames[-1] == ("a", ['"still here"'])
    await endpoint.shutdown()


async def test_heartbeat_only_when_due(clock: ManualClock) -> None:
    """The sweeper ticks a session only when its heartbeat deadline has passed."""
    endpoint = make(clock)
    rec = Recorder()
    await open_session(endpoint, rec)
    clock.now += 9.9
    endpoint.sweep()
    await settle()
    assert rec.frames == ["o"]
    clock.now += 0.2
    endpoint.sweep()
    await settle()
    assert rec.frames == ["o", "h"]
    endpoint.sweep()
    await settle()
    assert rec.frames == ["o", "h"]
    clock.now += 10
    endpoint.sweep()
    await settle()
    assert rec.frames == ["o", "h", "h"]
    await endpoint.shutdown()


async def test_expiry_after_disconnect_delay(clock: ManualClock) -> None:
    """With no receiver, the session expires disconnect_delay later; the app sees it."""
    seen: list[tuple[int | None, str | None]] = []

    async def handler(session: Session) -> None:
        async for _ in session:
            pass
        seen.append((session.close_code, session.close_reason))

    endpoint = make(clock, handler)
    poll = Recorder(capacity=1)
    session = await open_session(endpoint, poll)
    clock.now += 4.9
    endpoint.sweep()
    await settle()
    assert session.state is SessionState.OPEN
    clock.now += 0.2
    endpoint.sweep()
    await settle()
    assert session.state is SessionState.CLOSED
    assert not testing.held_sessions(endpoint)
    assert len(endpoint) == 0
    assert seen == [(1002, "Connection interrupted")]
    await endpoint.shutdown()


async def test_close_frame_repeats_until_expiry(clock: ManualClock) -> None:
    """After an app close every receiver gets the close frame, until expiry."""

    async def closer(session: Session) -> None:
        await session.close(3001, "bye")

    endpoint = make(clock, closer)
    first = Recorder()
    session = await open_session(endpoint, first)
    assert first.frames == ["o", ("c", 3001, "bye")]
    for _ in range(3):
        again = Recorder()
        testing.attach(session, again)
        await settle()
        assert again.frames == [("c", 3001, "bye")]
        clock.now += 4
        endpoint.sweep()
        await settle()
    assert session.state is SessionState.CLOSING
    clock.now += 6
    endpoint.sweep()
    await settle()
    assert session.state is SessionState.CLOSED
    await endpoint.shutdown()


async def test_messages_before_close_are_not_lost(clock: ManualClock) -> None:
    """Messages sent before a close reach the next receiver, then the close frame."""

    async def handler(session: Session) -> None:
        session.send("last words")
        await session.close()

    endpoint = make(clock, handler)
    session = testing.open_session(endpoint, None, "s1", "xhr")
    await settle()
    poll = Recorder(capacity=1)
    testing.attach(session, poll)
    await settle()
    assert poll.frames == [("a", ['"last words"'])]
    poll2 = Recorder(capacity=1)
    testing.attach(session, poll2)
    await settle()
    assert poll2.frames == [("c", 3000, "Go away!")]
    await endpoint.shutdown()


async def test_interrupted_receiver_closes_with_1002(clock: ManualClock) -> None:
    """A receiver cut by the network closes the session; later receivers see 1002."""
    endpoint = make(clock)
    rec = Recorder()
    session = await open_session(endpoint, rec)
    rec.gone = True
    endpoint.sweep()
    await settle()
    assert session.close_code == 1002
    nxt = Recorder()
    testing.attach(session, nxt)
    await settle()
    assert nxt.frames == [("c", 1002, "Connection interrupted")]
    await endpoint.shutdown()


async def test_interrupted_receiver_found_on_attach(clock: ManualClock) -> None:
    """A new receiver that finds the old one dead gets 1002, not 2010."""
    endpoint = make(clock)
    rec = Recorder()
    session = await open_session(endpoint, rec)
    rec.gone = True
    nxt = Recorder()
    testing.attach(session, nxt)
    await settle()
    assert nxt.frames == [("c", 1002, "Connection interrupted")]
    assert session.state is SessionState.CLOSING
    await endpoint.shutdown()


async def test_handler_return_closes(clock: ManualClock) -> None:
    """Returning from the handler closes the session with 3000 "Go away!"."""

    async def quick(session: Session) -> None:
        return None

    endpoint = make(clock, quick)
    rec = Recorder()
    session = await open_session(endpoint, rec)
    assert rec.frames == ["o", ("c", 3000, "Go away!")]
    assert session.closed
    await endpoint.shutdown()


async def test_handler_error_closes_with_1011(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing handler closes only its own session, with 1011, logged once."""

    async def broken(session: Session) -> None:
        if testing.session_id(session) == "bad":
            raise ValueError("boom")
        async for message in session:
            session.send(message)

    endpoint = make(clock, broken)
    good, bad = Recorder(), Recorder()
    good_session = await open_session(endpoint, good, "good")
    await open_session(endpoint, bad, "bad")
    assert bad.frames == ["o", ("c", 1011, "Internal error")]
    testing.deliver(good_session, ["x"])
    await settle()
    assert good.frames == ["o", ("a", ['"x"'])]
    errors = [r for r in caplog.records if r.exc_info]
    assert len(errors) == 1
    await endpoint.shutdown()


async def test_broadcast_encodes_once(clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """broadcast() encodes the message once, whatever the number of sessions."""
    from aiohttp_sockjs import protocol

    endpoint = make(clock)
    recs = [Recorder() for _ in range(50)]
    for i, rec in enumerate(recs):
        await open_session(endpoint, rec, f"s{i}")
    calls = 0
    real = protocol.encode_message

    def counting(message: str) -> str:
        nonlocal calls
        calls += 1
        return real(message)

    monkeypatch.setattr(protocol, "encode_message", counting)
    endpoint.broadcast("hello")
    await settle()
    assert calls == 1
    assert all(rec.frames == ["o", ("a", ['"hello"'])] for rec in recs)
    await endpoint.shutdown()


async def test_concurrent_receive_is_misuse(clock: ManualClock) -> None:
    """Two tasks receiving from one session is a programming error."""
    from aiohttp_sockjs import SessionMisuse

    started = asyncio.Event()
    holder: list[Session] = []

    async def handler(session: Session) -> None:
        holder.append(session)
        started.set()
        await asyncio.Event().wait()

    endpoint = make(clock, handler)
    await open_session(endpoint, Recorder())
    await started.wait()
    session = holder[0]
    first = asyncio.ensure_future(session.receive())
    await settle()
    with pytest.raises(SessionMisuse):
        await session.receive()
    first.cancel()
    await endpoint.shutdown()


async def test_shutdown_closes_everything(clock: ManualClock) -> None:
    """shutdown() sends 1001 to every receiver and leaves no task behind."""
    endpoint = make(clock)
    recs = [Recorder() for _ in range(20)]
    sessions = [await open_session(endpoint, rec, f"s{i}") for i, rec in enumerate(recs)]
    await endpoint.start()
    await endpoint.shutdown()
    assert all(rec.frames[-1] == ("c", 1001, "Going away") for rec in recs)
    assert all(s.state is SessionState.CLOSED for s in sessions)
    assert len(endpoint) == 0
    assert testing.running_handlers(endpoint) == 0


async def test_broadcast_to_some_and_exclude(clock: ManualClock) -> None:
    """broadcast() can target given sessions and leave one out."""
    endpoint = make(clock)
    recs = [Recorder() for _ in range(4)]
    sessions = [await open_session(endpoint, rec, f"s{i}") for i, rec in enumerate(recs)]
    assert all(s.endpoint is endpoint for s in sessions)
    endpoint.broadcast("all but 0", exclude=sessions[0])
    endpoint.broadcast("just 1 and 2", sessions=sessions[1:3])
    await settle()
    got = [[m for f in rec.frames[1:] for m in f[1]] for rec in recs]
    assert got == [
        [],
        ['"all but 0"', '"just 1 and 2"'],
        ['"all but 0"', '"just 1 and 2"'],
        ['"all but 0"'],
    ]
    await endpoint.shutdown()


class Exploding(Recorder):
    async def send_messages(self, messages: list[str]) -> bool:
        raise RuntimeError("a bug in a receiver")


async def test_receiver_fault_ends_only_that_session(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A command that fails ends its session with 1011; others carry on; waiters are answered."""
    endpoint = make(clock)
    bad_rec, good_rec = Exploding(), Recorder()
    bad = await open_session(endpoint, bad_rec, "bad")
    good = await open_session(endpoint, good_rec, "good")
    bad.send("x")
    late = Recorder()
    testing.attach(bad, late)  # while the failing receiver is still attached
    good.send("y")
    await settle()
    assert bad.state is SessionState.CLOSED
    assert bad.close_code == 1011
    assert late.frames == [("c", 2010, "Another connection still open")]
    later = Recorder()
    testing.attach(bad, later)
    await settle()
    assert later.frames == []  # a session that ended releases late receivers
    assert good_rec.frames == ["o", ("a", ['"y"'])]
    assert len([r for r in caplog.records if r.exc_info]) == 1
    await endpoint.shutdown()


class ExplodingNow(Recorder):
    sends_now = True

    def send_messages_now(self, messages: list[str]) -> bool:
        raise RuntimeError("a bug in a synchronous write")


async def test_synchronous_write_fault_ends_only_that_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A synchronous write that raises ends its session with 1011, as a
    failing actor command does; other sessions carry on, waiters are answered."""
    endpoint = make(ManualClock())
    bad_rec, good_rec = ExplodingNow(), Recorder()
    bad = await open_session(endpoint, bad_rec, "bad")
    good = await open_session(endpoint, good_rec, "good")
    bad.send("x")
    good.send("y")
    await settle()
    assert bad.state is SessionState.CLOSED
    assert bad.close_code == 1011
    assert bad_rec.gone  # its connection was cut, as _fail does
    late = Recorder()
    testing.attach(bad, late)
    await settle()
    assert late.frames == []  # a closed session releases a late receiver
    assert good_rec.frames == ["o", ("a", ['"y"'])]
    assert len([r for r in caplog.records if r.exc_info]) == 1
    await endpoint.shutdown()


# --- a poll queued behind the expiry tick ----------------------------------
# The race (a poll arrives after the sweeper's expiry tick is posted, before
# the actor runs it) cannot be timed over a socket, so the session is driven
# with the injected clock and a recording receiver.


class _QueueRecorder(Receiver):
    def __init__(self) -> None:
        self.got: list[object] = []

    async def send_open(self) -> bool:
        self.got.append("o")
        return False

    async def send_heartbeat(self) -> bool:
        self.got.append("h")
        return True

    async def send_messages(self, messages: list[str]) -> bool:
        self.got.append(messages)
        return False

    async def send_close(self, code: int, reason: str) -> None:
        self.got.append((code, reason))

    def interrupted(self) -> bool:
        return False

    def abort(self) -> None:
        self.got.append("aborted")

    def release(self) -> None:
        self.got.append("released")


async def _until_closed(session: Session) -> None:
    await session.wait_closed()


async def test_poll_queued_behind_expiry_is_answered() -> None:
    """A poll that found the session just before its expiry tick keeps it alive."""
    now = [0.0]
    endpoint = testing.make_endpoint(_until_closed, clock=lambda: now[0], disconnect_delay=5)
    first = _QueueRecorder()
    session = testing.open_session(endpoint, first, "s", "xhr")
    for _ in range(100):  # loop turns only: the clock is the test's
        if first.got:
            break
        await asyncio.sleep(0)
    assert first.got[:1] == ["o"]

    now[0] = 10.0
    # A tick to a parked actor is applied at once (see Session._tick); the
    # race needs an actor with a command waiting, as after a send.
    session.send("x")
    endpoint.sweep()  # the session has expired: a tick is posted behind the send
    assert session.state is SessionState.OPEN
    second = _QueueRecorder()
    testing.attach(session, second)  # a poll that found the session just before
    await settle()
    assert session.state is SessionState.OPEN
    assert second.got[:1] == [['"x"']]  # attached and answered
    third = _QueueRecorder()
    testing.attach(session, third)  # the next poll waits for a message
    await settle()
    assert third.got == []
    await endpoint.shutdown()
    assert session.state is SessionState.CLOSED
    assert third.got == [(1001, "Going away")]
    late = _QueueRecorder()
    testing.attach(session, late)
    assert late.got == ["released"]


async def test_expiry_tick_to_a_parked_actor_is_applied_at_once() -> None:
    """The sweeper runs a parked actor's tick itself: the expired session
    has ended when sweep() returns, and a late connection is released."""
    now = [0.0]
    endpoint = testing.make_endpoint(_until_closed, clock=lambda: now[0], disconnect_delay=5)
    first = _QueueRecorder()
    session = testing.open_session(endpoint, first, "s", "xhr")
    for _ in range(100):  # loop turns only: the clock is the test's
        if first.got:
            break
        await asyncio.sleep(0)
    assert first.got[:1] == ["o"]
    now[0] = 10.0
    endpoint.sweep()
    assert session.state is SessionState.CLOSED
    late = _QueueRecorder()
    testing.attach(session, late)
    assert late.got == ["released"]
    await endpoint.shutdown()


async def test_session_data_is_per_session_storage(clock: ManualClock) -> None:
    """``session.data`` is a dict of the session's own, kept across messages; it can be replaced."""

    async def count(session: Session) -> None:
        async for message in session:
            seen = session.data.setdefault("seen", [])
            seen.append(message)
            session.send(f"{len(seen)}")

    endpoint = make(clock, count)
    first, second = Recorder(), Recorder()
    a = await open_session(endpoint, first, "a")
    b = await open_session(endpoint, second, "b")
    testing.deliver(a, ["x"])
    testing.deliver(a, ["y"])
    testing.deliver(b, ["z"])
    await settle()
    assert a.data == {"seen": ["x", "y"]}
    assert b.data == {"seen": ["z"]}
    b.data = {"seen": ["earlier"]}
    testing.deliver(b, ["w"])
    await settle()
    assert b.data["seen"] == ["earlier", "w"]
    assert second.frames[-1] == ("a", ['"2"'])
    await endpoint.shutdown()
