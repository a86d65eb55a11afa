"""A receiving request queued behind the session's expiry is answered.

The race (a poll arrives after the sweeper's expiry tick is posted, before the
actor runs it) cannot be timed over a socket, so this drives the session with
an injected clock and a recording receiver.
"""

from __future__ import annotations

import asyncio

from aiohttp_sockjs import testing
from aiohttp_sockjs.session import Receiver, Session, SessionState


class _Recorder(Receiver):
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


async def _wait(session: Session) -> None:
    await session.wait_closed()


async def test_poll_queued_behind_expiry_is_answered() -> None:
    """A poll that found the session just before its expiry tick keeps it alive."""
    now = [0.0]
    endpoint = testing.make_endpoint(_wait, clock=lambda: now[0], disconnect_delay=5)
    first = _Recorder()
    session = testing.open_session(endpoint, first, "s", "xhr")
    for _ in range(100):
        if first.got:
            break
        await asyncio.sleep(0)
    assert first.got[:1] == ["o"]

    now[0] = 10.0
    endpoint.sweep()  # the session has expired: a tick is posted
    second = _Recorder()
    testing.attach(session, second)  # a poll that found the session just before
    for _ in range(20):
        await asyncio.sleep(0)
    assert session.state is SessionState.OPEN
    assert second.got == []  # attached and waiting for a message
    await endpoint.shutdown()
    assert session.state is SessionState.CLOSED
    assert second.got == [(1001, "Going away")]
    late = _Recorder()
    testing.attach(session, late)
    assert late.got == ["released"]
