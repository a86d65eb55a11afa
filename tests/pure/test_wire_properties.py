"""Property-based tests of the wire format: every message survives every framing."""

from __future__ import annotations

import json
import re
import urllib.parse

from hypothesis import given, settings
from hypothesis import strategies as st

from aiohttp_sockjs import protocol
from aiohttp_sockjs.protocol import PayloadError

# Any str, lone surrogates included: browsers can send those.
texts = st.text(st.characters(codec=None, categories=None), max_size=200)
messages_lists = st.lists(texts, max_size=8)

_RESERVED = set(";/?:@&=+$,#")


def decode_uri(text: str) -> str:
    """JavaScript's decodeURI: %XX escapes of UTF-8, reserved characters kept."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        first = int(text[i + 1 : i + 3], 16)
        if first < 0x80:
            decoded = chr(first)
            out.append(text[i : i + 3] if decoded in _RESERVED else decoded)
            i += 3
            continue
        length = 2 if first >= 0xC0 else 1
        length = 3 if first >= 0xE0 else length
        length = 4 if first >= 0xF0 else length
        raw = bytes(int(text[i + 1 + 3 * k : i + 3 + 3 * k], 16) for k in range(length))
        out.append(raw.decode("utf-8"))  # raises like URIError when malformed
        i += 3 * length
    return "".join(out)


def js_string_literal(text: str) -> str:
    """Decode a double-quoted JavaScript string literal of ASCII with \\u escapes."""
    assert text.isascii()
    assert re.fullmatch(r'"(?:[^"\\\n\r]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"', text), text
    value: str = json.loads(text)
    return value


@given(texts)
def test_encode_message_is_json(message: str) -> None:
    encoded = protocol.encode_message(message)
    assert json.loads(encoded) == message
    # No raw character the protocol wants escaped.
    assert not re.search("[\x00-\x1f\u2028\u2029\u200c-\u200f\ufff0-\uffff]", encoded)


@given(messages_lists)
def test_messages_frame_round_trip(messages: list[str]) -> None:
    frame = protocol.encode_messages(messages)
    assert frame[0] == "a"
    assert json.loads(frame[1:]) == messages


@given(st.integers(0, 9999), texts)
def test_close_frame_round_trip(code: int, reason: str) -> None:
    frame = protocol.close_frame(code, reason)
    assert frame[0] == "c"
    assert json.loads(frame[1:]) == [code, reason]


@given(messages_lists)
def test_xhr_chunk_round_trip(messages: list[str]) -> None:
    data = protocol.xhr_chunk(protocol.encode_messages(messages))
    text = data.decode("utf-8")
    assert text.endswith("\n") and text.count("\n") == 1
    assert json.loads(text[1:-1]) == messages


@given(messages_lists)
def test_eventsource_chunk_round_trip(messages: list[str]) -> None:
    data = protocol.eventsource_chunk(protocol.encode_messages(messages))
    text = data.decode("utf-8")
    assert text.startswith("data: ") and text.endswith("\r\n\r\n")
    payload = text[len("data: ") : -4]
    # One event, one data line: no line break or NUL inside.
    assert not re.search("[\r\n\x00]", payload)
    assert json.loads(decode_uri(payload)[1:]) == messages


@given(messages_lists)
def test_eventsource_matches_urllib_where_no_reserved_escapes(messages: list[str]) -> None:
    # A cross-check of decode_uri itself on what the server actually emits.
    payload = protocol.eventsource_chunk(protocol.encode_messages(messages)).decode()[6:-4]
    if not re.search("%(?:2[3646bcf]|3[abdf]|40)", payload, re.I):
        assert decode_uri(payload) == urllib.parse.unquote(payload, errors="strict")


@given(messages_lists)
def test_htmlfile_chunk_round_trip(messages: list[str]) -> None:
    data = protocol.htmlfile_chunk(protocol.encode_messages(messages)).decode("utf-8")
    match = re.fullmatch(r"<script>\np\((.*)\);\n</script>\r\n", data, re.S)
    assert match is not None
    literal = match.group(1)
    # Nothing inside can end the script block or open a comment.
    assert "<" not in literal and ">" not in literal
    assert json.loads(js_string_literal(literal)[1:]) == messages


@given(st.from_regex(r"[a-zA-Z0-9_.\-]{1,256}", fullmatch=True), messages_lists)
def test_jsonp_body_round_trip(callback: str, messages: list[str]) -> None:
    data = protocol.jsonp_body(callback, protocol.encode_messages(messages)).decode("utf-8")
    prefix = "/**/" + callback + "("
    assert data.startswith(prefix) and data.endswith(");\r\n")
    literal = data[len(prefix) : -4]
    assert "<" not in literal and ">" not in literal
    assert json.loads(js_string_literal(literal)[1:]) == messages


@given(st.one_of(st.none(), st.text(max_size=300)))
def test_validate_callback(callback: str | None) -> None:
    try:
        result = protocol.validate_callback(callback)
    except PayloadError as exc:
        assert str(exc) in ('"callback" parameter required', 'invalid "callback" parameter')
    else:
        assert result == callback
        assert re.fullmatch(r"[a-zA-Z0-9_.\-]{1,256}", result)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)
payload_bytes = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    messages_lists.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 50_000).map(lambda n: b"[" * n),
    st.integers(1, 5_000).map(lambda n: b'["x",' * n + b'"y"' + b"]" * 1),
    st.integers(0, 400).map(lambda n: b"[" + b"9" * n + b"e99999]"),
    st.binary(max_size=40).map(lambda b: b'["' + b + b'"]'),
)


@settings(max_examples=500)
@given(payload_bytes)
def test_decode_payload_never_fails_unexpectedly(data: bytes) -> None:
    try:
        messages = protocol.decode_payload(data)
    except PayloadError as exc:
        assert str(exc) in (protocol.PAYLOAD_EXPECTED, protocol.BROKEN_JSON)
    else:
        assert type(messages) is list
        assert all(type(m) is str for m in messages)


@settings(max_examples=500)
@given(payload_bytes)
def test_decode_websocket_payload_never_fails_unexpectedly(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    try:
        messages = protocol.decode_websocket_payload(text)
    except PayloadError as exc:
        assert str(exc) == protocol.BROKEN_JSON
    else:
        assert all(type(m) is str for m in messages)


@given(messages_lists)
def test_client_payloads_round_trip(messages: list[str]) -> None:
    # What a browser's JSON.stringify sends, lone surrogates escaped.
    body = json.dumps(messages)
    assert protocol.decode_payload(body.encode()) == messages
    assert protocol.decode_websocket_payload(body) == messages
    # Raw UTF-8 (unescaped) as well, where it can be encoded.
    raw = json.dumps(messages, ensure_ascii=False)
    try:
        data = raw.encode("utf-8")
    except UnicodeEncodeError:
        return
    assert protocol.decode_payload(data) == messages
