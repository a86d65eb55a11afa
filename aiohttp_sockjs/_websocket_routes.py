"""The websocket routes of an endpoint: SockJS-framed and raw.

The route handler is the socket's read loop: it answers the upgrade,
attaches the socket's receiver to a new session and hands the client's
messages to it until the socket ends (:class:`WebSocketRoutes`, a base of
:class:`~aiohttp_sockjs._transports.Routes`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from aiohttp import WebSocketError, WSCloseCode, WSMessage, WSMsgType, hdrs, web

from . import _aiohttp, actor, protocol
from ._receivers import RawWebSocketReceiver, WebSocketReceiver
from ._routes import RouteBase
from .protocol import PayloadError
from .session import Session

log = logging.getLogger("aiohttp_sockjs")

# Read once per websocket frame; an Enum member read off its class is a
# descriptor call on Python 3.11.
_WS_TEXT: Final = WSMsgType.TEXT
_WS_ERROR: Final = WSMsgType.ERROR
_WS_PING: Final = WSMsgType.PING
_WS_PONG: Final = WSMsgType.PONG
_TOO_BIG: Final = WSCloseCode.MESSAGE_TOO_BIG


class WebSocketRoutes(RouteBase):
    """``websocket`` and ``raw_websocket``."""

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
        inflating, metered = self._charging(ws)
        gone = False
        try:
            async for msg in ws:
                if msg.type is not _WS_TEXT:
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
                if metered:
                    charged = len(msg.data) if inflating else None
                    if not await self._metered(session, messages, size, charged):
                        continue
                    wait = actor.deliver(session, messages, size, False, charged)
                elif messages:
                    wait = actor.deliver(session, messages, size)
                else:
                    continue
                if wait is not None:
                    # The actor has yet to take them, or the inbox is full:
                    # read nothing more (TCP backpressure) until then.
                    await wait
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
            actor.detach(session, receiver, gone, ws.close_code)
        if not gone and not _aiohttp.close_answered(ws):
            # The server closed first, while this loop was not reading: the
            # client's close frame is still to come (see _aiohttp.start_close).
            await _aiohttp.await_close(ws)
        return ws

    async def _open_websocket(
        self, request: web.Request, raw: bool
    ) -> tuple[Session, WebSocketReceiver, web.WebSocketResponse] | web.StreamResponse:
        """Check the upgrade, answer it and start the session; or the refusal to send."""
        if request.headers.get(hdrs.UPGRADE, "").lower().strip() != "websocket":
            return web.Response(status=400, text='Can "Upgrade" only to "WebSocket".')
        connection = request.headers.get(hdrs.CONNECTION, "").lower()
        if "upgrade" not in [token.strip() for token in connection.split(",")]:
            return web.Response(status=400, text='"Connection" must be "Upgrade".')
        refused = self.bad_origin(request)
        if refused is None:
            refused = self.refuse_new(request)
        if refused is not None:
            return refused
        endpoint = self.endpoint
        options = endpoint.options
        compression = options.websocket_compression
        config = self.ws_config
        # Pings with the heartbeats: the parser notes the pongs, and the
        # read loop answers the client's pings itself.
        ws = _aiohttp.websocket_response(
            config.pings,
            max_msg_size=options.max_request_size,
            heartbeat=options.websocket_ping_interval or None,
            compress=compression,
        )
        await ws.prepare(_aiohttp.no_server_takeover(request) if compression else request)
        reason = self.no_room(request)
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
        self.run(session, True, receiver)
        return session, receiver, ws

    def _charging(self, ws: web.WebSocketResponse) -> tuple[bool, bool]:
        """Whether ``ws``'s frames count by their inflated size, and whether
        they are charged before delivery (:meth:`_metered`).

        With permessage-deflate, the rate limits count each frame as it was
        inflated, whitespace and all, not its messages' characters:
        inflating is what the client makes the server spend. Frames are
        charged before delivery for that, and for the per-client rate.
        """
        per_client = self.rate_clients is not None
        inflating = bool(ws.compress) and (
            per_client or self.endpoint.options.rate_limit is not None
        )
        return inflating, inflating or per_client

    async def _metered(
        self, session: Session, messages: list[str], size: int, charged: int | None
    ) -> bool:
        """Charge a frame to the per-client rate; whether its messages go on to the session.

        ``charged`` is the frame's inflated size, when that is what the
        rates count (issue 21). A frame of whitespace alone is charged to
        the client's rate, and goes on only for the session's rate limit.
        """
        if not messages and not charged:
            return False
        spent = size if charged is None else charged
        if not await self.charge_client(session, len(messages), spent):
            return False  # not delivered
        return bool(messages) or self.endpoint.options.rate_limit is not None

    async def _websocket_control(
        self, msg: WSMessage, ws: web.WebSocketResponse, receiver: WebSocketReceiver
    ) -> bool:
        """A frame that is not text: whether the read loop goes on."""
        kind = msg.type
        if kind is _WS_PONG:
            # Only where the parser could not note it (_aiohttp.websocket_response).
            receiver.pong()
            return True
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
