"""The client's open session: :class:`SockJSClient`, made by :func:`~aiohttp_sockjs.client.connect`.

It reads frames from its transport into an inbox (pausing at
``max_queue``), batches what is sent, and knows how the session ended.
Internal: the client module is the public API.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Final

import aiohttp
from yarl import URL

if sys.version_info >= (3, 11):
    from asyncio import timeout as _timeout
else:  # aiohttp depends on async-timeout there
    from async_timeout import timeout as _timeout

from ._client_transports import DEFAULT, ClientOptions, Default, Transport, within
from .exceptions import (
    ClientError,
    ConnectionLost,
    RemoteProtocolError,
    ResponseTimeout,
    SessionClosed,
)
from .protocol import CloseFrame, HeartbeatFrame, MessageFrame

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
