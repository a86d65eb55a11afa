"""The commands posted to a session's actor, and what they stand for.

Everyone outside the actor (the application, the transports, the sweeper,
shutdown) talks to a session by posting one of these to its mailbox; the
actor applies them in order (see :mod:`aiohttp_sockjs.actor`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from .actions import SendClose, SendHeartbeat, SendMessages, SendOpen
from .receiver import Receiver

__all__ = [
    "CONSUMED",
    "OVERFLOW",
    "SHUTDOWN",
    "TICK",
    "WRITES",
    "Attach",
    "Batch",
    "Close",
    "Command",
    "Consumed",
    "Detach",
    "Incoming",
    "Overflow",
    "Send",
    "Shutdown",
    "Tick",
    "Write",
    "as_send",
]


@dataclass(slots=True)
class Attach:
    """A connection that can carry frames arrived."""

    receiver: Receiver


@dataclass(slots=True)
class Detach:
    """A connection ended; ``interrupted`` if its client went away.

    ``client_code``: the code of the client's websocket close frame, if one
    came (the machine decides what it means).
    """

    receiver: Receiver
    interrupted: bool
    client_code: int | None = None


@dataclass(slots=True)
class Send:
    """The application queued encoded messages (``size`` characters in all).

    Sends made back to back join the Send at the mailbox's tail: one
    command per burst, not per message.
    """

    messages: list[str]
    size: int


@dataclass(slots=True, frozen=True)
class Batch:
    """A batch of encoded messages sent whole (``send_many``, ``broadcast_many``).

    Never changed once made, so that every recipient of a broadcast can
    hold the same one; a later send joins it into a new :class:`Send`.
    """

    messages: tuple[str, ...]
    size: int


@dataclass(slots=True)
class Incoming:
    """The client sent messages (``size`` characters in all).

    ``charged``: what the rate limits count in place of ``size``, when the
    client made the server handle more than the messages (an inflated
    websocket frame); ``None`` for ``size``.
    """

    messages: list[str]
    size: int
    processed: asyncio.Future[None] | None = None
    charged: int | None = None


@dataclass(slots=True)
class Consumed:
    """The application took messages while inbound was paused."""


@dataclass(slots=True)
class Close:
    """Close the session."""

    code: int
    reason: str


@dataclass(slots=True)
class Tick:
    """The sweeper found the session's deadline due."""


@dataclass(slots=True)
class Overflow:
    """The mailbox saw the send bound crossed while the actor was writing."""


@dataclass(slots=True)
class Shutdown:
    """The server is going away."""


# A lone encoded message is posted as the bare string, a Send of one, and
# a batch as a Batch that every recipient of a broadcast shares: a
# broadcast then leaves no new container for the collector in each
# recipient's mailbox until its step (with thousands of sessions, those
# containers were what made broadcasts trigger full collections). A later
# send joins them into a Send.
Command = (
    Attach | Detach | Send | str | Batch | Incoming | Consumed | Close | Tick | Overflow | Shutdown
)


def as_send(command: Command) -> Send | None:
    """``command`` as a Send that may grow, if it is a send.

    A lone message or a batch gives a new Send of its messages (a batch is
    never grown in place: it may be shared); a Send is itself.
    """
    if type(command) is Send:
        return command
    if type(command) is str:
        return Send([command], len(command))
    if type(command) is Batch:
        return Send(list(command.messages), command.size)
    return None


#: The commands that carry nothing, made once.
TICK: Final = Tick()
CONSUMED: Final = Consumed()
OVERFLOW: Final = Overflow()
SHUTDOWN: Final = Shutdown()
#: The actions the actor writes (and may have to wait for).
WRITES: Final = (SendMessages, SendHeartbeat, SendOpen, SendClose)

Write = SendOpen[Receiver] | SendHeartbeat[Receiver] | SendMessages[Receiver] | SendClose[Receiver]
