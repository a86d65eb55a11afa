"""The actor's invariants (docs/architecture.md), each as a test that breaks with it.

A session is driven through every way in (attach, client messages, the
application's sends and close, ticks, a detach, shutdown) with an injected
clock and a recording receiver, while the test seam reports every event
call to the session's machine and who made it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiohttp_sockjs import Session, actor, commands, testing
from aiohttp_sockjs.actor import Actor
from tests.wire import ManualClock

from .test_actor import Recorder, make, open_session, settle


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def owns(session: Actor) -> bool:
    return actor.owns_token(session)


#: The actor's step and its parts: the only callers of a machine event.
#: The actor's methods that may call the machine's events (invariant 1);
#: _answer_late only on a finished session, which no one else can step.
STEP = {
    "_step",
    "_apply",
    "_tick_command",
    "_write_now",
    "_write",
    "_fail",
    "_tick_plainly",
    "_answer_late",
}


class Calls:
    """The machine's event calls, as the seam reports them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool]] = []

    def __call__(self, event: str, caller: str, owned: bool) -> None:
        self.calls.append((event, caller, owned))


async def drive(clock: ManualClock, session: Session, endpoint: Any, receiver: Recorder) -> None:
    """Every way into a session, one after the other."""
    testing.deliver(session, ["one", "two"])  # echoed by the handler
    await settle()
    session.send("from the app")
    endpoint.broadcast("to all")
    await settle()
    clock.now += 11  # a heartbeat is due
    endpoint.sweep()
    await settle()
    testing.detach(session, receiver)
    testing.attach(session, Recorder())
    await settle()
    await session.close()
    await settle()
    await endpoint.shutdown()


class AtOnce(Recorder):
    """A recorder that takes every frame without waiting (the ``*_now`` writes)."""

    sends_now = True

    def send_open_now(self) -> bool:
        return self._take("o")

    def send_heartbeat_now(self) -> bool:
        return self._take("h")

    def send_messages_now(self, messages: list[str]) -> bool:
        return self._take(("a", list(messages)))


@pytest.mark.parametrize("kind", [Recorder, AtOnce], ids=["awaited", "at_once"])
async def test_only_the_tokens_owner_calls_the_machine(
    clock: ManualClock, kind: type[Recorder]
) -> None:
    """Invariant 1: every machine event comes from the actor's step, token in hand.

    With a receiver that takes frames at once, the sweeper's tick is the
    door's plain case (``_tick_plainly``: ``beat`` instead of ``tick``),
    and the application's sends the step's plain send.
    """
    endpoint = make(clock)
    receiver = kind()
    calls = Calls()
    session = await open_session(endpoint, receiver)
    testing.watch_machine(session, calls)
    await drive(clock, session, endpoint, receiver)
    events = {event for event, _, _ in calls.calls}
    # The workload reached the machine through every kind of command.
    if kind is AtOnce:
        # Sends go out plainly (sends_plainly, a query) and ticks as beats.
        assert {"attach", "detach", "beat", "close"} <= events, events
    else:
        assert {"attach", "detach", "tick", "close", "send_and_flush"} <= events, events
    assert "h" in receiver.frames
    strays = [call for call in calls.calls if call[1] not in STEP or not call[2]]
    assert strays == []


async def test_a_plain_delivery_holds_the_token(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invariant 2: the inbox is written only with the actor's token taken.

    Client messages that reach a parked actor go straight to the inbox (the
    door's plain-delivery case), with the token taken for that write.
    """
    endpoint = make(clock)
    session = await open_session(endpoint, Recorder())
    await settle()
    owned: list[bool] = []
    take_in = Actor._take_in

    def watched(self: Actor, messages: list[str], size: int) -> None:
        owned.append(owns(self))
        take_in(self, messages, size)

    monkeypatch.setattr(Actor, "_take_in", watched)
    assert not owns(session)  # parked: the next delivery is plain
    testing.deliver(session, ["hello"])
    await settle()
    assert owned and all(owned)
    await endpoint.shutdown()


async def test_stepping_without_the_token_is_refused(clock: ManualClock) -> None:
    """The token's rule is asserted: a parked actor's step is nobody's to run."""
    endpoint = make(clock)
    session = await open_session(endpoint, Recorder())
    await settle()
    assert not owns(session)
    with pytest.raises(AssertionError, match="token"):
        session.step_parked()
    await endpoint.shutdown()


async def test_a_parked_actor_holds_no_command(clock: ManualClock) -> None:
    """The token's rule is asserted: a parked actor is idle, its mailbox empty."""
    endpoint = make(clock)
    session = await open_session(endpoint, Recorder())
    await settle()
    # Break the rule as a side door would: a command left beside the door.
    mailbox = actor.mailbox(session)
    mailbox.append(commands.CONSUMED)
    with pytest.raises(AssertionError, match="parked actor is idle"):
        session.send("through the door")
    mailbox.clear()
    await endpoint.shutdown()


async def test_a_free_actor_runs_each_command_once_in_order(clock: ManualClock) -> None:
    """Commands posted while the token is taken wait for its owner, in order."""
    seen: list[str] = []

    async def handler(session: Session) -> None:
        async for message in session:
            seen.append(message)

    endpoint = make(clock, handler)
    session = await open_session(endpoint, Recorder())
    for n in range(50):
        testing.deliver(session, [str(n)])
    await settle()
    await asyncio.sleep(0)
    assert seen == [str(n) for n in range(50)]
    await endpoint.shutdown()
