"""What every route handler of an endpoint shares: headers, refusals, opening sessions.

:class:`RouteBase` is the base of the endpoint's request handlers
(:class:`~aiohttp_sockjs._transports.Routes`, whose websocket routes are in
:mod:`aiohttp_sockjs._websocket_routes`): the protocol's headers and error
answers, the origin check and the refusals of a new session, and finding
or creating the session a request belongs to.
"""

from __future__ import annotations

import logging
import re
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Final

from aiohttp import hdrs, web

from . import actor, protocol
from ._receivers import WebSocketConfig
from .clients import CLOSE_CLIENT_RATE_LIMIT
from .receiver import Receiver
from .session import Session

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
WRITE_ERRORS: Final = (ConnectionError, RuntimeError, OSError)
_COOKIE_VALUE_RE: Final = re.compile(r"[A-Za-z0-9._\-]{1,128}")


class RouteBase:
    """The endpoint and what its request handlers share."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.builtin_cors = endpoint.options.cors_config is None
        options = endpoint.options
        self.ws_config = WebSocketConfig(
            options.websocket_compression_threshold,
            options.websocket_ping_interval is None,
            options.websocket_close_timeout,
        )
        #: The clients whose shared rate a client message is charged to
        #: (``client_rate_limit``, issue 21); None without that option.
        self.rate_clients = endpoint.clients if options.client_rate_limit else None

    # --- headers ---

    def cors(self, request: web.Request, headers: dict[str, str]) -> None:
        # The answer depends on Origin, whoever writes the CORS headers: a
        # shared cache must not hand it to another origin.
        headers[hdrs.VARY] = hdrs.ORIGIN
        if not self.builtin_cors:
            return
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None:
            headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = "*"
        else:
            headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"

    def headers(self, request: web.Request, content_type: str) -> dict[str, str]:
        headers: dict[str, str] = {
            hdrs.CONTENT_TYPE: content_type,
            hdrs.CACHE_CONTROL: NO_CACHE,
        }
        self.cookie(request, headers)
        self.cors(request, headers)
        return headers

    def cookie(self, request: web.Request, headers: dict[str, str]) -> None:
        if self.endpoint.options.cookie_needed:
            value = request.cookies.get("JSESSIONID", "dummy")
            if _COOKIE_VALUE_RE.fullmatch(value) is None:
                value = "dummy"
            headers[hdrs.SET_COOKIE] = f"JSESSIONID={value}; Path=/"

    def error(
        self, request: web.Request, status: int, text: str, level: int = logging.DEBUG
    ) -> web.Response:
        """The protocol's error answer, logged as one line without a traceback."""
        path = protocol.loggable(request.path)
        log.log(level, "SockJS %s %s: %d %s", request.method, path, status, text)
        return web.Response(status=status, body=text.encode(), headers=self.headers(request, TEXT))

    def limit(
        self, request: web.Request, status: int, text: str, reason: str | None = None
    ) -> web.Response:
        """Refuse a request over one of the endpoint's caps (logged at INFO).

        ``reason``, one of :data:`~aiohttp_sockjs.stats.REFUSAL_REASONS`, is
        counted in the endpoint's stats.
        """
        if reason is not None:
            self.endpoint.count_refusal(reason)
        return self.error(request, status, text, logging.INFO)

    def bad_origin(self, request: web.Request) -> web.Response | None:
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

    def full(self, request: web.Request) -> web.Response | None:
        """A 503 if a new session would go over ``max_sessions`` or the endpoint is closing."""
        endpoint = self.endpoint
        if endpoint.find_session(request.match_info["session_id"]) is not None:
            return None
        return self.refuse_new(request)

    def refuse_new(self, request: web.Request) -> web.Response | None:
        endpoint = self.endpoint
        if endpoint.closing:
            return self.limit(request, 503, "Shutting down.", "shutting_down")
        if endpoint.full():
            return self.limit(
                request, 503, "Too many sessions; try again later.", "too_many_sessions"
            )
        if endpoint.clients is not None and endpoint.clients.refuses(request):
            return self.limit(
                request, 503, "Too many sessions from this client.", "too_many_client_sessions"
            )
        return None

    def no_room(self, request: web.Request) -> str | None:
        """Why a new session cannot be made now (a refusal reason), or ``None``."""
        endpoint = self.endpoint
        if endpoint.closing:
            return "shutting_down"
        if endpoint.full():
            return "too_many_sessions"
        if endpoint.clients is not None and endpoint.clients.refuses(request):
            return "too_many_client_sessions"
        return None

    def preflight(self, request: web.Request, methods: str) -> web.Response:
        headers: dict[str, str] = {
            hdrs.CACHE_CONTROL: CACHE_YEAR,
            hdrs.EXPIRES: formatdate(time.time() + ONE_YEAR, usegmt=True),
            hdrs.ACCESS_CONTROL_MAX_AGE: str(ONE_YEAR),
            hdrs.ACCESS_CONTROL_ALLOW_METHODS: methods,
        }
        requested = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
        if requested:
            headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = requested
        self.cookie(request, headers)
        self.cors(request, headers)
        return web.Response(status=204, headers=headers)

    # --- sessions ---

    def open_session(self, request: web.Request, transport: str) -> tuple[Session, bool] | None:
        """Find or create the session; ``None`` if that would exceed ``max_sessions``."""
        endpoint = self.endpoint
        session_id = request.match_info["session_id"]
        session = endpoint.find_session(session_id)
        if session is not None:
            return session, False
        if self.no_room(request) is not None:
            return None
        return endpoint.create_session(session_id, request, transport), True

    def run(self, session: Session, created: bool, receiver: Receiver) -> None:
        actor.attach(session, receiver)
        if created:
            self.endpoint.start_session(session)

    async def charge_client(self, session: Session, count: int, size: int) -> bool:
        """Charge ``count`` messages of ``size`` to the client's ``client_rate_limit`` (issue 21).

        ``False`` when they would overdraw it: they are not to be delivered,
        and ``session`` is closed for it. ``True`` at once without the option.
        """
        clients = self.rate_clients
        if clients is None or clients.admit(session, count, size):
            return True
        if session.closed:
            return False
        self.endpoint.count_refusal("client_rate_limit")
        log.info(
            "SockJS session %s: its client is over client_rate_limit; closing it",
            protocol.loggable(actor.session_id(session) or session.transport),
        )
        await session.close(*CLOSE_CLIENT_RATE_LIMIT)
        return False
