"""The one documented test seam: endpoints and sessions without real time or sockets.

The library's own actor tests (``tests/actor``) and an application's tests
may use these; everything else goes through :func:`aiohttp_sockjs.setup`
and real connections.

- :func:`setup` is :func:`aiohttp_sockjs.setup` with two hooks that are not
  options: ``clock`` (a monotonic clock, e.g. a fake one the test moves)
  and ``sweep_interval`` (how often the manager checks deadlines).
- :func:`make_endpoint` makes an endpoint with no application, driven by
  :meth:`Endpoint.sweep` and an injected clock.
- :func:`open_session`, :func:`attach`, :func:`detach` and :func:`deliver`
  do what a transport does: a :class:`~aiohttp_sockjs.session.Receiver` of
  the test's own stands in for the client's connection.
- :func:`held_sessions`, :func:`running_handlers`, :func:`session_id`,
  :func:`attached`, :func:`writing`, :func:`backlog` and :func:`sweeper` read what a test
  may want to assert on (they change nothing).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import _setup, actor
from .endpoint import Endpoint, Handler
from .options import EndpointOptions, Options
from .session import Receiver, Session

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "attach",
    "attached",
    "backlog",
    "deliver",
    "detach",
    "held_sessions",
    "make_endpoint",
    "open_session",
    "running_handlers",
    "session_id",
    "setup",
    "sweeper",
    "writing",
]


def setup(
    app: web.Application,
    prefix: str,
    handler: Handler | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sweep_interval: float | None = None,
    **options: Unpack[EndpointOptions],
) -> Endpoint:
    """Like :func:`aiohttp_sockjs.setup`, with a clock and a sweep interval of the test's."""
    endpoint = Endpoint(handler, Options(**options), clock=clock, sweep_interval=sweep_interval)
    return _setup(app, prefix, endpoint)


def make_endpoint(
    handler: Handler | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    **options: Unpack[EndpointOptions],
) -> Endpoint:
    """An endpoint outside any application; call ``endpoint.sweep()`` to tick it."""
    return Endpoint(handler, Options(**options), clock=clock)


def open_session(
    endpoint: Endpoint,
    receiver: Receiver | None,
    session_id: str = "s1",
    transport: str = "xhr_streaming",
    request: Any = None,
) -> Session:
    """Create a session as a transport would, attach ``receiver`` (if any) and start it."""
    session = endpoint.create_session(session_id, request, transport)
    if receiver is not None:
        actor.attach(session, receiver)
    endpoint.start_session(session)
    return session


def attach(session: Session, receiver: Receiver) -> None:
    """A new connection for ``session``, as a receiving transport makes one."""
    actor.attach(session, receiver)


def detach(session: Session, receiver: Receiver, interrupted: bool = False) -> None:
    """``receiver``'s connection ended; ``interrupted`` if its client went away."""
    actor.detach(session, receiver, interrupted)


def deliver(session: Session, messages: list[str]) -> None:
    """Messages from the client, as a sending transport hands them over."""
    # As xhr_send does: what the call returns is only for a caller that waits.
    actor.deliver(session, messages, sum(map(len, messages)), True)


# --- what a test may observe --------------------------------------------------


def held_sessions(endpoint: Endpoint) -> list[Session]:
    """Every session the endpoint still holds: open, and closing until they expire."""
    return list(endpoint.hub.sessions)


def running_handlers(endpoint: Endpoint) -> int:
    """How many application handlers are still running, for live and ended sessions."""
    hub = endpoint.hub
    tasks = [actor.handler_task(s) for s in hub.sessions]
    live = sum(1 for task in tasks if task is not None and not task.done())
    return live + len(hub.handler_tasks)


def session_id(session: Session) -> str | None:
    """The id the client chose for ``session`` (``None`` for a raw websocket)."""
    return actor.session_id(session)


def attached(session: Session) -> bool:
    """Whether a connection to the client is attached to ``session``."""
    return actor.attached(session) is not None


def writing(session: Session) -> bool:
    """Whether the session is waiting on a write to its client."""
    return actor.writing(session)


def sweeper(endpoint: Endpoint) -> asyncio.Task[None] | None:
    """The endpoint's sweeper task while it runs (``None`` before startup and after shutdown)."""
    return endpoint._sweeper


def backlog(session: Session) -> int:
    """Characters of outbound messages the session holds: queued, being written, or posted."""
    return actor.backlog(session)


#: The machine's events: the calls that may change it (the rest are queries).
MACHINE_EVENTS = frozenset(
    {
        "attach",
        "written",
        "flush",
        "detach",
        "send",
        "send_all",
        "send_and_flush",
        "overflow",
        "incoming",
        "consumed",
        "close",
        "tick",
        "beat",
        "shutdown",
        "fail",
        "cancel",
    }
)


class _WatchedMachine:
    """A session's machine that reports each event call, and who made it."""

    def __init__(self, session: Session, report: Callable[[str, str, bool], None]) -> None:
        self._watched_session = session
        self._watched_machine = actor.machine(session)
        self._report = report

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._watched_machine, name)
        if name not in MACHINE_EVENTS:
            return value

        def event(*args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_code.co_name
            self._report(name, caller, actor.owns_token(self._watched_session))
            return value(*args, **kwargs)

        return event


def watch_machine(session: Session, report: Callable[[str, str, bool], None]) -> None:
    """Report every event call to ``session``'s machine as ``report(event, caller, owned)``.

    ``caller`` is the name of the function that made the call, and
    ``owned`` whether the actor's token was taken at that moment (see
    ``docs/architecture.md``). For the library's own invariant tests.
    """
    actor.set_machine(session, _WatchedMachine(session, report))
