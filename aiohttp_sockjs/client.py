"""A SockJS client on aiohttp: talk to any SockJS server from Python.

With the README's echo server running (on port 8090), this program says
hello, prints the echo and ends::

    import asyncio

    from aiohttp_sockjs.client import connect


    async def main() -> None:
        async with connect("http://127.0.0.1:8090/echo") as client:
            await client.send("hello")
            print(await client.receive())  # hello
        # Leaving the block closed the session.
        print(client.close_code, client.close_reason)  # 1000 Normal closure


    asyncio.run(main())

``async for message in client`` reads messages until the server closes
the session.

Like the browser client, :func:`connect` reads ``/info`` and tries its
transports in order (``websocket``, ``xhr_streaming``, ``eventsource``,
``xhr``) until one opens a session, unless you name the transports to use.
``htmlfile`` and ``jsonp`` polling (the old browsers' transports) and the raw
websocket (``raw_websocket``, plain text messages on ``<prefix>/websocket``)
are there when you ask for them.

Every wait on the server is bounded: ``timeout`` for ``/info``, opening a
session and each send, ``heartbeat_timeout`` for the silence allowed once
the session is open (servers send a heartbeat every 25 s by default), and
``idle_timeout`` (or ``receive(timeout=...)``) for a message, if you ask.
A server that breaks the protocol, cuts a response mid-frame or stops
answering makes the client fail with a :class:`~aiohttp_sockjs.ClientError`
instead of hanging.

A client meant to run for days runs in :func:`reconnecting`'s loop, which
opens a new session each time the last one ends, with backoff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import aiohttp
from yarl import URL

from ._client_connect import Connecting
from ._client_reconnect import Hook, Reconnecting, check_reconnect_arguments
from ._client_session import SockJSClient
from ._client_transports import DEFAULT as DEFAULT  # receive()'s and ping()'s default
from ._client_transports import ClientOptions
from ._client_transports import Default as Default
from ._client_websocket import read_refused_upgrades

__all__ = [
    "DEFAULT_TRANSPORTS",
    "TRANSPORTS",
    "Connecting",
    "Reconnecting",
    "SockJSClient",
    "connect",
    "read_refused_upgrades",
    "reconnecting",
]

#: Every transport the client speaks.
TRANSPORTS: Final = (
    "websocket",
    "xhr_streaming",
    "eventsource",
    "xhr",
    "htmlfile",
    "jsonp",
    "raw_websocket",
)
#: The transports :func:`connect` tries, in order, unless told otherwise.
DEFAULT_TRANSPORTS: Final = ("websocket", "xhr_streaming", "eventsource", "xhr")


def connect(
    url: str | URL,
    *,
    transports: str | Sequence[str] | None = None,
    session: aiohttp.ClientSession | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    heartbeat_timeout: float | None = 60.0,
    max_queue: int = 1024,
    max_frame_size: int = 16 * 1024 * 1024,
    session_id: str | None = None,
    idle_timeout: float | None = None,
    websocket_compression: bool = False,
) -> Connecting:
    """Open a SockJS session at ``url`` (the endpoint's prefix, ``http(s)://``).

    ``await connect(...)`` returns a :class:`SockJSClient`;
    ``async with connect(...) as client`` closes it at the end of the block.

    - ``transports``: one name from :data:`TRANSPORTS` to force it, or the
      names to try in order; :data:`DEFAULT_TRANSPORTS` by default. A
      websocket transport is skipped when ``/info`` says websockets are off.
    - ``session``: an :class:`aiohttp.ClientSession` to use (its cookie jar
      keeps a sticky ``JSESSIONID``); the client makes and closes its own
      otherwise.
    - ``headers``: sent with every request, e.g. ``Origin`` or
      ``Authorization``.
    - ``timeout``: seconds to wait for ``/info``, for each transport to open
      the session and for each send.
    - ``heartbeat_timeout``: seconds without a frame or heartbeat after
      which an open session fails with
      :class:`~aiohttp_sockjs.ResponseTimeout`; ``None`` waits forever. Keep
      it above the server's heartbeat delay (25 s unless configured).
    - ``idle_timeout``: seconds :meth:`SockJSClient.receive` and ``async
      for`` wait for a message before they raise
      :class:`~aiohttp_sockjs.ResponseTimeout` (the session stays open);
      ``None`` (the default) waits as long as the session lives.
    - ``websocket_compression``: offer permessage-deflate on the websocket
      transports, as browsers do. The server's option of the same name
      decides: if it accepts, every message the client sends is
      compressed, and large ones the server sends are. Off by default:
      for small messages it costs more CPU than it saves bytes (see the
      server's option in the README).
    - ``max_queue``: messages received but not yet read; past it the client
      stops reading from the server until the application catches up.
    - ``max_frame_size``: the longest frame (or streamed line) accepted, in
      bytes; a longer one fails with
      :class:`~aiohttp_sockjs.RemoteProtocolError`.
    - ``session_id``: the session id to put in the URLs, instead of a fresh
      random one; the same for every transport tried. With an id that is
      already in use the client joins that session as its next receiver
      (a server answers a second concurrent receiver with close code 2010).
      The raw websocket has no session id.

    Raises :class:`~aiohttp_sockjs.ConnectError` when no transport opens a
    session; its ``errors`` say why each failed. Each step waits at most
    ``timeout``, so trying ``n`` transports takes at most ``(n + 1) *
    timeout``.
    """
    names = _transport_names(transports)
    _check_limits(timeout, heartbeat_timeout, idle_timeout, max_queue, max_frame_size)
    _check_address(url, session_id)
    options = ClientOptions(
        dict(headers or {}),
        timeout,
        heartbeat_timeout,
        max_frame_size,
        session_id,
        idle_timeout,
        websocket_compression,
    )
    return Connecting(URL(url), names, session, options, max_queue)


def _transport_names(transports: str | Sequence[str] | None) -> Sequence[str]:
    """The transports to try, in order: ``connect()``'s argument, checked."""
    if isinstance(transports, str):
        names: Sequence[str] = (transports,)
    elif transports is None:
        names = DEFAULT_TRANSPORTS
    else:
        names = tuple(transports)
    unknown = [name for name in names if name not in TRANSPORTS]
    if unknown or not names:
        raise ValueError(f"transports must be names from {TRANSPORTS}, not {list(names)}")
    return names


def _check_limits(
    timeout: float,
    heartbeat_timeout: float | None,
    idle_timeout: float | None,
    max_queue: int,
    max_frame_size: int,
) -> None:
    """Raise :exc:`ValueError` unless every timeout (but a ``None``) and size is positive."""
    if (
        timeout <= 0
        or (heartbeat_timeout is not None and heartbeat_timeout <= 0)
        or (idle_timeout is not None and idle_timeout <= 0)
    ):
        raise ValueError("timeout, heartbeat_timeout and idle_timeout must be positive")
    if max_queue < 1 or max_frame_size < 1:
        raise ValueError("max_queue and max_frame_size must be positive")


def _check_address(url: str | URL, session_id: str | None) -> None:
    """Raise :exc:`ValueError` unless ``url`` is http(s) and ``session_id`` a path segment."""
    if URL(url).scheme not in ("http", "https"):
        raise ValueError(f"SockJS URLs are http:// or https://, not {url}")
    if session_id is not None and (
        not session_id or any(c in session_id for c in "./?#%") or not session_id.isprintable()
    ):
        raise ValueError(f"a session id is a URL path segment without dots, not {session_id!r}")


def reconnecting(
    url: str | URL,
    *,
    initial_delay: float = 1.0,
    max_delay: float = 30.0,
    factor: float = 2.0,
    jitter: float = 0.5,
    max_attempts: int | None = None,
    on_reconnect: Hook | None = None,
    on_retry: Hook | None = None,
    **options: Any,
) -> Reconnecting:
    """Open a new SockJS session at ``url`` each time the last one ends: for long-lived clients.

    ::

        async for client in reconnecting(url):
            async with client:
                try:
                    async for message in client:
                        ...
                except ClientError:
                    pass  # the connection failed: the loop opens a new session

    Each turn of the loop gets a client on a **new** session, opened as by
    :func:`connect` with ``options`` (every option of :func:`connect` but
    ``session_id``). SockJS sessions are not resumed: whatever the server
    sent after the connection failed and before the new session opened is
    lost, and so is any message whose :meth:`~SockJSClient.send` did not
    return; the server's handler starts afresh on each session, so
    subscribe, log in or catch up again at the top of the loop.

    The next turn closes the last client (if the loop's body has not),
    waits a moment (``initial_delay``, less jitter, so that the clients of
    a restarted server do not all come back at once), then tries to
    connect. Each failed attempt waits longer: ``initial_delay * factor **
    n`` after the ``n``-th failure in a row (counting from 0), at most
    ``max_delay``, less a random share of at most ``jitter`` (0 to 1) of
    it. After ``max_attempts`` failures in a row (never, by default) the
    loop gives up and raises the last :class:`~aiohttp_sockjs.ConnectError`.

    Hooks, functions or coroutine functions: ``on_reconnect(client)`` is
    called with each client after the first, before the loop gets it;
    ``on_retry(error, delay)`` after each failed attempt, before its wait.
    The :class:`Reconnecting` iterator also counts ``connections`` and
    ``failures``. ``break`` ends the loop; use ``async with client`` (as
    above) or ``async with reconnecting(...) as clients`` so that the last
    client is closed then too.
    """
    check_reconnect_arguments(options, initial_delay, max_delay, factor, jitter, max_attempts)
    return Reconnecting(
        connect(url, **options),
        initial_delay=initial_delay,
        max_delay=max_delay,
        factor=factor,
        jitter=jitter,
        max_attempts=max_attempts,
        on_reconnect=on_reconnect,
        on_retry=on_retry,
    )
