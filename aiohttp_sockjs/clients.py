"""Who a client is, and how much of an endpoint one client may take.

A *client key* names the client behind a request: by default its address
(:func:`remote_key`); behind proxies, the address the trusted proxies saw
(:class:`TrustedProxies`); or whatever the application says (a function of
the request, e.g. an authenticated user id). The ``client_key`` option
picks one.

:class:`Clients` is the endpoint's table of clients: how many sessions each
holds (for ``max_sessions_per_client``) and, with ``client_rate_limit``, a
token bucket each that all of the client's sessions draw from. An entry
lives while its client has a session, and with a rate limit a little longer,
until its bucket would be full again (a client cannot refill it by
reconnecting); idle entries are capped at :data:`MAX_IDLE_CLIENTS`. The
table is consulted when a session is made and when it ends, and per batch
of client messages only when ``client_rate_limit`` is set.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

from aiohttp import hdrs, web

from .limits import RateBucket, RateLimit
from .options import ClientKey

__all__ = [
    "CLOSE_CLIENT_RATE_LIMIT",
    "MAX_IDLE_CLIENTS",
    "ClientKey",
    "Clients",
    "TrustedProxies",
    "address_key",
    "remote_key",
]

log = logging.getLogger("aiohttp_sockjs")


class Session(Protocol):
    """What the table needs of a session."""

    @property
    def request(self) -> Any:
        """The request that opened the session (``None`` for a test's session)."""

    @property
    def closed(self) -> bool:
        """Whether the session has closed."""


#: The close frame of a session whose client went over ``client_rate_limit``.
CLOSE_CLIENT_RATE_LIMIT: Final = (1008, "Client rate limit exceeded")

#: The most entries kept for clients with no session left (with
#: ``client_rate_limit``, while their buckets refill). Past it the oldest
#: go first: theirs have refilled the longest.
MAX_IDLE_CLIENTS: Final = 10_000

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_address(text: str) -> _Address | None:
    """An address from a header's node: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _key_of(address: _Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        # One subscriber usually holds a whole /64: counting each address
        # apart would let one client be 2**64 clients.
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def address_key(address: str | None) -> str:
    """The client key of an address: IPv4 as it is, IPv6 by its /64 network.

    Anything that is not an IP address (a Unix socket's name) is its own
    key; no address at all is ``""``.
    """
    if not address:
        return ""
    parsed = _parse_address(address)
    return address if parsed is None else _key_of(parsed)


def remote_key(request: web.BaseRequest) -> str:
    """The default client key: the address of the peer of the connection."""
    return address_key(request.remote)


class TrustedProxies:
    """A client key that believes the forwarding header of trusted proxies only.

    ``proxies`` are addresses or networks (``"10.0.0.0/8"``, ``"::1"``).
    When the peer is one of them, the hops of ``header`` (``"X-Forwarded-For"``
    or RFC 7239's ``"Forwarded"``, the one your proxies set) are read from
    the right, past every trusted proxy, and the first hop that is not one
    of them is the client: what is left of it was written by the client and
    is not believed. A peer that is not a trusted proxy is the client
    itself, whatever headers it sends. A hop that is not an address
    (``unknown``, an obfuscated name, a broken element) stops the walk and
    is the key as written.
    """

    __slots__ = ("_forwarded", "header", "networks")

    def __init__(self, proxies: Iterable[str], header: str = "X-Forwarded-For") -> None:
        if isinstance(proxies, str):
            proxies = [proxies]
        #: The trusted networks.
        self.networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(proxy.strip(), strict=False) for proxy in proxies
        )
        if header.lower() not in ("x-forwarded-for", "forwarded"):
            raise ValueError('header must be "X-Forwarded-For" or "Forwarded"')
        #: The header the proxies set.
        self.header = header
        self._forwarded = header.lower() == "forwarded"

    def __repr__(self) -> str:
        networks = [str(n) for n in self.networks]
        return f"TrustedProxies({networks!r}, header={self.header!r})"

    def trusts(self, address: _Address) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        return any(address in network for network in self.networks)

    def hops(self, request: web.BaseRequest) -> list[str]:
        """The nodes of the header, first hop first, as written."""
        if self._forwarded:
            # aiohttp parses RFC 7239 (quoted strings, escapes); an element
            # it could not read has no "for" and stops the walk.
            return [element.get("for", "") for element in request.forwarded]
        lines = request.headers.getall(hdrs.X_FORWARDED_FOR, ())
        return [hop for line in lines for hop in line.split(",")]

    def __call__(self, request: web.BaseRequest) -> str:
        """The key of the client behind ``request``."""
        peer = request.remote
        parsed = _parse_address(peer) if peer else None
        if parsed is None or not self.trusts(parsed):
            return address_key(peer)
        hop = parsed
        for node in reversed(self.hops(request)):
            address = _parse_address(node)
            if address is None:
                return node.strip()[:100]
            hop = address
            if not self.trusts(address):
                break
        return _key_of(hop)


class _Client:
    """One client's entry: its sessions and its bucket."""

    __slots__ = ("buckets", "idle_since", "key", "sessions")

    def __init__(self, key: str, rate: RateLimit | None, now: float) -> None:
        self.key = key
        self.sessions = 0
        self.idle_since = 0.0
        # Made only with client_rate_limit.
        self.buckets = RateBucket(rate, now) if rate else None


class Clients:
    """An endpoint's table of clients (see the module's docstring).

    Made by the endpoint when ``max_sessions_per_client`` or
    ``client_rate_limit`` is set (see :meth:`from_options`).
    """

    __slots__ = (
        "_by_key",
        "_idle",
        "_last",
        "_of",
        "clock",
        "key",
        "max_idle",
        "max_sessions_per_client",
        "rate_limit",
    )

    def __init__(
        self,
        key: ClientKey = remote_key,
        max_sessions_per_client: int | None = None,
        rate_limit: RateLimit | None = None,
        clock: Callable[[], float] | None = None,
        max_idle: int = MAX_IDLE_CLIENTS,
    ) -> None:
        #: The client key function.
        self.key = key
        self.max_sessions_per_client = max_sessions_per_client
        self.rate_limit = rate_limit
        self.clock = clock or time.monotonic
        #: The most entries kept for clients with no session.
        self.max_idle = max_idle
        self._by_key: dict[str, _Client] = {}
        self._of: dict[object, _Client] = {}
        # Entries with no session, oldest first (insertion order).
        self._idle: dict[str, _Client] = {}
        # The last request asked about and its key: a new session's request
        # is asked about before its upgrade and again when it is made.
        self._last: tuple[Any, str] | None = None

    @classmethod
    def for_limits(
        cls,
        key: ClientKey | None,
        max_sessions_per_client: int | None,
        rate_limit: RateLimit | None,
        clock: Callable[[], float],
    ) -> Clients | None:
        """The table these options ask for, or ``None`` when they ask for none."""
        if max_sessions_per_client is None and rate_limit is None:
            return None
        return cls(key or remote_key, max_sessions_per_client, rate_limit, clock)

    def __len__(self) -> int:
        """How many clients the table holds (with sessions, or refilling)."""
        return len(self._by_key)

    def key_of(self, request: web.BaseRequest | None) -> str:
        """The client key of ``request`` (``""`` for none: a test's session)."""
        if request is None:
            return ""
        last = self._last
        if last is not None and last[0] is request:
            return last[1]
        key = self.key(request)
        if not isinstance(key, str):
            raise TypeError(f"client_key returned {type(key).__name__}, not str")
        self._last = (request, key)
        return key

    def sessions(self, key: str) -> int:
        """How many sessions the client ``key`` holds."""
        client = self._by_key.get(key)
        return 0 if client is None else client.sessions

    def refuses(self, request: web.BaseRequest) -> bool:
        """Whether a new session for ``request`` would go over ``max_sessions_per_client``."""
        limit = self.max_sessions_per_client
        return limit is not None and self.sessions(self.key_of(request)) >= limit

    def add(self, session: Session) -> None:
        """Count ``session`` for its client (the endpoint calls this as it makes one)."""
        key = self.key_of(session.request)
        client = self._by_key.get(key)
        if client is None:
            client = self._by_key[key] = _Client(key, self.rate_limit, self.clock())
        elif not client.sessions:
            self._idle.pop(key, None)
        client.sessions += 1
        self._of[session] = client

    def remove(self, session: object) -> None:
        """``session`` ended (the endpoint calls this as it forgets one); idempotent."""
        client = self._of.pop(session, None)
        if client is None:
            return
        client.sessions -= 1
        if client.sessions:
            return
        rate = self.rate_limit
        now = self.clock()
        buckets = client.buckets
        if rate is None or buckets is None or buckets.refilled(rate, now):
            del self._by_key[client.key]
            return
        client.idle_since = now
        idle = self._idle
        idle[client.key] = client
        # Drop the entries that have refilled (the oldest first) and any
        # past the cap; an entry that refilled is the same as a new one.
        for key, old in list(idle.items()):
            if len(idle) <= self.max_idle and now - old.idle_since < rate.burst:
                break
            del idle[key]
            del self._by_key[key]

    def admit(self, session: Session, count: int, size: int) -> bool:
        """Take ``count`` messages of ``size`` characters from the client's bucket.

        Called per batch of client messages, only with ``client_rate_limit``.
        ``False`` when the batch would overdraw the bucket: it takes nothing
        then, and the transport closes the session with
        :data:`CLOSE_CLIENT_RATE_LIMIT` without delivering the batch.
        """
        rate = self.rate_limit
        client = self._of.get(session)
        if rate is None or client is None or client.buckets is None or session.closed:
            return True
        return client.buckets.take(rate, count, size, self.clock())
