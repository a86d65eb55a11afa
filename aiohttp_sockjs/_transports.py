"""The transports: thin adapters between aiohttp requests and sessions.

Each request handler here validates its request, finds or creates the
session, and either hands it client messages or attaches a
:class:`~aiohttp_sockjs.session.Receiver` that writes frames to the client
in the transport's framing. Session state is never touched here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import sys
import time
import urllib.parse
from collections.abc import Callable
from email.utils import formatdate
from typing import TYPE_CHECKING, Final

from aiohttp import WebSocketError, WSCloseCode, WSMessage, WSMsgType, hdrs, web

from . import _aiohttp, actor, protocol
from ._receivers import (
    PollingReceiver,
    RawWebSocketReceiver,
    StreamingReceiver,
    WebSocketConfig,
    WebSocketReceiver,
)
from .clients import CLOSE_CLIENT_RATE_LIMIT
from .protocol import PayloadError
from .receiver import Receiver
from .session import Session, SessionState

if sys.version_info >= (3, 11):
    from asyncio import timeout_at
else:  # aiohttp installs async-timeout on Python 3.10
    from async_timeout import timeout_at

if TYPE_CHECKING:
    from .endpoint import Endpoint

log = logging.getLogger("aiohttp_sockjs")

NO_CACHE: Final = "no-store, no-cache, no-transform, must-revalidate, max-age=0"
CACHE_YEAR: Final = "public, max-age=31536000"
ONE_YEAR: Final = 31536000
JS: Final = "application/javascript; charset=UTF-8"
TEXT: Final = "text/plain; charset=UTF-8"
HTML: Final = "text/html; charset=UTF-8"
JSON: Final = "application/json; charset=UTF-8"
_COOKIE_VALUE_RE: Final = re.compile(r"[A-Za-z0-9._\-]{1,128}")
_WRITE_ERRORS: Final = (ConnectionError, RuntimeError, OSError)
# Read once per websocket frame; an Enum member read off its class is a
# descriptor call on Python 3.11.
_WS_TEXT: Final = WSMsgType.TEXT
_WS_ERROR: Final = WSMsgType.ERROR
_WS_PING: Final = WSMsgType.PING
_WS_PONG: Final = WSMsgType.PONG
_TOO_BIG: Final = WSCloseCode.MESSAGE_TOO_BIG
_OPEN: Final = protocol.OPEN_FRAME.encode()
_HEARTBEAT: Final = protocol.HEARTBEAT_FRAME.encode()


def _callback(request: web.BaseRequest) -> str | None:
    """The htmlfile/JSONP callback: ``c=``, or ``callback=`` as sockjs-node also takes it."""
    query = request.query
    return query.get("c", query.get("callback"))


# --- helpers ----------------------------------------------------------------


class SenderTurn:
    """One ``xhr_send``/``jsonp_send`` at a time per session, made with the first.

    ``waiting`` counts the requests queued for the lock: while there are
    any, a newcomer queues behind them (with its timeout) rather than
    taking a lock that was just released to one of them.
    """

    __slots__ = ("lock", "waiting")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.waiting = 0


class _Framing:
    """What a streaming transport writes: its name, content type, prelude and frames."""

    __slots__ = ("content_type", "encode", "prelude", "transport")

    def __init__(
        self, transport: str, content_type: str, prelude: bytes, encode: Callable[[str], bytes]
    ) -> None:
        self.transport = transport
        self.content_type = content_type
        self.prelude = prelude
        self.encode = encode


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: web.Request, limit: int) -> bytes:
    """Read the request body ourselves, capped at ``limit`` bytes.

    aiohttp's own ``client_max_size`` (1 MiB by default) would turn large
    SockJS messages into errors the app never chose; the endpoint's
    ``max_request_size`` is the cap instead.
    """
    length = request.content_length
    if length is not None and length > limit:
        raise _BodyTooLarge
    content = request.content
    chunk = await content.readany()
    if content.at_eof() and len(chunk) <= limit:
        return chunk  # the whole body in one piece: most requests
    body = bytearray(chunk)
    while True:
        if len(body) > limit:
            raise _BodyTooLarge
        chunk = await content.readany()
        if not chunk:
            return bytes(body)
        body += chunk


class Routes:
    """The request handlers of one endpoint."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._builtin_cors = endpoint.options.cors_config is None
        self._iframe = protocol.iframe_page(endpoint.options.sockjs_url)
        self._iframe_etag = protocol.iframe_etag(self._iframe)
        options = endpoint.options
        self._ws_config = WebSocketConfig(
            options.websocket_compression_threshold,
            options.websocket_ping_interval is None,
            options.websocket_close_timeout,
        )
        # The xhr_streaming and eventsource route handlers are _stream itself
        # with the transport's framing bound, not coroutines awaiting it:
        # the handler's frame lives as long as the stream, so a wrapper
        # would cost one more coroutine for every streaming session.
        self.xhr_streaming = functools.partial(
            self._stream,
            _Framing("xhr_streaming", JS, protocol.XHR_STREAMING_PRELUDE, protocol.xhr_chunk),
        )
        self.eventsource = functools.partial(
            self._stream,
            _Framing(
                "eventsource",
                "text/event-stream",
                protocol.EVENTSOURCE_PRELUDE,
                protocol.eventsource_chunk,
            ),
        )

    # --- headers ---

    def _cors(self, request: web.Request, headers: dict[str, str]) -> None:
        # The answer depends on Origin, whoever writes the CORS headers: a
        # shared cache must not hand it to another origin.
        headers[hdrs.VARY] = hdrs.ORIGIN
        if not self._builtin_cors:
            return
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None:
            headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = "*"
        else:
            headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"

    def _headers(self, request: web.Request, content_type: str) -> dict[str, str]:
        headers: dict[str, str] = {
            hdrs.CONTENT_TYPE: content_type,
            hdrs.CACHE_CONTROL: NO_CACHE,
        }
        self._cookie(request, headers)
        self._cors(request, headers)
        return headers

    def _cookie(self, request: web.Request, headers: dict[str, str]) -> None:
        if self.endpoint.options.cookie_needed:
            value = request.cookies.get("JSESSIONID", "dummy")
            if _COOKIE_VALUE_RE.fullmatch(value) is None:
                value = "dummy"
            headers[hdrs.SET_COOKIE] = f"JSESSIONID={value}; Path=/"

    def _error(
        self, request: web.Request, status: int, text: str, level: int = logging.DEBUG
    ) -> web.Response:
        """The protocol's error answer, logged as one line without a traceback."""
        path = protocol.loggable(request.path)
        log.log(level, "SockJS %s %s: %d %s", request.method, path, status, text)
        return web.Response(status=status, body=text.encode(), headers=self._headers(request, TEXT))

    def _limit(
        self, request: web.Request, status: int, text: str, reason: str | None = None
    ) -> web.Response:
        """Refuse a request over one of the endpoint's caps (logged at INFO).

        ``reason``, one of :data:`~aiohttp_sockjs.stats.REFUSAL_REASONS`, is
        counted in the endpoint's stats.
        """
        if reason is not None:
            self.endpoint.count_refusal(reason)
        return self._error(request, status, text, logging.INFO)

    def _bad_origin(self, request: web.Request) -> web.Response | None:
        """A 403 (without CORS headers) if the request's origin is not allowed."""
        policy = self.endpoint.options.origins
        if policy is None:
            return None
        origin = request.headers.get(hdrs.ORIGIN)
        # No Origin header: not a cross-origin browser request.
        if origin is None or policy.allows(origin):
            return None
        self.endpoint.count_refusal("origin")
        log.info(
            "SockJS %s %s refused: origin %s",
            request.method,
            protocol.loggable(request.path),
            protocol.loggable(origin),
        )
        return web.Response(
            status=403,
            body=b"Origin not allowed.",
            headers={hdrs.CONTENT_TYPE: TEXT, hdrs.CACHE_CONTROL: NO_CACHE, hdrs.VARY: hdrs.ORIGIN},
        )

    def _full(self, request: web.Request) -> web.Response | None:
        """A 503 if a new session would go over ``max_sessions`` or the endpoint is closing."""
        endpoint = self.endpoint
        if endpoint.find_session(request.match_info["session_id"]) is not None:
            return None
        return self._refuse_new(request)

    def _refuse_new(self, request: web.Request) -> web.Response | None:
        endpoint = self.endpoint
        if endpoint.closing:
            return self._limit(request, 503, "Shutting down.", "shutting_down")
        if endpoint.full():
            return self._limit(
                request, 503, "Too many sessions; try again later.", "too_many_sessions"
            )
        if endpoint.clients is not None and endpoint.clients.refuses(request):
            return self._limit(
                request, 503, "Too many sessions from this client.", "too_many_client_sessions"
            )
        return None

    def _no_room(self, request: web.Request) -> str | None:
        """Why a new session cannot be made now (a refusal reason), or ``None``."""
        endpoint = self.endpoint
        if endpoint.closing:
            return "shutting_down"
        if endpoint.full():
            return "too_many_sessions"
        if endpoint.clients is not None and endpoint.clients.refuses(request):
            return "too_many_client_sessions"
        return None

    def _preflight(self, request: web.Request, methods: str) -> web.Response:
        headers: dict[str, str] = {
            hdrs.CACHE_CONTROL: CACHE_YEAR,
            hdrs.EXPIRES: formatdate(time.time() + ONE_YEAR, usegmt=True),
            hdrs.ACCESS_CONTROL_MAX_AGE: str(ONE_YEAR),
            hdrs.ACCESS_CONTROL_ALLOW_METHODS: methods,
        }
        requested = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
        if requested:
            headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = requested
        self._cookie(request, headers)
        self._cors(request, headers)
        return web.Response(status=204, headers=headers)

    # --- static routes ---

    async def greeting(self, request: web.Request) -> web.Response:
        return web.Response(body=protocol.GREETING, headers={hdrs.CONTENT_TYPE: TEXT})

    async def info(self, request: web.Request) -> web.Response:
        refused = self._bad_origin(request)
        if refused is not None:
            return refused
        options = self.endpoint.options
        body = protocol.info_body("websocket" in options.transports, options.cookie_needed)
        headers: dict[str, str] = {hdrs.CONTENT_TYPE: JSON, hdrs.CACHE_CONTROL: NO_CACHE}
        self._cors(request, headers)
        return web.Response(body=body, headers=headers)

    async def info_options(self, request: web.Request) -> web.Response:
        return self._bad_origin(request) or self._preflight(request, "OPTIONS, GET")

    async def iframe(self, request: web.Request) -> web.Response:
        if not self.endpoint.options.allow_iframe:
            # The page relays for any parent page, so no origin check is possible.
            return self._limit(request, 404, "Iframe transports are disabled.")
        headers: dict[str, str] = {
            hdrs.CACHE_CONTROL: CACHE_YEAR,
            hdrs.EXPIRES: formatdate(time.time() + ONE_YEAR, usegmt=True),
            hdrs.ETAG: self._iframe_etag,
        }
        wanted = request.headers.get(hdrs.IF_NONE_MATCH)
        if wanted is not None:
            tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
            if "*" in tags or self._iframe_etag in tags:
                return web.Response(status=304, headers=headers)
        headers[hdrs.CONTENT_TYPE] = HTML
        return web.Response(body=self._iframe, headers=headers)

    async def xhr_options(self, request: web.Request) -> web.Response:
        return self._bad_origin(request) or self._preflight(request, "OPTIONS, POST")

    # --- receiving transports ---

    def _open(self, request: web.Request, transport: str) -> tuple[Session, bool] | None:
        """Find or create the session; ``None`` if that would exceed ``max_sessions``."""
        endpoint = self.endpoint
        session_id = request.match_info["session_id"]
        session = endpoint.find_session(session_id)
        if session is not None:
            return session, False
        if self._no_room(request) is not None:
            return None
        return endpoint.create_session(session_id, request, transport), True

    def _run(self, session: Session, created: bool, receiver: Receiver) -> None:
        actor.attach(session, receiver)
        if created:
            self.endpoint.start_session(session)

    async def _poll(
        self,
        request: web.Request,
        transport: str,
        encode: Callable[[str], bytes],
        headers: dict[str, str],
    ) -> web.Response:
        refused = self._bad_origin(request)
        if refused is not None:
            return refused
        opened = self._open(request, transport)
        if opened is None:
            return self._refuse_new(request) or self._limit(request, 503, "Try again later.")
        session, created = opened
        receiver = PollingReceiver(request, encode)
        self._run(session, created, receiver)
        try:
            body = await receiver.result
        except asyncio.CancelledError:
            actor.detach(session, receiver, True)
            raise
        return web.Response(body=body, headers=headers)

    async def xhr(self, request: web.Request) -> web.Response:
        return await self._poll(request, "xhr", protocol.xhr_chunk, self._headers(request, JS))

    async def jsonp(self, request: web.Request) -> web.Response:
        if not self.endpoint.options.allow_jsonp:
            # A script tag sends no Origin, so any page could read the poll.
            return self._limit(request, 404, "JSONP polling is disabled.")
        try:
            callback = protocol.validate_callback(_callback(request))
        except PayloadError as exc:
            return self._error(request, 500, str(exc))
        headers = self._headers(request, JS)
        headers["X-Content-Type-Options"] = "nosniff"

        def encode(frame: str) -> bytes:
            return protocol.jsonp_body(callback, frame)

        return await self._poll(request, "jsonp", encode, headers)

    async def _stream(self, framing: _Framing, request: web.Request) -> web.StreamResponse:
        # This coroutine lives as long as the stream and its frame holds a
        # slot for each of its locals: the start, with most of them, is
        # awaited in a coroutine of its own that is gone once it returns.
        begun = await self._begin_stream(framing, request)
        if isinstance(begun, web.StreamResponse):
            return begun
        session, receiver = begun
        del begun  # the tuple would live as long as the stream
        try:
            await receiver.done
        except asyncio.CancelledError:
            actor.detach(session, receiver, True)
            raise
        return receiver.response

    async def _begin_stream(
        self, framing: _Framing, request: web.Request
    ) -> tuple[Session, StreamingReceiver] | web.StreamResponse:
        """Start the stream and attach its receiver, or the response to end with at once."""
        refused = self._bad_origin(request) or self._full(request)
        if refused is not None:
            return refused
        response = web.StreamResponse(headers=self._headers(request, framing.content_type))
        if request.version < (1, 1):
            # No chunked encoding in HTTP/1.0: the end of the body is the end
            # of the connection, even if the client asked for keep-alive.
            response.force_close()
        try:
            await response.prepare(request)
            await response.write(framing.prelude)
        except _WRITE_ERRORS:
            # The client left before the stream began (an aborted request, a
            # removed iframe): nothing reached a session, there is nothing to do.
            return response
        opened = self._open(request, framing.transport)
        if opened is None:
            # Filled up while this response started.
            self.endpoint.count_refusal(self._no_room(request) or "too_many_sessions")
            log.info(
                "SockJS %s %s refused: no room for a new session",
                request.method,
                protocol.loggable(request.path),
            )
            with contextlib.suppress(*_WRITE_ERRORS):
                await response.write(
                    framing.encode(protocol.close_frame(*protocol.CLOSE_TRY_AGAIN))
                )
            return response
        session, created = opened
        limit = self.endpoint.options.response_limit
        receiver = StreamingReceiver(request, response, framing.encode, limit)
        self._run(session, created, receiver)
        return session, receiver

    async def htmlfile(self, request: web.Request) -> web.StreamResponse:
        try:
            callback = protocol.validate_callback(_callback(request))
        except PayloadError as exc:
            return self._error(request, 500, str(exc))
        framing = _Framing(
            "htmlfile", HTML, protocol.htmlfile_prelude(callback), protocol.htmlfile_chunk
        )
        return await self._stream(framing, request)

    # --- sending transports ---

    async def _receive(self, request: web.Request, form: bool) -> list[str] | web.Response:
        endpoint = self.endpoint
        try:
            body = await _read_body(request, endpoint.options.max_request_size)
        except _BodyTooLarge:
            return self._limit(request, 413, "Payload too large.", "request_size")
        except ConnectionError:
            # The client left before its whole body came (aiohttp's
            # "Connection lost"): nothing was delivered; nobody reads this answer.
            return self._error(request, 400, "Client went away mid-body.")
        if form and request.content_type == "application/x-www-form-urlencoded":
            try:
                fields = urllib.parse.parse_qs(body.decode(), errors="strict")
            except (UnicodeDecodeError, ValueError):
                return self._error(request, 500, protocol.BROKEN_JSON)
            body = fields.get("d", [""])[0].encode()
        try:
            messages = protocol.decode_payload(body)
        except PayloadError as exc:
            return self._error(request, 500, str(exc))
        if len(messages) > endpoint.options.max_messages_per_request:
            return self._limit(request, 413, "Too many messages.", "message_count")
        limit = endpoint.options.max_message_size
        for message in messages:
            if len(message) > limit:
                return self._limit(request, 413, "Message too large.", "message_size")
        return messages

    async def _send(self, request: web.Request, form: bool) -> list[str] | web.Response:
        refused = self._bad_origin(request)
        if refused is not None:
            return refused
        session = self.endpoint.find_session(request.match_info["session_id"])
        if session is None:
            return self._error(request, 404, "Session not found.")
        # For this keep-alive connection's next requests.
        _aiohttp.small_reads(request.transport)
        # One sender at a time per session, and none reads its body before
        # the application's inbox has room: waiting requests hold no body.
        # inbound_timeout bounds the whole wait, for the turn included, so
        # that requests queued behind each other are not refused one
        # timeout after another.
        turn = actor.sender_turn(session)
        if turn is None:
            turn = SenderTurn()
            actor.set_sender_turn(session, turn)
        lock = turn.lock
        if lock.locked() or turn.waiting or actor.inbound_paused(session):
            refused = await self._wait_turn(request, session, turn)
            if refused is not None:
                return refused
        else:
            # Free, nobody queued, room in the inbox: taken at once, with no
            # timer to arm and cancel (the common case, once per request).
            await lock.acquire()
        try:
            if session.state is SessionState.CLOSED:
                # It expired while this request waited: its messages would be lost.
                return self._error(request, 404, "Session not found.")
            messages = await self._receive(request, form)
            clients = self.endpoint.clients
            if isinstance(messages, list) and messages:
                size = sum(map(len, messages))
                if clients is not None and not clients.admit(session, len(messages), size):
                    await self._over_client_rate(session)  # issue 21: not delivered
                    return messages
                processed = actor.deliver(session, messages, size, wait=True)
                if processed is not None:
                    await processed
        finally:
            lock.release()
        return messages

    async def _wait_turn(
        self, request: web.Request, session: Session, turn: SenderTurn
    ) -> web.Response | None:
        """Wait for the session's sender turn and inbox room, within ``inbound_timeout``.

        Returns ``None`` holding the turn, or the 503 answer holding nothing.
        """
        deadline = asyncio.get_running_loop().time() + self.endpoint.options.inbound_timeout
        # A timeout scope, not wait_for(): 3.11's wait_for makes a task.
        turn.waiting += 1
        try:
            async with timeout_at(deadline):
                await turn.lock.acquire()
        except asyncio.TimeoutError:
            return self._limit(request, 503, "Session inbox full.", "inbox_full")
        finally:
            turn.waiting -= 1
        if actor.inbound_paused(session):
            try:
                async with timeout_at(deadline):
                    await actor.room(session)
            except asyncio.TimeoutError:
                turn.lock.release()
                return self._limit(request, 503, "Session inbox full.", "inbox_full")
        return None

    async def xhr_send(self, request: web.Request) -> web.Response:
        result = await self._send(request, form=False)
        if isinstance(result, web.Response):
            return result
        return web.Response(status=204, headers=self._headers(request, TEXT))

    async def jsonp_send(self, request: web.Request) -> web.Response:
        result = await self._send(request, form=True)
        if isinstance(result, web.Response):
            return result
        return web.Response(body=b"ok", headers=self._headers(request, TEXT))

    # --- websockets ---

    async def raw_websocket(self, request: web.Request) -> web.StreamResponse:
        return await self.websocket(request, raw=True)

    async def websocket(self, request: web.Request, raw: bool = False) -> web.StreamResponse:
        # The route's handler itself, not a wrapper around a helper: its frame
        # lives as long as the socket, so one frame less per session. The
        # helpers it calls return before the read loop starts, or per frame.
        opened = await self._open_websocket(request, raw)
        if not isinstance(opened, tuple):
            return opened
        session, receiver, ws = opened
        options = self.endpoint.options
        count_limit = options.max_messages_per_request
        limit = options.max_message_size
        # Per-client rate (issue 21): None unless client_rate_limit is set.
        clients = self.endpoint.clients if options.client_rate_limit else None
        # With permessage-deflate, the rate limits count each frame as it
        # was inflated, whitespace and all, not its messages' characters:
        # inflating is what the client makes the server spend.
        inflating = bool(ws.compress) and (clients is not None or options.rate_limit is not None)
        gone = False
        try:
            async for msg in ws:
                if msg.type is not _WS_TEXT:
                    if msg.type is _WS_PONG:
                        # Only where the parser could not note it
                        # (_aiohttp.websocket_response).
                        receiver.pong()
                        continue
                    if await self._websocket_control(msg, ws, receiver):
                        continue
                    break
                try:
                    messages = [msg.data] if raw else protocol.decode_websocket_payload(msg.data)
                except PayloadError:
                    log.debug("SockJS websocket: broken JSON, dropping the socket")
                    await ws.close(code=1002, message=b"Broken JSON encoding.")
                    break
                size = sum(map(len, messages))
                if len(messages) > count_limit or size > limit:
                    refused = self._oversized_frame(messages, size)
                    if refused is not None:
                        await ws.close(code=1009, message=refused)
                        break
                charged = len(msg.data) if inflating else None
                if messages or charged:
                    spent = size if charged is None else charged
                    if clients is not None and not clients.admit(session, len(messages), spent):
                        await self._over_client_rate(session)  # not delivered
                        continue
                    if not messages and options.rate_limit is None:
                        continue  # charged to the client's rate only
                    processed = actor.deliver(session, messages, size, charged=charged)
                    if processed is not None:
                        await processed
                    if actor.inbound_paused(session):
                        # The inbox is full: read nothing more (TCP
                        # backpressure) until the application takes some.
                        await actor.room(session)
        except ConnectionError:
            # The client went away while aiohttp answered one of its pings:
            # receive() raises the pong's failed write.
            gone = True
            log.debug("SockJS websocket: the client went away")
        except asyncio.CancelledError:
            # aiohttp's handler_cancellation: the client went away. (On
            # shutdown the session is closed with 1001 first.)
            gone = True
            raise
        finally:
            actor.detach(session, receiver, gone or ws.close_code not in (None, 1000, 1001))
        if not gone and not _aiohttp.close_answered(ws):
            # The server closed first, while this loop was not reading: the
            # client's close frame is still to come (see _aiohttp.start_close).
            await _aiohttp.await_close(ws)
        return ws

    async def _over_client_rate(self, session: Session) -> None:
        """Close ``session``: its client went over ``client_rate_limit`` (issue 21)."""
        if session.closed:
            return
        self.endpoint.count_refusal("client_rate_limit")
        log.info(
            "SockJS session %s: its client is over client_rate_limit; closing it",
            protocol.loggable(actor.session_id(session) or session.transport),
        )
        await session.close(*CLOSE_CLIENT_RATE_LIMIT)

    async def _open_websocket(
        self, request: web.Request, raw: bool
    ) -> tuple[Session, WebSocketReceiver, web.WebSocketResponse] | web.StreamResponse:
        """Check the upgrade, answer it and start the session; or the refusal to send."""
        if request.headers.get(hdrs.UPGRADE, "").lower().strip() != "websocket":
            return web.Response(status=400, text='Can "Upgrade" only to "WebSocket".')
        connection = request.headers.get(hdrs.CONNECTION, "").lower()
        if "upgrade" not in [token.strip() for token in connection.split(",")]:
            return web.Response(status=400, text='"Connection" must be "Upgrade".')
        refused = self._bad_origin(request)
        if refused is None:
            refused = self._refuse_new(request)
        if refused is not None:
            return refused
        endpoint = self.endpoint
        options = endpoint.options
        compression = options.websocket_compression
        config = self._ws_config
        # Pings with the heartbeats: the parser notes the pongs, and the
        # read loop answers the client's pings itself.
        ws = _aiohttp.websocket_response(
            config.pings,
            max_msg_size=options.max_request_size,
            heartbeat=options.websocket_ping_interval or None,
            compress=compression,
        )
        await ws.prepare(_aiohttp.no_server_takeover(request) if compression else request)
        _aiohttp.small_reads(request.transport)
        reason = self._no_room(request)
        if reason is not None:
            # Filled up (or began shutting down) during the handshake.
            endpoint.count_refusal(reason)
            log.info("SockJS websocket refused: no room for a new session")
            await ws.close(code=protocol.CLOSE_TRY_AGAIN[0], message=b"Try again later")
            return ws
        if raw:
            session = endpoint.create_session(
                None, request, "raw_websocket", websocket=True, raw=True
            )
            receiver: WebSocketReceiver = RawWebSocketReceiver(request, ws, config)
        else:
            session = endpoint.create_session(
                request.match_info["session_id"], request, "websocket", websocket=True
            )
            receiver = WebSocketReceiver(request, ws, config)
        self._run(session, True, receiver)
        return session, receiver, ws

    async def _websocket_control(
        self, msg: WSMessage, ws: web.WebSocketResponse, receiver: WebSocketReceiver
    ) -> bool:
        """A frame that is not text nor a pong: whether the read loop goes on."""
        kind = msg.type
        if kind is _WS_PING:
            await ws.pong(msg.data)
            return True
        if kind is _WS_ERROR:
            # aiohttp closed the socket already (e.g. 1009 for a frame over
            # max_request_size).
            error = msg.data
            if isinstance(error, WebSocketError) and error.code == _TOO_BIG:
                self.endpoint.count_refusal("request_size")
            log.info("SockJS websocket closed: %s", protocol.loggable(msg.data))
            return False
        # Binary frames are not part of the protocol.
        await ws.close(code=1003, message=b"Text frames only")
        return False

    def _oversized_frame(self, messages: list[str], size: int) -> bytes | None:
        """Why a frame of ``messages`` (``size`` characters) is refused (1009), if it is."""
        options = self.endpoint.options
        if len(messages) > options.max_messages_per_request:
            self.endpoint.count_refusal("message_count")
            log.info("SockJS websocket closed: 1009 too many messages in a frame")
            return b"Too many messages"
        # Only a frame over the limit in all can hold a message over it.
        if max(map(len, messages)) > options.max_message_size:
            self.endpoint.count_refusal("message_size")
            log.info("SockJS websocket closed: 1009 message too big")
            return b"Message too big"
        return None
