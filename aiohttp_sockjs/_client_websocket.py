"""The client's websocket transports: SockJS frames over a websocket, and the raw websocket.

Also what a refused upgrade needs: :func:`read_refused_upgrades` reads the
answer before aiohttp closes its connection, so that the server gets no
TCP reset (the client's own session has it; applications add it to theirs).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import random
import socket
import struct
import sys
from typing import Final

import aiohttp
from aiohttp.connector import Connection
from yarl import URL

if sys.version_info >= (3, 11):
    from asyncio import timeout as _timeout
else:  # aiohttp depends on async-timeout there
    from async_timeout import timeout as _timeout

from . import protocol
from ._aiohttp import write_client_text_now
from ._client_transports import (
    MAX_INFO_SIZE,
    ClientOptions,
    Transport,
    join,
    network_errors,
    read_body,
    within,
)
from .exceptions import ClientError, ConnectionLost, RemoteProtocolError, ResponseTimeout
from .protocol import CloseFrame, Frame, HeartbeatFrame, MessageFrame

_WS_MESSAGE_TOO_BIG: Final = 1009

#: How long a refused upgrade's connection is kept for the server to close it.
_REFUSAL_WAIT: Final = 2.0
#: The body of the last refused websocket upgrade, in this task.
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
            # asyncio.TimeoutError: the builtin TimeoutError from 3.11 on, not on 3.10.
            with contextlib.suppress(
                aiohttp.ClientError, ClientError, OSError, TimeoutError, asyncio.TimeoutError
            ):
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


class WebSocketTransport(Transport):
    """The ``websocket`` transport, or with ``raw`` the ``raw_websocket`` one."""

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
            # network_errors() spelled out: this runs for every frame.
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
                with network_errors():
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
        with network_errors():
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
            with network_errors():
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
