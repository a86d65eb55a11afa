"""The actor's synchronous writes: frames a connection can take at once.

A receiver that can write without waiting (``sends_now``) gets the open
frame, messages and heartbeats from the step that decided them, with no
task woken for the write; one that cannot gets them from the actor's task.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiohttp_sockjs import SessionState, testing
from aiohttp_sockjs.session import Receiver


class NowRecorder(Receiver):
    """Takes every frame at once (or, with ``now=False``, only awaited)."""

    def __init__(self, now: bool = True) -> None:
        self.sends_now = now
        self.frames: list[Any] = []
        self.awaited: list[Any] = []

    def send_open_now(self) -> bool:
        self.frames.append("o")
        return True

    def send_heartbeat_now(self) -> bool:
        self.frames.append("h")
        return True

    def send_messages_now(self, messages: list[str]) -> bool:
        self.frames.append(("a", list(messages)))
        return True

    async def send_open(self) -> bool:
        self.frames.append("o")
        self.awaited.append("o")
        return True

    async def send_heartbeat(self) -> bool:
        self.frames.append("h")
        self.awaited.append("h")
        return True

    async def send_messages(self, messages: list[str]) -> bool:
        self.frames.append(("a", list(messages)))
        self.awaited.append("a")
        return True

    async def send_close(self, code: int, reason: str) -> None:
        self.frames.append(("c", code, reason))

    def interrupted(self) -> bool:
        return False

    def abort(self) -> None:
        pass


async def _idle(session: Any) -> None:
    await session.wait_closed()


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_heartbeat_is_written_by_the_sweep_itself() -> None:
    """A parked actor's heartbeat is written before sweep() returns, not by its task."""
    now = [0.0]
    endpoint = testing.make_endpoint(_idle, clock=lambda: now[0], heartbeat_delay=10)
    rec = NowRecorder()
    session = testing.open_session(endpoint, rec, "s", "websocket")
    await _settle()
    assert rec.frames == ["o"]
    for beat in range(1, 4):
        now[0] = 10.0 * beat
        endpoint.sweep()
        assert rec.frames == ["o"] + ["h"] * beat  # at once, within sweep()
    assert rec.awaited == []
    assert session.state is SessionState.OPEN
    await endpoint.shutdown()


async def test_heartbeat_waits_for_the_task_when_it_cannot_be_written_now() -> None:
    """A receiver that cannot write at once gets the heartbeat from the actor's task."""
    now = [0.0]
    endpoint = testing.make_endpoint(_idle, clock=lambda: now[0], heartbeat_delay=10)
    rec = NowRecorder(now=False)
    testing.open_session(endpoint, rec, "s", "websocket")
    await _settle()
    now[0] = 10.0
    endpoint.sweep()
    assert rec.frames == ["o"]  # not yet: the task writes it
    await _settle()
    assert rec.frames == ["o", "h"]
    assert rec.awaited == ["o", "h"]
    await endpoint.shutdown()


async def test_heartbeats_go_on_after_messages_written_at_once() -> None:
    """Writes made at once are reported to the machine: the next heartbeat is due as usual."""
    now = [0.0]

    async def echo(session: Any) -> None:
        async for message in session:
            session.send(message)

    endpoint = testing.make_endpoint(echo, clock=lambda: now[0], heartbeat_delay=10)
    rec = NowRecorder()
    session = testing.open_session(endpoint, rec, "s", "websocket")
    await _settle()
    testing.deliver(session, ["x"])
    await _settle()
    assert rec.frames == ["o", ("a", ['"x"'])]
    now[0] = 10.0
    endpoint.sweep()
    now[0] = 15.0
    endpoint.sweep()  # not due again yet
    assert rec.frames == ["o", ("a", ['"x"']), "h"]
    assert rec.awaited == []
    await endpoint.shutdown()


class OneFrame(NowRecorder):
    """A polling request: takes one frame at once, then is done."""

    single_frame = True

    def __init__(self) -> None:
        super().__init__()
        self.released = False

    def release(self) -> None:
        self.released = True


async def _greet(session: Any) -> None:
    session.send("hi")
    await session.wait_closed()


async def test_single_frame_receiver_is_let_go_after_a_write_at_once() -> None:
    """A polling request answered at once is released; the next one gets what follows."""
    endpoint = testing.make_endpoint(_greet)
    first = OneFrame()
    session = testing.open_session(endpoint, first, "s", "xhr")
    await _settle()
    assert first.frames == ["o"]
    assert first.released
    assert not testing.attached(session)
    second = OneFrame()
    testing.attach(session, second)
    await _settle()
    assert second.frames == [("a", ['"hi"'])]
    assert second.released
    assert first.awaited == second.awaited == []
    assert session.state is SessionState.OPEN
    await endpoint.shutdown()


async def test_a_connection_is_answered_as_it_is_attached() -> None:
    """The open frame of a new session, and what waits for a poll, are written
    within the call that attaches the connection: no loop turn in between."""
    endpoint = testing.make_endpoint(_greet)
    first = OneFrame()
    session = testing.open_session(endpoint, first, "s", "xhr")
    assert first.frames == ["o"]  # before any await
    await _settle()  # the handler runs and sends
    second = OneFrame()
    testing.attach(session, second)
    assert second.frames == [("a", ['"hi"'])]
    assert second.released
    await endpoint.shutdown()


async def test_an_idle_session_holds_no_task_of_its_own() -> None:
    """Once its open frame is written, an idle session's only task is its handler."""
    before = asyncio.all_tasks()
    endpoint = testing.make_endpoint(_idle)
    session = testing.open_session(endpoint, NowRecorder(), "s", "websocket")
    await _settle()
    assert session.state is SessionState.OPEN
    started = asyncio.all_tasks() - before
    assert len(started) == 1, started  # the handler, awaiting wait_closed()
    await endpoint.shutdown()


async def test_a_reply_is_written_before_its_handler_task_yields() -> None:
    """What a handler sends goes out as the handler suspends, as one frame.

    Not a loop iteration later from the endpoint's callback: a callback
    scheduled just after the client's message runs after the handler's
    turn, and by then the reply is written.
    """

    async def echo(session: Any) -> None:
        async for message in session:
            session.send(message)
            session.send(message + "!")

    endpoint = testing.make_endpoint(echo)
    receiver = NowRecorder()
    session = testing.open_session(endpoint, receiver, "s", "websocket")
    await _settle()
    assert receiver.frames == ["o"]
    loop = asyncio.get_running_loop()
    seen: asyncio.Future[list[Any]] = loop.create_future()
    testing.deliver(session, ["ping"])
    # Runs after the handler's turn (its wakeup was scheduled first).
    loop.call_soon(lambda: seen.set_result(list(receiver.frames)))
    assert await seen == ["o", ("a", ['"ping"', '"ping!"'])]
    await _settle()
    assert receiver.frames == ["o", ("a", ['"ping"', '"ping!"'])]
    assert receiver.awaited == []
    await endpoint.shutdown()


async def test_a_send_goes_out_whatever_its_handler_then_waits_for() -> None:
    """A handler that sends and then waits on something of its own still gets its send out."""
    gate = asyncio.Event()

    async def announce(session: Any) -> None:
        session.send("first")
        await gate.wait()  # not the session: nothing of ours runs here
        session.send("second")
        await asyncio.sleep(3600)

    endpoint = testing.make_endpoint(announce)
    receiver = NowRecorder()
    testing.open_session(endpoint, receiver, "s", "websocket")
    await _settle()
    assert receiver.frames == ["o", ("a", ['"first"'])]
    gate.set()
    await _settle()
    assert receiver.frames == ["o", ("a", ['"first"']), ("a", ['"second"'])]
    await endpoint.shutdown()


async def test_what_a_handler_sends_as_it_ends_goes_out_before_the_close() -> None:
    """The last sends of a handler that returns, or fails, precede the close frame."""

    async def last_words(session: Any) -> None:
        async for message in session:
            session.send("bye")
            if message == "fail":
                raise RuntimeError("handler bug")
            return

    for message, close in (("quit", (3000, "Go away!")), ("fail", (1011, "Internal error"))):
        endpoint = testing.make_endpoint(last_words)
        receiver = NowRecorder()
        session = testing.open_session(endpoint, receiver, "s", "xhr_streaming")
        await _settle()
        testing.deliver(session, [message])
        await asyncio.wait_for(session.wait_closed(), 5)
        await _settle()
        assert receiver.frames == ["o", ("a", ['"bye"']), ("c", *close)], message
        await endpoint.shutdown()


async def test_an_ended_session_is_freed_by_reference_counting_alone() -> None:
    """No reference cycle keeps a session whose handler has ended: no cyclic GC needed."""
    import gc
    import weakref

    async def short(session: Any) -> None:
        async for _ in session:
            session.send("bye")
            return

    now = [0.0]
    endpoint = testing.make_endpoint(short, clock=lambda: now[0])
    gc.collect()
    gc.disable()
    try:
        receiver = NowRecorder()
        session = testing.open_session(endpoint, receiver, "s", "xhr_streaming")
        await _settle()
        testing.deliver(session, ["hi"])
        await asyncio.wait_for(session.wait_closed(), 5)
        testing.detach(session, receiver)
        now[0] += 3600  # expired
        endpoint.sweep()
        await _settle()
        assert not testing.held_sessions(endpoint)
        gone = weakref.ref(session)
        del session
        await _settle()
        assert gone() is None
    finally:
        gc.enable()
    assert receiver.frames == ["o", ("a", ['"bye"']), ("c", 3000, "Go away!")]
    await endpoint.shutdown()


@pytest.mark.parametrize("many", [False, True], ids=["broadcast", "broadcast_many"])
async def test_a_broadcast_leaves_no_container_for_the_collector_per_recipient(
    many: bool,
) -> None:
    """Until their step, the recipients of a broadcast hold the message without
    a new GC-tracked object each: broadcasts to thousands of sessions must not
    fill the collector's young generation (and so trigger full collections)."""
    import gc

    endpoint = testing.make_endpoint(_idle)
    receivers = [NowRecorder() for _ in range(200)]
    for i, rec in enumerate(receivers):
        testing.open_session(endpoint, rec, f"s{i}", "websocket")
    await _settle()
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        if many:
            endpoint.broadcast_many(["hello", "there"])
        else:
            endpoint.broadcast("hello")
        tracked = len(gc.get_objects()) - before
    finally:
        gc.enable()
    assert tracked < 10, tracked
    await _settle()
    sent = ['"hello"', '"there"'] if many else ['"hello"']
    assert all(rec.frames == ["o", ("a", sent)] for rec in receivers)
    await endpoint.shutdown()
