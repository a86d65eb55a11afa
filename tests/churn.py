"""Churn: sessions opened, used and left over every transport, a share of
them left the rude way, with the public client.

Used by tests/slow/test_churn.py and scripts/soak.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import aiohttp

from aiohttp_sockjs import ClientError, SessionClosed
from aiohttp_sockjs.client import TRANSPORTS, SockJSClient, connect


async def _turns(rng: random.Random) -> None:
    """A few loop turns, a random number: where in a request the client vanishes."""
    for _ in range(rng.randrange(5)):
        await asyncio.sleep(0)


async def _abort_midway(c: SockJSClient, rng: random.Random) -> None:
    """Leave the session the rude way: vanish in the middle of something."""
    if c.transport == "websocket":
        await c.send("bye")
    elif c.transport in ("xhr", "jsonp") and rng.random() >= 0.7:
        # A send in flight (else the poll that is always waiting is cut).
        sending = asyncio.ensure_future(c.send("x" * 1000))
        await _turns(rng)
        await c.abort()
        with contextlib.suppress(SessionClosed, ClientError):
            await sending
        return
    await _turns(rng)
    await c.abort()


async def churn_one(
    http: aiohttp.ClientSession,
    base: str,
    transport: str,
    index: int,
    rng: random.Random,
    abort_share: float,
    count: int = 3,
) -> bool:
    """Open, use and leave one session; returns whether it was aborted.

    A session that is not aborted must get back exactly what it sent, in order.
    """
    sent = [f"{index}:{seq}" for seq in range(count)]
    c = await connect(base, transports=transport, session=http, timeout=10)
    if transport == "raw_websocket":
        for message in sent:
            await c.send(message)
        got = [await c.receive() for _ in sent]
        assert got == sent, (transport, got)
        if rng.random() < abort_share:
            await c.abort()
            return True
        await c.close()
        return False
    if rng.random() < abort_share:
        await _abort_midway(c, rng)
        return True
    half = rng.randrange(count + 1)
    for batch in (sent[:half], sent[half:]):
        # Sent in one loop turn: one frame or request per batch.
        await asyncio.gather(*(c.send(message) for message in batch))
    try:
        got = [await c.receive() for _ in sent]
    except ClientError as exc:
        raise AssertionError(f"{transport} session {index} ({c.session_id}): {exc!r}") from None
    assert got == sent, (transport, got)
    await c.close()
    return False


async def churn(
    http: aiohttp.ClientSession,
    base: str,
    sessions: int,
    *,
    abort_share: float = 0.2,
    concurrency: int = 50,
    seed: int = 1,
    transports: tuple[str, ...] = TRANSPORTS,
) -> dict[str, int]:
    """Run ``sessions`` sessions spread over ``transports``; returns counts by outcome."""
    rng = random.Random(seed)
    sem = asyncio.Semaphore(concurrency)
    stats = {"clean": 0, "aborted": 0}

    async def one(i: int) -> None:
        local = random.Random(rng.random())
        async with sem:
            aborted = await churn_one(
                http, base, transports[i % len(transports)], i, local, abort_share
            )
        stats["aborted" if aborted else "clean"] += 1

    await asyncio.gather(*(one(i) for i in range(sessions)))
    return stats
