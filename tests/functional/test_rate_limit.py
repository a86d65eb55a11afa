"""The per-session inbound rate limit (``rate_limit=RateLimit(...)``) on the wire.

A session that sends more than its bucket holds is closed with
``c[1008,"Rate limit exceeded"]`` and one INFO line; a session under the
limit, or another session, is untouched. Time is the test seam's clock,
moved by the test, so refills are exact.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from aiohttp_sockjs import RateLimit
from tests.conftest import ClientFactory
from tests.wire import ManualClock, Receiver, bounded, new_id, session_url, xhr, xhr_send

RATE_CLOSE = 'c[1008,"Rate limit exceeded"]'


def _rate_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "aiohttp_sockjs" and "rate limit" in r.getMessage().lower()
    ]


async def _open(client: TestClient[Any, Any], transport: str) -> Receiver:
    rx = Receiver(client, "/e", new_id(), transport)
    assert await rx.start() == "o"
    return rx


async def _send_each(rx: Receiver, messages: list[str]) -> None:
    """One frame or request per message."""
    for message in messages:
        await rx.send(message)


@pytest.mark.parametrize("transport", ["websocket", "xhr"])
async def test_over_the_message_rate_closes_with_1008(
    serve: ClientFactory, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp_sockjs")
    clock = ManualClock()
    client = await serve(clock=clock, rate_limit=RateLimit(messages_per_second=5, burst=2))
    rx = await _open(client, transport)
    within = [f"m{i}" for i in range(10)]  # the whole bucket: 5/s for 2 s
    await _send_each(rx, within)
    assert await rx.messages(10) == within
    assert not _rate_lines(caplog)
    await rx.send("one too many")
    assert await bounded(rx.frame()) == RATE_CLOSE
    if transport == "websocket":
        assert rx.ws is not None
        msg = await bounded(rx.ws.receive())
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    else:
        # The close frame stays until the session expires.
        assert await bounded(rx.frame()) == RATE_CLOSE
    await rx.close()
    lines = _rate_lines(caplog)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.INFO
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("transport", ["websocket", "xhr"])
async def test_over_the_byte_rate_in_one_batch_closes_with_1008(
    serve: ClientFactory, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    """The messages of a batch over the limit are not delivered."""
    caplog.set_level(logging.INFO, logger="aiohttp_sockjs")
    got: list[str] = []

    async def record(session: Any) -> None:
        async for message in session:
            got.append(message)
            session.send(message)

    client = await serve(
        record, clock=ManualClock(), rate_limit=RateLimit(bytes_per_second=1000, burst=1)
    )
    rx = await _open(client, transport)
    await rx.send("a" * 600)
    assert await rx.messages(1) == ["a" * 600]
    await rx.send("b" * 300, "c" * 300)  # 1200 characters in all
    assert await bounded(rx.frame()) == RATE_CLOSE
    assert got == ["a" * 600]
    await rx.close()
    assert len(_rate_lines(caplog)) == 1


@pytest.mark.parametrize("transport", ["websocket", "xhr"])
async def test_a_session_under_the_limit_is_untouched(
    serve: ClientFactory, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    """A client that spends its bucket every second, for many seconds, and
    messages and bytes both limited: nothing is refused, nothing logged."""
    caplog.set_level(logging.DEBUG, logger="aiohttp_sockjs")
    clock = ManualClock()
    limit = RateLimit(messages_per_second=10, bytes_per_second=200, burst=1)
    client = await serve(clock=clock, rate_limit=limit)
    rx = await _open(client, transport)
    for second in range(5):
        batch = [f"{second}:{i}".ljust(20, ".") for i in range(10)]  # 10 messages, 200 chars
        await rx.send(*batch)
        assert await rx.messages(10) == batch
        clock.now += 1.0
    await rx.send("still open")
    assert await rx.messages(1) == ["still open"]
    await rx.close()
    assert not _rate_lines(caplog)


async def test_one_session_over_the_limit_leaves_the_others_alone(
    serve: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp_sockjs")
    client = await serve(clock=ManualClock(), rate_limit=RateLimit(messages_per_second=3, burst=1))
    calm = await _open(client, "websocket")
    loud = await _open(client, "websocket")
    await loud.send("1", "2", "3", "4")
    assert await bounded(loud.frame()) == RATE_CLOSE
    await calm.send("1", "2", "3")
    assert await calm.messages(3) == ["1", "2", "3"]
    # A polling session too: its own bucket, full.
    sid = new_id()
    assert await bounded(xhr(client, "/e", sid)) == "o\n"
    await xhr_send(client, "/e", sid, "x", "y", "z")
    assert await bounded(xhr(client, "/e", sid)) == 'a["x","y","z"]\n'
    await calm.close()
    await loud.close()
    assert len(_rate_lines(caplog)) == 1


async def test_rate_limit_refuses_a_raw_websocket_too(serve: ClientFactory) -> None:
    client = await serve(clock=ManualClock(), rate_limit=RateLimit(messages_per_second=2, burst=1))
    ws = await bounded(client.ws_connect("/e/websocket"))
    for message in ("one", "two"):
        await ws.send_str(message)
        assert await bounded(ws.receive_str()) == message
    await ws.send_str("three")
    msg = await bounded(ws.receive())
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert (msg.data, msg.extra) == (1008, "Rate limit exceeded")


async def test_jsonp_send_over_the_limit(serve: ClientFactory) -> None:
    client = await serve(clock=ManualClock(), rate_limit=RateLimit(messages_per_second=2, burst=1))
    sid = new_id()
    assert await bounded(xhr(client, "/e", sid)) == "o\n"
    url = session_url("/e", sid, "jsonp_send")
    form = {"d": json.dumps(["1", "2", "3"])}
    async with client.post(url, data=form) as resp:
        assert resp.status == 200
    assert await bounded(xhr(client, "/e", sid)) == RATE_CLOSE + "\n"
