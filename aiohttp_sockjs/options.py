"""An endpoint's options: the keyword options of :func:`aiohttp_sockjs.setup`, validated once."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, TypedDict

from . import protocol
from .hub import Broker
from .limits import Limits, RateLimit

if TYPE_CHECKING:
    import aiohttp_cors
    from aiohttp import web

__all__ = [
    "TRANSPORTS",
    "EndpointOptions",
    "OptionDoc",
    "Options",
    "OriginPolicy",
    "option_docs",
    "options_docstring",
]


#: Every transport an endpoint can serve, by the name used in URLs and in
#: the ``transports`` option. ``raw_websocket`` is ``base/websocket``.
TRANSPORTS: Final = frozenset(
    {
        "websocket",
        "raw_websocket",
        "xhr",
        "xhr_streaming",
        "eventsource",
        "htmlfile",
        "jsonp",
    }
)


#: A client key function (the ``client_key`` option): the request that opens
#: a session -> who the client is (see :mod:`aiohttp_sockjs.clients`).
ClientKey = Callable[["web.BaseRequest"], str]


class EndpointOptions(TypedDict, total=False):
    """The keyword options of :func:`aiohttp_sockjs.setup`, for type checkers."""

    heartbeat_delay: float
    disconnect_delay: float
    response_limit: int
    sockjs_url: str
    cookie_needed: bool
    disabled_transports: frozenset[str] | set[str]
    raw_websocket: bool | None
    max_message_size: int
    max_request_size: int
    max_messages_per_request: int
    max_sessions: int | None
    client_key: ClientKey | None
    max_sessions_per_client: int | None
    client_rate_limit: RateLimit | None
    max_rooms_per_session: int | None
    max_room_name_length: int | None
    max_queue_size: int
    queue_overflow: Literal["close", "drop_oldest"]
    max_inbox_size: int
    inbound_timeout: float
    rate_limit: RateLimit | None
    allowed_origins: Iterable[str] | None
    allow_iframe: bool
    allow_jsonp: bool
    websocket_ping_interval: float | None
    websocket_close_timeout: float
    websocket_compression: bool
    websocket_compression_threshold: int
    cors_config: aiohttp_cors.CorsConfig | None
    broker: Broker | None


def _doc(text: str, *, unit: str = "", client: str) -> Mapping[str, str]:
    """An option's documentation, kept in its field's metadata."""
    return {"doc": text, "unit": unit, "client": client}


@dataclass(frozen=True, kw_only=True)
class Options:
    """An endpoint's options, validated once: the one source of truth.

    Made by :func:`aiohttp_sockjs.setup` from its keyword options; read it
    as ``endpoint.options``. Each option's field carries its documentation in
    its metadata (``doc``, ``unit``, ``client``: what the client sees when
    it applies), from which :func:`option_docs` makes the reference.
    """

    heartbeat_delay: float = field(
        default=25.0,
        metadata=_doc(
            "How long a connection may stay idle before the server sends a heartbeat frame.",
            unit="seconds",
            client="an ``h`` frame; sockjs-client ignores it, and a proxy sees traffic",
        ),
    )
    disconnect_delay: float = field(
        default=5.0,
        metadata=_doc(
            "How long a session with no connection (between two polls, or after its"
            " client went away) lives before it expires.",
            unit="seconds",
            client="a client silent for longer has lost its session; its handler has seen it end",
        ),
    )
    response_limit: int = field(
        default=128 * 1024,
        metadata=_doc(
            "How much a streaming response (xhr_streaming, eventsource, htmlfile)"
            " carries before the server ends it.",
            unit="bytes",
            client="the response ends and the client opens a new one, unnoticed by the page",
        ),
    )
    sockjs_url: str = field(
        default=protocol.DEFAULT_SOCKJS_URL,
        metadata=_doc(
            "Where the iframe page (``prefix/iframe.html``) loads sockjs-client from."
            " Serve a copy from your own origin, the version your pages use.",
            unit="URL",
            client="the iframe transports load this script; offline or blocked, they fail",
        ),
    )
    cookie_needed: bool = field(
        default=False,
        metadata=_doc(
            "Set a ``JSESSIONID`` cookie, for load balancers that stick by it.",
            client="``/info`` says ``cookie_needed: true``; responses set ``JSESSIONID``",
        ),
    )
    disabled_transports: frozenset[str] | set[str] = field(
        default=frozenset(),
        metadata=_doc(
            "Names from :data:`~aiohttp_sockjs.TRANSPORTS` not to serve. Disabling"
            " ``websocket`` also turns off the raw websocket, unless ``raw_websocket``"
            " is ``True``.",
            client="404 for those transports' URLs; without ``websocket``, ``/info``"
            " says ``websocket: false`` and the client does not try it",
        ),
    )
    raw_websocket: bool | None = field(
        default=None,
        metadata=_doc(
            "Serve the raw websocket at ``prefix/websocket`` (plain text messages, no"
            " SockJS framing): ``None`` while ``websocket`` is served, ``True`` always,"
            " ``False`` never.",
            client="404 at ``prefix/websocket`` when it is off",
        ),
    )
    max_message_size: int = field(
        default=1 << 20,
        metadata=_doc(
            "The longest message a client may send.",
            unit="characters",
            client="HTTP 413, or websocket close 1009; the request's messages are not delivered",
        ),
    )
    max_request_size: int = field(
        default=8 << 20,
        metadata=_doc(
            "The largest request body or websocket frame (aiohttp's own"
            " ``client_max_size`` does not apply to SockJS routes).",
            unit="bytes",
            client="HTTP 413, or websocket close 1009",
        ),
    )
    max_messages_per_request: int = field(
        default=10_000,
        metadata=_doc(
            "The most messages one ``xhr_send``/``jsonp_send`` body or websocket frame may carry.",
            unit="messages",
            client="HTTP 413, or websocket close 1009; none of the request's messages is delivered",
        ),
    )
    max_sessions: int | None = field(
        default=10_000,
        metadata=_doc(
            "The most sessions the endpoint holds at once (closing ones included,"
            " until they expire); ``None`` for no limit.",
            unit="sessions",
            client="HTTP 503 for a new session, before any websocket upgrade",
        ),
    )
    client_key: ClientKey | None = field(
        default=None,
        compare=False,
        metadata=_doc(
            "Who a client is, for ``max_sessions_per_client`` and ``client_rate_limit``:"
            " a function of the request that opens a session, returning a string."
            " ``None``: the peer's address (an IPv6 one by its /64). Behind proxies,"
            " :class:`aiohttp_sockjs.TrustedProxies` believes their ``X-Forwarded-For``"
            " or ``Forwarded`` header, and nobody else's; an application may key by"
            " an authenticated user id instead.",
            client="nothing by itself",
        ),
    )
    max_sessions_per_client: int | None = field(
        default=1000,
        metadata=_doc(
            "The most sessions one client (see ``client_key``) holds at once: a"
            " tenth of the default ``max_sessions``, so that one address cannot take"
            " the endpoint, while an office or a carrier's NAT of hundreds of people"
            " still fits (see :doc:`/explanation/security`); ``None`` for no limit."
            " Behind a proxy, set ``client_key``, or every client is the proxy.",
            unit="sessions",
            client='HTTP 503 "Too many sessions from this client." for a new session,'
            " before any websocket upgrade",
        ),
    )
    client_rate_limit: RateLimit | None = field(
        default=None,
        metadata=_doc(
            "A :class:`~aiohttp_sockjs.RateLimit` shared by all the sessions of one"
            " client (see ``client_key``), beside each session's ``rate_limit``:"
            " opening more sessions gives a client no more messages a second;"
            " ``None`` for no limit.",
            client='close frame 1008 "Client rate limit exceeded" for the session'
            " whose messages went over; they are not delivered",
        ),
    )
    max_rooms_per_session: int | None = field(
        default=128,
        metadata=_doc(
            "The most rooms one session is in at once (:meth:`Session.join`)."
            " 128, as Centrifugo's channels per connection: at the longest names a"
            " session's rooms then hold under 200 KB (see :doc:`/explanation/security`);"
            " ``None`` for no limit.",
            unit="rooms",
            client="nothing by itself: ``join`` raises"
            " :class:`~aiohttp_sockjs.exceptions.RoomLimitExceeded` for the handler"
            " to tell the client, and the session goes on",
        ),
    )
    max_room_name_length: int | None = field(
        default=255,
        metadata=_doc(
            "The longest room name :meth:`Session.join` and :meth:`Endpoint.broadcast`"
            " accept, as Centrifugo's channel names: room names are identifiers,"
            " not data; ``None`` for no limit.",
            unit="characters",
            client="nothing by itself: ``join`` raises"
            " :class:`~aiohttp_sockjs.exceptions.RoomLimitExceeded` for the handler"
            " to tell the client, and the session goes on",
        ),
    )
    max_queue_size: int = field(
        default=4 << 20,
        metadata=_doc(
            "The bound on each session's undelivered messages, counted as encoded"
            " frames from the moment the application sends. A message larger than the"
            " bound is still accepted into an empty queue.",
            unit="characters",
            client="past it, what ``queue_overflow`` says",
        ),
    )
    queue_overflow: Literal["close", "drop_oldest"] = field(
        default="close",
        metadata=_doc(
            'What happens past ``max_queue_size``: ``"close"`` frees the queue and'
            " closes the session (a connection stuck writing is cut);"
            ' ``"drop_oldest"`` drops the oldest undelivered messages.',
            client='close frame 1013 "Send queue overflow", or messages missing',
        ),
    )
    max_inbox_size: int = field(
        default=1 << 20,
        metadata=_doc(
            "The bound on each session's client messages the application has not"
            " taken yet. Past it the client is slowed, never dropped, and nothing is lost.",
            unit="characters",
            client="a websocket is not read until there is room (TCP pushes back);"
            " ``xhr_send``/``jsonp_send`` are answered once their messages are taken",
        ),
    )
    inbound_timeout: float = field(
        default=30.0,
        metadata=_doc(
            "How long an ``xhr_send``/``jsonp_send`` waits for room in the inbox.",
            unit="seconds",
            client='HTTP 503 "Session inbox full."; its messages are not delivered',
        ),
    )
    rate_limit: RateLimit | None = field(
        default=None,
        metadata=_doc(
            "A :class:`~aiohttp_sockjs.RateLimit` of client messages and bytes per"
            " second per session, with a burst; ``None`` for no limit. The bytes are"
            " the messages' characters; a frame compressed with"
            " ``websocket_compression`` counts all it inflates to (JSON whitespace"
            " included), even with no message in it.",
            client='close frame 1008 "Rate limit exceeded"',
        ),
    )
    allowed_origins: Iterable[str] | None = field(
        default=None,
        metadata=_doc(
            'Browser origins allowed to connect, exact (``"https://example.com"``)'
            ' or by subdomain (``"https://*.example.com"``); ``None`` serves every'
            " origin, as the protocol expects. Setting it turns ``allow_iframe`` and"
            " ``allow_jsonp`` off unless they are set too.",
            client="HTTP 403 without CORS headers, for requests and websocket upgrades"
            " from other origins (requests with no ``Origin`` are served)",
        ),
    )
    allow_iframe: bool = field(
        default=False,
        metadata=_doc(
            "Serve the iframe page although ``allowed_origins`` is set (it relays"
            " for any parent page, so it cannot be origin-checked). Without"
            " ``allowed_origins`` it is always served.",
            client="404 for ``prefix/iframe.html`` when it is off",
        ),
    )
    allow_jsonp: bool = field(
        default=False,
        metadata=_doc(
            "Serve JSONP polling although ``allowed_origins`` is set (a JSONP poll"
            " carries no ``Origin``). Without ``allowed_origins`` it is always served.",
            client="404 for the ``jsonp`` transport when it is off",
        ),
    )
    websocket_ping_interval: float | None = field(
        default=None,
        metadata=_doc(
            "Websocket liveness pings. ``None`` sends a ping after every heartbeat frame"
            " and drops a socket that has not answered it by the next heartbeat, so a"
            " client that stopped reading is released within two heartbeat periods (while"
            " the handler leaves the session's inbox full the socket is not read, and only"
            " a lost connection counts); it needs no timer per socket, and the ping and its"
            " pong cost a few microseconds of server CPU per idle socket and heartbeat"
            " (benchmarks/README.md). A number of seconds"
            " uses aiohttp's own ping timer on each socket instead; ``0`` sends no pings.",
            unit="seconds",
            client="a ping frame after each heartbeat frame, answered by the browser;"
            " a socket that stops answering is closed and its session ends",
        ),
    )
    websocket_close_timeout: float = field(
        default=2.0,
        metadata=_doc(
            "How long the server waits for the client's close frame after sending its"
            " own, before it closes the TCP connection (RFC 6455 section 7.1.1).",
            unit="seconds",
            client="the server's close frame, then the TCP close once the client has"
            " answered it (or this long after)",
        ),
    )
    websocket_compression: bool = field(
        default=False,
        metadata=_doc(
            "Accept permessage-deflate when the client offers it (every browser"
            " does). Off, because for chat-sized messages it costs more server CPU and"
            " memory than it saves (see :doc:`/explanation/performance`).",
            client="``permessage-deflate; server_no_context_takeover`` in the upgrade"
            " answer; without it, no extension",
        ),
    )
    websocket_compression_threshold: int = field(
        default=1024,
        metadata=_doc(
            "With compression on, frames shorter than this go out uncompressed;"
            " ``0`` compresses every frame.",
            unit="bytes",
            client="short frames uncompressed (permessage-deflate allows it per message)",
        ),
    )
    cors_config: aiohttp_cors.CorsConfig | None = field(
        default=None,
        compare=False,
        metadata=_doc(
            "An ``aiohttp_cors.CorsConfig``: CORS on the endpoint's routes is then"
            " left to it. ``None``: the request's ``Origin`` is echoed with"
            " credentials allowed, as the protocol requires.",
            client="the CORS headers its rules give",
        ),
    )
    broker: Broker | None = field(
        default=None,
        compare=False,
        metadata=_doc(
            "A :class:`~aiohttp_sockjs.broker.RedisBroker` (one per process, shared"
            " by its endpoints): broadcasts and presence then span every process."
            " ``None``: rooms and presence work within this process.",
            client="broadcasts from sessions on other processes",
        ),
    )

    #: The transports served: every one of :data:`TRANSPORTS` not disabled.
    transports: frozenset[str] = field(init=False)
    #: The ``allowed_origins`` policy, or ``None`` when every origin is served.
    origins: OriginPolicy | None = field(init=False)
    #: What the session machine decides by.
    limits: Limits = field(init=False)

    def __post_init__(self) -> None:
        disabled = frozenset(self.disabled_transports)
        unknown = disabled - TRANSPORTS
        if unknown:
            raise ValueError(f"unknown transports: {sorted(unknown)}")
        self._check_numbers()
        for name in ("rate_limit", "client_rate_limit"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), RateLimit):
                raise TypeError(f"{name} must be an aiohttp_sockjs.RateLimit (or None)")
        if self.client_key is not None and not callable(self.client_key):
            raise TypeError("client_key must be a function of the request (or None)")
        origins = None if self.allowed_origins is None else OriginPolicy(self.allowed_origins)
        set_ = object.__setattr__
        set_(self, "disabled_transports", disabled)
        set_(self, "transports", self._served(disabled))
        set_(self, "origins", origins)
        # Unset, every origin is served, and the transports that cannot be
        # origin-checked are on; set, they are off unless asked for.
        set_(self, "allow_iframe", bool(self.allow_iframe) or origins is None)
        set_(self, "allow_jsonp", bool(self.allow_jsonp) or origins is None)
        limits = Limits(
            heartbeat_delay=float(self.heartbeat_delay),
            disconnect_delay=float(self.disconnect_delay),
            max_queue_size=int(self.max_queue_size),
            queue_overflow=self.queue_overflow,
            max_inbox_size=int(self.max_inbox_size),
            rate_limit=self.rate_limit,
        )
        set_(self, "limits", limits)

    def _check_numbers(self) -> None:
        """The delays, sizes, counts and timeouts are in range (and ``queue_overflow`` known)."""
        if not (self.heartbeat_delay > 0 and self.disconnect_delay > 0):
            raise ValueError("heartbeat_delay and disconnect_delay must be positive")
        if self.queue_overflow not in ("close", "drop_oldest"):
            raise ValueError('queue_overflow must be "close" or "drop_oldest"')
        for name in (
            "response_limit",
            "max_message_size",
            "max_request_size",
            "max_messages_per_request",
            "max_queue_size",
            "max_inbox_size",
        ):
            if not int(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be positive")
        for name in (
            "max_sessions",
            "max_sessions_per_client",
            "max_rooms_per_session",
            "max_room_name_length",
        ):
            value = getattr(self, name)
            if value is not None and not int(value) > 0:
                raise ValueError(f"{name} must be positive (or None)")
        if not self.inbound_timeout > 0:
            raise ValueError("inbound_timeout must be positive")
        ping = self.websocket_ping_interval
        if ping is not None and not ping >= 0:
            raise ValueError("websocket_ping_interval must not be negative (0 turns pings off)")
        if not self.websocket_close_timeout > 0:
            raise ValueError("websocket_close_timeout must be positive")
        if not int(self.websocket_compression_threshold) >= 0:
            raise ValueError("websocket_compression_threshold must not be negative")

    def _served(self, disabled: frozenset[str]) -> frozenset[str]:
        """The transports to serve; the raw websocket follows ``websocket`` unless asked for."""
        if self.raw_websocket and "raw_websocket" in disabled:
            raise ValueError("raw_websocket=True, but raw_websocket is in disabled_transports")
        transports = TRANSPORTS - disabled
        if not (self.raw_websocket or (self.raw_websocket is None and "websocket" in transports)):
            transports -= {"raw_websocket"}
        return transports


class OptionDoc(NamedTuple):
    """One option of :func:`aiohttp_sockjs.setup`, as the reference shows it."""

    #: The keyword.
    name: str
    #: Its type, as :class:`EndpointOptions` spells it.
    type: str
    #: Its default, as Python would write it (``repr``).
    default: str
    #: The default in words, for sizes (``"1 MiB"``), else ``""``.
    default_words: str
    #: What the number counts in (``"seconds"``, ``"bytes"``), or ``""``.
    unit: str
    #: What the option does.
    doc: str
    #: What the client sees when the option applies.
    client: str


def _in_words(value: Any, unit: str) -> str:
    if unit in ("bytes", "characters") and isinstance(value, int) and value >= 1024:
        for size, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if value % size == 0:
                return f"{value // size} {name}"
    return ""


def _spelled(annotation: Any) -> str:
    # TypedDict turns the string annotations into ForwardRefs.
    return str(getattr(annotation, "__forward_arg__", annotation))


def option_docs() -> list[OptionDoc]:
    """Every option of :func:`aiohttp_sockjs.setup`, in order, from :class:`Options`."""
    docs = []
    for f in fields(Options):
        if not f.init:
            continue
        default = f.default if f.default is not MISSING else None
        docs.append(
            OptionDoc(
                name=f.name,
                type=_spelled(EndpointOptions.__annotations__[f.name]),
                default=repr(default),
                default_words=_in_words(default, f.metadata["unit"]),
                unit=f.metadata["unit"],
                doc=f.metadata["doc"],
                client=f.metadata["client"],
            )
        )
    return docs


def options_docstring(width: int = 76) -> str:
    """The option list of :func:`aiohttp_sockjs.setup`'s docstring (reStructuredText)."""
    lines = []
    for option in option_docs():
        default = f"``{option.default}``"
        if option.default_words:
            default += f" = {option.default_words}"
        head = f"- ``{option.name}`` ({default}"
        head += f", {option.unit}): " if option.unit else "): "
        text = head + option.doc + " *Client:* " + option.client + "."
        lines += textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False)
    return "\n".join(lines)


class OriginPolicy:
    """The ``allowed_origins`` option: which browser origins may connect.

    Entries are exact origins (``"https://example.com"``,
    ``"http://localhost:8080"``) or a wildcard for the subdomains of a host
    (``"https://*.example.com"``, which does not match ``example.com``
    itself). Ports must match; comparison ignores case.
    """

    __slots__ = ("_exact", "_suffixes")

    def __init__(self, origins: Iterable[str]) -> None:
        if isinstance(origins, str):
            origins = [origins]
        self._exact: set[str] = set()
        self._suffixes: list[tuple[str, str, str]] = []
        for origin in origins:
            origin = origin.strip().lower().rstrip("/")
            scheme, sep, rest = origin.partition("://")
            if origin == "null":
                self._exact.add(origin)
                continue
            if not sep or not scheme or not rest or "/" in rest:
                raise ValueError(f"not an origin: {origin!r}")
            if rest.startswith("*."):
                host, _, port = rest[2:].partition(":")
                if not host or "*" in host:
                    raise ValueError(f"not an origin pattern: {origin!r}")
                self._suffixes.append((scheme + "://", "." + host, ":" + port if port else ""))
            elif "*" in rest:
                raise ValueError(f"not an origin pattern: {origin!r}")
            else:
                self._exact.add(origin)

    def allows(self, origin: str) -> bool:
        """Whether the ``Origin`` header value ``origin`` is allowed."""
        origin = origin.strip().lower()
        if origin in self._exact:
            return True
        for scheme, suffix, port in self._suffixes:
            if not origin.startswith(scheme):
                continue
            hostport = origin[len(scheme) :]
            if port:
                if not hostport.endswith(port):
                    continue
                host = hostport[: -len(port)]
            else:
                host = hostport
            if ":" in host or "/" in host:
                continue
            if host.endswith(suffix) and len(host) > len(suffix):
                return True
        return False
