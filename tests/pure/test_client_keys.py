"""Client keys: who the client behind a request is (aiohttp_sockjs.clients).

Requests are aiohttp's own, made by its ``make_mocked_request`` with the
peer address a socket would give; the forwarding headers are parsed as a
real request's are.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from aiohttp_sockjs import Options, TrustedProxies
from aiohttp_sockjs.clients import address_key, remote_key


class _Socket:
    """The transport's peer address, as asyncio reports it."""

    def __init__(self, peer: Any) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def is_closing(self) -> bool:
        return False


def request(peer: str | None, headers: list[tuple[str, str]] = ()) -> web.Request:  # type: ignore[assignment]
    peername = None if peer is None else (peer, 40000)
    return make_mocked_request(
        "GET", "/e/info", headers=CIMultiDict(headers), transport=_Socket(peername)
    )


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::9", "2001:db8:1:2::/64"),  # the same /64: the same client
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("/run/app.sock", "/run/app.sock"),
        (None, ""),
        ("", ""),
    ],
)
def test_address_keys(address: str | None, key: str) -> None:
    assert address_key(address) == key


def test_the_default_key_is_the_peer_whatever_it_says() -> None:
    spoofed = [("X-Forwarded-For", "203.0.113.1"), ("Forwarded", "for=203.0.113.1")]
    assert remote_key(request("192.0.2.7", spoofed)) == "192.0.2.7"
    assert Options().client_key is None


PROXIES = TrustedProxies(["10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("peer", "xff", "key"),
    [
        # An untrusted peer is the client, whatever it claims.
        ("192.0.2.7", ["203.0.113.1"], "192.0.2.7"),
        # A trusted proxy: the hop it saw.
        ("10.0.0.1", ["203.0.113.1"], "203.0.113.1"),
        ("::1", ["203.0.113.1"], "203.0.113.1"),
        # The client's own entries are left of the proxy's: not believed.
        ("10.0.0.1", ["1.1.1.1, 2.2.2.2, 203.0.113.1"], "203.0.113.1"),
        # Through two trusted proxies: the right-most untrusted hop.
        ("10.0.0.1", ["1.1.1.1, 203.0.113.1, 10.0.0.2"], "203.0.113.1"),
        # Several header lines are one list, in order.
        ("10.0.0.1", ["1.1.1.1", "203.0.113.1"], "203.0.113.1"),
        # Spaces, ports, brackets.
        ("10.0.0.1", [" 203.0.113.1:5555 "], "203.0.113.1"),
        ("10.0.0.1", ["[2001:db8::1]:443"], "2001:db8::/64"),
        ("10.0.0.1", ["2001:db8::1"], "2001:db8::/64"),
        # No header from a trusted proxy: the proxy is the client.
        ("10.0.0.1", [], "10.0.0.1"),
        # Only trusted hops: the first of them.
        ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),
        # A hop that is no address stops the walk: it is the key.
        ("10.0.0.1", ["1.1.1.1, unknown"], "unknown"),
        ("10.0.0.1", ["1.1.1.1, "], ""),
    ],
)
def test_x_forwarded_for_from_trusted_proxies_only(peer: str, xff: list[str], key: str) -> None:
    headers = [("X-Forwarded-For", line) for line in xff]
    assert PROXIES(request(peer, headers)) == key


FORWARDED = TrustedProxies(["10.0.0.0/8"], header="Forwarded")


@pytest.mark.parametrize(
    ("peer", "lines", "key"),
    [
        ("192.0.2.7", ["for=203.0.113.1"], "192.0.2.7"),
        ("10.0.0.1", ["for=203.0.113.1;proto=https;by=10.0.0.1"], "203.0.113.1"),
        ("10.0.0.1", ['for="[2001:db8:cafe::17]:4711"'], "2001:db8:cafe::/64"),
        ("10.0.0.1", ['for="203.0.113.1:80"'], "203.0.113.1"),
        ("10.0.0.1", ["for=1.1.1.1, for=203.0.113.1"], "203.0.113.1"),
        ("10.0.0.1", ["for=1.1.1.1", "for=203.0.113.1, for=10.0.0.9"], "203.0.113.1"),
        # Case of the parameter name does not matter (RFC 7239 section 4).
        ("10.0.0.1", ["For=203.0.113.1"], "203.0.113.1"),
        # An obfuscated or unknown node is the key as written.
        ("10.0.0.1", ["for=_hidden"], "_hidden"),
        ("10.0.0.1", ["for=unknown"], "unknown"),
        # A client's unterminated quote does not swallow the proxy's element.
        ("10.0.0.1", ['for=1.1.1.1;x="oops, for=203.0.113.1'], "203.0.113.1"),
        # An element with no "for" stops the walk.
        ("10.0.0.1", ["for=1.1.1.1, proto=https"], ""),
        # X-Forwarded-For is not read when the proxies set Forwarded.
        ("10.0.0.1", [], "10.0.0.1"),
    ],
)
def test_forwarded_from_trusted_proxies_only(peer: str, lines: list[str], key: str) -> None:
    headers = [("Forwarded", line) for line in lines] + [("X-Forwarded-For", "6.6.6.6")]
    assert FORWARDED(request(peer, headers)) == key


def test_trusted_proxies_are_checked() -> None:
    with pytest.raises(ValueError):
        TrustedProxies(["not a network"])
    with pytest.raises(ValueError, match="header"):
        TrustedProxies(["10.0.0.0/8"], header="X-Real-IP")
    assert TrustedProxies("127.0.0.1")(request("127.0.0.1", [("X-Forwarded-For", "1.2.3.4")])) == (
        "1.2.3.4"
    )
    assert "10.0.0.0/8" in repr(PROXIES)


def test_client_options_are_checked() -> None:
    for bad in (0, -3):
        with pytest.raises(ValueError, match="max_sessions_per_client"):
            Options(max_sessions_per_client=bad)
    with pytest.raises(TypeError, match="client_rate_limit"):
        Options(client_rate_limit=10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="client_key"):
        Options(client_key="remote")  # type: ignore[arg-type]
