"""The reconnect loop of :func:`~aiohttp_sockjs.client.reconnecting`: a new session each time.

:class:`Reconnecting` opens a session, hands out its client, and after
it ends waits (with backoff and jitter) and opens the next. Internal: the
client module is the public API.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType

from ._client_connect import Connecting
from ._client_session import SockJSClient
from .exceptions import ClientError

# The public module's logger: where an application sets the client's level.
log = logging.getLogger("aiohttp_sockjs.client")

#: A hook of :func:`reconnecting`: a function or a coroutine function.
Hook = Callable[..., "Awaitable[None] | None"]


async def _call(hook: Hook | None, *args: object) -> None:
    if hook is not None:
        result = hook(*args)
        if inspect.isawaitable(result):
            await result


class Reconnecting(AsyncIterator[SockJSClient]):
    """What :func:`reconnecting` returns: an async iterator of clients, one per session."""

    def __init__(
        self,
        connecting: Connecting,
        *,
        initial_delay: float,
        max_delay: float,
        factor: float,
        jitter: float,
        max_attempts: int | None,
        on_reconnect: Hook | None,
        on_retry: Hook | None,
    ) -> None:
        self._connecting = connecting
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self._factor = factor
        self._jitter = jitter
        self._max_attempts = max_attempts
        self._on_reconnect = on_reconnect
        self._on_retry = on_retry
        self._client: SockJSClient | None = None
        self._done = False
        #: Sessions opened so far; every one after the first is a reconnection.
        self.connections = 0
        #: Failed attempts since the last session opened.
        self.failures = 0
        #: The error of the last failed attempt, ``None`` before the first.
        self.last_error: ClientError | None = None

    @property
    def client(self) -> SockJSClient | None:
        """The client given out last; ``None`` before the first and after the end."""
        return self._client

    def delay(self, failures: int) -> float:
        """Seconds to wait before the next attempt, after ``failures`` failed ones.

        ``initial_delay * factor ** failures``, at most ``max_delay``, less a
        random share of at most ``jitter`` of it.
        """
        exponent = min(failures, 64)  # no float overflow; the cap holds long before
        delay = min(self._max_delay, self._initial_delay * self._factor**exponent)
        return delay * (1 - self._jitter * random.random())

    def __aiter__(self) -> Reconnecting:
        return self

    async def __anext__(self) -> SockJSClient:
        """Close the last client, wait, then open a new session (retrying until one opens)."""
        if self._done:
            raise StopAsyncIteration
        previous, self._client = self._client, None
        if previous is not None:
            await previous.close()
            # Not at once: after a server restart, its clients come back
            # spread over a delay instead of all in the same instant.
            await asyncio.sleep(self.delay(0))
        while True:
            try:
                client = await self._connecting
            except ClientError as exc:
                self.failures += 1
                self.last_error = exc
                if self._max_attempts is not None and self.failures >= self._max_attempts:
                    self._done = True
                    raise
                delay = self.delay(self.failures - 1)
                log.info("SockJS client: no session (%s); next try in %.2f s", exc, delay)
                await _call(self._on_retry, exc, delay)
                await asyncio.sleep(delay)
                continue
            break
        self.failures = 0
        self.connections += 1
        self._client = client
        if self.connections > 1:
            try:
                await _call(self._on_reconnect, client)
            except BaseException:
                self._client = None
                await client.close()
                raise
        return client

    async def aclose(self) -> None:
        """End the iteration and close the client given out last; idempotent."""
        self._done = True
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> Reconnecting:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def check_reconnect_arguments(
    options: Mapping[str, object],
    initial_delay: float,
    max_delay: float,
    factor: float,
    jitter: float,
    max_attempts: int | None,
) -> None:
    """Raise :exc:`ValueError` for what :func:`~aiohttp_sockjs.client.reconnecting` refuses.

    Its delays, and a ``session_id`` among the ``options`` it passes to
    ``connect()`` (which checks the rest): each turn opens a new session.
    """
    if "session_id" in options:
        raise ValueError("reconnecting() opens a new session each time: no session_id")
    if initial_delay <= 0 or max_delay < initial_delay or factor < 1:
        raise ValueError("delays must be 0 < initial_delay <= max_delay, and factor >= 1")
    if not 0 <= jitter <= 1:
        raise ValueError("jitter is a share, from 0 to 1")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError("max_attempts must be positive, or None to never give up")
