"""An endpoint's options: the keyword options of :func:`aiohttp_sockjs.setup`, validated once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, TypedDict

from . import protocol
from .machine import Limits, RateLimit

if TYPE_CHECKING:
    import aiohttp_cors

    from .broker import RedisBroker

__all__ = ["TRANSPORTS", "EndpointOptions", "Options", "OriginPolicy"]


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
    broker: RedisBroker | None


@dataclass(frozen=True, kw_only=True)
class Options:
    """An endpoint's options, validated once: the one source of truth.

    Made by :func:`aiohttp_sockjs.setup` from its keyword options (see
    there for each); read it as ``endpoint.options``.
    """

    heartbeat_delay: float = 25.0
    disconnect_delay: float = 5.0
    response_limit: int = 128 * 1024
    sockjs_url: str = protocol.DEFAULT_SOCKJS_URL
    cookie_needed: bool = False
    disabled_transports: frozenset[str] | set[str] = frozenset()
    raw_websocket: bool | None = None
    max_message_size: int = 1 << 20
    max_request_size: int = 8 << 20
    max_messages_per_request: int = 10_000
    max_sessions: int | None = 10_000
    max_queue_size: int = 4 << 20
    queue_overflow: Literal["close", "drop_oldest"] = "close"
    max_inbox_size: int = 1 << 20
    inbound_timeout: float = 30.0
    rate_limit: RateLimit | None = None
    allowed_origins: Iterable[str] | None = None
    allow_iframe: bool = False
    allow_jsonp: bool = False
    websocket_ping_interval: float | None = None
    websocket_close_timeout: float = 2.0
    websocket_compression: bool = False
    websocket_compression_threshold: int = 1024
    cors_config: aiohttp_cors.CorsConfig | None = field(default=None, compare=False)
    broker: RedisBroker | None = field(default=None, compare=False)

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
        if self.max_sessions is not None and not self.max_sessions > 0:
            raise ValueError("max_sessions must be positive (or None)")
        if not self.inbound_timeout > 0:
            raise ValueError("inbound_timeout must be positive")
        ping = self.websocket_ping_interval
        if ping is not None and not ping >= 0:
            raise ValueError("websocket_ping_interval must not be negative (0 turns pings off)")
        if not self.websocket_close_timeout > 0:
            raise ValueError("websocket_close_timeout must be positive")
        if not int(self.websocket_compression_threshold) >= 0:
            raise ValueError("websocket_compression_threshold must not be negative")
        if self.rate_limit is not None and not isinstance(self.rate_limit, RateLimit):
            raise TypeError("rate_limit must be an aiohttp_sockjs.RateLimit (or None)")
        origins = None if self.allowed_origins is None else OriginPolicy(self.allowed_origins)
        # Unset, every origin is served, and the transports that cannot be
        # origin-checked are on; set, they are off unless asked for.
        set_ = object.__setattr__
        set_(self, "disabled_transports", disabled)
        transports = TRANSPORTS - disabled
        # The raw websocket follows ``websocket`` unless asked for explicitly.
        if self.raw_websocket and "raw_websocket" in disabled:
            raise ValueError("raw_websocket=True, but raw_websocket is in disabled_transports")
        if not (self.raw_websocket or (self.raw_websocket is None and "websocket" in transports)):
            transports -= {"raw_websocket"}
        set_(self, "transports", transports)
        set_(self, "origins", origins)
        set_(self, "allow_iframe", bool(self.allow_iframe) or origins is None)
        set_(self, "allow_jsonp", bool(self.allow_jsonp) or origins is None)
        set_(
            self,
            "limits",
            Limits(
                heartbeat_delay=float(self.heartbeat_delay),
                disconnect_delay=float(self.disconnect_delay),
                max_queue_size=int(self.max_queue_size),
                queue_overflow=self.queue_overflow,
                max_inbox_size=int(self.max_inbox_size),
                rate_limit=self.rate_limit,
            ),
        )


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
