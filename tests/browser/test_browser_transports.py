"""The real sockjs-client in Chromium, over every transport it can use.

Each transport is forced with ``new SockJS(url, null, {transports: [name]})``
and runs the same battery against the conformance server's ``/echo``: the
characters the protocol escapes, astral characters, quotes, strings that
break naive framings, a 1 MiB message, a burst of 500 messages, a client
close; then ``/close`` must reach the page as 3000 "Go away!".

The page is loaded cross-origin (another port than the SockJS server), as in
real deployments, which also exercises CORS and the iframe transports; and
same-origin, the only way the direct ``htmlfile`` transport is enabled.
"""

from __future__ import annotations

import functools
import random
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Page, Server

pytestmark = pytest.mark.browser

CROSS = "cross-origin"
SAME = "same-origin"

TRANSPORTS = [
    "websocket",
    "xhr-streaming",
    "eventsource",
    "iframe-eventsource",
    "htmlfile",
    "iframe-htmlfile",
    "xhr-polling",
    "iframe-xhr-polling",
    "jsonp-polling",
]
# The client enables direct htmlfile only for a same-origin page.
CASES = [
    pytest.param(transport, origin, id=f"{transport}-{origin}")
    for origin in (CROSS, SAME)
    for transport in TRANSPORTS
    if not (transport == "htmlfile" and origin == CROSS)
]

STEP_MS = 20_000


def _chars(*ranges: tuple[int, int]) -> list[str]:
    return [chr(c) for low, high in ranges for c in range(low, high + 1)]


# Every character the server must send as \uXXXX.
ESCAPED = _chars(
    (0x00, 0x1F), (0x200C, 0x200F), (0x2028, 0x202F), (0x2060, 0x206F), (0xFFF0, 0xFFFF)
)
CONTROLS = _chars((0x00, 0x1F), (0x7F, 0x9F))
ASCII = [
    "a",
    "hello",
    "Hello, world! 0123456789",
    "".join(chr(c) for c in range(0x20, 0x7F)),
    " leading and trailing spaces ",
]
ASTRAL = [
    "\U0001f600",
    "\U0001d11e clef",
    "a\U0001f4a9b\U00010000c\U0010ffff",
    "".join(chr(c) for c in range(0x1F600, 0x1F650)),
]
QUOTES = ['"', "'", "\\", '\\"', "\\\\", '"\\"', "\\u0041", "\\n", '{"a": ["b"]}', "'\"`"]
MARKUP = [
    "%",
    "%20",
    "%%",
    "100%",
    "%zz",
    "%0A%0D%00",
    "a%20b%",
    "</script>",
    "<!--",
    "-->",
    "</script><script>document.title='x'</script>",
    "<!--<script>",
    "]]>",
    "<\\/script>",
    "&amp;&lt;",
]


@functools.cache
def _mib_message() -> str:
    alphabet = [chr(c) for c in range(0x20, 0x7F)] * 4 + [
        "\u00e9",
        "\u20ac",
        "\U0001f600",
        "\u2028",
        "\x00",
        "\n",
        "%",
        "<",
        '"',
        "\\",
    ]
    return "".join(random.Random(1).choices(alphabet, k=1 << 20))


@functools.cache
def _burst() -> list[str]:
    rng = random.Random(2)
    return [f"{i}:" + "x" * rng.randrange(0, 200) for i in range(500)]


def _check_echo(page: Page, transport: str, messages: list[str], what: str) -> None:
    result = page.call("echo", messages, STEP_MS)
    _check_result(page, transport, result, what)


def _check_result(page: Page, transport: str, result: dict[str, Any], what: str) -> None:
    problems = []
    if result["transport"] != transport:
        problems.append(f"transport is {result['transport']!r}")
    if result["received"] != result["sent"]:
        problems.append(f"{result['received']} of {result['sent']} messages came back")
    if result["mismatches"]:
        problems.append(f"messages changed on the way: {result['mismatches']}")
    if result["close"] is not None:
        problems.append(f"connection closed: {result['close']}")
    assert not problems, (
        f"{what} over {transport}: " + "; ".join(problems) + "\n" + (page.diagnostics())
    )


def _assert_server_quiet(server: Server) -> None:
    log = server.new_log()
    assert "Traceback" not in log and "Error" not in log, f"the server logged:\n{log}"


def _origin(server: Server, origin: str) -> str:
    return server.page_origin if origin == CROSS else server.sockjs_origin


def _battery(page: Page, url: str, transport: str) -> None:
    """Open ``url`` over ``transport`` and echo every kind of message."""
    opened = page.call("open", url, transport, STEP_MS)
    assert opened["opened"], f"{transport} did not open: {opened}\n{page.diagnostics()}"
    assert opened["transport"] == transport, page.diagnostics()

    _check_echo(page, transport, ASCII, "plain ASCII")
    _check_echo(page, transport, ESCAPED, "each escaped character")
    _check_echo(page, transport, ["".join(ESCAPED)], "all escaped characters in one message")
    _check_echo(page, transport, ["\u2028", "\u2029", "a\u2028b\u2029c"], "U+2028/U+2029")
    _check_echo(page, transport, [*CONTROLS, "".join(CONTROLS)], "control characters")
    _check_echo(page, transport, ASTRAL, "astral-plane characters")
    _check_result(page, transport, page.call("echoLoneSurrogates", STEP_MS), "lone surrogates")
    _check_echo(page, transport, QUOTES, "quotes and backslashes")
    _check_echo(page, transport, MARKUP, "percent signs and markup")
    _check_echo(page, transport, [_mib_message()], "a 1 MiB message")
    _check_echo(page, transport, _burst(), "a burst of 500 messages")


@pytest.mark.parametrize(("transport", "origin"), CASES)
def test_transport_battery(
    page_factory: Any, sockjs_server: Server, transport: str, origin: str
) -> None:
    page: Page = page_factory(_origin(sockjs_server, origin))
    _battery(page, sockjs_server.sockjs_origin + "/echo", transport)

    closed = page.call("close", STEP_MS)
    assert closed is not None, f"no onclose after sock.close()\n{page.diagnostics()}"
    assert (closed["code"], closed["reason"]) == (1000, "Normal closure"), closed

    opened = page.call("open", sockjs_server.sockjs_origin + "/close", transport, STEP_MS)
    closed = page.call("waitClose", STEP_MS)
    assert opened["opened"], f"/close never opened: {opened} {closed}\n{page.diagnostics()}"
    assert opened["transport"] == transport, opened
    assert closed is not None, f"/close did not close\n{page.diagnostics()}"
    assert (closed["code"], closed["reason"]) == (3000, "Go away!"), (
        f"{closed}\n{page.diagnostics()}"
    )
    _assert_server_quiet(sockjs_server)


@pytest.mark.parametrize("origin", [CROSS, SAME])
def test_disabled_websocket_falls_back(
    page_factory: Any, sockjs_server: Server, origin: str
) -> None:
    page: Page = page_factory(_origin(sockjs_server, origin))
    url = sockjs_server.sockjs_origin + "/disabled_websocket_echo"
    opened = page.call("open", url, None, STEP_MS)
    assert opened["opened"], f"{opened}\n{page.diagnostics()}"
    transport = opened["transport"]
    assert transport not in (None, "websocket"), opened
    _check_echo(page, transport, [*ASCII, *QUOTES, *MARKUP], "fallback echo")
    _assert_server_quiet(sockjs_server)


@pytest.mark.parametrize("transport", [None, "xhr-streaming", "xhr-polling", "jsonp-polling"])
def test_cookie_needed_echo(
    page_factory: Any, sockjs_server: Server, transport: str | None
) -> None:
    page: Page = page_factory(sockjs_server.page_origin)
    url = sockjs_server.sockjs_origin + "/cookie_needed_echo"
    opened = page.call("open", url, transport, STEP_MS)
    assert opened["opened"], f"{opened}\n{page.diagnostics()}"
    if transport is not None:
        assert opened["transport"] == transport
    _check_echo(page, opened["transport"], [*ASCII, *ASTRAL], "cookie_needed echo")
    if transport is not None:
        # Every session response sets JSESSIONID for sticky load balancers.
        cookies = {c["name"]: c["value"] for c in page.page.context.cookies()}
        assert cookies.get("JSESSIONID") == "dummy", cookies
    _assert_server_quiet(sockjs_server)


# The extension each endpoint answers to Chromium's offer.
NO_TAKEOVER = "permessage-deflate; server_no_context_takeover"
COMPRESSION = [
    pytest.param("/echo", None, id="off"),
    pytest.param("/echo_deflate", NO_TAKEOVER, id="on"),
    pytest.param("/echo_deflate_0", NO_TAKEOVER, id="on-threshold-0"),
    pytest.param("/echo_deflate_200", NO_TAKEOVER, id="on-threshold-200"),
]


@pytest.mark.parametrize(("prefix", "answer"), COMPRESSION)
def test_websocket_compression_as_negotiated(
    page_factory: Any, sockjs_server: Server, prefix: str, answer: str | None
) -> None:
    """Chromium's offer and the server's answer, read from the browser's own
    view of the handshake (DevTools protocol), under each setting; then
    messages echo exactly over what was negotiated. The full battery runs
    with a threshold that gives both compressed and uncompressed frames
    (compression off runs it in test_transport_battery)."""
    page: Page = page_factory(sockjs_server.page_origin)
    cdp = page.page.context.new_cdp_session(page.page)
    handshakes: list[tuple[str, dict[str, str]]] = []
    cdp.on(
        "Network.webSocketWillSendHandshakeRequest",
        lambda e: handshakes.append(("offer", e["request"]["headers"])),
    )
    cdp.on(
        "Network.webSocketHandshakeResponseReceived",
        lambda e: handshakes.append(("answer", e["response"]["headers"])),
    )
    cdp.send("Network.enable")
    url = sockjs_server.sockjs_origin + prefix
    if prefix == "/echo_deflate_200":
        _battery(page, url, "websocket")
    else:
        opened = page.call("open", url, "websocket", STEP_MS)
        assert opened["opened"], f"{opened}\n{page.diagnostics()}"
        _check_echo(page, "websocket", [*ASCII, *ASTRAL, "".join(ESCAPED) * 50], "echo")
    seen = {kind: {k.lower(): v for k, v in headers.items()} for kind, headers in handshakes}
    assert seen["offer"]["sec-websocket-extensions"] == (
        "permessage-deflate; client_max_window_bits"
    ), seen
    assert seen["answer"].get("sec-websocket-extensions") == answer, seen
    closed = page.call("close", STEP_MS)
    assert closed is not None and closed["code"] == 1000, closed
    _assert_server_quiet(sockjs_server)
