"""Pure tests of the wire format: no sockets, no aiohttp."""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest

from aiohttp_sockjs import protocol
from aiohttp_sockjs.protocol import PayloadError

ESCAPED = (
    [chr(c) for c in range(0x00, 0x20)]
    + [chr(c) for c in range(0x200C, 0x2010)]
    + [chr(c) for c in range(0x2028, 0x2030)]
    + [chr(c) for c in range(0x2060, 0x2070)]
    + [chr(c) for c in range(0xFFF0, 0x10000)]
)


def test_frames() -> None:
    """The fixed frames and a close frame with the default reason."""
    assert protocol.OPEN_FRAME == "o"
    assert protocol.HEARTBEAT_FRAME == "h"
    assert protocol.close_frame(3000, "Go away!") == 'c[3000,"Go away!"]'


def test_close_reason_is_json_escaped() -> None:
    """A reason with quotes, backslashes and newlines stays valid JSON."""
    frame = protocol.close_frame(3001, 'say "hi"\\\n')
    assert frame[0] == "c"
    assert json.loads(frame[1:]) == [3001, 'say "hi"\\\n']


@pytest.mark.parametrize("char", ESCAPED, ids=lambda c: f"U+{ord(c):04X}")
def test_escape_set_goes_out_as_unicode_escapes(char: str) -> None:
    """Every character of the protocol's escape set is sent as \\uXXXX."""
    frame = protocol.encode_messages([char])
    assert char not in frame
    assert f"\\u{ord(char):04x}" in frame.lower() or char in "\b\f\n\r\t"
    assert json.loads(frame[1:]) == [char]


@pytest.mark.parametrize(
    "message",
    [
        "plain",
        "",
        'quotes " and \\ backslash',
        "astral \U0001f600 \U00010348",
        "lone \ud800 surrogate",
        "low \udfff then high \ud83d",
        "%, %20 and </script><!--",
        "mixed é ü 中文 \u2028\u2029",
    ],
)
def test_messages_round_trip(message: str) -> None:
    """Any string comes back equal after a JSON decode of its frame."""
    frame = protocol.encode_messages([message, message])
    assert frame.startswith("a[")
    assert json.loads(frame[1:]) == [message, message]
    assert _ESCAPE_RE.search(frame) is None


_ESCAPE_RE = re.compile("[\x00-\x1f\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff]")


def test_messages_frame_joins_encoded_messages() -> None:
    """Pre-encoded messages join into one array frame."""
    encoded = [protocol.encode_message("a"), protocol.encode_message('b"')]
    assert protocol.messages_frame(encoded) == 'a["a","b\\""]'


def test_encode_message_refuses_non_strings() -> None:
    """Only str is a SockJS message."""
    with pytest.raises(TypeError):
        protocol.encode_message(b"bytes")  # type: ignore[arg-type]


def test_xhr_chunk() -> None:
    """xhr frames end with a newline."""
    assert protocol.xhr_chunk("o") == b"o\n"
    assert len(protocol.XHR_STREAMING_PRELUDE) == 2049


def test_eventsource_percent_encodes() -> None:
    """%, CR, LF and NUL are percent-encoded inside an event."""
    frame = 'a["100% \\"x\\"\r\n\x00"]'
    chunk = protocol.eventsource_chunk(frame)
    assert chunk.startswith(b"data: ")
    assert chunk.endswith(b"\r\n\r\n")
    data = chunk[6:-4].decode()
    assert "%25" in data and "\r" not in data and "\n" not in data and "\x00" not in data
    assert urllib.parse.unquote(data) == frame


@pytest.mark.parametrize("message", ["</script>", "<!--", "</SCRIPT >", "<\u2028>"])
def test_htmlfile_chunk_never_closes_the_script(message: str) -> None:
    """No message can end the script block of an htmlfile stream."""
    frame = protocol.encode_messages([message])
    chunk = protocol.htmlfile_chunk(frame).decode()
    assert chunk.startswith("<script>\np(") and chunk.endswith(");\n</script>\r\n")
    inner = chunk[len("<script>\np(") : -len(");\n</script>\r\n")]
    assert "<" not in inner and ">" not in inner
    assert json.loads(json.loads(inner)[1:]) == [message]


def test_htmlfile_prelude() -> None:
    """The prelude calls the parent's callback and is padded past 1 KiB."""
    prelude = protocol.htmlfile_prelude("cb.x")
    assert len(prelude) > 1024
    assert b"var c = parent.cb.x;" in prelude


def test_jsonp_body() -> None:
    """JSONP keeps the /**/ prefix and carries the frame as a JS string."""
    body = protocol.jsonp_body("x", protocol.encode_messages(["abc", "%61bc"]))
    assert body == b'/**/x("a[\\"abc\\",\\"%61bc\\"]");\r\n'


@pytest.mark.parametrize("callback", ["x", "a.b_c-d", "_jp.a1b2", "A9"])
def test_valid_callbacks(callback: str) -> None:
    """Names made of [a-zA-Z0-9_.-] pass."""
    assert protocol.validate_callback(callback) == callback


@pytest.mark.parametrize(
    ("callback", "text"),
    [
        (None, '"callback" parameter required'),
        ("", '"callback" parameter required'),
        (" ", 'invalid "callback" parameter'),
        ("alert(1)//", 'invalid "callback" parameter'),
        ("a\nb", 'invalid "callback" parameter'),
        ("x" * 1000, 'invalid "callback" parameter'),
        ("é", 'invalid "callback" parameter'),
    ],
)
def test_invalid_callbacks(callback: str | None, text: str) -> None:
    """Anything else is refused with the protocol's text."""
    with pytest.raises(PayloadError) as info:
        protocol.validate_callback(callback)
    assert str(info.value) == text


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        (b'["a"]', ["a"]),
        (b'["a","b"]', ["a", "b"]),
        (b"[]", []),
        (b'["\\u2028\\ud83d\\ude00"]', ["\u2028\U0001f600"]),
        ('["é"]'.encode(), ["é"]),
    ],
)
def test_decode_payload(body: bytes, messages: list[str]) -> None:
    """Well-formed bodies decode to their messages."""
    assert protocol.decode_payload(body) == messages


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"", "Payload expected."),
        (b"[", "Broken JSON encoding."),
        (b'"a"', "Broken JSON encoding."),
        (b"[1]", "Broken JSON encoding."),
        (b'{"a": 1}', "Broken JSON encoding."),
        (b'["\xff"]', "Broken JSON encoding."),
        (b"[" * 100000 + b"]" * 100000, "Broken JSON encoding."),
        (b"[1e99999]", "Broken JSON encoding."),
        (b'["a"] x', "Broken JSON encoding."),
    ],
)
def test_decode_payload_errors(body: bytes, text: str) -> None:
    """Bad bodies raise PayloadError carrying the wire text."""
    with pytest.raises(PayloadError) as info:
        protocol.decode_payload(body)
    assert str(info.value) == text


def test_decode_websocket_payload() -> None:
    """Websocket frames take an array, a single string, or nothing."""
    assert protocol.decode_websocket_payload('["a","b"]') == ["a", "b"]
    assert protocol.decode_websocket_payload('"a"') == ["a"]
    assert protocol.decode_websocket_payload("") == []
    assert protocol.decode_websocket_payload("[]") == []
    for bad in ['"a', "[1]", "{}", "null"]:
        with pytest.raises(PayloadError):
            protocol.decode_websocket_payload(bad)


def test_info_body() -> None:
    """/info carries the flags, the origins and fresh entropy each time."""
    body = json.loads(protocol.info_body(False, True, entropy=7))
    assert body == {"websocket": False, "cookie_needed": True, "origins": ["*:*"], "entropy": 7}
    entropies = {json.loads(protocol.info_body(True, False))["entropy"] for _ in range(20)}
    assert len(entropies) > 1
    assert all(0 <= e < 2**32 for e in entropies)


def test_iframe_page_and_etag() -> None:
    """The iframe page loads the configured client; its ETag is stable."""
    page = protocol.iframe_page("http://x/sockjs.js")
    assert b'<script src="http://x/sockjs.js"></script>' in page
    assert b"SockJS.bootstrap_iframe();" in page
    assert protocol.iframe_etag(page) == protocol.iframe_etag(
        protocol.iframe_page("http://x/sockjs.js")
    )
    assert protocol.iframe_etag(page) != protocol.iframe_etag(protocol.iframe_page("http://y/s.js"))


def test_iframe_page_escapes_the_url() -> None:
    """A client URL cannot break out of the script tag's attribute."""
    page = protocol.iframe_page('http://x/"><script>alert(1)</script>')
    assert b'"><script>alert' not in page
