"""The numbers a session is held to: its rate limit, its bounds and delays.

Made once per endpoint from its options (:class:`Limits`), read by every
session's :class:`~aiohttp_sockjs.machine.SessionMachine`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["Limits", "RateLimit", "admits", "bucket"]


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
