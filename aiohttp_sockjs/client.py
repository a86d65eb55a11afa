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

import asyncio
import contextlib
import inspect
import logging
import random
import sys
from collections import deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, Final

import aiohttp
from yarl import URL

if sys.version_info >= (3, 11):
    from asyncio import timeout as _timeout
else:  # aiohttp depends on async-timeout there
    from async_timeout import timeout as _timeout

from ._client_transports import (
    DEFAULT,
    ClientOptions,
    Default,
    KeepUpgradeSocket,
    Transport,
    fetch_info,
    make_transport,
    read_refused_upgrades,
    within,
)
from .exceptions import (
    ClientError,
    ConnectError,
    ConnectionLost,
    RemoteProtocolError,
    ResponseTimeout,
    SessionClosed,
)
from .protocol import CloseFrame, HeartbeatFrame, MessageFrame

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

log = logging.getLogger("aiohttp_sockjs.client")

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

#: Bounds of one send: messages, and characters (a SockJS server takes
#: frames and bodies of 8 MiB and 10,000 messages by default).
_MAX_SEND_MESSAGES: Final = 1000
_MAX_SEND_CHARS: Final = 1 << 20


class SockJSClient:
    """An open SockJS session, seen from the client; made by :func:`connect`.

    Messages are ``str``. :meth:`receive` (or ``async for``) returns them in
    order; messages that arrived before the session closed are still
    returned, then :meth:`receive` raises :exc:`~aiohttp_sockjs.SessionClosed`
    and ``async for`` ends. If the connection fails instead (see
    :class:`~aiohttp_sockjs.ClientError`), that error is raised, by ``async
    for`` too.

    Heartbeats are handled inside: they are counted in :attr:`heartbeats`
    and show that the server is alive. Use the client as an async context
    manager, or call :meth:`close`, to release its connections.
    """

    def __init__(
        self,
        transport: Transport,
        url: URL,
        *,
        max_queue: int,
        heartbeat_timeout: float | None,
        owned_session: aiohttp.ClientSession | None,
        options: ClientOptions,
    ) -> None:
        self._transport = transport
        self._options = options
        self._idle_timeout = options.idle_timeout
        self._owned_session = owned_session
        self._max_queue = max_queue
        self._heartbeat_timeout = heartbeat_timeout
        self._inbox: deque[str] = deque()
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._reader_paused = False
        self._closed = asyncio.Event()
        self._error: ClientError | None = None
        self._transport_close = (1000, "Normal closure")
        self._outbox: list[str] = []
        self._outbox_chars = 0
        # The websocket sends without waiting for the write: it has one
        # connection, written in order, and no answer to wait for.
        self._queues_sends = transport.name == "websocket"
        self._flush_handle: asyncio.Handle | None = None
        self._batch: asyncio.Future[None] | None = None
        self._sending: set[asyncio.Future[None]] = set()
        self._sender: asyncio.Task[None] | None = None
        #: The server's URL, as given to :func:`connect`.
        self.url = url
        #: The transport in use, a name from :data:`TRANSPORTS`.
        self.transport = transport.name
        #: The session id in the URLs (``None`` on the raw websocket).
        self.session_id = transport.session_id
        #: How the session closed, ``None`` while open: the code of the
        #: server's close frame, the client's own code after :meth:`close`,
        #: or 1006 if the connection failed.
        self.close_code: int | None = None
        #: The reason that goes with :attr:`close_code`.
        self.close_reason: str | None = None
        #: Heartbeats received so far (``h`` frames, and websocket pings).
        self.heartbeats = 0
        #: The round trip :meth:`ping` measured last, in seconds; ``None``
        #: before the first.
        self.latency: float | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def __repr__(self) -> str:
        state = "open" if self.close_code is None else f"closed {self.close_code}"
        return f"<SockJSClient {self.url} {self.transport} {state}>"

    @property
    def closed(self) -> bool:
        """Whether the session is closed, by either side or by a failure."""
        return self.close_code is not None

    @property
    def exception(self) -> ClientError | None:
        """The error the connection failed with, if it did."""
        return self._error

    async def send(self, message: str) -> None:
        """Send one message.

        Over the ``websocket`` transport it returns once the message is
        queued: the messages sent in one turn of the event loop go to the
        server together, in one websocket frame, and :meth:`close` sends
        what is queued before it closes. It waits only while a megabyte or
        ``max_queue`` messages are queued and not yet written (the server
        is slower than the sender). Over the other transports it returns
        once the server has the message; messages sent while a send
        request is in flight go together in the next one.

        Raises :exc:`~aiohttp_sockjs.SessionClosed` once the session is
        closed and a :class:`~aiohttp_sockjs.ClientError` if sending fails,
        which also ends the session (over ``websocket``, a failure after
        :meth:`send` returned ends the session: :meth:`receive` raises it).
        """
        if type(message) is not str:
            raise TypeError(f"SockJS messages are str, not {type(message).__name__}")
        if self.close_code is not None:
            self._raise_if_closed()
        outbox = self._outbox
        outbox.append(message)
        chars = self._outbox_chars = self._outbox_chars + len(message)
        if self._queues_sends:
            if self._flush_handle is None and self._sender is None:
                # Once this turn of the loop is over, with what it sent.
                self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
            if chars <= _MAX_SEND_CHARS and len(outbox) < self._max_queue:
                return
        # A future for the senders who wait, made only when one does.
        batch = self._batch
        if batch is None:
            batch = self._batch = asyncio.get_running_loop().create_future()
            self._sending.add(batch)
        if self._queues_sends:
            self._flush_now()
        elif self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send())
        await asyncio.shield(batch)

    async def receive(self, timeout: float | Default | None = DEFAULT) -> str:
        """The next message from the server.

        Raises :exc:`~aiohttp_sockjs.SessionClosed` once the session is
        closed and every message that came before is read, or the
        :class:`~aiohttp_sockjs.ClientError` the connection failed with.

        ``timeout`` bounds the wait, in seconds (``None``: no bound); the
        ``idle_timeout`` given to :func:`connect` by default. When it
        passes, :exc:`~aiohttp_sockjs.ResponseTimeout` is raised and the
        session stays open: only this wait ended (heartbeats still show
        that the server is alive; a silent server fails the session after
        ``heartbeat_timeout``).
        """
        if not self._inbox:
            seconds = self._idle_timeout if timeout is DEFAULT else timeout
            if seconds is None:
                await self._wait_readable()
            else:
                try:
                    async with _timeout(seconds):
                        await self._wait_readable()
                except asyncio.TimeoutError:
                    raise ResponseTimeout(f"no message within {seconds:g} s") from None
        message = self._inbox.popleft()
        if self._reader_paused and len(self._inbox) < self._max_queue:
            self._reader_paused = False
            self._writable.set()
        return message

    async def _wait_readable(self) -> None:
        while not self._inbox:
            if self.close_code is not None:
                self._raise_if_closed()
            self._readable.clear()
            await self._readable.wait()

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        """The next message; ``async for`` waits at most ``idle_timeout`` for each."""
        try:
            return await self.receive()
        except SessionClosed:
            raise StopAsyncIteration from None

    async def close(self, code: int = 1000, reason: str = "Normal closure") -> None:
        """Close the session and release its connections; idempotent.

        ``code`` is 1000 or in 3000-4999 and ``reason`` at most 123 bytes of
        UTF-8, as for the browser client. The SockJS protocol carries no
        close from the client: a websocket is closed with ``code`` and
        ``reason``, an HTTP transport stops, and the server ends the session
        when it notices (at the latest after its disconnect delay). If the
        session is already closed, only the connections are released.
        """
        if code != 1000 and not 3000 <= code <= 4999:
            raise ValueError(f"close code must be 1000 or in 3000-4999, not {code}")
        if len(reason.encode()) > 123:
            raise ValueError("close reason must be at most 123 bytes")
        if self.close_code is None:
            self._flush_now()
            if self._queues_sends and self._sender is not None:
                # What send() queued goes first, as it would have with a wait.
                with contextlib.suppress(ClientError, SessionClosed):
                    await within(asyncio.shield(self._sender), self._options.timeout, "send")
            self._transport_close = (code, reason)
            self._finish(code, reason, None)
        await self._release()

    async def abort(self) -> None:
        """Drop the connections without closing the session, as a vanished client does.

        Nothing is said to the server: a websocket's TCP connection is cut
        without a close frame, an HTTP transport's open response or poll is
        abandoned. The server sees its client go away (SockJS servers close
        such a session with 1002 "Connection interrupted", or let it expire)
        which is what a test of a handler's clean-up wants to provoke. On
        the client, :attr:`close_code` becomes 1006; idempotent.
        """
        if self.close_code is None:
            self._transport.abort()
            self._finish(1006, "Aborted by the client", None)
        await self._release()

    async def ping(self, timeout: float | Default | None = DEFAULT) -> float:
        """Measure a round trip to the server, in seconds; also kept in :attr:`latency`.

        SockJS has no echo of its own, so what is measured depends on the
        transport. Over ``websocket`` and ``raw_websocket`` it is a
        websocket ping and the server's pong, on the session's own
        connection (every websocket server answers pings). Over the HTTP
        transports it is a ``GET <prefix>/info`` on the same aiohttp
        session (a pooled keep-alive connection when there is one): the
        network, proxies and the server's HTTP handling, not the session
        itself. Heartbeats are no measure: the server sends them on its own
        clock and the client does not answer them.

        ``timeout`` defaults to the ``timeout`` given to :func:`connect`;
        past it :exc:`~aiohttp_sockjs.ResponseTimeout` is raised and the
        session stays open. While ``max_queue`` messages wait unread the
        client reads nothing from a websocket, pongs included: a ping then
        waits for the application to catch up. Raises :exc:`~aiohttp_sockjs.SessionClosed`
        once the session is closed.
        """
        self._raise_if_closed()
        seconds = self._options.timeout if timeout is DEFAULT else timeout
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await within(self._transport.ping(), seconds, "answer to a ping")
        except ClientError:
            # The session ended meanwhile: say how, as send() does.
            self._raise_if_closed()
            raise
        self.latency = loop.time() - started
        return self.latency

    async def wait_closed(self) -> None:
        """Wait until the session is closed, by either side or by a failure."""
        await self._closed.wait()

    async def __aenter__(self) -> SockJSClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- inside --------------------------------------------------------------

    def _raise_if_closed(self) -> None:
        error = self._closed_error()
        if error is not None:
            raise error

    def _closed_error(self) -> Exception | None:
        if self._error is not None:
            return self._error
        if self.close_code is not None:
            return SessionClosed(self.close_code, self.close_reason or "")
        return None

    def _finish(self, code: int, reason: str, error: ClientError | None) -> None:
        if self.close_code is not None:
            return
        self.close_code = code
        self.close_reason = reason
        self._error = error
        self._readable.set()
        self._closed.set()

    def _fail(self, error: ClientError) -> None:
        if self.close_code is None:
            code = 1002 if isinstance(error, RemoteProtocolError) else 1000
            self._transport_close = (code, "")
            self._finish(1006, str(error), error)
            if asyncio.current_task() is not self._reader:
                self._reader.cancel()

    async def _read(self) -> None:
        transport = self._transport
        inbox = self._inbox
        try:
            while True:
                frame = await transport.next_frame(self._heartbeat_timeout, "frame or heartbeat")
                if isinstance(frame, MessageFrame):
                    inbox.extend(frame.messages)
                    self._readable.set()
                    if len(inbox) >= self._max_queue:
                        # Stop reading until the application catches up.
                        self._reader_paused = True
                        self._writable.clear()
                        await self._writable.wait()
                elif isinstance(frame, HeartbeatFrame):
                    self.heartbeats += 1
                elif isinstance(frame, CloseFrame):
                    self._finish(frame.code, frame.reason, None)
                    return
                else:
                    raise ConnectionLost("the server opened the session again: it had lost it")
        except ClientError as exc:
            self._fail(exc)
        finally:
            await transport.close(*self._transport_close)

    async def _send(self) -> None:
        try:
            while self._outbox and self._error is None:
                messages = self._take_outbox()
                # The senders' future is done with the last of their messages.
                batch = None
                if not self._outbox:
                    batch, self._batch = self._batch, None
                    if batch is not None:
                        self._sending.discard(batch)
                try:
                    await self._transport.send(messages)
                except ClientError as exc:
                    if batch is not None:
                        self._sending.add(batch)
                    self._fail(exc)
                    break
                except asyncio.CancelledError:
                    # close() or abort() during the send: its senders hear of it.
                    if batch is not None:
                        self._sending.add(batch)
                    raise
                except Exception as exc:
                    # Not the connection's fault (a raw websocket refuses a
                    # lone surrogate): only these senders hear of it, and
                    # what they sent after it is dropped with them.
                    if batch is None:
                        batch, self._batch = self._batch, None
                        if batch is not None:
                            self._sending.discard(batch)
                        self._outbox = []
                        self._outbox_chars = 0
                    if batch is not None:
                        batch.set_exception(exc)
                        batch.exception()
                    continue
                if batch is not None:
                    batch.set_result(None)
        finally:
            self._sender = None
            if self._outbox or self._error is not None:
                self._outbox = []
                self._outbox_chars = 0
                self._batch = None
                self._reject_sends()

    def _flush(self) -> None:
        """Send what this turn of the loop queued: written at once, or by the sender task."""
        self._flush_handle = None
        if not self._outbox or self._sender is not None or self.close_code is not None:
            return
        while self._outbox:
            messages = self._take_outbox()
            try:
                written = self._transport.send_now(messages)
            except Exception:
                written = False
            if not written:
                # Put them back in front: the sender task writes in order.
                self._outbox[:0] = messages
                self._outbox_chars += sum(map(len, messages))
                self._sender = asyncio.get_running_loop().create_task(self._send())
                return
        batch, self._batch = self._batch, None
        if batch is not None:
            self._sending.discard(batch)
            batch.set_result(None)

    def _flush_now(self) -> None:
        """Run the flush this turn has scheduled, if any, now."""
        handle = self._flush_handle
        if handle is not None:
            handle.cancel()
            self._flush()

    def _take_outbox(self) -> list[str]:
        """The next messages to send together: all that wait, up to the bounds of one send."""
        outbox = self._outbox
        if len(outbox) <= _MAX_SEND_MESSAGES and self._outbox_chars <= _MAX_SEND_CHARS:
            self._outbox = []
            self._outbox_chars = 0
            return outbox
        chars = 0
        end = 0
        for message in outbox[:_MAX_SEND_MESSAGES]:
            if end and chars + len(message) > _MAX_SEND_CHARS:
                break
            chars += len(message)
            end += 1
        taken = outbox[:end]
        del outbox[:end]
        self._outbox_chars -= chars
        return taken

    def _reject_sends(self) -> None:
        pending, self._sending = self._sending, set()
        for batch in pending:
            if not batch.done():
                batch.set_exception(self._closed_error() or SessionClosed(1006, "closed"))
                # Whoever sent may have been cancelled; don't log it as unseen.
                batch.exception()

    async def _release(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        self._reject_sends()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        # The reader closes the transport as it ends, but a reader cancelled
        # before its first step (close() with no await after connect())
        # never runs at all; closing twice is harmless.
        await self._transport.close(*self._transport_close)
        http, self._owned_session = self._owned_session, None
        if http is not None:
            await http.close()


class Connecting(Awaitable[SockJSClient]):
    """What :func:`connect` returns: await it, or use it with ``async with``."""

    def __init__(
        self,
        url: URL,
        transports: Sequence[str],
        session: aiohttp.ClientSession | None,
        options: ClientOptions,
        max_queue: int,
    ) -> None:
        self._url = url
        self._transports = transports
        self._session = session
        self._options = options
        self._max_queue = max_queue
        self._client: SockJSClient | None = None

    def __await__(self) -> Generator[object, None, SockJSClient]:
        return self._open().__await__()

    async def __aenter__(self) -> SockJSClient:
        self._client = await self._open()
        return self._client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.close()

    async def _open(self) -> SockJSClient:
        return await _open(
            self._url, self._transports, self._session, self._options, self._max_queue
        )


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
    if isinstance(transports, str):
        names: Sequence[str] = (transports,)
    elif transports is None:
        names = DEFAULT_TRANSPORTS
    else:
        names = tuple(transports)
    unknown = [name for name in names if name not in TRANSPORTS]
    if unknown or not names:
        raise ValueError(f"transports must be names from {TRANSPORTS}, not {list(names)}")
    if (
        timeout <= 0
        or (heartbeat_timeout is not None and heartbeat_timeout <= 0)
        or (idle_timeout is not None and idle_timeout <= 0)
    ):
        raise ValueError("timeout, heartbeat_timeout and idle_timeout must be positive")
    if max_queue < 1 or max_frame_size < 1:
        raise ValueError("max_queue and max_frame_size must be positive")
    if URL(url).scheme not in ("http", "https"):
        raise ValueError(f"SockJS URLs are http:// or https://, not {url}")
    if session_id is not None and (
        not session_id or any(c in session_id for c in "./?#%") or not session_id.isprintable()
    ):
        raise ValueError(f"a session id is a URL path segment without dots, not {session_id!r}")
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


async def _open(
    url: URL,
    names: Sequence[str],
    session: aiohttp.ClientSession | None,
    options: ClientOptions,
    max_queue: int,
) -> SockJSClient:
    owned = None
    if session is None:
        # unsafe: keep cookies (a sticky JSESSIONID) from IP-address hosts too.
        session = owned = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            middlewares=(read_refused_upgrades,),
            request_class=KeepUpgradeSocket,
        )
    errors: dict[str, BaseException] = {}
    try:
        if any(name != "raw_websocket" for name in names):
            try:
                info = await within(
                    fetch_info(session, url, options), options.timeout, "/info answer"
                )
            except ClientError as exc:
                errors["info"] = exc
                raise ConnectError(str(url), errors) from exc
            if not info.websocket:
                for name in names:
                    if name in ("websocket", "raw_websocket"):
                        errors[name] = ClientError("/info says websockets are off")
                names = [name for name in names if name not in errors]
        for name in names:
            transport = make_transport(name, session, url, options)
            try:
                await transport.open()
            except SessionClosed as exc:
                # The server answered: it closed the session at once.
                await transport.close(1000, "")
                errors[name] = exc
                raise ConnectError(str(url), errors) from exc
            except ClientError as exc:
                await transport.close(1000, "")
                errors[name] = exc
                continue
            except BaseException:
                await transport.close(1000, "")
                raise
            return SockJSClient(
                transport,
                url,
                max_queue=max_queue,
                heartbeat_timeout=options.heartbeat_timeout,
                owned_session=owned,
                options=options,
            )
        raise ConnectError(str(url), errors)
    except BaseException:
        if owned is not None:
            await owned.close()
        raise


#: A hook of :func:`reconnecting`: a function or a coroutine function.
_Hook = Callable[..., "Awaitable[None] | None"]


async def _call(hook: _Hook | None, *args: object) -> None:
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
        on_reconnect: _Hook | None,
        on_retry: _Hook | None,
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


def reconnecting(
    url: str | URL,
    *,
    initial_delay: float = 1.0,
    max_delay: float = 30.0,
    factor: float = 2.0,
    jitter: float = 0.5,
    max_attempts: int | None = None,
    on_reconnect: _Hook | None = None,
    on_retry: _Hook | None = None,
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
    if "session_id" in options:
        raise ValueError("reconnecting() opens a new session each time: no session_id")
    if initial_delay <= 0 or max_delay < initial_delay or factor < 1:
        raise ValueError("delays must be 0 < initial_delay <= max_delay, and factor >= 1")
    if not 0 <= jitter <= 1:
        raise ValueError("jitter is a share, from 0 to 1")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError("max_attempts must be positive, or None to never give up")
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
