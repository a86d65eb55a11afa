"""SockJS server for aiohttp.

Serve SockJS clients over every transport from an aiohttp application::

    from aiohttp import web
    import aiohttp_sockjs

    async def echo(session: aiohttp_sockjs.Session) -> None:
        async for message in session:
            session.send(message)

    app = web.Application()
    aiohttp_sockjs.setup(app, "/echo", echo)
    web.run_app(app)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, Final

from aiohttp import hdrs, web

from . import _aiohttp, protocol
from ._transports import Routes
from .endpoint import Endpoint, Handler
from .exceptions import (
    BrokerError,
    ClientError,
    ConnectError,
    ConnectionLost,
    RemoteProtocolError,
    ResponseTimeout,
    SessionClosed,
    SessionMisuse,
    SockJSError,
)
from .machine import RateLimit, SessionState
from .options import TRANSPORTS, EndpointOptions, Options
from .rooms import Presence, Rooms
from .session import Session
from .stats import EndpointStats

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "ENDPOINTS",
    "TRANSPORTS",
    "BrokerError",
    "ClientError",
    "ConnectError",
    "ConnectionLost",
    "Endpoint",
    "EndpointOptions",
    "EndpointStats",
    "Handler",
    "Options",
    "Presence",
    "RateLimit",
    "RemoteProtocolError",
    "ResponseTimeout",
    "Rooms",
    "Session",
    "SessionClosed",
    "SessionMisuse",
    "SessionState",
    "SockJSError",
    "get_endpoint",
    "setup",
]

__version__ = "0.1.0"

#: The endpoints of an application, by prefix: ``app[ENDPOINTS]["/echo"]``.
ENDPOINTS: Final = web.AppKey("aiohttp_sockjs_endpoints", dict[str, Endpoint])

# Ids outside the protocol's rules (or over the length cap) match no route: 404.
_SEGMENT: Final = protocol.ID_PATTERN


def setup(
    app: web.Application,
    prefix: str,
    handler: Handler | None = None,
    **options: Unpack[EndpointOptions],
) -> Endpoint:
    """Serve a SockJS endpoint under ``prefix`` and return it.

    ``handler`` runs once per session: ``async def handler(session)``. Leave
    it out to use the decorators :meth:`Endpoint.on_open`,
    :meth:`Endpoint.on_message` and :meth:`Endpoint.on_close` instead.

    Options (defaults are the protocol's):

    - ``heartbeat_delay`` (25.0): seconds between heartbeat frames.
    - ``disconnect_delay`` (5.0): seconds a session without a connection
      lives before it expires.
    - ``response_limit`` (131072): bytes a streaming response carries
      before it ends and the client opens a new one.
    - ``sockjs_url``: where the iframe page loads the client library from.
    - ``cookie_needed`` (False): set ``JSESSIONID`` for sticky load balancers.
    - ``disabled_transports`` (empty): names from :data:`TRANSPORTS` to turn
      off; disabling ``websocket`` also makes ``/info`` say so, and turns off
      the raw websocket at ``prefix/websocket`` unless ``raw_websocket`` is
      True.
    - ``raw_websocket`` (None): whether to serve the raw websocket (no SockJS
      framing) at ``prefix/websocket``. ``None`` serves it while ``websocket``
      is enabled; True serves it even with ``websocket`` disabled; False
      never does.
    - ``max_message_size`` (1 MiB): the longest message accepted, in
      characters; longer ones get HTTP 413 or websocket close 1009.
    - ``max_request_size`` (8 MiB): the largest request body or websocket
      frame accepted, in bytes; larger ones get 413 or close 1009.
    - ``max_messages_per_request`` (10,000): the most messages one
      ``xhr_send``/``jsonp_send`` body or websocket frame may carry; more get
      413 or close 1009. A refused request delivers none of its messages and
      the session goes on (a websocket is closed).
    - ``max_sessions`` (10,000): the most sessions the endpoint holds at
      once (closing ones included, until they expire); a request that would
      open one more gets HTTP 503, before any websocket upgrade. ``None``
      for no limit.
    - ``max_queue_size`` (4 MiB): the bound on each session's queue of
      undelivered messages, in characters of encoded frames, counted from
      the moment the application sends. A message larger than the bound is
      still accepted into an empty queue.
    - ``queue_overflow`` (``"close"``): what happens past that bound:
      ``"close"`` frees the queue and closes the session with 1013 "Send
      queue overflow" (a connection stuck writing is cut); ``"drop_oldest"``
      drops the oldest undelivered messages instead.
    - ``max_inbox_size`` (1 MiB): the bound on each session's client
      messages the application has not taken yet, in characters. Past it the
      client is slowed, not dropped: a websocket is not read until there is
      room, and ``xhr_send``/``jsonp_send`` answer once their messages are
      taken. A session's memory is then at most ``max_inbox_size`` +
      ``max_queue_size``, plus the one request or frame being taken in.
    - ``inbound_timeout`` (30.0): seconds an ``xhr_send``/``jsonp_send``
      waits for room before it is refused with 503 "Session inbox full.";
      its messages are then not delivered.
    - ``rate_limit`` (None): a :class:`RateLimit` of client messages and
      bytes per second per session, with a burst; a session over it is
      closed with 1008 "Rate limit exceeded".
    - ``websocket_ping_interval`` (None): websocket pings. ``None`` sends a
      ping with every heartbeat frame and drops a socket that has not
      answered the previous one by the next heartbeat (while the handler
      has not made room in its inbox, the socket is not read, and only a
      lost connection counts); no timer per socket. A number of seconds
      uses aiohttp's own ping timer on each socket instead; ``0`` sends no
      pings.
    - ``websocket_close_timeout`` (2.0): seconds the server waits for the
      client's close frame after sending its own, before it closes the TCP
      connection (RFC 6455 section 7.1.1).
    - ``websocket_compression`` (False): accept permessage-deflate when the
      client offers it (every browser does). Off by default: it costs
      server CPU and memory per session and saves little on chat-sized
      messages (see the README). When on, the server answers
      ``server_no_context_takeover`` and compresses each frame on its own,
      with one compressor shared by all sessions, so a broadcast frame is
      compressed once.
    - ``websocket_compression_threshold`` (1024): with compression on,
      frames shorter than this many bytes go out uncompressed (which
      permessage-deflate allows per message); 0 compresses every frame.
    - ``allowed_origins`` (None): browser origins allowed to connect, exact
      (``"https://example.com"``) or by subdomain (``"https://*.example.com"``).
      When set, requests and websocket upgrades from other origins get 403
      without CORS headers, and the transports that cannot be origin-checked
      are off: the iframe page (``allow_iframe``, default False) and JSONP
      polling (``allow_jsonp``, default False). Unset, every origin is
      served, as the protocol expects.
    - ``cors_config``: an ``aiohttp_cors.CorsConfig``; when given, CORS is
      left to it instead of the built-in headers.
    - ``broker`` (None): an :class:`aiohttp_sockjs.broker.RedisBroker` (one
      per process, shared by its endpoints): broadcasts to everyone or to
      rooms then reach the sessions of every process of the cluster, and
      :meth:`Endpoint.presence` counts them all. Without it, rooms and
      presence work within this process.

    The options are validated at once into an :class:`Options`
    (``endpoint.options``); a bad value raises ``ValueError`` here.
    """
    return _setup(app, prefix, Endpoint(handler, Options(**options)))


def _setup(app: web.Application, prefix: str, endpoint: Endpoint) -> Endpoint:
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    endpoints = app.get(ENDPOINTS)
    if endpoints is None:
        endpoints = app[ENDPOINTS] = {}
        app.cleanup_ctx.append(_lifecycle)
        app.on_shutdown.append(_shutdown)
    if prefix in endpoints:
        raise ValueError(f"a SockJS endpoint is already set up at {prefix!r}")
    endpoint.prefix = prefix
    endpoints[prefix] = endpoint
    _add_routes(app, endpoint)
    return endpoint


def get_endpoint(app: web.Application, prefix: str) -> Endpoint:
    """The endpoint that :func:`setup` made for ``prefix`` in ``app``."""
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    return app[ENDPOINTS][prefix]


def _add_routes(app: web.Application, endpoint: Endpoint) -> None:
    routes = Routes(endpoint)
    base = endpoint.prefix
    enabled = endpoint.options.transports
    cors = endpoint.options.cors_config
    router = app.router
    added: list[web.AbstractRoute] = []
    resources: dict[web.Resource, None] = {}

    def add(method: str, path: str, handler: Any, *, with_cors: bool = False) -> None:
        route = router.add_route(method, base + path, handler)
        assert isinstance(route.resource, web.Resource)
        resources[route.resource] = None
        if with_cors:
            added.append(route)

    session = f"/{{server_id:{_SEGMENT}}}/{{session_id:{_SEGMENT}}}"
    if cors is None:
        # One resource for every session URL, the transport dispatched
        # inside: aiohttp then tries one pattern for them, not one each.
        # Added first: aiohttp tries the resources under the prefix in the
        # order they were added, and nearly every request is a session's.
        _add_session_resource(router, base + session, routes, enabled)
    add("GET", "", routes.greeting)
    add("GET", "/", routes.greeting)
    # The methods of one URL are added one after the other: aiohttp puts
    # them on one resource then, and its "*" route below answers the rest.
    add("GET", "/info", routes.info, with_cors=True)
    if cors is None:
        add("OPTIONS", "/info", routes.info_options)
    add("GET", r"/iframe{version:(-[0-9a-z._\-]*)?}.html", routes.iframe)
    if cors is None:
        if "raw_websocket" in enabled:
            add("GET", "/websocket", routes.raw_websocket)
        for resource in resources:
            resource.add_route(hdrs.METH_ANY, _method_not_allowed)
        return
    if "websocket" in enabled:
        add("GET", session + "/websocket", routes.websocket)
    if "raw_websocket" in enabled:
        add("GET", "/websocket", routes.raw_websocket)
    xhr_routes: list[tuple[str, Any]] = []
    if "xhr" in enabled:
        xhr_routes.append(("/xhr", routes.xhr))
    if "xhr_streaming" in enabled:
        xhr_routes.append(("/xhr_streaming", routes.xhr_streaming))
    # eventsource and htmlfile send through xhr_send as well.
    if enabled & {"xhr", "xhr_streaming", "eventsource", "htmlfile"}:
        xhr_routes.append(("/xhr_send", routes.xhr_send))
    for path, handler in xhr_routes:
        add("POST", session + path, handler, with_cors=True)
        if cors is None:
            add("OPTIONS", session + path, routes.xhr_options)
    if "eventsource" in enabled:
        add("GET", session + "/eventsource", routes.eventsource, with_cors=True)
    if "htmlfile" in enabled:
        add("GET", session + "/htmlfile", routes.htmlfile)
    if "jsonp" in enabled:
        add("GET", session + "/jsonp", routes.jsonp)
        add("POST", session + "/jsonp_send", routes.jsonp_send)
    if cors is not None:
        for route in added:
            cors.add(route)
    # Any other method: 405. Added last, so that aiohttp-cors has already
    # put its preflight routes on the resources (it refuses a "*" route).
    for resource in resources:
        resource.add_route(hdrs.METH_ANY, _method_not_allowed)


def _session_handlers(routes: Routes, enabled: frozenset[str]) -> dict[str, dict[str, Any]]:
    """The handler of each session URL's transport segment, by method."""
    table: dict[str, dict[str, Any]] = {}
    if "websocket" in enabled:
        table["websocket"] = {"GET": routes.websocket}
    if "xhr" in enabled:
        table["xhr"] = {"POST": routes.xhr, "OPTIONS": routes.xhr_options}
    if "xhr_streaming" in enabled:
        table["xhr_streaming"] = {"POST": routes.xhr_streaming, "OPTIONS": routes.xhr_options}
    # eventsource and htmlfile send through xhr_send as well.
    if enabled & {"xhr", "xhr_streaming", "eventsource", "htmlfile"}:
        table["xhr_send"] = {"POST": routes.xhr_send, "OPTIONS": routes.xhr_options}
    if "eventsource" in enabled:
        table["eventsource"] = {"GET": routes.eventsource}
    if "htmlfile" in enabled:
        table["htmlfile"] = {"GET": routes.htmlfile}
    if "jsonp" in enabled:
        table["jsonp"] = {"GET": routes.jsonp}
        table["jsonp_send"] = {"POST": routes.jsonp_send}
    return table


def _add_session_resource(
    router: web.UrlDispatcher, path: str, routes: Routes, enabled: frozenset[str]
) -> None:
    table = _session_handlers(routes, enabled)
    if not table:
        return
    resource = router.add_resource(path + "/{transport:(" + "|".join(sorted(table)) + ")}")
    allowed = {name: ", ".join(sorted(methods)) for name, methods in table.items()}
    names = {name: name for name in table}

    def dispatch(request: web.Request) -> Awaitable[web.StreamResponse]:
        # Returns the transport handler's own coroutine, not one wrapping
        # it: a websocket's or a stream's handler frame lives as long as
        # the connection, so a wrapper would cost a frame per session.
        match_info = request.match_info
        name = match_info["transport"]
        handler = table[name].get(request.method)
        if handler is None:
            return _not_allowed(allowed[name])
        # The same string, but the table's: the request lives as long as its
        # connection, and the copy the match made would cost a websocket or
        # stream session 64 bytes.
        match_info["transport"] = names[name]
        result: Awaitable[web.StreamResponse] = handler(request)
        return result

    resource.add_route(hdrs.METH_ANY, _aiohttp.coroutine_handler(dispatch))


async def _not_allowed(allow: str) -> web.Response:
    return web.Response(status=405, headers={hdrs.ALLOW: allow})


async def _method_not_allowed(request: web.Request) -> web.Response:
    """405 with the methods the URL serves in ``Allow``, and no body."""
    resource = request.match_info.route.resource
    methods = sorted({route.method for route in resource or ()} - {hdrs.METH_ANY})
    return web.Response(status=405, headers={hdrs.ALLOW: ", ".join(methods)})


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    endpoints = list(app[ENDPOINTS].values())
    for endpoint in endpoints:
        await endpoint.start()
    yield
    for endpoint in endpoints:
        await endpoint.shutdown()


async def _shutdown(app: web.Application) -> None:
    # Runs while connections are still open, so clients get the close frame.
    for endpoint in app[ENDPOINTS].values():
        await endpoint.shutdown()
