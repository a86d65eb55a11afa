"""The receivers: how each transport carries frames to its client.

Each receiving transport's connection is a
:class:`~aiohttp_sockjs.receiver.Receiver` here: polling requests answer one
frame, streaming responses write frames until their size limit, and
websockets (SockJS-framed or raw) write one message per frame, with a
liveness ping after each heartbeat and the close handshake.
"""

from __future__ import annotations

import asyncio
import fcntl
import sys
from collections.abc import Callable
from typing import Final

from aiohttp import web

from . import _aiohttp, protocol
from .receiver import Receiver

__all__ = [
    "PollingReceiver",
    "RawWebSocketReceiver",
    "StreamingReceiver",
    "WebSocketConfig",
    "WebSocketReceiver",
    "abort_connection",
    "connection_lost",
]

_WRITE_ERRORS: Final = (ConnectionError, RuntimeError, OSError)
_OPEN: Final = protocol.OPEN_FRAME.encode()
_HEARTBEAT: Final = protocol.HEARTBEAT_FRAME.encode()


class _BatchMemo:
    """The last one-message batch encoded, by the identity of its message."""

    __slots__ = ("data", "message")

    def __init__(self) -> None:
        self.message: str | None = None
        self.data = b""


_LAST_BATCH: Final = _BatchMemo()


def connection_lost(request: web.BaseRequest) -> bool:
    """Whether ``request``'s connection is gone (or going)."""
    transport = request.transport
    return transport is None or transport.is_closing()


def abort_connection(request: web.BaseRequest) -> None:
    """Cut ``request``'s connection at once, if it still has one."""
    transport = request.transport
    if transport is not None:
        transport.abort()


#: Linux's ioctl for the bytes a TCP socket holds that it has not yet sent
#: (``SIOCOUTQNSD``, linux/sockios.h): its client's window is full.
_SIOCOUTQNSD: Final = 0x894B


def _unsent(request: web.BaseRequest) -> bool:
    """Whether bytes written to ``request``'s connection still wait to be sent.

    The transport's own buffer, and on Linux the kernel's unsent queue
    (bytes in flight to a client that reads do not count).
    """
    transport = request.transport
    if transport is None:
        return False
    if transport.get_write_buffer_size():
        return True
    if sys.platform != "linux":
        return False
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        queued = fcntl.ioctl(sock.fileno(), _SIOCOUTQNSD, bytes(4))
    except (OSError, ValueError):
        return False
    return int.from_bytes(queued, sys.byteorder, signed=True) > 0


def _cut_if_stuck(request: web.BaseRequest, number: int) -> None:
    """Cut ``request``'s connection if it has had no request since (its
    ``number``) and bytes written to it are still unsent: they are the end of
    this request's answer, which its client stopped reading."""
    if number >= 0 and _aiohttp.request_number(request) == number and _unsent(request):
        abort_connection(request)


# --- receivers ------------------------------------------------------------


class _FramedReceiver(Receiver):
    """A receiver that speaks SockJS frames; subclasses put them on the wire."""

    __slots__ = ()

    async def _frame(self, frame: str) -> bool:
        raise NotImplementedError

    async def send_open(self) -> bool:
        return await self._frame(protocol.OPEN_FRAME)

    async def send_heartbeat(self) -> bool:
        return await self._frame(protocol.HEARTBEAT_FRAME)

    async def send_messages(self, messages: list[str]) -> bool:
        return await self._frame(protocol.messages_frame(messages))

    async def send_close(self, code: int, reason: str) -> None:
        await self._frame(protocol.close_frame(code, reason))
        await self._end()

    async def _end(self) -> None:
        pass

    def _frame_now(self, frame: str) -> bool:
        """:meth:`_frame` without waiting, on the terms of ``Receiver.send_messages_now``."""
        return False

    def send_messages_now(self, messages: list[str]) -> bool:
        return self._frame_now(protocol.messages_frame(messages))

    def send_heartbeat_now(self) -> bool:
        return self._frame_now(protocol.HEARTBEAT_FRAME)

    def send_open_now(self) -> bool:
        return self._frame_now(protocol.OPEN_FRAME)


class PollingReceiver(_FramedReceiver):
    """xhr and jsonp: answers one frame, then the request is over."""

    __slots__ = ("_encode", "_number", "_request", "result")

    def __init__(self, request: web.Request, encode: Callable[[str], bytes]) -> None:
        self._request = request
        self._number = _aiohttp.request_number(request)
        self._encode = encode
        self.result: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def cut_if_stuck(self) -> None:
        _cut_if_stuck(self._request, self._number)

    async def _frame(self, frame: str) -> bool:
        if not self.result.done():
            self.result.set_result(self._encode(frame))
        return False

    # Answering never waits, so every frame can go out from the step itself.
    sends_now = True
    single_frame = True

    def _frame_now(self, frame: str) -> bool:
        if not self.result.done():
            try:
                data = self._encode(frame)
            except UnicodeEncodeError:
                return False  # the awaited twin reports it
            self.result.set_result(data)
        return True

    def interrupted(self) -> bool:
        return not self.result.done() and connection_lost(self._request)

    def abort(self) -> None:
        # Answering never waits on the client, so there is nothing to unblock.
        pass

    def release(self) -> None:
        # Only reached when the client is gone: the empty answer goes nowhere.
        if not self.result.done():
            self.result.set_result(b"")


class StreamingReceiver(_FramedReceiver):
    """xhr_streaming, eventsource, htmlfile: frames until the size limit."""

    __slots__ = (
        "_encode",
        "_failed",
        "_limit",
        "_number",
        "_request",
        "_response",
        "_sent",
        "done",
    )

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        encode: Callable[[str], bytes],
        limit: int,
    ) -> None:
        self._request = request
        self._response = response
        self._encode = encode
        self._limit = limit
        self._sent = 0
        self._failed = False
        self._number = _aiohttp.request_number(request)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def cut_if_stuck(self) -> None:
        _cut_if_stuck(self._request, self._number)

    async def _frame(self, frame: str) -> bool:
        if self.done.done():
            return False
        data = self._encode(frame)
        try:
            await self._response.write(data)
        except _WRITE_ERRORS:
            self._failed = True
            self._end_now()
            return False
        self._sent += len(data)
        if self._sent >= self._limit:
            self._end_now()
            return False
        return True

    async def _end(self) -> None:
        self._end_now()

    sends_now = _aiohttp.STREAM_SUPPORTED

    def _frame_now(self, frame: str) -> bool:
        # _frame without waiting: only a write that leaves the stream open
        # (under its size limit) and that aiohttp takes without draining.
        if self.done.done():
            return False
        try:
            data = self._encode(frame)
        except UnicodeEncodeError:
            return False  # the awaited twin reports it
        if self._sent + len(data) >= self._limit:
            return False
        try:
            if not _aiohttp.write_stream_now(self._response, data):
                return False
        except _WRITE_ERRORS:
            # As _frame: the stream is over, and the awaited twin says so.
            self._failed = True
            self._end_now()
            return False
        self._sent += len(data)
        return True

    @property
    def response(self) -> web.StreamResponse:
        """The streaming response this receiver writes to (the route returns it)."""
        return self._response

    def _end_now(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def interrupted(self) -> bool:
        return self._failed or connection_lost(self._request)

    def abort(self) -> None:
        self._failed = True
        abort_connection(self._request)

    def release(self) -> None:
        self._end_now()


class WebSocketConfig:
    """What an endpoint's websocket receivers share: one object, not a slot each."""

    __slots__ = ("close_timeout", "pings", "threshold")

    def __init__(self, threshold: int, pings: bool, close_timeout: float) -> None:
        # permessage-deflate: frames shorter than this go out uncompressed.
        self.threshold = threshold
        # Whether a ping goes out with each heartbeat (websocket_ping_interval None).
        self.pings = pings
        self.close_timeout = close_timeout


class WebSocketReceiver(_FramedReceiver):
    """SockJS over a websocket: every frame is one text message.

    With ``pings`` on, each heartbeat is followed by a ping; aiohttp's
    parser notes the pongs (see ``_aiohttp.websocket_response``; or the
    read loop reports them with :meth:`pong`), and :meth:`unanswered` tells
    the session at the next heartbeat whether the client answered.
    """

    __slots__ = ("_config", "_pongs", "_request", "_ws")

    def __init__(
        self, request: web.Request, ws: web.WebSocketResponse, config: WebSocketConfig
    ) -> None:
        self._request = request
        self._ws = ws
        self._config = config
        self._pongs = _aiohttp.pongs(ws)

    async def _frame(self, frame: str) -> bool:
        if self._ws.closed:
            return False
        try:
            await _aiohttp.send_text(self._ws, frame.encode(), self._config.threshold)
        except _WRITE_ERRORS:
            return False
        return True

    async def send_heartbeat(self) -> bool:
        ok = await self._frame(protocol.HEARTBEAT_FRAME)
        if ok and self._config.pings:
            # Before the write: the pong may come while it is awaited.
            self._pongs.ping_sent()
            try:
                await self._ws.ping()
            except _WRITE_ERRORS:
                return False
        return ok

    sends_now = _aiohttp.SUPPORTED

    def send_messages_now(self, messages: list[str]) -> bool:
        memo = _LAST_BATCH
        if len(messages) == 1 and messages[0] is memo.message:
            # A broadcast: every socket with an empty queue gets this same
            # frame, so its bytes are made once (and, in _aiohttp, the
            # whole websocket frame, compressed or not).
            data = memo.data
        else:
            try:
                data = protocol.messages_frame(messages).encode()
            except UnicodeEncodeError:
                return False
            if len(messages) == 1:
                memo.message, memo.data = messages[0], data
        return _aiohttp.write_text_now(self._ws, data, self._config.threshold)

    def send_heartbeat_now(self) -> bool:
        ws = self._ws
        if not self._config.pings:
            return _aiohttp.write_text_now(ws, _HEARTBEAT, self._config.threshold)
        if _aiohttp.write_heartbeat_and_ping_now(ws, self._config.threshold):
            if connection_lost(self._request):
                # The write found the peer gone: the awaited twin fails at
                # once, and the session learns it in this tick.
                return False
            self._pongs.ping_sent()
            return True
        if not _aiohttp.write_text_now(ws, _HEARTBEAT, self._config.threshold):
            return False
        if not _aiohttp.write_ping_now(ws):
            # The heartbeat went out; the ping waits for the next one.
            return True
        self._pongs.ping_sent()
        return True

    def send_open_now(self) -> bool:
        return _aiohttp.write_text_now(self._ws, _OPEN, self._config.threshold)

    def pong(self) -> None:
        """The client answered a ping: it reads what is sent to it."""
        self._pongs.pong_seen()

    def unanswered(self) -> bool:
        return not self._pongs.answered

    async def _end(self) -> None:
        await _aiohttp.start_close(self._ws, 1000, b"", self._config.close_timeout)

    def interrupted(self) -> bool:
        return self._ws.closed or connection_lost(self._request)

    def abort(self) -> None:
        abort_connection(self._request)


class RawWebSocketReceiver(WebSocketReceiver):
    """``base/websocket``: no SockJS framing, one websocket message each.

    No open or heartbeat frame either: a heartbeat is only the ping.
    """

    __slots__ = ()

    # The open frame needs no write, and the rest need none of aiohttp's internals.
    sends_now = True

    async def send_open(self) -> bool:
        return not self._ws.closed

    async def send_heartbeat(self) -> bool:
        ws = self._ws
        if ws.closed:
            return False
        if self._config.pings:
            self._pongs.ping_sent()
            try:
                await ws.ping()
            except _WRITE_ERRORS:
                return False
        return True

    async def send_messages(self, messages: list[str]) -> bool:
        try:
            for message in messages:
                try:
                    data = message.encode()
                except UnicodeEncodeError:
                    # A lone surrogate has no UTF-8 form; send U+FFFD in its
                    # place, as a browser's WebSocket.send() would.
                    usv = message.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
                    data = usv.encode()
                await _aiohttp.send_text(self._ws, data, self._config.threshold)
        except _WRITE_ERRORS:
            return False
        return not self._ws.closed

    async def send_close(self, code: int, reason: str) -> None:
        await _aiohttp.start_close(self._ws, code, reason.encode(), self._config.close_timeout)

    def send_messages_now(self, messages: list[str]) -> bool:
        return False

    def send_open_now(self) -> bool:
        return not self._ws.closed

    def send_heartbeat_now(self) -> bool:
        ws = self._ws
        if ws.closed:
            return False
        if self._config.pings:
            if not _aiohttp.write_ping_now(ws) or connection_lost(self._request):
                # Not written, or the write found the connection gone (the
                # peer had left): the awaited twin then fails at once, and
                # the session learns it in this tick rather than the next.
                return False
            self._pongs.ping_sent()
        return True
