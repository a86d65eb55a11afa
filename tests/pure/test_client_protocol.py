"""The client side of the wire format: payloads out, frames and streams in."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiohttp_sockjs import protocol
from aiohttp_sockjs.protocol import (
    CloseFrame,
    EventStreamReader,
    FrameError,
    HeartbeatFrame,
    LineReader,
    MessageFrame,
    OpenFrame,
)

from .test_wire_properties import decode_uri, messages_lists, texts

# --- payloads and frames --------------------------------------------------


@given(messages_lists)
def test_payload_round_trips_through_the_server_decoder(messages: list[str]) -> None:
    assert protocol.decode_payload(protocol.encode_payload(messages)) == messages


@given(messages_lists)
def test_message_frames_round_trip(messages: list[str]) -> None:
    frame = protocol.decode_frame(protocol.encode_messages(messages))
    assert frame == MessageFrame(tuple(messages))


@given(st.integers(0, 9999), texts)
def test_close_frames_round_trip(code: int, reason: str) -> None:
    assert protocol.decode_frame(protocol.close_frame(code, reason)) == CloseFrame(code, reason)


def test_open_and_heartbeat() -> None:
    assert protocol.decode_frame("o") == OpenFrame()
    assert protocol.decode_frame("h") == HeartbeatFrame()
    assert protocol.decode_frame("a[]") == MessageFrame(())


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "x",
        "oo",
        "hh",
        "O",
        "a",
        "a[1]",
        'a["x",null]',
        'a"x"',
        'a["unterminated',
        'a["x"] trailing',
        "c",
        "c[3000]",
        'c["3000","x"]',
        'c[true,"x"]',
        'c[3000,"x",1]',
        "c[3000,null]",
        'c[99999999999999999999999,"x"]',
    ],
)
def test_bad_frames(frame: str) -> None:
    with pytest.raises(FrameError):
        protocol.decode_frame(frame)


def test_info() -> None:
    info = protocol.decode_info(protocol.info_body(websocket=False, cookie_needed=True))
    assert (info.websocket, info.cookie_needed) == (False, True)
    for body in (b"", b"[]", b'{"websocket": 1}', b"nope"):
        with pytest.raises(FrameError):
            protocol.decode_info(body)


# --- streams -----------------------------------------------------------------


def lines_of(reader: LineReader) -> list[str]:
    out = []
    while (line := reader.next_line()) is not None:
        out.append(line)
    return out


def events_of(reader: EventStreamReader) -> list[str]:
    out = []
    while (event := reader.next_event()) is not None:
        out.append(event)
    return out


@given(messages_lists, st.data())
def test_xhr_body_split_anywhere(messages: list[str], data: st.DataObject) -> None:
    """Frames come out whole however the body is cut into chunks."""
    frames = ["o", protocol.encode_messages(messages), "h", protocol.close_frame(3000, "x")]
    body = b"".join(protocol.xhr_chunk(frame) for frame in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=6)))
    reader = LineReader(max_line=len(body))
    got: list[str] = []
    for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True):
        reader.feed(body[start:end])
        got += lines_of(reader)
    assert got == frames
    assert not reader.partial


def test_line_reader_bounds_and_errors() -> None:
    reader = LineReader(max_line=10)
    reader.feed(b"o\n" + b"a" * 11)
    assert reader.next_line() == "o"
    with pytest.raises(FrameError, match="longer than 10"):
        reader.next_line()
    reader = LineReader(max_line=10)
    reader.feed(b'a["\xff"]\nh\n')
    with pytest.raises(FrameError, match="UTF-8"):
        reader.next_line()
    reader = LineReader(max_line=10)
    reader.feed(b"o\na[")
    assert lines_of(reader) == ["o"]
    assert reader.partial


@given(messages_lists, st.data())
def test_eventsource_round_trips_the_server_framing(
    messages: list[str], data: st.DataObject
) -> None:
    """What the server's eventsource_chunk sends, the client reads back, however cut."""
    frames = ["o", protocol.encode_messages(messages), protocol.close_frame(1000, "%\r\n")]
    body = protocol.EVENTSOURCE_PRELUDE + b"".join(map(protocol.eventsource_chunk, frames))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=6)))
    reader = EventStreamReader(max_line=len(body))
    got: list[str] = []
    for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True):
        reader.feed(body[start:end])
        got += [protocol.decode_eventsource_data(event) for event in events_of(reader)]
    assert got == frames
    assert not reader.partial


@pytest.mark.parametrize(
    ("body", "events"),
    [
        (b"data: x\n\n", ["x"]),
        (b"data:x\r\rdata: y\r\n\r\n", ["x", "y"]),
        (b"\xef\xbb\xbfdata: x\n\n", ["x"]),
        (b": comment\nevent: e\nid: 1\ndata: a\ndata: b\n\n", ["a\nb"]),
        (b"data\n\n", [""]),
        (b"\r\n\n\n", []),
        (b"data: x\n", []),
    ],
)
def test_event_stream_format(body: bytes, events: list[str]) -> None:
    for size in (1, 2, len(body)):
        reader = EventStreamReader(max_line=100)
        got: list[str] = []
        for i in range(0, len(body), size):
            reader.feed(body[i : i + size])
            got += events_of(reader)
        assert got == events, size


def test_event_stream_bounds() -> None:
    reader = EventStreamReader(max_line=10)
    reader.feed(b"data: o\n\ndata: " + b"a" * 10)
    assert reader.next_event() == "o"
    with pytest.raises(FrameError, match="longer than 10"):
        reader.next_event()


@given(st.text(st.characters(codec="utf-8"), max_size=50))
def test_eventsource_decoding_is_decode_uri(text: str) -> None:
    """Percent-encoded text decodes as JavaScript's decodeURI would."""
    encoded = urllib.parse.quote(text, safe="")
    assert protocol.decode_eventsource_data(encoded) == decode_uri(encoded)


@pytest.mark.parametrize("data", ["%", "100%", "%zz", "%4", "%ff", "%e2%82"])
def test_eventsource_bad_escapes(data: str) -> None:
    with pytest.raises(FrameError):
        protocol.decode_eventsource_data(data)


def test_eventsource_keeps_reserved_escapes() -> None:
    assert protocol.decode_eventsource_data("%23%2f%25%41") == "%23%2f%A"


@given(messages_lists)
def test_utf8_payload_is_the_payload_encoded(messages: list[str]) -> None:
    payload = protocol.encode_payload_utf8(messages)
    assert protocol.decode_payload(payload.decode()) == messages
    assert payload == protocol.encode_payload(messages).encode()


def test_payloads_with_a_lone_surrogate_go_as_ascii() -> None:
    for encode in (protocol.encode_payload, lambda m: protocol.encode_payload_utf8(m).decode()):
        assert encode(["\ud800", "é"]) == '["\\ud800","\\u00e9"]'
        assert encode(["é\u2028"]) == '["é\u2028"]'
    with pytest.raises(TypeError):
        protocol.encode_payload_utf8(["a", b"b"])  # type: ignore[list-item]
