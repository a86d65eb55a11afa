"""The transports: thin adapters between aiohttp requests and sessions.

Each request handler here validates its request, finds or creates the
session, and either hands it client messages or attaches a
:class:`~aiohttp_sockjs.receiver.Receiver` that writes frames to the client
in the transport's framing. Session state is never touched here. What the
handlers share is :class:`~aiohttp_sockjs._routes.RouteBase`; the
websocket routes are in :mod:`aiohttp_sockjs._websocket_routes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import time
import urllib.parse
from collections.abc import Callable
from email.utils import formatdate
from typing import TYPE_CHECKING

from aiohttp import hdrs, web

from . import actor, protocol
from ._receivers import PollingReceiver, StreamingReceiver
from ._routes import (
    CACHE_YEAR,
    HTML,
    JS,
    JSON,
    NO_CACHE,
    ONE_YEAR,
    TEXT,
    WRITE_ERRORS,
    log,
)
from ._websocket_routes import WebSocketRoutes
from .protocol import PayloadError
from .session import Session, SessionState

if sys.version_info >= (3, 11):
    from asyncio import timeout_at
else:  # aiohttp installs async-timeout on Python 3.10
    from async_timeout import timeout_at

if TYPE_CHECKING:
    from .endpoint import Endpoint


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


class Routes(WebSocketRoutes):
    """The request handlers of one endpoint (the websocket routes are inherited)."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._iframe = protocol.iframe_page(endpoint.options.sockjs_url)
        self._iframe_etag = protocol.iframe_etag(self._iframe)
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

    # --- static routes ---

    async def greeting(self, request: web.Request) -> web.Response:
        return web.Response(body=protocol.GREETING, headers={hdrs.CONTENT_TYPE: TEXT})

    async def info(self, request: web.Request) -> web.Response:
        refused = self.bad_origin(request)
        if refused is not None:
            return refused
        options = self.endpoint.options
        body = protocol.info_body("websocket" in options.transports, options.cookie_needed)
        headers: dict[str, str] = {hdrs.CONTENT_TYPE: JSON, hdrs.CACHE_CONTROL: NO_CACHE}
        self.cors(request, headers)
        return web.Response(body=body, headers=headers)

    async def info_options(self, request: web.Request) -> web.Response:
        return self.bad_origin(request) or self.preflight(request, "OPTIONS, GET")

    async def iframe(self, request: web.Request) -> web.Response:
        if not self.endpoint.options.allow_iframe:
            # The page relays for any parent page, so no origin check is possible.
            return self.limit(request, 404, "Iframe transports are disabled.")
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
        return self.bad_origin(request) or self.preflight(request, "OPTIONS, POST")

    # --- receiving transports ---

    async def _poll(
        self,
        request: web.Request,
        transport: str,
        encode: Callable[[str], bytes],
        headers: dict[str, str],
    ) -> web.Response:
        refused = self.bad_origin(request)
        if refused is not None:
            return refused
        opened = self.open_session(request, transport)
        if opened is None:
            return self.refuse_new(request) or self.limit(request, 503, "Try again later.")
        session, created = opened
        receiver = PollingReceiver(request, encode)
        self.run(session, created, receiver)
        try:
            body = await receiver.result
        except asyncio.CancelledError:
            actor.detach(session, receiver, True)
            raise
        return web.Response(body=body, headers=headers)

    async def xhr(self, request: web.Request) -> web.Response:
        return await self._poll(request, "xhr", protocol.xhr_chunk, self.headers(request, JS))

    async def jsonp(self, request: web.Request) -> web.Response:
        if not self.endpoint.options.allow_jsonp:
            # A script tag sends no Origin, so any page could read the poll.
            return self.limit(request, 404, "JSONP polling is disabled.")
        try:
            callback = protocol.validate_callback(_callback(request))
        except PayloadError as exc:
            return self.error(request, 500, str(exc))
        headers = self.headers(request, JS)
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
        refused = self.bad_origin(request) or self.full(request)
        if refused is not None:
            return refused
        response = web.StreamResponse(headers=self.headers(request, framing.content_type))
        if request.version < (1, 1):
            # No chunked encoding in HTTP/1.0: the end of the body is the end
            # of the connection, even if the client asked for keep-alive.
            response.force_close()
        try:
            await response.prepare(request)
            await response.write(framing.prelude)
        except WRITE_ERRORS:
            # The client left before the stream began (an aborted request, a
            # removed iframe): nothing reached a session, there is nothing to do.
            return response
        opened = self.open_session(request, framing.transport)
        if opened is None:
            # Filled up while this response started.
            self.endpoint.count_refusal(self.no_room(request) or "too_many_sessions")
            log.info(
                "SockJS %s %s refused: no room for a new session",
                request.method,
                protocol.loggable(request.path),
            )
            with contextlib.suppress(*WRITE_ERRORS):
                await response.write(
                    framing.encode(protocol.close_frame(*protocol.CLOSE_TRY_AGAIN))
                )
            return response
        session, created = opened
        limit = self.endpoint.options.response_limit
        receiver = StreamingReceiver(request, response, framing.encode, limit)
        self.run(session, created, receiver)
        return session, receiver

    async def htmlfile(self, request: web.Request) -> web.StreamResponse:
        try:
            callback = protocol.validate_callback(_callback(request))
        except PayloadError as exc:
            return self.error(request, 500, str(exc))
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
            return self.limit(request, 413, "Payload too large.", "request_size")
        except ConnectionError:
            # The client left before its whole body came (aiohttp's
            # "Connection lost"): nothing was delivered; nobody reads this answer.
            return self.error(request, 400, "Client went away mid-body.")
        if form and request.content_type == "application/x-www-form-urlencoded":
            try:
                fields = urllib.parse.parse_qs(body.decode(), errors="strict")
            except (UnicodeDecodeError, ValueError):
                return self.error(request, 500, protocol.BROKEN_JSON)
            body = fields.get("d", [""])[0].encode()
        try:
            messages = protocol.decode_payload(body)
        except PayloadError as exc:
            return self.error(request, 500, str(exc))
        if len(messages) > endpoint.options.max_messages_per_request:
            return self.limit(request, 413, "Too many messages.", "message_count")
        limit = endpoint.options.max_message_size
        for message in messages:
            if len(message) > limit:
                return self.limit(request, 413, "Message too large.", "message_size")
        return messages

    async def _send(self, request: web.Request, form: bool) -> list[str] | web.Response:
        refused = self.bad_origin(request)
        if refused is not None:
            return refused
        session = self.endpoint.find_session(request.match_info["session_id"])
        if session is None:
            return self.error(request, 404, "Session not found.")
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
                return self.error(request, 404, "Session not found.")
            messages = await self._receive(request, form)
            if isinstance(messages, list) and messages:
                size = sum(map(len, messages))
                if self.rate_clients is not None and not await self.charge_client(
                    session, len(messages), size
                ):
                    return messages  # not delivered
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
            return self.limit(request, 503, "Session inbox full.", "inbox_full")
        finally:
            turn.waiting -= 1
        if actor.inbound_paused(session):
            try:
                async with timeout_at(deadline):
                    await actor.room(session)
            except asyncio.TimeoutError:
                turn.lock.release()
                return self.limit(request, 503, "Session inbox full.", "inbox_full")
        return None

    async def xhr_send(self, request: web.Request) -> web.Response:
        result = await self._send(request, form=False)
        if isinstance(result, web.Response):
            return result
        return web.Response(status=204, headers=self.headers(request, TEXT))

    async def jsonp_send(self, request: web.Request) -> web.Response:
        result = await self._send(request, form=True)
        if isinstance(result, web.Response):
            return result
        return web.Response(body=b"ok", headers=self.headers(request, TEXT))
