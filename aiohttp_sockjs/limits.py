"""The numbers a session is held to: its rate limit, its bounds and delays.

Made once per endpoint from its options (:class:`Limits`), read by every
session's :class:`~aiohttp_sockjs.machine.SessionMachine`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["Limits", "RateBucket", "RateLimit", "admits", "bucket"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """An inbound rate limit per session: a token bucket for messages and bytes.

    ``messages_per_second`` and ``bytes_per_second`` (either may be
    ``None``) are the sustained rates; ``burst`` is how many seconds' worth
    of each a client may send at once. A session that goes over is closed
    with 1008 "Rate limit exceeded".
    """

    messages_per_second: float | None = None
    bytes_per_second: float | None = None
    burst: float = 2.0

    def __post_init__(self) -> None:
        for rate in (self.messages_per_second, self.bytes_per_second):
            if rate is not None and not rate > 0:
                raise ValueError("rates must be positive (or None)")
        if not self.burst >= 1 / 1000:
            raise ValueError("burst must be positive")


@dataclass(frozen=True, slots=True)
class Limits:
    """The numbers the machine decides by; made from the endpoint's options."""

    heartbeat_delay: float = 25.0
    disconnect_delay: float = 5.0
    #: Characters of encoded, undelivered outbound messages.
    max_queue_size: int = 4 << 20
    queue_overflow: Literal["close", "drop_oldest"] = "close"
    #: Characters of inbound messages the application has not taken yet.
    max_inbox_size: int = 1 << 20
    rate_limit: RateLimit | None = None


# --- actions ---------------------------------------------------------------


def admits(held: int, size: int, limit: int) -> bool:
    """The send bound: whether ``size`` more characters fit beside ``held``.

    An empty queue takes any one message, so a message larger than the
    bound still goes out to a client that keeps up.
    """
    return not held or held + size <= limit


def bucket(rate: float | None, burst: float) -> float:
    """A token bucket's size: ``burst`` seconds of ``rate`` (no bound without a rate)."""
    return math.inf if rate is None else rate * burst


class RateBucket:
    """The two token buckets of a :class:`RateLimit`, messages and bytes: a
    session's (the machine's rate limit) or a client's (``client_rate_limit``).

    Each starts full (``burst`` seconds of its rate) and refills at its
    rate up to that; a bucket without a rate never runs out.
    """

    __slots__ = ("bytes", "messages", "time")

    def __init__(self, rate: RateLimit, now: float) -> None:
        self.time = now
        self.messages = bucket(rate.messages_per_second, rate.burst)
        self.bytes = bucket(rate.bytes_per_second, rate.burst)

    def take(self, rate: RateLimit, count: int, size: int, now: float) -> bool:
        """Take ``count`` messages and ``size`` bytes at ``now``.

        ``False`` when either bucket holds too few: nothing is taken then.
        """
        elapsed = max(0.0, now - self.time)
        self.time = now
        messages = self._refill(self.messages, rate.messages_per_second, rate.burst, elapsed)
        size_tokens = self._refill(self.bytes, rate.bytes_per_second, rate.burst, elapsed)
        ok = messages >= count and size_tokens >= size
        self.messages = messages - count if ok else messages
        self.bytes = size_tokens - size if ok else size_tokens
        return ok

    def refilled(self, rate: RateLimit, now: float) -> bool:
        """Whether both buckets are full again at ``now`` (as if new)."""
        elapsed = now - self.time
        for per_second, tokens in (
            (rate.messages_per_second, self.messages),
            (rate.bytes_per_second, self.bytes),
        ):
            if per_second is not None and tokens + elapsed * per_second < per_second * rate.burst:
                return False
        return True

    @staticmethod
    def _refill(tokens: float, per_second: float | None, burst: float, elapsed: float) -> float:
        if per_second is None:
            return tokens
        return min(per_second * burst, tokens + elapsed * per_second)
