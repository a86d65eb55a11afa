"""The batch API against the send bound: a batch is bounded as its messages
would be, sent one by one (the actor's test seam, no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from aiohttp_sockjs import SessionState, testing
from tests.actor.test_fast_paths import NowRecorder, _idle, _settle


@pytest.mark.parametrize("policy", ["drop_oldest", "close"])
async def test_a_batch_is_bounded_as_its_messages_sent_one_by_one(policy: str) -> None:
    endpoint = testing.make_endpoint(_idle, max_queue_size=60, queue_overflow=policy)
    one = testing.open_session(endpoint, None, "one")
    many = testing.open_session(endpoint, None, "many")
    await _settle()
    # 8 characters a message once encoded, 3 messages a batch: the bound is
    # crossed in the middle of the third batch.
    for i in range(6):
        batch = [f"m{i}-{k}xx" for k in range(3)]
        for message in batch:
            one.send(message)
        many.send_many(batch)
        assert testing.backlog(many) == testing.backlog(one)
    await _settle()
    assert many.state is one.state
    if policy == "close":
        assert one.state is SessionState.CLOSING  # until the client learns of it
        assert many.close_code == one.close_code
        return
    got: dict[str, Any] = {}
    for name, session in (("one", one), ("many", many)):
        rec = NowRecorder()
        testing.attach(session, rec)
        await _settle()
        got[name] = [m for frame in rec.frames if frame[0] == "a" for m in frame[1]]
    assert got["many"] == got["one"]
    assert got["one"][-1] == '"m5-2xx"'
    assert len(got["one"]) < 18  # the oldest were dropped
    await endpoint.shutdown()


async def test_a_broadcast_batch_is_bounded_per_session() -> None:
    """broadcast_many drops for the session over its bound only."""
    endpoint = testing.make_endpoint(_idle, max_queue_size=60, queue_overflow="drop_oldest")
    full = testing.open_session(endpoint, None, "full")
    reading = testing.open_session(endpoint, NowRecorder(), "reading")
    await _settle()
    for i in range(6):
        endpoint.broadcast_many([f"b{i}-{k}xx" for k in range(3)])
        await _settle()
    assert testing.backlog(reading) == 0
    assert 0 < testing.backlog(full) <= 60
    await endpoint.shutdown()
