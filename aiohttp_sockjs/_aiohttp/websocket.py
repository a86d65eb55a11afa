"""The server websocket's handshake, pongs and close handshake, as aiohttp keeps them.

Part of :mod:`aiohttp_sockjs._aiohttp` (the one place that reaches past
aiohttp's public API): ``server_no_context_takeover`` added to the
handshake (:func:`no_server_takeover`); a pong noted where aiohttp parses
it (:func:`websocket_response`, :func:`pongs`), so that an idle socket's
pong does not wake its read loop; and the close handshake
(:func:`start_close`, :func:`await_close`), since
``WebSocketResponse.close()`` closes TCP without waiting for the client's
close frame when another task reads the socket.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any, Final

from aiohttp import WSMsgType, hdrs, web


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


class Pongs:
    """Whether the client has answered the last ping (``answered``), one flag per socket.

    Lowered by :meth:`ping_sent`; raised by whoever sees the pong: the
    parser, through :func:`websocket_response` (whose queue has this
    interface), or the socket's read loop where that could not be arranged.
    """

    __slots__ = ("answered",)

    def __init__(self) -> None:
        self.answered = True

    def ping_sent(self) -> None:
        """A ping went out: unanswered until its pong."""
        self.answered = False

    def pong_seen(self) -> None:
        """The read loop saw a pong."""
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

    # The queue's class is its flag (the Pongs interface). Answered, it is
    # aiohttp's queue as it is: a subclass that overrides nothing, so the
    # parser calls aiohttp's own feed_data. From a ping to its pong it is
    # Awaiting, whose feed_data (a Python call per message the parser
    # completes) notes the pong and does not queue it, so the read loop's
    # task is not woken for it (a task step per idle socket and heartbeat);
    # the class then goes back. A socket pays that call only for what its
    # client sends while a ping is out, not for every message. The classes
    # have the same layout, so __class__ may be assigned between them.

    class PongQueue(WebSocketDataQueue):
        __slots__ = ()
        answered: bool

        def ping_sent(self) -> None:
            self.__class__ = Awaiting

        def pong_seen(self) -> None:
            # A pong the parser let through: one that came while none was
            # awaited (the read loop reports it).
            self.__class__ = Answered

    class Answered(PongQueue):
        __slots__ = ()
        answered = True

    class Awaiting(PongQueue):
        __slots__ = ()
        answered = False

        def feed_data(self, data: Any, size: int) -> None:
            if data[0] is pong:
                self.__class__ = Answered  # type: ignore[assignment]
                return
            feed(self, data, size)

    return Answered, WebSocketReader, extra


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
