"""The session, as the application sees it.

A :class:`Session` is what a handler gets: iterate it to receive the
client's messages, :meth:`~Session.send` to queue messages for it,
:meth:`~Session.close` to end it. Underneath, it is an
:class:`~aiohttp_sockjs.actor.Actor`: everything the application does
becomes a command for the session's actor, which alone drives the
session's machine. Two channels cross the actor's boundary and nothing
else does:

- the mailbox (anyone → actor), which also bounds what waits in it, so a
  sender cannot grow memory while the actor is busy writing;
- the inbox (actor → application), the client's messages not taken yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from . import protocol
from .actor import Actor
from .commands import CONSUMED, Batch, Close
from .exceptions import SessionClosed, SessionMisuse
from .hub import Hub
from .machine import SessionState
from .receiver import Receiver

if TYPE_CHECKING:
    from aiohttp import web

    from .endpoint import Endpoint

__all__ = ["Receiver", "Session", "SessionState"]


class Session(Actor):
    """One SockJS session, as the application sees it.

    Iterate it to receive messages (``async for message in session``), call
    :meth:`send` to queue a message and :meth:`close` to end it. The session
    ends when the handler returns, when the client goes away, or when it
    expires with no connection.
    """

    __slots__ = ("__weakref__", "_data", "_pace_until", "_streak", "request", "transport")

    def __init__(
        self,
        hub: Hub[Any],
        session_id: str | None,
        request: web.Request,
        transport: str,
        *,
        websocket: bool = False,
        raw: bool = False,
    ) -> None:
        super().__init__(hub, session_id, websocket=websocket, raw=raw)
        #: The aiohttp request that opened the session (headers, cookies,
        #: remote address, match info); kept for the session's whole life.
        self.request = request
        #: The name of the transport that opened the session, e.g. ``"websocket"``.
        self.transport = transport
        # Made on first use: most sessions of a simple app never need one.
        self._data: dict[str, Any] | None = None
        # Whether the last message was handed out without waiting (part of
        # a batch), and until when the batch may wait for pressured sessions
        # to drain (see _fair).
        self._streak = False
        self._pace_until = 0.0

    def __repr__(self) -> str:
        return f"<Session {self.transport} {self._machine.state.value}>"

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint this session belongs to (for broadcast and the session list)."""
        endpoint: Endpoint = self._hub.owner
        return endpoint

    @property
    def data(self) -> dict[str, Any]:
        """Free storage for the application's per-session state (a dict)."""
        data = self._data
        if data is None:
            data = self._data = {}
        return data

    @data.setter
    def data(self, value: dict[str, Any]) -> None:
        self._data = value

    @property
    def state(self) -> SessionState:
        """The session's current :class:`SessionState`."""
        return self._machine.state

    @property
    def closed(self) -> bool:
        """Whether the session is closing or closed: no more sends go out."""
        return self._close_info is not None

    @property
    def close_code(self) -> int | None:
        """The close code once the session is closed, else ``None``."""
        return None if self._close_info is None else self._close_info[0]

    @property
    def close_reason(self) -> str | None:
        """The close reason once the session is closed, else ``None``."""
        return None if self._close_info is None else self._close_info[1]

    def join(self, room: str) -> None:
        """Join ``room``: broadcasts to it reach this session (see :meth:`Endpoint.broadcast`).

        Joining twice is the same as once. The session leaves its rooms when
        it ends; a closed session joins nothing. A name longer than
        ``max_room_name_length``, or a room past ``max_rooms_per_session``,
        raises :class:`~aiohttp_sockjs.RoomLimitExceeded` and the session
        goes on in the rooms it was in.
        """
        self._hub.rooms.join(self, room)

    def leave(self, room: str) -> None:
        """Leave ``room``; leaving a room the session is not in does nothing."""
        self._hub.rooms.leave(self, room)

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this session is in."""
        return self._hub.rooms.rooms_of(self)

    def send(self, message: str) -> None:
        """Queue ``message`` for the client.

        It goes out on the current connection, or with the next one the
        client opens. Sending on a closed session does nothing: iterate the
        session (or check :attr:`closed`) to learn that it has ended. Never
        waits; past ``max_queue_size`` undelivered characters the endpoint's
        ``queue_overflow`` policy applies.
        """
        if self._close_info is not None:
            return
        if self._raw:
            if type(message) is not str:
                raise TypeError(f"SockJS messages are str, not {type(message).__name__}")
            self._put_send(message)
        else:
            self._put_send(protocol.encode_message(message))

    def send_many(self, messages: Iterable[str]) -> None:
        """Queue several messages for the client, in order.

        The same as calling :meth:`send` for each, but cheaper per message,
        and the batch goes out in one frame when the connection takes it at
        once (a websocket that is not busy writing, say). Use it when a
        handler has several messages to send at the same moment: the
        replies to a :meth:`receive_many` batch, or a burst of updates.
        """
        if self._close_info is not None:
            return
        if self._raw:
            batch = tuple(messages)
            for message in batch:
                if type(message) is not str:
                    raise TypeError(f"SockJS messages are str, not {type(message).__name__}")
        else:
            batch = tuple([protocol.encode_message(m) for m in messages])
        if batch:
            self._put_sends(Batch(batch, sum(map(len, batch))))

    async def close(self, code: int = 3000, reason: str = "Go away!") -> None:
        """Close the session with ``code`` and ``reason``.

        The client gets the close frame on its current connection, or on the
        next one it opens. Returns once the session has taken the close.
        Closing a closed session does nothing.
        """
        if self._close_info is not None:
            return
        self._enter(Close(int(code), str(reason)))
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the session is closed, by either side."""
        if self._close_info is not None:
            return
        if self._close_waiter is None:
            self._close_waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._close_waiter)

    def _next_message(self) -> str | asyncio.Future[None] | None:
        """A queued message, else ``None`` once closed, else a waiter to await."""
        inbox = self._inbox
        if inbox:
            message = inbox.popleft()
            self._inbox_size -= len(message)
            if self._gate is not None and CONSUMED not in self._mailbox:
                self._enter(CONSUMED)
            return message
        if self._close_info is not None:
            return None
        if self._inbox_waiter is not None:
            raise SessionMisuse("Concurrent call to receive() is not allowed")
        waiter = self._inbox_waiter = asyncio.get_running_loop().create_future()
        return waiter

    async def _fair(self) -> None:
        # While some session of the endpoint holds more than half its send
        # bound, the next message of a batch waits for it to drain (a
        # streaming client reconnecting, say), for at most disconnect_delay
        # per batch: one client's large batch then cannot overflow the
        # queues of readers that keep up. Otherwise messages are handed out
        # back to back, and what the handler sends for them shares frames.
        # The batch's allowance starts with its first wait, so a batch that
        # never meets pressure reads no clock.
        hub = self._hub
        if not self._pace_until:
            self._pace_until = hub.clock() + hub.limits.disconnect_delay
        await asyncio.sleep(0)  # let the actors flush what is queued
        await hub.relief(self._pace_until - hub.clock())

    async def receive(self) -> str:
        """Wait for the next message from the client.

        Raises :class:`SessionClosed` once the session is closed and every
        message that arrived before has been received.
        """
        if self._streak and self._hub.pressured and self._inbox:
            await self._fair()
        while True:
            got = self._next_message()
            if isinstance(got, str):
                # A message handed out without waiting is part of a batch.
                self._streak = True
                return got
            await self._wait_for_message(got)

    async def _wait_for_message(self, waiter: asyncio.Future[None] | None) -> None:
        """Await ``waiter`` from :meth:`_next_message`; its ``None`` (closed) raises."""
        if waiter is None:
            assert self._close_info is not None
            raise SessionClosed(*self._close_info)
        # Waiting: the batch, if any, is over.
        self._streak = False
        self._pace_until = 0.0
        try:
            await waiter
        finally:
            self._inbox_waiter = None

    async def receive_many(self, limit: int | None = None) -> list[str]:
        """Wait for the next messages from the client, and take all that arrived.

        Returns at least one message, and at most ``limit`` when given: the
        messages of one client frame, or of several that arrived together.
        Raises :class:`SessionClosed` like :meth:`receive`. While the
        endpoint holds back fast senders (see ``max_queue_size``), it
        returns one message at a time, as :meth:`receive` paces them.

        With :meth:`send_many` this makes the Python work per batch rather
        than per message, which is what a busy echo, relay or game loop
        wants.
        """
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        if self._hub.pressured:
            return [await self.receive()]
        while not (inbox := self._inbox):
            got = self._next_message()  # with the inbox empty: None or a waiter
            assert not isinstance(got, str)
            await self._wait_for_message(got)
        if self._hub.pressured:
            limit = 1  # it came while this waited: the next call paces
        if limit is None or limit >= len(inbox):
            batch = list(inbox)
            inbox.clear()
        else:
            batch = [inbox.popleft() for _ in range(limit)]
        self._inbox_size -= sum(map(len, batch))
        self._streak = True
        if self._gate is not None and CONSUMED not in self._mailbox:
            self._enter(CONSUMED)
        return batch

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        # Not a call to receive(): a handler idling in ``async for`` then
        # holds one coroutine, not two.
        while True:
            inbox = self._inbox
            if inbox and self._gate is None and not (self._streak and self._hub.pressured):
                # The common case of _next_message (no pacing, inbound not
                # paused), without its call: this runs for every message.
                message = inbox.popleft()
                self._inbox_size -= len(message)
                self._streak = True
                return message
            if self._streak and self._hub.pressured and inbox:
                await self._fair()
            got = self._next_message()
            if isinstance(got, str):
                self._streak = True
                return got
            if got is None:
                raise StopAsyncIteration
            # Waiting: the batch, if any, is over.
            self._streak = False
            self._pace_until = 0.0
            try:
                await got
            finally:
                self._inbox_waiter = None
