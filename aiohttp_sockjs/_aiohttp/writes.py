"""Frames and chunks written at once, without a coroutine, where aiohttp's would not wait.

Part of :mod:`aiohttp_sockjs._aiohttp` (the one place that reaches past
aiohttp's public API): the server websocket's text frames
(:func:`write_text_now`, :func:`send_text`), with permessage-deflate as
the ``websocket_compression`` option does it (one shared compressor,
:class:`_Deflater`); its pings and heartbeats (:func:`write_ping_now`,
:func:`write_heartbeat_and_ping_now`); a streaming response's chunks
(:func:`write_stream_now`); and the client's text frames
(:func:`write_client_text_now`). :data:`SUPPORTED` and
:data:`STREAM_SUPPORTED` say whether the running aiohttp's writers have
the layout this module was written against.
"""

from __future__ import annotations

import asyncio
import inspect
import zlib
from typing import Any, Final

from aiohttp import ClientWebSocketResponse, WSMsgType, web

_TEXT: Final = WSMsgType.TEXT
_TEXT_OPCODE: Final = int(WSMsgType.TEXT)
#: Frames longer than this are compressed in a thread, as aiohttp does
#: (its WEBSOCKET_MAX_SYNC_CHUNK_SIZE), so the loop is not held up.
SYNC_COMPRESS_LIMIT: Final = 16 * 1024
_TRAILER: Final = b"\x00\x00\xff\xff"
_RSV1: Final = 0x40


def _writer_layout_known() -> bool:
    """Whether aiohttp's websocket writer has the attributes we rely on."""
    try:
        from aiohttp._websocket.writer import WebSocketWriter
        from aiohttp.base_protocol import BaseProtocol
    except ImportError:
        return False
    write = getattr(WebSocketWriter, "_write_websocket_frame", None)
    init = getattr(WebSocketWriter.__init__, "__code__", None)
    if write is None or init is None:
        return False
    if not inspect.iscoroutinefunction(getattr(BaseProtocol, "_drain_helper", None)):
        return False
    protocol_init = getattr(BaseProtocol.__init__, "__code__", None)
    if protocol_init is None or "_paused" not in protocol_init.co_names:
        return False
    try:
        params = list(inspect.signature(write).parameters)
    except (TypeError, ValueError):
        return False
    # write_text_now reads the flag that the response's closed property returns.
    if getattr(web.WebSocketResponse, "_closed", None) is not False:
        return False
    needed = {
        "transport",
        "protocol",
        "use_mask",
        "compress",
        "_closing",
        "_limit",
        "_output_size",
        "_send_lock",
    }
    return params == ["self", "message", "opcode", "rsv"] and needed <= set(init.co_names)


#: Whether :func:`write_text_now` can ever write and :func:`send_text` can
#: choose per frame (the writer's layout is the one this module knows).
#: True on every aiohttp version pyproject allows.
SUPPORTED: Final = _writer_layout_known()


def _stream_layout_known() -> bool:
    """Whether aiohttp's HTTP payload writer has the attributes write_stream_now relies on."""
    try:
        from aiohttp.http_writer import StreamWriter
    except ImportError:
        return False
    init = getattr(StreamWriter.__init__, "__code__", None)
    write = getattr(getattr(StreamWriter, "write", None), "__code__", None)
    if init is None or write is None:
        return False
    if not {"_on_chunk_sent", "_headers_buf", "_headers_written", "_protocol"} <= set(
        init.co_names
    ):
        return False
    # What write() reads and calls, which write_stream_now mirrors, and its
    # flow-control rule (drain past LIMIT bytes).
    used = {
        "_compress",
        "length",
        "_headers_buf",
        "_headers_written",
        "chunked",
        "_write_chunked_payload",
        "_write",
        "buffer_size",
        "drain",
    }
    return used <= set(write.co_names) and "LIMIT" in write.co_varnames


#: Whether :func:`write_stream_now` can ever write (the HTTP writer's
#: layout is the one this module knows). True on every aiohttp version
#: pyproject allows.
STREAM_SUPPORTED: Final = _stream_layout_known()
#: ``StreamWriter.write``'s default: past this many bytes since its last
#: check, it drains (and may wait).
_STREAM_LIMIT: Final = 0x10000


def write_stream_now(response: web.StreamResponse, data: bytes) -> bool:
    """Write ``data`` to a prepared streaming response, if that needs no waiting.

    Returns ``True`` only when the bytes went out exactly as ``await
    response.write(data)`` would have sent them, in a call that would not
    have suspended: the headers already sent, no compression, no declared
    length, no chunk hook, the transport open and not paused, and the
    bytes written since the writer last checked flow control staying
    within its limit. Returns ``False`` with nothing written otherwise;
    the caller then awaits ``response.write``.
    """
    if not STREAM_SUPPORTED or response._eof_sent:
        return False
    writer: Any = response._payload_writer
    if writer is None or writer._compress is not None or writer.length is not None:
        return False
    if writer._on_chunk_sent is not None or getattr(writer, "on_body_write", None) is not None:
        return False
    if writer._headers_buf and not writer._headers_written:
        return False
    if writer.buffer_size + len(data) > _STREAM_LIMIT:
        return False
    protocol = writer._protocol
    transport = protocol.transport
    if transport is None or transport.is_closing() or protocol.writing_paused:
        return False
    if writer.chunked:
        writer._write_chunked_payload(data)
    else:
        writer._write(data)
    return True


def _compress_alone(data: bytes, wbits: int) -> bytes:
    # In a worker thread: a compressor of its own.
    compressor = zlib.compressobj(zlib.Z_BEST_SPEED, zlib.DEFLATED, -wbits)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)).removesuffix(_TRAILER)


class _Deflater:
    """Whole messages compressed without context takeover, the last few remembered.

    One zlib compressor per window size serves every socket: a full flush
    after each message leaves nothing of it in the compressor's state, so
    the next message, on whatever socket, starts afresh. Only the event
    loop's thread uses them; frames over :data:`SYNC_COMPRESS_LIMIT` are
    compressed in a worker thread with a compressor of their own.
    """

    __slots__ = ("_compressors", "_recent")

    #: How many compressed frames are remembered: a broadcast's sockets
    #: flush one after another, so the same frame comes back at once.
    KEEP: int = 2

    def __init__(self) -> None:
        self._compressors: dict[int, zlib._Compress] = {}
        self._recent: list[tuple[int, bytes, bytes | asyncio.Future[bytes]]] = []

    def _lookup(self, wbits: int, data: bytes) -> bytes | asyncio.Future[bytes] | None:
        for known_wbits, known, payload in self._recent:
            if known_wbits == wbits and known == data:
                return payload
        return None

    def _remember(self, wbits: int, data: bytes, payload: bytes | asyncio.Future[bytes]) -> None:
        recent = self._recent
        recent.insert(0, (wbits, data, payload))
        del recent[self.KEEP :]

    def compress_now(self, data: bytes, wbits: int) -> bytes:
        """The payload of a compressed frame carrying ``data`` (up to the sync limit)."""
        payload = self._lookup(wbits, data)
        if isinstance(payload, bytes):
            return payload
        compressor = self._compressors.get(wbits)
        if compressor is None:
            compressor = self._compressors[wbits] = zlib.compressobj(
                zlib.Z_BEST_SPEED, zlib.DEFLATED, -wbits
            )
        payload = (compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)).removesuffix(
            _TRAILER
        )
        self._remember(wbits, data, payload)
        return payload

    async def compress(self, data: bytes, wbits: int) -> bytes:
        """Like :meth:`compress_now`, in a worker thread; sockets asking for
        the same frame meanwhile wait for the same result."""
        payload = self._lookup(wbits, data)
        if payload is None:
            loop = asyncio.get_running_loop()
            payload = loop.run_in_executor(None, _compress_alone, data, wbits)
            self._remember(wbits, data, payload)
        if isinstance(payload, bytes):
            return payload
        return await asyncio.shield(payload)


_DEFLATER: Final = _Deflater()


def write_text_now(ws: web.WebSocketResponse, data: bytes, threshold: int = 0) -> bool:
    """Write ``data`` (UTF-8 text) as one websocket text frame, if that needs no waiting.

    Returns ``True`` only when the frame was written exactly as
    ``await send_text(ws, data, threshold)`` would have written it, in a
    call that would not have suspended: the writer and its transport open,
    no frame of aiohttp's own being compressed, a compressed frame no
    longer than :data:`SYNC_COMPRESS_LIMIT`, and the bytes written since
    the writer last checked flow control staying within its limit (past
    it, ``send_frame`` may wait for the transport to drain). Returns
    ``False`` with nothing written otherwise; the caller then sends the
    ordinary way.

    On a socket with permessage-deflate, ``data`` of ``threshold`` bytes or
    more is compressed; shorter data goes out uncompressed.
    """
    if not SUPPORTED:
        return False
    writer = ws._writer
    # ws._closed: what the closed property returns, without its call per frame.
    if writer is None or ws._closed or writer.use_mask or writer._closing:
        return False
    if writer.transport.is_closing():
        return False
    if writer.compress:
        compressed = _payload_now(writer, data, threshold)
        if compressed is None:
            return False
        payload, rsv = compressed
    else:
        payload, rsv = data, 0
    size = len(payload)
    header = 2 if size < 126 else 4 if size < 65536 else 10
    if writer._output_size + header + size > writer._limit:
        return False
    memo = _LAST_FRAME
    if payload is memo.payload and rsv == memo.rsv:
        frame = memo.frame  # a broadcast: the same payload for the next socket
    elif size <= FRAME_MEMO_LIMIT:
        # A whole unmasked, final text frame (RFC 6455 section 5.2), built
        # here rather than in a helper: this runs for every frame. Under
        # FRAME_MEMO_LIMIT, the length takes one of the two short forms.
        if size < 126:
            frame = bytes((0x80 | rsv | _TEXT_OPCODE, size)) + payload
        else:
            frame = bytes((0x80 | rsv | _TEXT_OPCODE, 126)) + size.to_bytes(2, "big") + payload
        memo.payload, memo.rsv, memo.frame = payload, rsv, frame
    else:
        writer._write_websocket_frame(payload, _TEXT, rsv)
        return True
    # What _write_websocket_frame does for an unmasked frame, with the
    # header and payload joined once for every socket that gets them.
    writer.transport.write(frame)
    writer._output_size += len(frame)
    return True


def _payload_now(writer: Any, data: bytes, threshold: int) -> tuple[bytes, int] | None:
    """The payload and RSV bits of ``data``'s frame on a socket with permessage-deflate.

    ``data`` of ``threshold`` bytes or more is compressed by the shared
    compressor. ``None`` when that would wait: aiohttp's own compressor is
    busy on this socket, or ``data`` is too long to compress in the loop.
    """
    if writer._send_lock.locked():
        return None
    if len(data) < threshold:
        return data, 0
    if len(data) > SYNC_COMPRESS_LIMIT:
        return None
    return _DEFLATER.compress_now(data, writer.compress), _RSV1


#: Frames up to this payload size are built whole and remembered; larger
#: ones go out as aiohttp writes them (header and payload apart, no copy).
FRAME_MEMO_LIMIT: Final = 16 * 1024


class _FrameMemo:
    """The last text frame built whole, by the identity of its payload."""

    __slots__ = ("frame", "payload", "rsv")

    def __init__(self) -> None:
        self.payload: bytes | None = None
        self.rsv = 0
        self.frame = b""


_LAST_FRAME: Final = _FrameMemo()


async def send_text(ws: web.WebSocketResponse, data: bytes, threshold: int = 0) -> None:
    """Send ``data`` (UTF-8 text) as one websocket text frame.

    Like ``await ws.send_str(text)``, and raising what it raises, but on a
    socket with permessage-deflate ``data`` shorter than ``threshold``
    bytes goes out uncompressed and longer data is compressed by the shared
    compressor (:class:`_Deflater`), never by one of the socket's own.
    """
    if write_text_now(ws, data, threshold):
        return
    writer = ws._writer
    if not SUPPORTED or writer is None or not writer.compress:
        await ws.send_frame(data, _TEXT)
        return
    wbits = writer.compress
    if len(data) < threshold:
        payload, rsv = data, 0
    elif len(data) > SYNC_COMPRESS_LIMIT:
        payload, rsv = await _DEFLATER.compress(data, wbits), _RSV1
    else:
        payload, rsv = _DEFLATER.compress_now(data, wbits), _RSV1
    # What WebSocketWriter.send_frame does around the write.
    if writer._closing:
        raise ConnectionResetError("Cannot write to closing transport")
    async with writer._send_lock:
        writer._write_websocket_frame(payload, _TEXT, rsv)
    if writer._output_size > writer._limit:
        writer._output_size = 0
        protocol = writer.protocol
        if protocol._paused:
            await protocol._drain_helper()


# --- pings written at once ----------------------------------------------------

_PING_FRAME: Final = bytes((0x80 | int(WSMsgType.PING), 0))


def write_ping_now(ws: web.WebSocketResponse) -> bool:
    """Write an empty ping frame at once, if that needs no waiting (as :func:`write_text_now`).

    A control frame is never compressed, so this is the same frame
    ``await ws.ping()`` writes. Returns ``False`` with nothing written when
    that call might have suspended; the caller then awaits ``ws.ping()``.
    """
    return _write_unmasked_now(ws, _PING_FRAME)


def _write_unmasked_now(ws: web.WebSocketResponse, frames: bytes) -> bool:
    """Write whole, uncompressed server frames at once, if the writer would not wait."""
    if not SUPPORTED:
        return False
    writer = ws._writer
    if writer is None or ws.closed or writer.use_mask or writer._closing:
        return False
    if writer.transport.is_closing() or writer._send_lock.locked():
        return False
    if writer._output_size + len(frames) > writer._limit:
        return False
    writer.transport.write(frames)
    writer._output_size += len(frames)
    return True


_HEARTBEAT_AND_PING: Final = bytes((0x80 | _TEXT_OPCODE, 1)) + b"h" + _PING_FRAME


def write_heartbeat_and_ping_now(ws: web.WebSocketResponse, threshold: int) -> bool:
    """Write the heartbeat frame ``h`` and a ping in one write, if that needs no waiting.

    What ``write_text_now(ws, b"h", threshold)`` then :func:`write_ping_now`
    would write, in one call to the transport (one system call, not two,
    per idle socket and heartbeat). Returns ``False`` with nothing written
    when either would not have written (the caller then writes them apart),
    or when the heartbeat would be compressed (``threshold`` 0 or 1).
    """
    writer = ws._writer
    if writer is not None and writer.compress and threshold <= 1:
        return False
    return _write_unmasked_now(ws, _HEARTBEAT_AND_PING)


# --- the client's websocket ---------------------------------------------------


def write_client_text_now(ws: ClientWebSocketResponse, data: bytes) -> bool:
    """Write ``data`` (UTF-8 text) as a client's masked text frame, if that needs no waiting.

    The client's counterpart of :func:`write_text_now`: ``True`` only when
    the frame was written exactly as ``await ws.send_bytes``-for-text would
    have written it (``send_frame`` with the text opcode) in a call that
    would not have suspended: the socket and its transport open, no
    permessage-deflate (a compressed frame goes the ordinary way), and the
    bytes written since the writer last checked flow control staying
    within its limit. ``False`` with nothing written otherwise. It saves
    the client a task step per frame it sends.
    """
    if not SUPPORTED:
        return False
    writer = getattr(ws, "_writer", None)
    if writer is None or ws.closed or not writer.use_mask or writer._closing or writer.compress:
        return False
    if writer.transport.is_closing():
        return False
    # 14: the longest header with its mask.
    if writer._output_size + len(data) + 14 > writer._limit:
        return False
    writer._write_websocket_frame(data, _TEXT_OPCODE, 0)
    return True
