"""The hub: what an endpoint shares with its sessions, through named seams.

An :class:`~aiohttp_sockjs.endpoint.Endpoint` owns one :class:`Hub`; each of
its sessions holds it. Everything a session's actor needs from the manager
is here, by public name: the limits and the clock, the session table, the
counters of ``stats()``, the loop callback that steps woken actors, the
pressure flag that paces handlers' batches, and which handler is running.
The hub knows sessions only as :class:`Member` (something whose parked
actor can be stepped), so it imports neither the endpoint nor the session,
and the session needs no private name of the endpoint's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from .limits import Limits
from .rooms import Presence, Rooms
from .stats import REFUSAL_REASONS

__all__ = ["Broker", "BrokerEndpoint", "Hub", "Member", "Traffic"]


class Member(Protocol):
    """A session as the hub sees it: an actor that a loop callback may step."""

    @property
    def closed(self) -> bool:
        """Whether the session has closed."""

    def step_parked(self) -> None:
        """Run the actor's step; the caller owns it (see the actor's invariant)."""


M = TypeVar("M", bound=Member)


class ClientTable(Protocol):
    """The table of clients (aiohttp_sockjs.clients), as far as the hub needs it."""

    def remove(self, session: Any) -> None:
        """``session`` has finished."""


class Traffic:
    """The counters of stats() bumped for every batch of messages and every heartbeat.

    In slots rather than on the hub: a slot store costs about half a dict
    attribute store, and these run once per delivery.
    """

    __slots__ = ("chars_in", "chars_out", "heartbeats", "messages_in", "messages_out")

    def __init__(self) -> None:
        self.messages_in = 0
        self.messages_out = 0
        self.chars_in = 0
        self.chars_out = 0
        self.heartbeats = 0


class Hub(Generic[M]):
    """The manager's side of one endpoint, as its sessions see it.

    Plain attributes, read and bumped by the sessions' actors; the endpoint
    reads them for ``stats()`` and walks :attr:`sessions` to sweep.
    """

    def __init__(self, owner: Any, limits: Limits, clock: Callable[[], float]) -> None:
        #: The endpoint (what ``session.endpoint`` returns).
        self.owner = owner
        self.limits = limits
        self.clock = clock
        #: Every session held (open, and closing until it expires).
        self.sessions: dict[M, None] = {}
        #: Sessions by the id their client chose (not websockets: their id
        #: is never looked up again).
        self.by_id: dict[str, M] = {}
        #: Which sessions are in which room.
        self.rooms: Rooms[M] = Rooms()
        #: The endpoint's table of clients, when a per-client option is on
        #: (issue 21): a session that finishes leaves it too.
        self.clients: ClientTable | None = None
        # Handlers still running for sessions that have left the table (a
        # live session holds its own), so that none is lost or left out of
        # shutdown.
        self.handler_tasks: set[asyncio.Task[None]] = set()
        # Actors woken with commands to take (the door, Mailbox._enter, adds
        # them and schedules step_ready with the first), stepped by one loop
        # callback: a broadcast to 10,000 sessions schedules one, not 10,000.
        self.ready: list[M] = []
        #: The session whose handler's coroutine runs right now, if any (see
        #: the actor's _HandlerRun).
        self.running_handler: M | None = None
        #: Sessions holding over half their send bound (see Session._fair).
        self.pressured = 0
        self._relieved: asyncio.Future[None] | None = None
        # --- counters for stats() ---
        self.traffic = Traffic()
        self.closed: dict[int, int] = {}
        self.overflows = 0
        self.refused = dict.fromkeys(REFUSAL_REASONS, 0)

    def step_ready(self) -> None:
        """The loop callback: step every actor woken since it last ran."""
        ready = self.ready
        self.ready = []
        done = 0
        try:
            for member in ready:
                done += 1
                member.step_parked()
        except BaseException:
            # Not expected (a step catches its own failures), but no session
            # may be left unparked with commands it will never take: those
            # not stepped go first in the next callback.
            self.ready = ready[done:] + self.ready
            asyncio.get_running_loop().call_soon(self.step_ready)
            raise

    def forget(self, member: M, session_id: str | None, task: asyncio.Task[None] | None) -> None:
        """``member`` has finished: it leaves the table, the id index and its rooms."""
        self.sessions.pop(member, None)
        self.rooms.leave_all(member)
        if self.clients is not None:
            self.clients.remove(member)
        if task is not None and not task.done():
            self.handler_tasks.add(task)
        if session_id is not None and self.by_id.get(session_id) is member:
            del self.by_id[session_id]

    def pressure(self, on: bool) -> None:
        """A session's backlog crossed half its bound (up with ``on``, or back down)."""
        self.pressured += 1 if on else -1
        if not self.pressured and self._relieved is not None:
            if not self._relieved.done():
                self._relieved.set_result(None)
            self._relieved = None

    async def relief(self, timeout: float) -> None:
        """Wait until no session holds over half its send bound, for at most ``timeout``."""
        if not self.pressured or timeout <= 0:
            return
        if self._relieved is None:
            self._relieved = asyncio.get_running_loop().create_future()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._relieved), timeout)


class BrokerEndpoint(Protocol):
    """An endpoint, as a broker sees it: what it reads and the one call it makes."""

    @property
    def prefix(self) -> str:
        """The endpoint's URL prefix (its stream's name)."""

    @property
    def rooms(self) -> Rooms[Any]:
        """The endpoint's rooms (for presence)."""

    @property
    def broker(self) -> Any:
        """The endpoint's broker (the one asking, for its process id)."""

    def __len__(self) -> int:
        """How many sessions are open."""

    def deliver_local(self, message: str, rooms: tuple[str, ...] | None) -> None:
        """Deliver a broadcast that another process published to this process's sessions."""


class Broker(Protocol):
    """What an endpoint asks of its broker (``RedisBroker`` is the one there is)."""

    def register_endpoint(self, endpoint: BrokerEndpoint) -> None:
        """Check that ``endpoint`` may use this broker (at the endpoint's creation)."""

    async def start_endpoint(self, endpoint: BrokerEndpoint) -> None:
        """Start carrying ``endpoint``'s broadcasts (on the endpoint's start)."""

    async def stop_endpoint(self, endpoint: BrokerEndpoint) -> None:
        """Stop carrying ``endpoint``'s broadcasts (on its shutdown)."""

    def publish_from(
        self,
        endpoint: BrokerEndpoint,
        messages: Sequence[str],
        rooms: tuple[str, ...] | None,
    ) -> None:
        """Queue broadcasts of ``endpoint`` for the other processes."""

    async def presence(self, prefix: str) -> Presence:
        """Open sessions of the endpoint at ``prefix``, across the cluster."""
