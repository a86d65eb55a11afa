"""Streaming transports: eventsource and htmlfile, and HTTP/1.0 vs 1.1 streaming (§5, §6)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.wire import (
    HTML,
    NO_CACHE,
    XHR_PRELUDE,
    Receiver,
    Stream,
    bounded,
    new_id,
    parse_eventsource,
    parse_htmlfile,
    poll_after_abort,
    session_url,
    xhr_send,
)

HTMLFILE_O = b'<script>\np("o");\n</script>\r\n'


async def test_eventsource(conformance: TestClient[Any, Any]) -> None:
    """eventsource sends the \\r\\n prelude, then one data event per frame."""
    sid = new_id()
    async with conformance.get(session_url("/echo", sid, "eventsource")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream"
        assert resp.headers["Cache-Control"] == NO_CACHE
        assert "Content-Length" not in resp.headers
        stream = Stream(resp)
        assert await stream.exactly(2) == b"\r\n"
        assert await stream.until(b"\r\n\r\n") == b"data: o\r\n\r\n"
        await xhr_send(conformance, "/echo", sid, "x")
        assert await stream.until(b"\r\n\r\n") == b'data: a["x"]\r\n\r\n'
        await xhr_send(conformance, "/echo", sid, "y", "z")
        frames = []
        while len(frames) < 2 and sum(len(json.loads(f[1:])) for f in frames) < 2:
            frames.append(parse_eventsource(await stream.until(b"\r\n\r\n")))
        assert [m for f in frames for m in json.loads(f[1:])] == ["y", "z"]


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        ("%", b'data: a["%25"]\r\n\r\n'),
        ("100% %41 %0D%0a %00 %%", b'data: a["100%25 %2541 %250D%250a %2500 %25%25"]\r\n\r\n'),
        ("a\r\nb\x00", b'data: a["a\\r\\nb\\u0000"]\r\n\r\n'),
    ],
)
async def test_eventsource_percent_encoding(
    conformance: TestClient[Any, Any], message: str, wire: bytes
) -> None:
    """In eventsource data %, CR, LF and NUL never appear bare; decodeURI restores the frame."""
    sid = new_id()
    async with conformance.get(session_url("/echo", sid, "eventsource")) as resp:
        stream = Stream(resp)
        await stream.exactly(2)
        assert await stream.until(b"\r\n\r\n") == b"data: o\r\n\r\n"
        await xhr_send(conformance, "/echo", sid, message)
        event = await stream.until(b"\r\n\r\n")
    assert event == wire
    assert json.loads(parse_eventsource(event)[1:]) == [message]


async def test_eventsource_ends_at_response_limit(conformance: TestClient[Any, Any]) -> None:
    """An eventsource stream ends once response_limit bytes have gone out."""
    sid = new_id()
    big = "y" * 4096
    async with conformance.get(session_url("/echo", sid, "eventsource")) as resp:
        stream = Stream(resp)
        await stream.exactly(2)
        assert await stream.until(b"\r\n\r\n") == b"data: o\r\n\r\n"
        await xhr_send(conformance, "/echo", sid, big)
        assert await stream.until(b"\r\n\r\n") == b'data: a["' + big.encode() + b'"]\r\n\r\n'
        assert await stream.at_eof()


async def test_htmlfile(conformance: TestClient[Any, Any]) -> None:
    """htmlfile sends a padded page calling parent.CALLBACK, then a script block per frame."""
    sid = new_id()
    url = session_url("/echo", sid, "htmlfile")
    async with conformance.get(url, params={"c": "some.call_back-1"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == HTML
        assert resp.headers["Cache-Control"] == NO_CACHE
        stream = Stream(resp)
        head = await stream.until(HTMLFILE_O)
        prelude = head[: -len(HTMLFILE_O)]
        assert len(prelude) > 1024
        assert prelude.lower().startswith(b"<!doctype html>")
        assert b"parent.some.call_back-1" in prelude
        assert b"<script>\np(" not in prelude
        await xhr_send(conformance, "/echo", sid, "x")
        assert await stream.until(b"</script>\r\n") == b'<script>\np("a[\\"x\\"]");\n</script>\r\n'


async def test_htmlfile_callback_parameter(conformance: TestClient[Any, Any]) -> None:
    """htmlfile takes the callback as ``callback=`` too, as sockjs-node does."""
    url = session_url("/echo", new_id(), "htmlfile")
    async with conformance.get(url, params={"callback": "the.cb"}) as resp:
        assert resp.status == 200
        head = await Stream(resp).until(HTMLFILE_O)
        assert b"parent.the.cb;" in head


async def test_htmlfile_ends_at_response_limit(conformance: TestClient[Any, Any]) -> None:
    """An htmlfile stream ends once response_limit bytes have gone out."""
    sid = new_id()
    big = "z" * 4096
    async with conformance.get(session_url("/echo", sid, "htmlfile"), params={"c": "cb"}) as resp:
        stream = Stream(resp)
        await stream.until(HTMLFILE_O)
        await xhr_send(conformance, "/echo", sid, big)
        assert parse_htmlfile(await stream.until(b"</script>\r\n")) == 'a["' + big + '"]'
        assert await stream.at_eof()


@pytest.mark.parametrize(
    "message",
    [
        "</script><script>alert(1)</script>",
        "</SCRIPT >",
        "<!--<script>",
        "a</script\nb",
        "]]></script>-->",
    ],
)
async def test_htmlfile_never_closes_the_script(
    conformance: TestClient[Any, Any], message: str
) -> None:
    """A message holding </script or <!-- cannot end the script block of htmlfile."""
    sid = new_id()
    async with conformance.get(session_url("/echo", sid, "htmlfile"), params={"c": "cb"}) as resp:
        stream = Stream(resp)
        await stream.until(HTMLFILE_O)
        await xhr_send(conformance, "/echo", sid, message)
        chunk = await stream.until(b"\n</script>\r\n")
    assert chunk.lower().count(b"</script") == 1
    assert b"<!--" not in chunk
    assert b"<" not in chunk[len(b"<script>") : -len(b"</script>\r\n")]
    assert json.loads(parse_htmlfile(chunk)[1:]) == [message]


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("", '"callback" parameter required'),
        ("?c=", '"callback" parameter required'),
        ("?x=cb", '"callback" parameter required'),
        ("?c=&callback=cb", '"callback" parameter required'),
        ("?c=%20", 'invalid "callback" parameter'),
        ("?callback=a%20b", 'invalid "callback" parameter'),
        ("?callback=%3Cscript%3E", 'invalid "callback" parameter'),
        ("?c=a%20b", 'invalid "callback" parameter'),
        ("?c=cb%3Balert(1)", 'invalid "callback" parameter'),
        ("?c=%3Cscript%3E", 'invalid "callback" parameter'),
        ("?c=a(b)", 'invalid "callback" parameter'),
        ("?c=a%22b", 'invalid "callback" parameter'),
        ("?c=a%27b", 'invalid "callback" parameter'),
        ("?c=a%0Ab", 'invalid "callback" parameter'),
        ("?c=%C3%A9", 'invalid "callback" parameter'),
    ],
)
async def test_htmlfile_bad_callback(
    conformance: TestClient[Any, Any], query: str, text: str
) -> None:
    """htmlfile refuses a missing or unsafe callback with a 500, creating no session."""
    sid = new_id()
    url = f"http://{conformance.host}:{conformance.port}/echo/000/{sid}/htmlfile{query}"
    async with conformance.session.get(url) as resp:
        assert resp.status == 500
        assert resp.headers["Content-Type"] == "text/plain; charset=UTF-8"
        assert await resp.text() == text
    async with conformance.post(session_url("/echo", sid, "xhr_send"), data='["x"]') as resp:
        assert resp.status == 404


@pytest.mark.parametrize("transport", ["eventsource", "htmlfile"])
async def test_streams_open_new_session(conformance: TestClient[Any, Any], transport: str) -> None:
    """The streaming GET transports create the session and can be followed by xhr polls."""
    sid = new_id()
    async with conformance.get(session_url("/echo", sid, transport), params={"c": "cb"}) as resp:
        stream = Stream(resp)
        if transport == "eventsource":
            assert await stream.exactly(2) == b"\r\n"
            assert await stream.until(b"\r\n\r\n") == b"data: o\r\n\r\n"
        else:
            await stream.until(HTMLFILE_O)
    # The stream was closed by the client before anything was queued; the
    # session then answers either a fresh o or the interruption close.
    assert await poll_after_abort(conformance, "/echo", sid) in (
        "o\n",
        'c[1002,"Connection interrupted"]\n',
    )


# --- HTTP/1.0 and HTTP/1.1 over a raw socket -------------------------------


async def read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    """Read a response status line and headers (names lower-cased)."""
    head = await bounded(reader.readuntil(b"\r\n\r\n"))
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    """Read a chunked body to its last chunk."""
    body = b""
    while True:
        size = int((await bounded(reader.readuntil(b"\r\n"))).strip(), 16)
        if size == 0:
            assert await bounded(reader.readexactly(2)) == b"\r\n"
            return body
        body += await bounded(reader.readexactly(size))
        assert await bounded(reader.readexactly(2)) == b"\r\n"


STREAMS = [
    ("POST", "xhr_streaming", XHR_PRELUDE + b"o\n", b'a["' + b"x" * 4096 + b'"]\n'),
    ("GET", "eventsource", b"\r\ndata: o\r\n\r\n", b'data: a["' + b"x" * 4096 + b'"]\r\n\r\n'),
]

STREAM_IDS = ["xhr_streaming", "eventsource"]


@pytest.mark.parametrize(("method", "transport", "start", "end"), STREAMS, ids=STREAM_IDS)
async def test_http10_streaming(
    conformance: TestClient[Any, Any], method: str, transport: str, start: bytes, end: bytes
) -> None:
    """Over HTTP/1.0 a stream has no Transfer-Encoding nor Content-Length and closes at the end."""
    sid = new_id()
    reader, writer = await asyncio.open_connection(conformance.host, conformance.port)
    try:
        writer.write(
            f"{method} /echo/000/{sid}/{transport} HTTP/1.0\r\n"
            f"Host: {conformance.host}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        status, headers = await read_head(reader)
        assert status.split()[1] == "200"
        assert "transfer-encoding" not in headers
        assert "content-length" not in headers
        assert await bounded(reader.readexactly(len(start))) == start
        await xhr_send(conformance, "/echo", sid, "x" * 4096)
        assert await bounded(reader.readexactly(len(end))) == end
        assert await bounded(reader.read()) == b""
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(("method", "transport", "start", "end"), STREAMS, ids=STREAM_IDS)
async def test_http11_streaming_chunked_keepalive(
    conformance: TestClient[Any, Any], method: str, transport: str, start: bytes, end: bytes
) -> None:
    """Over HTTP/1.1 a stream is chunked and the connection serves the next request."""
    sid = new_id()
    reader, writer = await asyncio.open_connection(conformance.host, conformance.port)
    try:
        writer.write(
            f"{method} /echo/000/{sid}/{transport} HTTP/1.1\r\n"
            f"Host: {conformance.host}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        status, headers = await read_head(reader)
        assert status.split()[1] == "200"
        assert headers["transfer-encoding"] == "chunked"
        assert "content-length" not in headers
        assert headers.get("connection", "keep-alive").lower() != "close"
        await xhr_send(conformance, "/echo", sid, "x" * 4096)
        assert await read_chunked(reader) == start + end
        writer.write(f"GET /echo HTTP/1.1\r\nHost: {conformance.host}\r\n\r\n".encode())
        status, headers = await read_head(reader)
        assert status.split()[1] == "200"
        length = int(headers["content-length"])
        assert await bounded(reader.readexactly(length)) == b"Welcome to SockJS!\n"
    finally:
        writer.close()
        await writer.wait_closed()


async def test_http10_xhr_poll(conformance: TestClient[Any, Any]) -> None:
    """A plain xhr poll over HTTP/1.0 gets its frame and a closed connection."""
    sid = new_id()
    reader, writer = await asyncio.open_connection(conformance.host, conformance.port)
    try:
        writer.write(
            f"POST /echo/000/{sid}/xhr HTTP/1.0\r\n"
            f"Host: {conformance.host}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        status, _ = await read_head(reader)
        assert status.split()[1] == "200"
        assert await bounded(reader.read()) == b"o\n"
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("transport", ["xhr_streaming", "eventsource", "htmlfile"])
async def test_no_message_lost_across_response_limits(serve: Any, transport: str) -> None:
    """With a tiny response_limit, messages cross many streams, each once and in order."""
    client = await serve(response_limit=64)
    sid = new_id()
    expected = [f"message {i:02d} " + "m" * 30 for i in range(20)]
    rx = Receiver(client, "/e", sid, transport)
    assert await rx.start() == "o"
    for message in expected:
        await xhr_send(client, "/e", sid, message)
    got: list[str] = []
    streams = 1
    while len(got) < len(expected):
        assert rx.stream is not None
        if await rx.stream.at_eof():
            await rx.close()
            rx = Receiver(client, "/e", sid, transport)
            streams += 1
            frame = await rx.start()
        else:
            frame = await rx.frame()
        got += json.loads(frame[1:])
    await rx.close()
    assert got == expected
    assert streams > 1
