"""A websocket client that shows each frame's RSV1 bit, for the compression tests.

It speaks permessage-deflate (RFC 7692) the way Chromium does: it offers
``permessage-deflate; client_max_window_bits``, compresses what it sends
with context takeover at zlib's default level, and inflates what it gets
with the window the server announced. It is strict where a browser may
be lenient: with ``server_no_context_takeover`` negotiated it starts a
fresh inflater for every message, so a server that still referred to an
earlier message would fail the test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import zlib
from dataclasses import dataclass

from tests.wire import bounded

#: What Chromium sends in ``Sec-WebSocket-Extensions``.
CHROMIUM_OFFER = "permessage-deflate; client_max_window_bits"
_TRAILER = b"\x00\x00\xff\xff"


@dataclass
class Frame:
    """One frame from the server, its payload inflated when RSV1 was set."""

    opcode: int
    rsv1: bool
    data: bytes
    wire: int  # payload bytes on the wire

    @property
    def text(self) -> str:
        assert self.opcode == 1, self
        return self.data.decode()


def _mask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    if not n:
        return data
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(keys, "big")).to_bytes(n, "big")


def _params(answer: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for part in answer.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        params[name] = value or None
    return params


class DeflateClient:
    """A websocket client on asyncio streams; see the module docstring."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self.extensions: str | None = None
        self._server_wbits = 15
        self._server_reset = False
        self._inflate: zlib._Decompress | None = None
        self._deflate: zlib._Compress | None = None

    @classmethod
    async def connect(
        cls, host: str, port: int, path: str, offer: str | None = CHROMIUM_OFFER
    ) -> DeflateClient:
        """Open ``path`` offering ``offer`` (``None``: no extension offered)."""
        reader, writer = await bounded(asyncio.open_connection(host, port))
        self = cls(reader, writer)
        key = base64.b64encode(os.urandom(16)).decode()
        ext = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{ext}\r\n"
            ).encode()
        )
        head = (await bounded(reader.readuntil(b"\r\n\r\n"))).decode("latin-1")
        lines = head.split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
        self.extensions = self.headers.get("sec-websocket-extensions")
        if self.extensions is not None:
            assert self.extensions.startswith("permessage-deflate"), self.extensions
            params = _params(self.extensions)
            self._server_wbits = int(params.get("server_max_window_bits") or 15)
            self._server_reset = "server_no_context_takeover" in params
            client_wbits = int(params.get("client_max_window_bits") or 15)
            self._deflate = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -client_wbits
            )
            self._inflate = zlib.decompressobj(-self._server_wbits)
        return self

    async def recv(self) -> Frame:
        """The next frame from the server (one whole message: no fragments)."""
        head = await bounded(self.reader.readexactly(2))
        fin, rsv1, opcode = head[0] & 0x80, bool(head[0] & 0x40), head[0] & 0x0F
        assert fin, "the server fragmented a message"
        assert not head[1] & 0x80, "the server masked a frame"
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await bounded(self.reader.readexactly(2)), "big")
        elif length == 127:
            length = int.from_bytes(await bounded(self.reader.readexactly(8)), "big")
        payload = await bounded(self.reader.readexactly(length))
        data = payload
        if rsv1:
            assert self._inflate is not None, "RSV1 set without permessage-deflate"
            assert opcode in (1, 2), "a compressed control frame"
            if self._server_reset:
                self._inflate = zlib.decompressobj(-self._server_wbits)
            data = self._inflate.decompress(payload + _TRAILER)
        return Frame(opcode, rsv1, data, length)

    async def recv_text(self) -> str:
        """The next text frame's text."""
        frame = await self.recv()
        return frame.text

    def send_text(self, data: bytes, compress: bool = True) -> None:
        """Send a text frame, compressed when deflate was negotiated and ``compress``."""
        first = 0x81
        if compress and self._deflate is not None:
            data = (self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH))[:-4]
            first |= 0x40
        self._send(first, data)

    def _send(self, first: int, data: bytes) -> None:
        n = len(data)
        if n < 126:
            head = bytes((first, 0x80 | n))
        elif n < 65536:
            head = bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((first, 0x80 | 127)) + n.to_bytes(8, "big")
        key = os.urandom(4)
        self.writer.write(head + key + _mask(data, key))

    def send_raw(self, first: int, payload: bytes) -> None:
        """Send a frame exactly as given (first header byte and payload)."""
        self._send(first, payload)

    async def close(self) -> None:
        """Close the connection without a closing handshake."""
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await bounded(self.writer.wait_closed())
