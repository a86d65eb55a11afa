"""The application's handler, as the session's actor runs it.

:class:`HandlerHost` is a base of the actor (:class:`~aiohttp_sockjs.actor.Actor`): it
starts the handler's task, runs the handler's coroutine through
:class:`_HandlerRun` (which steps the actor each time the coroutine
suspends, when the handler owes it a step), and closes the session when the
handler ends.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from . import protocol
from .commands import Close
from .exceptions import SessionClosed
from .mailbox import Mailbox

__all__ = ["HandlerHost"]

log = logging.getLogger("aiohttp_sockjs")


class HandlerHost(Mailbox):
    """Starts a session's handler and ends the session with it."""

    __slots__ = ()

    def _start(self, handler: Callable[[Any], Any]) -> None:
        """Start the actor and then the application's handler."""
        # The first step (the o frame, usually) runs here: nobody else can
        # own it yet (a new session is not parked, so posts only queue).
        self.step_parked()
        try:
            coro = handler(self)
        except Exception as exc:  # a handler that failed before it could await
            coro = _reraise(exc)
        if type(coro) is types.CoroutineType:
            self._handler_task = asyncio.ensure_future(_HandlerRun(self, coro))
        else:
            task = self._handler_task = asyncio.ensure_future(coro)
            task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        # The done callback of a handler that is not a coroutine (those end
        # in _HandlerRun, with no callback to hold).
        if task.cancelled():
            self._handler_task = None
            self._hub.handler_tasks.discard(task)
            return
        self._handler_ended(task.exception())

    def _handler_ended(self, error: BaseException | None) -> None:
        """The handler returned, or failed with ``error``: close the session for it."""
        task = self._handler_task
        if task is not None:
            # The task holds its _HandlerRun, which holds this session: let
            # go of it, or the three would be garbage only the cyclic
            # collector finds.
            self._handler_task = None
            self._hub.handler_tasks.discard(task)
        if error is not None and not isinstance(error, SessionClosed):
            log.error("SockJS handler failed; closing its session", exc_info=error)
            # A plain close: the client must still learn the reason on its
            # next request, until the session expires.
            self._enter(Close(*protocol.CLOSE_INTERNAL_ERROR))
            return
        self._enter(Close(*protocol.CLOSE_GO_AWAY))


async def _reraise(exc: Exception) -> None:
    raise exc


class _HandlerRun(Coroutine[Any, Any, Any]):
    """A handler's coroutine, as its task runs it, stepping its session's actor as it suspends.

    The task drives this as it would the coroutine itself (``send`` and
    ``throw``). While the handler runs, the endpoint knows it
    (``_running_handler``), so a send to its own session leaves the actor's
    step to this task (``_owed``) instead of scheduling the endpoint's
    callback. The step then runs each time the handler suspends, whatever
    it waits for, and when it ends: what it sent since it last suspended
    goes out as one frame (a reply, typically), with no loop iteration of
    its own. An object of two slots rather than a wrapper coroutine: it
    costs an idle session 56 bytes, where a generator costs about 360.
    """

    __slots__ = ("_coro", "_session")

    def __init__(self, session: HandlerHost, coro: Coroutine[Any, Any, Any]) -> None:
        self._session = session
        self._coro = coro

    def send(self, value: Any) -> Any:
        """Resume the handler with ``value``."""
        return self._resume(self._coro.send, value)

    def throw(self, *args: Any) -> Any:
        """Resume the handler with an exception (the task's cancellation, say)."""
        return self._resume(self._coro.throw, *args)

    def _resume(self, method: Callable[..., Any], *args: Any) -> Any:
        session = self._session
        hub = session._hub
        outer = hub.running_handler
        hub.running_handler = session
        try:
            return method(*args)
        except StopIteration:
            session._handler_ended(None)
            raise
        except Exception as exc:
            # The handler failed. Dealt with here, the task then ends
            # plainly: it holds no exception that nobody would retrieve, and
            # needs no done callback (128 bytes a session).
            session._handler_ended(exc)
            raise StopIteration from None
        finally:
            hub.running_handler = outer
            if session._owed:
                # The handler turned _parked False (in _enter) and so
                # owns this step, as a transport's task owns the one it runs.
                session._owed = False
                session.step_parked()

    def close(self) -> None:
        """Close the handler's coroutine."""
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._coro.__await__()
