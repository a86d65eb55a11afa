"""Encoding: the server's escapes and exact round trips on every transport (§3)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.wire import (
    ALL_TRANSPORTS,
    HTMLFILE_CHUNK,
    SERVER_ESCAPE_SET,
    SERVER_ESCAPES,
    bounded,
    messages_of,
    open_xhr_session,
    roundtrip,
    session_url,
    xhr,
)

# JSON's short escapes; the public suite's reference encoder (Python's json)
# uses them too, so they count as escaped.
SHORT = {"\b": "b", "\t": "t", "\n": "n", "\f": "f", "\r": "r"}
TOKEN = re.compile(r'\\u([0-9a-fA-F]{4})|\\(["\\/bfnrt])|([^"\\])', re.DOTALL)

ALL_BMP = "".join(chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF)


def check_escapes(frame: str) -> None:
    """Every server-escaped character in ``frame`` is written as a JSON escape."""
    assert SERVER_ESCAPES.search(frame) is None, "raw escapable character in frame"
    body = frame[3:-2]  # inside a["..."]
    pos = 0
    while pos < len(body):
        if body.startswith('","', pos):
            pos += 3
            continue
        m = TOKEN.match(body, pos)
        assert m is not None, body[pos : pos + 20]
        if m.group(3) is not None:
            assert SERVER_ESCAPES.match(m.group(3)) is None
        elif m.group(2) is not None and m.group(2) in "bfnrt":
            assert m.group(2) in SHORT.values()
        pos = m.end()


def check_wire(transport: str, frame: str, wire: bytes) -> None:
    """The bytes that carry the frame hold no escapable character in raw form either."""
    text = wire.decode("utf-8", "surrogatepass")
    if transport in ("xhr", "xhr_streaming"):
        payload = text.removesuffix("\n")
    elif transport == "eventsource":
        payload = text[len("data: ") : -len("\r\n\r\n")]
    elif transport == "htmlfile":
        m = HTMLFILE_CHUNK.fullmatch(wire)
        assert m is not None
        payload = m.group(1).decode()
    elif transport == "jsonp":
        payload = text[text.index("(") + 1 : -len(");\r\n")]
    else:
        payload = text
    assert SERVER_ESCAPES.search(payload) is None
    check_escapes(frame)


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
async def test_server_escape_set(serve: Any, transport: str) -> None:
    """Every character the server must escape round-trips and travels as \\uXXXX."""
    client = await serve()
    back, frame, wire = await roundtrip(client, "/e", transport, SERVER_ESCAPE_SET)
    assert back == SERVER_ESCAPE_SET
    check_wire(transport, frame, wire)
    # The characters without a JSON short form are exactly \\uXXXX.
    for char in SERVER_ESCAPE_SET:
        if char not in SHORT:
            assert f"\\u{ord(char):04x}" in frame.lower()


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
async def test_every_bmp_character(serve: Any, transport: str) -> None:
    """A message holding every BMP character (surrogates aside) round-trips exactly."""
    client = await serve()
    back, frame, wire = await roundtrip(client, "/e", transport, ALL_BMP)
    assert back == ALL_BMP
    check_wire(transport, frame, wire)


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
@pytest.mark.parametrize(
    "message",
    [
        "\U0001f600 \U0001d11e \U00010000 \U0010ffff",
        "\ud800",
        "\udfff",
        "a\udc00\ud800b",
        "\ud83d",
        "quotes \" ' and \\ backslashes \\\\ \\u0041 \\n /",
        "</script><!-- %25 % \u2028\u2029",
        "",
    ],
    ids=[
        "astral",
        "lone-high",
        "lone-low",
        "reversed-pair",
        "half-emoji",
        "quotes",
        "html",
        "empty",
    ],
)
async def test_roundtrip(serve: Any, transport: str, message: str) -> None:
    """Astral characters, lone surrogates sent escaped, quotes and backslashes round-trip."""
    client = await serve()
    back, frame, wire = await roundtrip(client, "/e", transport, message)
    assert back == message
    check_wire(transport, frame, wire)


async def test_client_may_send_raw_utf8(serve: Any) -> None:
    """A client may send non-ASCII characters unescaped as UTF-8."""
    client = await serve()
    sid = await open_xhr_session(client, "/e")
    message = "ünïcödé \U0001f600 \u2028"
    body = json.dumps([message], ensure_ascii=False).encode()
    async with client.post(session_url("/e", sid, "xhr_send"), data=body) as resp:
        assert resp.status == 204
    frame = (await bounded(xhr(client, "/e", sid)))[:-1]
    assert messages_of(frame) == [message]
    assert "\\u2028" in frame and "ü" in frame


async def test_websocket_raw_utf8(serve: Any) -> None:
    """A websocket client may send non-ASCII characters unescaped."""
    client = await serve()
    ws = await client.ws_connect(session_url("/e", "x", "websocket"))
    assert (await bounded(ws.receive())).data == "o"
    await ws.send_str('["ünï \U0001f600"]')
    assert (await bounded(ws.receive())).data == 'a["ünï \U0001f600"]'
    await ws.close()
