"""Everything that reaches past aiohttp's public API, in one place.

The rest of the package uses aiohttp's public API only. What is here is
tied to the aiohttp versions that ``pyproject.toml`` allows (3.13.2 up to,
not including, 3.15) and that CI tests (the oldest and the newest of that
range): :data:`SUPPORTED` says whether the running aiohttp has the layout
this module was written against, and ``tests/functional/test_aiohttp_internals.py``
fails on a supported version where it does not.

What is reached for: the websocket writer (server and client side), the
server websocket's closing state, the HTTP response writer, and how aiohttp
recognises a coroutine handler (:func:`coroutine_handler`, so that the
endpoint's one session route can hand back its transport's coroutine
without a wrapper frame per connection):

- Writing a text frame at once, without a coroutine, when
  ``WebSocketResponse.send_str`` would not have suspended anyway
  (:func:`write_text_now`). It saves a task step per frame on the hot send
  path.
- Writing a chunk of a streaming response (xhr_streaming, eventsource,
  htmlfile) at once, without a coroutine, when ``StreamResponse.write``
  would not have suspended anyway (:func:`write_stream_now`): a stream's
  frames then go out from the session's step, with no task per write.
- permessage-deflate the way the ``websocket_compression`` option does it
  (:func:`write_text_now` and :func:`send_text`): a frame shorter than the
  threshold goes out uncompressed (RSV1 clear, which RFC 7692 allows for
  any message; ``send_str`` cannot ask for that on a compressed socket),
  and a longer one is compressed without context takeover by one
  compressor shared by every socket, instead of one compressor per socket
  (about 256 KiB of zlib state each). The last compressed frames are
  remembered, so a broadcast that gives many sockets the same frame
  compresses it once (:class:`_Deflater`). The handshake answers with
  ``server_no_context_takeover`` (:func:`no_server_takeover`), so the
  browser may drop its inflate window between messages.
- The websocket close handshake (:func:`start_close`, :func:`await_close`):
  ``WebSocketResponse.close()`` closes TCP without waiting for the client's
  close frame when another task reads the socket.
- A ping written at once with a heartbeat (:func:`write_ping_now`), and
  its pong noted where aiohttp parses it (:func:`websocket_response`), so
  that an idle socket's pong does not wake its read loop.
- How many requests a connection has begun (:func:`request_number`), so
  that a session can tell whether the end of its answer is still what
  waits unsent there.
- Reads of at most 64 KiB on asyncio's own socket transports
  (:func:`small_reads`), set by the session route on every request's
  connection.
- The client's text frame written at once, masked
  (:func:`write_client_text_now`), as :func:`write_text_now` for the server.
"""

from __future__ import annotations

import asyncio
import inspect
import zlib
from collections.abc import Callable
from typing import Any, Final, TypeVar

from aiohttp import ClientWebSocketResponse, WSMsgType, hdrs, web

__all__ = [
    "PONGS_SUPPORTED",
    "STREAM_SUPPORTED",
    "SUPPORTED",
    "Pongs",
    "await_close",
    "close_answered",
    "coroutine_handler",
    "no_server_takeover",
    "pongs",
    "request_number",
    "send_text",
    "small_reads",
    "start_close",
    "websocket_response",
    "write_client_text_now",
    "write_heartbeat_and_ping_now",
    "write_ping_now",
    "write_stream_now",
    "write_text_now",
]

_H = TypeVar("_H", bound=Callable[..., Any])
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


def coroutine_handler(func: _H) -> _H:
    """``func``, a plain function returning a coroutine, marked so aiohttp takes it as a handler.

    aiohttp wraps a handler that is not a coroutine function in a coroutine
    of its own (with a DeprecationWarning); a dispatching handler that
    returns the transport handler's coroutine would then cost a coroutine
    frame per live connection. Python 3.12+ has a public marker
    (``inspect.markcoroutinefunction``); on older Pythons aiohttp (before
    3.14's Python-3.14 code path) also accepts asyncio's own marker, the
    one ``asyncio.iscoroutinefunction`` reads.
    """
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        return mark(func)  # type: ignore[no-any-return]
    func._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
    return func


def no_server_takeover(request: web.Request) -> web.Request:
    """``request`` as aiohttp's handshake should see it to answer ``server_no_context_takeover``.

    aiohttp accepts the parameters a client offers and adds none of its
    own; RFC 7692 lets the server add ``server_no_context_takeover`` to
    any offer it accepts, so each ``permessage-deflate`` offer gets it
    before aiohttp reads them. Only the request given to
    ``WebSocketResponse.prepare`` changes; the application keeps the
    original.
    """
    offers = request.headers.get(hdrs.SEC_WEBSOCKET_EXTENSIONS)
    if not offers or "permessage-deflate" not in offers:
        return request
    rewritten = []
    for offer in offers.split(","):
        params = [p.strip() for p in offer.split(";")]
        if params[0] == "permessage-deflate" and "server_no_context_takeover" not in params:
            offer = offer.rstrip() + "; server_no_context_takeover"
        rewritten.append(offer)
    headers = request.headers.copy()
    headers[hdrs.SEC_WEBSOCKET_EXTENSIONS] = ",".join(rewritten)
    return request.clone(headers=headers)


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
    if writer is None or ws.closed or writer.use_mask or writer._closing:
        return False
    if writer.transport.is_closing():
        return False
    wbits = writer.compress
    if wbits:
        if writer._send_lock.locked():
            return False
        if len(data) >= threshold:
            if len(data) > SYNC_COMPRESS_LIMIT:
                return False
            payload = _DEFLATER.compress_now(data, wbits)
            rsv = _RSV1
        else:
            payload = data
            rsv = 0
    else:
        payload = data
        rsv = 0
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


# --- websocket liveness pings and the close handshake -------------------------

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


def request_number(request: web.BaseRequest) -> int:
    """How many requests ``request``'s connection has begun, this one included.

    aiohttp counts each request as it is parsed. ``-1`` where the count
    cannot be read (nothing is then taken to be known about the connection).
    """
    count = getattr(request.protocol, "_request_count", -1)
    return count if isinstance(count, int) else -1


#: What asyncio's selector transports pass to ``recv()`` (``max_size``) is
#: 256 KiB. glibc serves an allocation that large with ``mmap``, so every
#: read, a 6-byte pong as well, costs an ``mmap``, ``mremap`` and
#: ``munmap`` on top of the ``recv`` (CPython issue 85451; 13 us per read
#: on the benchmark machine). aiohttp's own chunk size stays on the heap.
_READ_SIZE: Final = 2**16


def small_reads(transport: asyncio.BaseTransport | None) -> None:
    """Have asyncio's socket ``transport`` read at most 64 KiB at a time.

    Nothing for other transports (uvloop's, TLS), which read into buffers
    of their own.
    """
    if transport is not None and getattr(type(transport), "max_size", 0) > _READ_SIZE:
        transport.max_size = _READ_SIZE  # type: ignore[attr-defined]


class Pongs:
    """Whether the client has answered the last ping (``answered``), one flag per socket.

    Set by whoever sees the pong: the parser, through :func:`websocket_response`,
    or the socket's read loop where that could not be arranged.
    """

    __slots__ = ("answered",)

    def __init__(self) -> None:
        self.answered = True


def _pong_parts() -> tuple[type[Any], Callable[..., Any], dict[str, bool]] | None:
    """aiohttp's websocket message queue with pongs taken out as they are parsed,
    the parser that feeds it, and the keyword arguments the parser takes.

    ``None`` when aiohttp's layout is not the one this module knows: the
    pongs then reach the read loop, as any other frame does.
    """
    try:
        from aiohttp._websocket import reader_py
        from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
        from aiohttp.web_protocol import RequestHandler
    except ImportError:
        return None
    slots = set(getattr(RequestHandler, "__slots__", ()))
    if not {"_message_tail", "_payload_parser"} <= slots:
        return None
    try:
        # The compiled reader is built from this source and has no signature.
        reader_params = list(inspect.signature(reader_py.WebSocketReader).parameters)
    except (TypeError, ValueError):
        return None
    if reader_params[:3] != ["queue", "max_msg_size", "compress"]:
        return None
    # aiohttp 3.14 decodes text in the parser unless told not to (and
    # WebSocketResponse then has _decode_text, True unless told otherwise).
    extra = {"decode_text": True} if "decode_text" in reader_params else {}
    pong = WSMsgType.PONG
    feed = WebSocketDataQueue.feed_data

    class PongQueue(WebSocketDataQueue):
        # aiohttp's parser calls feed_data with each message it completes.
        # A pong is noted here and not queued: the read loop's task is not
        # woken for it (a task step per idle socket and heartbeat).
        __slots__ = ("answered",)

        def feed_data(self, data: Any, size: int) -> None:
            if data[0] is pong:
                self.answered = True
                return
            feed(self, data, size)

    return PongQueue, WebSocketReader, extra


_PONG_PARTS: Final = _pong_parts()
#: Whether pongs are noted by the parser (:func:`websocket_response`); True
#: on every aiohttp version pyproject allows.
PONGS_SUPPORTED: Final = _PONG_PARTS is not None
#: aiohttp's own size for the queue (``DEFAULT_CHUNK_SIZE``, 2**16 on every
#: supported version).
_QUEUE_LIMIT: Final = 2**16
#: aiohttp 3.14's response holds its parser too.
_KEEPS_PARSER: Final = hasattr(web.WebSocketResponse, "_parser")


class _PingingResponse(web.WebSocketResponse):
    """A server websocket whose pongs are noted by its parser (:attr:`pongs`)."""

    #: The parser's queue, which has the :class:`Pongs` flag; None until
    #: prepared, or if the parser kept aiohttp's queue.
    pongs: Any = None

    def _post_start(self, request: Any, protocol: Any, writer: Any) -> None:
        handler = request.protocol
        # Frames that came with the upgrade request are fed to aiohttp's
        # parser and queue in super()._post_start(); those are then kept.
        early = handler._message_tail
        super()._post_start(request, protocol, writer)
        parts = _PONG_PARTS
        if early or parts is None:
            return
        queue_class, reader_class, extra = parts
        queue = queue_class(handler, _QUEUE_LIMIT, loop=self._loop)
        queue.answered = True
        parser = reader_class(queue, self._max_msg_size, compress=bool(self._compress), **extra)
        # No data can have reached aiohttp's parser since super() set it:
        # nothing has run in between.
        self._reader = queue
        if _KEEPS_PARSER:
            self._parser = parser
        handler._payload_parser = parser
        self.pongs = queue


def websocket_response(pings: bool, **options: Any) -> web.WebSocketResponse:
    """A server ``WebSocketResponse``; with ``pings``, one whose pongs :func:`pongs` reports.

    ``autoping`` is off with ``pings``: the read loop answers the client's
    pings itself.
    """
    if pings and PONGS_SUPPORTED:
        return _PingingResponse(autoping=False, **options)
    if pings:
        return web.WebSocketResponse(autoping=False, **options)
    return web.WebSocketResponse(**options)


def pongs(ws: web.WebSocketResponse) -> Pongs:
    """The flag the pongs of ``ws`` set (after ``prepare()``).

    The parser's (see :func:`websocket_response`), or a fresh :class:`Pongs`
    for the read loop to set when the parser's could not be arranged.
    """
    found = getattr(ws, "pongs", None)
    return found if found is not None else Pongs()


async def start_close(ws: web.WebSocketResponse, code: int, message: bytes, timeout: float) -> None:
    """Send the close frame and leave the connection open for the client's (RFC 6455 7.1.1).

    ``WebSocketResponse.close()`` closes the TCP connection as soon as its
    frame is sent when another task is reading the socket, which is always
    the case here (the transport's read loop). Instead, the socket is marked
    closed (nothing more is written, and ``receive()`` hands the client's
    close frame to the read loop rather than answering it), and the TCP
    connection is closed after ``timeout`` seconds if the client has not
    answered by then; the read loop ends with the client's close frame, or
    reads it with :func:`await_close`.
    """
    writer = ws._writer
    if writer is None or ws.closed:
        return
    ws._set_closed()
    transport = writer.transport
    try:
        await writer.close(code, message)
    except (ConnectionError, RuntimeError, OSError):
        transport.close()
        return
    asyncio.get_running_loop().call_later(timeout, transport.close)


def close_answered(ws: web.WebSocketResponse) -> bool:
    """Whether the client's close frame has been read (or the connection is gone)."""
    writer = ws._writer
    return ws._closing or writer is None or writer.transport.is_closing()


async def await_close(ws: web.WebSocketResponse) -> None:
    """Read and drop the client's frames until its close frame, after :func:`start_close`.

    For a read loop that saw the socket marked closed before the client
    answered. Returns at the close frame, or when the connection ends (by
    :func:`start_close`'s timer at the latest).
    """
    reader = ws._reader
    if reader is None:
        return
    while not close_answered(ws):
        try:
            msg = await reader.read()
        except Exception:
            return
        if msg.type is WSMsgType.CLOSE:
            ws._set_closing(msg.data)
            break
    transport = ws._req.transport if ws._req is not None else None
    if transport is not None:
        transport.close()


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
