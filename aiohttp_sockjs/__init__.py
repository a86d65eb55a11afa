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

import inspect
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, Final

from aiohttp import hdrs, web

from . import _aiohttp, protocol
from ._transports import Routes
from .clients import TrustedProxies
from .endpoint import Endpoint, Handler
from .exceptions import (
    BrokerError,
    ClientError,
    ConnectError,
    ConnectionLost,
    RemoteProtocolError,
    ResponseTimeout,
    RoomLimitExceeded,
    SessionClosed,
    SessionMisuse,
    SockJSError,
)
from .limits import RateLimit
from .machine import SessionState
from .options import TRANSPORTS, EndpointOptions, Options, options_docstring
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
    "RoomLimitExceeded",
    "Rooms",
    "Session",
    "SessionClosed",
    "SessionMisuse",
    "SessionState",
    "SockJSError",
    "TrustedProxies",
    "get_endpoint",
    "setup",
]

__version__ = "0.1.0"

#: The endpoints of an application, by prefix: ``app[ENDPOINTS]["/echo"]``.
ENDPOINTS: Final = web.AppKey("aiohttp_sockjs_endpoints", dict[str, Endpoint])

# Ids outside the protocol's rules (or over the length cap) match no route: 404.
_SEGMENT: Final = protocol.ID_PATTERN
# The server and session ids that open a session's URLs.
_SESSION: Final = f"/{{server_id:{_SEGMENT}}}/{{session_id:{_SEGMENT}}}"


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

    The options are validated at once into an :class:`Options`
    (``endpoint.options``); a bad value raises ``ValueError`` here. Their
    defaults are the protocol's, and bound every endpoint. Each option, its
    default (and unit), what it does and what the client sees:
    """
    return _setup(app, prefix, Endpoint(handler, Options(**options)))


# The option list is made from the one definition, the fields of Options.
if setup.__doc__ is not None:  # None under python -OO
    setup.__doc__ = inspect.cleandoc(setup.__doc__) + "\n\n" + options_docstring() + "\n"


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
    enabled = endpoint.options.transports
    cors = endpoint.options.cors_config
    added = _AddedRoutes(app.router, endpoint.prefix)
    if cors is None:
        # One resource for every session URL, the transport dispatched
        # inside: aiohttp then tries one pattern for them, not one each.
        # Added first: aiohttp tries the resources under the prefix in the
        # order they were added, and nearly every request is a session's.
        _add_session_resource(app.router, endpoint.prefix + _SESSION, routes, enabled)
    _add_page_routes(added, routes, preflight=cors is None)
    if cors is None:
        if "raw_websocket" in enabled:
            added.add("GET", "/websocket", routes.raw_websocket)
    else:
        _add_transport_routes(added, routes, enabled)
        for route in added.cors_routes:
            cors.add(route)
    # Any other method: 405. Added last, so that aiohttp-cors has already
    # put its preflight routes on the resources (it refuses a "*" route).
    added.refuse_other_methods()


class _AddedRoutes:
    """The routes added under an endpoint's prefix, and their resources."""

    def __init__(self, router: web.UrlDispatcher, base: str) -> None:
        self.router = router
        self.base = base
        self.resources: dict[web.Resource, None] = {}
        #: The routes aiohttp-cors is to answer preflight requests for.
        self.cors_routes: list[web.AbstractRoute] = []

    def add(self, method: str, path: str, handler: Any, *, with_cors: bool = False) -> None:
        """Add ``handler`` for ``method`` at ``path`` under the prefix."""
        route = self.router.add_route(method, self.base + path, handler)
        assert isinstance(route.resource, web.Resource)
        self.resources[route.resource] = None
        if with_cors:
            self.cors_routes.append(route)

    def refuse_other_methods(self) -> None:
        """Answer every other method at these routes' URLs with 405."""
        for resource in self.resources:
            resource.add_route(hdrs.METH_ANY, _method_not_allowed)


def _add_page_routes(added: _AddedRoutes, routes: Routes, *, preflight: bool) -> None:
    """The greeting, ``/info`` and the iframe page.

    ``preflight``: ``OPTIONS /info`` is answered here (else aiohttp-cors answers it).
    """
    added.add("GET", "", routes.greeting)
    added.add("GET", "/", routes.greeting)
    # The methods of one URL are added one after the other: aiohttp puts
    # them on one resource then, and the "*" route added last answers the rest.
    added.add("GET", "/info", routes.info, with_cors=True)
    if preflight:
        added.add("OPTIONS", "/info", routes.info_options)
    added.add("GET", r"/iframe{version:(-[0-9a-z._\-]*)?}.html", routes.iframe)


def _add_transport_routes(added: _AddedRoutes, routes: Routes, enabled: frozenset[str]) -> None:
    """A route for each enabled transport's URL, for an endpoint whose CORS aiohttp-cors does."""
    if "websocket" in enabled:
        added.add("GET", _SESSION + "/websocket", routes.websocket)
    if "raw_websocket" in enabled:
        added.add("GET", "/websocket", routes.raw_websocket)
    if "xhr" in enabled:
        added.add("POST", _SESSION + "/xhr", routes.xhr, with_cors=True)
    if "xhr_streaming" in enabled:
        added.add("POST", _SESSION + "/xhr_streaming", routes.xhr_streaming, with_cors=True)
    # eventsource and htmlfile send through xhr_send as well.
    if enabled & {"xhr", "xhr_streaming", "eventsource", "htmlfile"}:
        added.add("POST", _SESSION + "/xhr_send", routes.xhr_send, with_cors=True)
    if "eventsource" in enabled:
        added.add("GET", _SESSION + "/eventsource", routes.eventsource, with_cors=True)
    if "htmlfile" in enabled:
        added.add("GET", _SESSION + "/htmlfile", routes.htmlfile)
    if "jsonp" in enabled:
        added.add("GET", _SESSION + "/jsonp", routes.jsonp)
        added.add("POST", _SESSION + "/jsonp_send", routes.jsonp_send)


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
        # Every later read of this connection (a websocket's frames, a
        # keep-alive connection's next requests) takes 64 KiB at most.
        _aiohttp.small_reads(request.transport)
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
