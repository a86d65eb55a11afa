"""What the session machine answers: the actions its driver performs.

:class:`~aiohttp_sockjs.machine.SessionMachine` takes events and returns a
list of these. The writes (:class:`SendOpen`, :class:`SendHeartbeat`,
:class:`SendMessages`) are reported back with ``written()``; the rest are
done at once. A receiver is an opaque token (``R``) here, as in the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Generic, TypeVar

__all__ = [
    "FINISHED",
    "PAUSE",
    "RESUME",
    "Abort",
    "Action",
    "CutIfStuck",
    "Deliver",
    "Finished",
    "NotifyClosed",
    "PauseInbound",
    "Release",
    "ResumeInbound",
    "SendClose",
    "SendHeartbeat",
    "SendMessages",
    "SendOpen",
]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class SendOpen(Generic[R]):
    """Write the ``o`` frame to ``receiver``; report with :meth:`SessionMachine.written`."""

    receiver: R


@dataclass(frozen=True, slots=True)
class SendHeartbeat(Generic[R]):
    """Write the ``h`` frame to ``receiver``; report with :meth:`SessionMachine.written`."""

    receiver: R


@dataclass(frozen=True, slots=True)
class SendMessages(Generic[R]):
    """Write one ``a`` frame of encoded ``messages``; report with :meth:`SessionMachine.written`."""

    receiver: R
    messages: list[str]


@dataclass(frozen=True, slots=True)
class SendClose(Generic[R]):
    """Write the close frame to ``receiver`` and end that connection (no report)."""

    receiver: R
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Release(Generic[R]):
    """The machine let go of ``receiver``: end its request if it still waits."""

    receiver: R


@dataclass(frozen=True, slots=True)
class Abort(Generic[R]):
    """Cut ``receiver``'s connection now: its write in flight must fail."""

    receiver: R


@dataclass(frozen=True, slots=True)
class CutIfStuck(Generic[R]):
    """Cut ``receiver``'s connection unless its client took all that was written to it.

    The machine keeps the last connection it let go of until it lets go of
    another or finishes, and then asks for this: a client that stopped
    reading leaves the end of a stream or a poll's answer unsent, and its
    connection (with aiohttp's request handler) would outlive the session.
    """

    receiver: R


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand ``messages`` from the client to the application."""

    messages: list[str]


@dataclass(frozen=True, slots=True)
class PauseInbound:
    """Stop taking client messages: the application's inbox is full."""


@dataclass(frozen=True, slots=True)
class ResumeInbound:
    """Take client messages again."""


@dataclass(frozen=True, slots=True)
class NotifyClosed:
    """The session just closed with ``code`` and ``reason``: tell the application."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The session is over for good: it leaves its endpoint."""


Action = (
    SendOpen[R]
    | SendHeartbeat[R]
    | SendMessages[R]
    | SendClose[R]
    | Release[R]
    | Abort[R]
    | CutIfStuck[R]
    | Deliver
    | PauseInbound
    | ResumeInbound
    | NotifyClosed
    | Finished
)

#: The one instance of each action that carries nothing.
PAUSE: Final = PauseInbound()
RESUME: Final = ResumeInbound()
FINISHED: Final = Finished()
