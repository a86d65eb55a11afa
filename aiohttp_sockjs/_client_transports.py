"""The client's transports: one SockJS connection each, as the client sees it.

:class:`Transport` is what :class:`~aiohttp_sockjs.client.SockJSClient`
asks of a connection (open, next frame, send, ping, close, abort); a
websocket, xhr_streaming, eventsource, htmlfile, xhr polling and JSONP
polling implement it. The client's options (:class:`ClientOptions`) and
the helpers its requests share are here too. Internal: the client module
is the public API.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import io
import json
import os
import random
import socket
import struct
import sys
import urllib.parse
import uuid
from collections import deque
from collections.abc import (
    Awaitable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from typing import Final, TypeVar

import aiohttp
from aiohttp.connector import Connection
from yarl import URL

if sys.version_info >= (3, 11):
    from asyncio import timeout as _timeout
else:  # aiohttp depends on async-timeout there
    from async_timeout import timeout as _timeout

from . import protocol
from ._aiohttp import write_client_text_now
from .exceptions import (
    ClientError,
    ConnectionLost,
    RemoteProtocolError,
    ResponseTimeout,
    SessionClosed,
)
from .protocol import CloseFrame, Frame, HeartbeatFrame, MessageFrame, OpenFrame

# aiohttp's own timeouts stay off on the client's requests (a session's
# default would cut a long stream at 5 minutes); every wait is bounded here.
NO_TIMEOUT: Final = aiohttp.ClientTimeout()
MAX_INFO_SIZE: Final = 64 * 1024
_TEXT_PLAIN: Final = "text/plain;charset=UTF-8"
_WS_MESSAGE_TOO_BIG: Final = 1009

_T = TypeVar("_T")


class Default(enum.Enum):
    """The type of :data:`DEFAULT`: a ``timeout`` left to the client's option."""

    DEFAULT = 0


DEFAULT: Final = Default.DEFAULT


@dataclass(frozen=True)
class ClientOptions:
    headers: Mapping[str, str]
    timeout: float
    heartbeat_timeout: float | None
    max_frame_size: int
    session_id: str | None
    idle_timeout: float | None = None
    websocket_compression: bool = False


async def within(aw: Awaitable[_T], seconds: float | None, what: str) -> _T:
    """Await ``aw``, turning a timeout and a network error into a ClientError."""
    # Not asyncio.wait_for: before Python 3.12 it can swallow a cancellation
    # that arrives as ``aw`` finishes, and close() would then wait forever.
    try:
        with _network_errors():
            async with _timeout(seconds):
                return await aw
    except ClientError:
        raise
    except asyncio.TimeoutError:
        raise ResponseTimeout(f"no {what} within {seconds:g} s") from None


@contextlib.contextmanager
def _network_errors() -> Iterator[None]:
    try:
        yield
    except ClientError:
        raise
    except asyncio.TimeoutError:
        raise
    except (aiohttp.ClientError, OSError) as exc:
        raise ConnectionLost(f"{type(exc).__name__}: {exc}") from exc


def join(base: URL, *parts: str) -> URL:
    return base.with_path(base.path.rstrip("/") + "/" + "/".join(parts)).with_query(base.query)


async def read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    body = bytearray()
    while chunk := await resp.content.readany():
        body += chunk
        if len(body) > limit:
            raise RemoteProtocolError(f"an answer is longer than {limit} bytes")
    return bytes(body)


#: The body of the last refused websocket upgrade, in this task.
#: How long a refused upgrade's connection is kept for the server to close it.
_REFUSAL_WAIT: Final = 2.0
_refusal: contextvars.ContextVar[str | None] = contextvars.ContextVar("_refusal", default=None)


async def read_refused_upgrades(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """A client middleware: read the answer to a refused websocket upgrade before it is closed.

    aiohttp closes the connection of a refused upgrade (any status but
    101) as soon as it has the head of the answer; the rest of the answer
    then meets a closed socket, and the client's kernel answers it with a
    TCP reset, which some servers do not survive. With this middleware an
    answer with a length (``Content-Length`` or chunked) is read first, up
    to 64 KiB, and the connection ends cleanly. The client's own session
    has it, and also reads an answer that the server ends by closing the
    connection (sockjs-node's), which takes a duplicate of the socket made
    before aiohttp reads the answer. Add the middleware to a session you
    pass to :func:`connect`
    (``aiohttp.ClientSession(middlewares=[read_refused_upgrades])``) for
    the first kind.
    """
    try:
        response = await handler(request)
        kept = getattr(request, "kept_socket", None)
        if response.status != 101 and request.headers.get("Upgrade", "").lower() == "websocket":
            body = b""
            with contextlib.suppress(aiohttp.ClientError, ClientError, OSError, TimeoutError):
                if response.content_length is not None or response.headers.get(
                    "Transfer-Encoding", ""
                ).lower().endswith("chunked"):
                    body = await read_body(response, MAX_INFO_SIZE)
                elif kept is not None:
                    # aiohttp reads no body it has no length for, for an
                    # upgrade: it ends when the server closes.
                    body = await _drain(kept)
            _refusal.set(body[:200].decode(errors="replace").strip())
    finally:
        # On every way out: a refusal read, an upgrade made, a failure.
        kept = getattr(request, "kept_socket", None)
        if kept is not None:
            kept.close()
    return response


async def _drain(sock: socket.socket) -> bytes:
    """Read ``sock`` until the server closes it (at most 64 KiB, for :data:`_REFUSAL_WAIT` s)."""
    loop = asyncio.get_running_loop()
    body = bytearray()
    async with _timeout(_REFUSAL_WAIT):
        while chunk := await loop.sock_recv(sock, 65536):
            body += chunk
            if len(body) > MAX_INFO_SIZE:
                break
    return bytes(body)


class KeepUpgradeSocket(aiohttp.ClientRequest):
    """The client's own requests: an upgrade keeps a duplicate of its socket.

    So that if the upgrade is refused with an answer that ends when the
    server closes, :func:`read_refused_upgrades` can read it to its end
    after aiohttp has let go of the connection: the socket is closed (and
    any late part of the answer refused with a reset) only when both are.
    """

    kept_socket: socket.socket | None = None

    async def send(self, conn: Connection) -> aiohttp.ClientResponse:
        if self.headers.get("Upgrade", "").lower() == "websocket" and conn.transport is not None:
            sock = conn.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError, ValueError):
                    kept = socket.socket(fileno=os.dup(sock.fileno()))
                    kept.setblocking(False)
                    self.kept_socket = kept
        return await super().send(conn)


async def refused(resp: aiohttp.ClientResponse, what: str) -> ConnectionLost:
    text = ""
    with contextlib.suppress(Exception):
        async with _timeout(1.0):
            text = (await resp.content.read(200)).decode(errors="replace")
    resp.release()
    detail = f": {text.strip()}" if text.strip() else ""
    return ConnectionLost(f"{what} answered HTTP {resp.status}{detail}")


class Transport:
    """One transport's connection to a session: open it, read frames, send."""

    name: str
    session_id: str | None

    def __init__(self, http: aiohttp.ClientSession, base: URL, options: ClientOptions) -> None:
        self.http = http
        self.base = base
        self.options = options
        self.session_id = options.session_id or uuid.uuid4().hex
        self.session_url = join(base, f"{random.randrange(1000):03d}", self.session_id)

    async def open(self) -> None:
        """Connect and read up to the open frame."""
        frame = await self.next_frame(self.options.timeout, "open frame")
        if isinstance(frame, CloseFrame):
            raise SessionClosed(frame.code, frame.reason)
        if not isinstance(frame, OpenFrame):
            raise RemoteProtocolError(f"the first frame is {frame}, not the open frame")

    async def next_frame(self, seconds: float | None, what: str) -> Frame:
        """The next frame, waiting at most ``seconds`` for the server."""
        raise NotImplementedError

    async def send(self, messages: list[str]) -> None:
        """Deliver ``messages`` to the server, in order."""
        raise NotImplementedError

    def send_now(self, messages: list[str]) -> bool:
        """Write ``messages`` at once if that needs no waiting; ``False`` if not (nothing sent)."""
        return False

    async def close(self, code: int, reason: str) -> None:
        """Let go of the connection; idempotent."""
        raise NotImplementedError

    async def ping(self) -> None:
        """One round trip to the server: here a GET of ``/info``."""
        # SockJS has no echo of its own: /info is the cheapest request every
        # server answers at once, on the same host, port and proxies.
        await fetch_info(self.http, self.base, self.options)

    def abort(self) -> None:
        """Cut the connection at once, so that the server sees the client vanish."""


class _WebSocket(Transport):
    def __init__(
        self, http: aiohttp.ClientSession, base: URL, options: ClientOptions, raw: bool
    ) -> None:
        super().__init__(http, base, options)
        self.raw = raw
        self.name = "raw_websocket" if raw else "websocket"
        if raw:
            self.session_id = None
            self.url = join(base, "websocket")
        else:
            self.url = join(self.session_url, "websocket")
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        # Whether the server has sent a heartbeat frame (not only pings).
        self.h_frames = False
        #: The pings sent and not answered yet, by payload.
        self.pings: dict[bytes, asyncio.Future[None]] = {}

    async def open(self) -> None:
        timeout = self.options.timeout
        _refusal.set(None)
        try:
            self.ws = await self._handshake(timeout)
        except ConnectionLost as exc:
            cause = exc.__cause__
            body = _refusal.get()
            if isinstance(cause, aiohttp.WSServerHandshakeError) and cause.status != 101:
                detail = f": {body}" if body else ""
                raise ConnectionLost(f"{self.name} answered HTTP {cause.status}{detail}") from cause
            raise
        if not self.raw:
            await super().open()

    async def _handshake(self, timeout: float) -> aiohttp.ClientWebSocketResponse:
        return await within(
            self.http.ws_connect(
                self.url,
                headers=self.options.headers,
                # Pings are answered here, so they count as signs of life.
                autoping=False,
                max_msg_size=self.options.max_frame_size,
                # 15: offer permessage-deflate with the largest window.
                compress=15 if self.options.websocket_compression else 0,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=timeout),
            ),
            timeout,
            "websocket handshake",
        )

    async def next_frame(self, seconds: float | None, what: str) -> Frame:
        ws = self.ws
        assert ws is not None
        while True:
            # _network_errors() spelled out: this runs for every frame.
            try:
                msg = await ws.receive(timeout=seconds)
            except asyncio.TimeoutError:
                raise ResponseTimeout(f"no {what} within {seconds:g} s") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise ConnectionLost(f"{type(exc).__name__}: {exc}") from exc
            kind = msg.type
            if kind is aiohttp.WSMsgType.TEXT:
                if self.raw:
                    return MessageFrame((msg.data,))
                try:
                    frame = protocol.decode_frame(msg.data)
                except protocol.FrameError as exc:
                    raise RemoteProtocolError(str(exc)) from None
                if isinstance(frame, HeartbeatFrame):
                    self.h_frames = True
                return frame
            if kind is aiohttp.WSMsgType.PING:
                with _network_errors():
                    await ws.pong(msg.data)
                if not self.h_frames:
                    # The raw websocket, and sockjs-node's, send pings in
                    # place of heartbeat frames.
                    return HeartbeatFrame()
                # A server that sends a ping after each heartbeat frame (this
                # one does): a sign of life, not a heartbeat of its own.
                continue
            if kind is aiohttp.WSMsgType.PONG:
                waiter = self.pings.pop(msg.data, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                continue
            if kind is aiohttp.WSMsgType.BINARY:
                raise RemoteProtocolError("a binary websocket message; SockJS sends text")
            if kind is aiohttp.WSMsgType.CLOSE:
                code, reason = int(msg.data), str(msg.extra or "")
                if self.raw:
                    return CloseFrame(code, reason)
                raise ConnectionLost(f"the websocket closed without a close frame: {code} {reason}")
            if kind is aiohttp.WSMsgType.ERROR:
                error = msg.data
                if getattr(error, "code", None) == _WS_MESSAGE_TOO_BIG:
                    raise RemoteProtocolError(
                        f"a websocket message is longer than {self.options.max_frame_size} bytes"
                    )
                raise ConnectionLost(f"the websocket failed: {error}")
            raise ConnectionLost("the websocket closed without a close frame")

    async def send(self, messages: list[str]) -> None:
        ws = self.ws
        assert ws is not None
        with _network_errors():
            if self.raw:
                for message in messages:
                    await ws.send_str(message)
            else:
                await ws.send_str(protocol.encode_payload(messages))

    def send_now(self, messages: list[str]) -> bool:
        ws = self.ws
        if ws is None or self.raw:
            return False
        return write_client_text_now(ws, protocol.encode_payload_utf8(messages))

    async def close(self, code: int, reason: str) -> None:
        pings, self.pings = self.pings, {}
        for waiter in pings.values():
            if not waiter.done():
                waiter.set_exception(ConnectionLost("the websocket closed before the pong"))
        ws, self.ws = self.ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close(code=code, message=reason.encode())

    async def ping(self) -> None:
        """A websocket ping, answered by the server's pong (read by the reader task)."""
        ws = self.ws
        assert ws is not None
        payload = random.getrandbits(64).to_bytes(8, "big")
        waiter = self.pings[payload] = asyncio.get_running_loop().create_future()
        try:
            with _network_errors():
                await ws.ping(payload)
            await waiter
        finally:
            self.pings.pop(payload, None)

    def abort(self) -> None:
        ws = self.ws
        sock = None if ws is None else ws.get_extra_info("socket")
        if sock is not None:
            # No close frame: the TCP connection ends (FIN now, a reset when
            # it is released), as when the client's machine goes away.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)


class _Http(Transport):
    """The HTTP transports: they receive their own way and send with xhr_send."""

    def __init__(self, http: aiohttp.ClientSession, base: URL, options: ClientOptions) -> None:
        super().__init__(http, base, options)
        self.url = join(self.session_url, self.name)
        self.frames: deque[str] = deque()
        # An error found after good frames waits until they are read.
        self.error: ClientError | None = None
        self.response: aiohttp.ClientResponse | None = None

    async def _request(self, method: str) -> aiohttp.ClientResponse:
        resp = await self.http.request(
            method, self.url, headers=self.options.headers, timeout=NO_TIMEOUT
        )
        if resp.status != 200:
            raise await refused(resp, f"{method} {self.name}")
        return resp

    async def next_frame(self, seconds: float | None, what: str) -> Frame:
        while not self.frames:
            if self.error is not None:
                raise self.error
            await self._receive(seconds, what)
        try:
            return protocol.decode_frame(self.frames.popleft())
        except protocol.FrameError as exc:
            raise RemoteProtocolError(str(exc)) from None

    async def _receive(self, seconds: float | None, what: str) -> None:
        """Read from the server until ``self.frames`` has something."""
        raise NotImplementedError

    async def send(self, messages: list[str]) -> None:
        payload = protocol.encode_payload_utf8(messages)
        url = join(self.session_url, "xhr_send")
        headers = {**self.options.headers, "Content-Type": _TEXT_PLAIN}

        async def post() -> None:
            # A file-like body: aiohttp warns about large bytes ones.
            body = io.BytesIO(payload)
            async with self.http.post(url, data=body, headers=headers, timeout=NO_TIMEOUT) as resp:
                if resp.status not in (200, 204):
                    raise await refused(resp, "xhr_send")

        await within(post(), self.options.timeout, "answer to xhr_send")

    async def close(self, code: int, reason: str) -> None:
        resp, self.response = self.response, None
        if resp is not None:
            resp.close()


class _Stream(_Http):
    """xhr_streaming and eventsource: long responses, opened again when they end."""

    method: str

    def __init__(self, http: aiohttp.ClientSession, base: URL, options: ClientOptions) -> None:
        super().__init__(http, base, options)
        self.delivered = False

    def _new_reader(self) -> None:
        raise NotImplementedError

    def _feed(self, chunk: bytes) -> None:
        raise NotImplementedError

    def _next(self) -> str | None:
        raise NotImplementedError

    def _partial(self) -> bool:
        raise NotImplementedError

    def _take_frames(self) -> None:
        try:
            while (frame := self._next()) is not None:
                self.frames.append(frame)
                self.delivered = True
        except protocol.FrameError as exc:
            self.error = RemoteProtocolError(str(exc))

    async def _receive(self, seconds: float | None, what: str) -> None:
        if self.response is None:
            self.response = await within(self._request(self.method), seconds, what)
            self._new_reader()
            self.delivered = False
        try:
            with _network_errors():
                chunk = await within(self.response.content.readany(), seconds, what)
        except RuntimeError as exc:
            # aiohttp's StreamReader raises this when the connection ended
            # before the read began (the server went away under load).
            if str(exc) != "Connection closed.":
                raise
            raise ConnectionLost(f"the {self.name} response's connection closed") from exc
        if chunk:
            self._feed(chunk)
            self._take_frames()
            return
        # The response ended: at its size limit, or because the server went.
        if self._partial():
            self.error = ConnectionLost(f"the {self.name} response ended in the middle of a frame")
        elif not self.delivered:
            self.error = ConnectionLost(f"the {self.name} response ended without a frame")
        self.response.release()
        self.response = None


class _XhrStreaming(_Stream):
    name = "xhr_streaming"
    method = "POST"

    def _new_reader(self) -> None:
        self.lines = protocol.LineReader(self.options.max_frame_size)
        self.prelude = True

    def _feed(self, chunk: bytes) -> None:
        self.lines.feed(chunk)

    def _next(self) -> str | None:
        while (line := self.lines.next_line()) == "":
            pass
        if self.prelude and line is not None:
            self.prelude = False
            # Each response starts with a line of "h"s that pushes it past
            # proxy buffers; it is no frame.
            if line.strip("h") == "":
                return self._next()
        return line

    def _partial(self) -> bool:
        return self.lines.partial


class _EventSource(_Stream):
    name = "eventsource"
    method = "GET"

    def _new_reader(self) -> None:
        self.events = protocol.EventStreamReader(self.options.max_frame_size)

    def _feed(self, chunk: bytes) -> None:
        self.events.feed(chunk)

    def _next(self) -> str | None:
        data = self.events.next_event()
        return None if data is None else protocol.decode_eventsource_data(data)

    def _partial(self) -> bool:
        return self.events.partial


class _XhrPolling(_Http):
    name = "xhr"

    async def _receive(self, seconds: float | None, what: str) -> None:
        await within(self._poll(), seconds, what)

    async def _poll(self) -> None:
        self.response = await self._request("POST")
        try:
            body = await read_body(self.response, self.options.max_frame_size)
        finally:
            self.response.release()
            self.response = None
        lines = protocol.LineReader(self.options.max_frame_size)
        lines.feed(body)
        try:
            while (line := lines.next_line()) is not None:
                if line:
                    self.frames.append(line)
        except protocol.FrameError as exc:
            self.error = RemoteProtocolError(str(exc))
            return
        if lines.partial:
            self.error = ConnectionLost("an xhr answer ended in the middle of a frame")
        elif not self.frames:
            self.error = RemoteProtocolError("an xhr answer without a frame")


def _callback() -> str:
    # The name of the page's JavaScript function that the server's scripts call.
    return f"_sockjs_{random.getrandbits(32):08x}"


def _js_frame(literal: bytes) -> str:
    """The frame inside a script's ``p(...)`` or a JSONP call: a JSON string."""
    try:
        frame = json.loads(literal)
    except ValueError:  # a UnicodeDecodeError too
        raise protocol.FrameError(f"not a JSON string: {literal[:60]!r}") from None
    if not isinstance(frame, str):
        raise protocol.FrameError(f"not a JSON string: {literal[:60]!r}")
    return frame


_SCRIPT_END: Final = b"</script>"
_CHUNK_START: Final = b"<script>\np("
_CHUNK_END: Final = b");\n</script>\r\n"


class _HtmlfileReader:
    """Cut an htmlfile page into frames: a prelude page, then one script per frame."""

    def __init__(self, max_frame: int) -> None:
        self._buffer = bytearray()
        self._max = max_frame
        self._prelude = True

    @property
    def partial(self) -> bool:
        return bool(self._buffer.strip())

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self) -> str | None:
        buffer = self._buffer
        if self._prelude:
            end = buffer.find(_SCRIPT_END)
            if end < 0:
                if len(buffer) > self._max:
                    raise protocol.FrameError("no end to the htmlfile page's first script")
                return None
            del buffer[: end + len(_SCRIPT_END)]
            self._prelude = False
        # The prelude's padding, and the line breaks between scripts.
        start = len(buffer) - len(buffer.lstrip())
        if start:
            del buffer[:start]
        if len(buffer) < len(_CHUNK_START):
            return None
        if not buffer.startswith(_CHUNK_START):
            raise protocol.FrameError(f"not an htmlfile script: {bytes(buffer[:60])!r}")
        end = buffer.find(_CHUNK_END)
        if end < 0:
            if len(buffer) > self._max:
                raise protocol.FrameError(f"a frame is longer than {self._max} bytes")
            return None
        literal = bytes(buffer[len(_CHUNK_START) : end])
        del buffer[: end + len(_CHUNK_END)]
        if len(literal) > self._max:
            raise protocol.FrameError(f"a frame is longer than {self._max} bytes")
        return _js_frame(literal)


class _Htmlfile(_Stream):
    name = "htmlfile"
    method = "GET"

    def __init__(self, http: aiohttp.ClientSession, base: URL, options: ClientOptions) -> None:
        super().__init__(http, base, options)
        self.url = self.url.with_query(c=_callback())

    def _new_reader(self) -> None:
        self.page = _HtmlfileReader(self.options.max_frame_size)

    def _feed(self, chunk: bytes) -> None:
        self.page.feed(chunk)

    def _next(self) -> str | None:
        return self.page.next_frame()

    def _partial(self) -> bool:
        return self.page.partial


class _JsonpPolling(_XhrPolling):
    """JSONP polling: each poll answers one frame as a script; sends are forms."""

    name = "jsonp"

    def __init__(self, http: aiohttp.ClientSession, base: URL, options: ClientOptions) -> None:
        super().__init__(http, base, options)
        self.callback = _callback()
        self.url = self.url.with_query(c=self.callback)

    async def _poll(self) -> None:
        prefix = f"/**/{self.callback}(".encode()
        limit = self.options.max_frame_size
        self.response = await self._request("GET")
        try:
            # Room for the call around the frame; the frame is checked below.
            body = await read_body(self.response, limit + len(prefix) + 8)
        except RemoteProtocolError:
            raise RemoteProtocolError(f"a frame is longer than {limit} bytes") from None
        finally:
            self.response.release()
            self.response = None
        if not body.startswith(prefix):
            self.error = RemoteProtocolError(f"not a JSONP call of {self.callback}: {body[:60]!r}")
            return
        call = body.rstrip()
        if not call.endswith(b");"):
            self.error = ConnectionLost("a jsonp answer ended in the middle of a frame")
            return
        literal = call[len(prefix) : -2]
        if len(literal) > limit:
            self.error = RemoteProtocolError(f"a frame is longer than {limit} bytes")
            return
        try:
            self.frames.append(_js_frame(literal))
        except protocol.FrameError as exc:
            self.error = RemoteProtocolError(str(exc))

    async def send(self, messages: list[str]) -> None:
        form = urllib.parse.urlencode({"d": protocol.encode_payload(messages)}).encode()
        url = join(self.session_url, "jsonp_send")
        headers = {**self.options.headers, "Content-Type": "application/x-www-form-urlencoded"}

        async def post() -> None:
            body = io.BytesIO(form)
            async with self.http.post(url, data=body, headers=headers, timeout=NO_TIMEOUT) as resp:
                if resp.status != 200:
                    raise await refused(resp, "jsonp_send")
                await resp.read()

        await within(post(), self.options.timeout, "answer to jsonp_send")


_HTTP_TRANSPORTS: Final[dict[str, type[_Http]]] = {
    "xhr_streaming": _XhrStreaming,
    "eventsource": _EventSource,
    "xhr": _XhrPolling,
    "htmlfile": _Htmlfile,
    "jsonp": _JsonpPolling,
}


def make_transport(
    name: str, http: aiohttp.ClientSession, base: URL, options: ClientOptions
) -> Transport:
    if name in ("websocket", "raw_websocket"):
        return _WebSocket(http, base, options, raw=name == "raw_websocket")
    return _HTTP_TRANSPORTS[name](http, base, options)


async def fetch_info(
    http: aiohttp.ClientSession, url: URL, options: ClientOptions
) -> protocol.Info:
    async with http.get(join(url, "info"), headers=options.headers, timeout=NO_TIMEOUT) as resp:
        if resp.status != 200:
            raise await refused(resp, "/info")
        body = await read_body(resp, MAX_INFO_SIZE)
    try:
        return protocol.decode_info(body)
    except protocol.FrameError as exc:
        raise RemoteProtocolError(str(exc)) from None
