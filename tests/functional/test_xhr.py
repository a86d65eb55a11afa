"""The xhr transports: xhr, xhr_send, xhr_streaming, preflights, CORS, JSESSIONID (§5, §6)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import FAST, endpoint_of
from tests.functional.test_static import assert_year_ahead
from tests.wire import (
    CACHE_YEAR,
    JS,
    NO_CACHE,
    TEXT,
    XHR_PRELUDE,
    Stream,
    bounded,
    new_id,
    open_xhr_session,
    receiver_attached,
    session_url,
    xhr,
    xhr_send,
)


async def test_xhr_opens_session(conformance: TestClient[Any, Any]) -> None:
    """The first xhr poll creates the session and answers o with no-cache headers."""
    async with conformance.post(session_url("/echo", new_id(), "xhr")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == JS
        assert resp.headers["Cache-Control"] == NO_CACHE
        assert "Expires" not in resp.headers
        assert "Last-Modified" not in resp.headers
        assert "Set-Cookie" not in resp.headers
        assert await resp.read() == b"o\n"


async def test_server_id_is_ignored(conformance: TestClient[Any, Any]) -> None:
    """A session is found by session id alone, whatever the server id."""
    sid = new_id()
    async with conformance.post(f"/echo/abc/{sid}/xhr") as resp:
        assert await resp.read() == b"o\n"
    async with conformance.post(f"/echo/xyz/{sid}/xhr_send", data='["x"]') as resp:
        assert resp.status == 204
    async with conformance.post(f"/echo/000/{sid}/xhr") as resp:
        assert await resp.read() == b'a["x"]\n'


async def test_xhr_send_and_poll(conformance: TestClient[Any, Any]) -> None:
    """xhr_send answers an empty 204 and the next poll carries the echo."""
    sid = await open_xhr_session(conformance, "/echo")
    async with conformance.post(session_url("/echo", sid, "xhr_send"), data='["x"]') as resp:
        assert resp.status == 204
        assert resp.headers["Content-Type"] == TEXT
        assert resp.headers["Cache-Control"] == NO_CACHE
        assert await resp.read() == b""
    assert await bounded(xhr(conformance, "/echo", sid)) == 'a["x"]\n'


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "T",
        "application/json",
        "application/xml",
        "application/x-www-form-urlencoded",
        "text/xml; charset=utf-8",
    ],
)
async def test_xhr_send_any_content_type(
    conformance: TestClient[Any, Any], content_type: str | None
) -> None:
    """xhr_send reads the body as JSON whatever the Content-Type says."""
    sid = await open_xhr_session(conformance, "/echo")
    headers = {} if content_type is None else {"Content-Type": content_type}
    url = session_url("/echo", sid, "xhr_send")
    async with conformance.post(url, data=b'["a"]', headers=headers) as resp:
        assert resp.status == 204
    assert await bounded(xhr(conformance, "/echo", sid)) == 'a["a"]\n'


async def test_xhr_waits_for_messages(conformance: TestClient[Any, Any]) -> None:
    """A poll with nothing queued stays open until a message arrives."""
    sid = await open_xhr_session(conformance, "/echo")
    poll = asyncio.ensure_future(xhr(conformance, "/echo", sid))
    await receiver_attached(endpoint_of(conformance, "/echo"), sid)
    assert not poll.done()
    await xhr_send(conformance, "/echo", sid, "late")
    assert await bounded(poll) == 'a["late"]\n'


async def test_xhr_send_empty_array_is_ignored(conformance: TestClient[Any, Any]) -> None:
    """An xhr_send of [] is accepted and delivers nothing."""
    sid = await open_xhr_session(conformance, "/echo")
    async with conformance.post(session_url("/echo", sid, "xhr_send"), data=b"[]") as resp:
        assert resp.status == 204
    await xhr_send(conformance, "/echo", sid, "next")
    assert await bounded(xhr(conformance, "/echo", sid)) == 'a["next"]\n'


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"", "Payload expected."),
        (b'["x', "Broken JSON encoding."),
        (b"x", "Broken JSON encoding."),
        (b"[1]", "Broken JSON encoding."),
        (b'{"a": "b"}', "Broken JSON encoding."),
        (b'"x"', "Broken JSON encoding."),
        (b"\xff\xfe", "Broken JSON encoding."),
    ],
)
async def test_xhr_send_bad_payload(
    conformance: TestClient[Any, Any], body: bytes, text: str
) -> None:
    """A missing or broken xhr_send payload gets a 500 with the protocol's text."""
    sid = await open_xhr_session(conformance, "/echo")
    async with conformance.post(session_url("/echo", sid, "xhr_send"), data=body) as resp:
        assert resp.status == 500
        assert await resp.text() == text
    await xhr_send(conformance, "/echo", sid, "still alive")
    assert await bounded(xhr(conformance, "/echo", sid)) == 'a["still alive"]\n'


async def test_xhr_streaming(conformance: TestClient[Any, Any]) -> None:
    """xhr_streaming sends the 2 KiB prelude, then each frame on its own line."""
    sid = new_id()
    async with conformance.post(session_url("/echo", sid, "xhr_streaming")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == JS
        assert resp.headers["Cache-Control"] == NO_CACHE
        assert "Content-Length" not in resp.headers
        stream = Stream(resp)
        assert await stream.exactly(len(XHR_PRELUDE)) == XHR_PRELUDE
        assert await stream.until(b"\n") == b"o\n"
        await xhr_send(conformance, "/echo", sid, "x")
        assert await stream.until(b"\n") == b'a["x"]\n'
        await xhr_send(conformance, "/echo", sid, "y")
        assert await stream.until(b"\n") == b'a["y"]\n'


async def test_xhr_streaming_ends_at_response_limit(conformance: TestClient[Any, Any]) -> None:
    """The stream ends after response_limit bytes; the session lives on in a new one."""
    sid = new_id()
    big = "x" * 4096
    async with conformance.post(session_url("/echo", sid, "xhr_streaming")) as resp:
        stream = Stream(resp)
        assert await stream.exactly(len(XHR_PRELUDE)) == XHR_PRELUDE
        assert await stream.until(b"\n") == b"o\n"
        await xhr_send(conformance, "/echo", sid, big)
        assert await stream.until(b"\n") == b'a["' + big.encode() + b'"]\n'
        assert await stream.at_eof()
    async with conformance.post(session_url("/echo", sid, "xhr_streaming")) as resp:
        stream = Stream(resp)
        assert await stream.exactly(len(XHR_PRELUDE)) == XHR_PRELUDE
        await xhr_send(conformance, "/echo", sid, "after")
        assert await stream.until(b"\n") == b'a["after"]\n'


async def test_xhr_streaming_stays_open_below_limit(conformance: TestClient[Any, Any]) -> None:
    """Small frames below response_limit do not end the stream."""
    sid = new_id()
    async with conformance.post(session_url("/echo", sid, "xhr_streaming")) as resp:
        stream = Stream(resp)
        await stream.exactly(len(XHR_PRELUDE))
        assert await stream.until(b"\n") == b"o\n"
        for i in range(20):
            await xhr_send(conformance, "/echo", sid, str(i) * 10)
            assert await stream.until(b"\n") == b'a["' + str(i).encode() * 10 + b'"]\n'


@pytest.mark.parametrize("transport", ["xhr", "xhr_send", "xhr_streaming"])
@pytest.mark.parametrize("origin", [None, "https://example.com", "null"])
@pytest.mark.parametrize("request_headers", [None, "", "a, b"])
async def test_xhr_preflight(
    conformance: TestClient[Any, Any],
    transport: str,
    origin: str | None,
    request_headers: str | None,
) -> None:
    """OPTIONS on the xhr URLs is a year-cacheable preflight allowing OPTIONS and POST."""
    headers = {}
    if origin is not None:
        headers["Origin"] = origin
    if request_headers is not None:
        headers["Access-Control-Request-Headers"] = request_headers
    url = session_url("/echo", new_id(), transport)
    async with conformance.options(url, headers=headers) as resp:
        assert resp.status in (200, 204)
        assert await resp.read() == b""
        assert resp.headers["Cache-Control"] == CACHE_YEAR
        assert_year_ahead(resp.headers["Expires"])
        assert resp.headers["Access-Control-Max-Age"] == "31536000"
        assert resp.headers["Access-Control-Allow-Methods"] == "OPTIONS, POST"
        if request_headers:
            assert resp.headers["Access-Control-Allow-Headers"] == request_headers
        else:
            assert "Access-Control-Allow-Headers" not in resp.headers
        if origin is None:
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "Access-Control-Allow-Credentials" not in resp.headers
        else:
            assert resp.headers["Access-Control-Allow-Origin"] == origin
            assert resp.headers["Access-Control-Allow-Credentials"] == "true"


@pytest.mark.parametrize("origin", [None, "https://example.com", "null"])
async def test_xhr_cors(conformance: TestClient[Any, Any], origin: str | None) -> None:
    """xhr, xhr_send and xhr_streaming answer with the CORS headers of §5."""
    headers = {} if origin is None else {"Origin": origin}

    def check(resp: Any) -> None:
        if origin is None:
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "Access-Control-Allow-Credentials" not in resp.headers
        else:
            assert resp.headers["Access-Control-Allow-Origin"] == origin
            assert resp.headers["Access-Control-Allow-Credentials"] == "true"

    sid = new_id()
    async with conformance.post(session_url("/echo", sid, "xhr"), headers=headers) as resp:
        check(resp)
        assert await resp.read() == b"o\n"
    url = session_url("/echo", sid, "xhr_send")
    async with conformance.post(url, headers=headers, data='["x"]') as resp:
        check(resp)
        assert resp.status == 204
    url = session_url("/echo", new_id(), "xhr_streaming")
    async with conformance.post(url, headers=headers) as resp:
        check(resp)
        assert await Stream(resp).exactly(len(XHR_PRELUDE)) == XHR_PRELUDE


async def open_cookie_session(client: TestClient[Any, Any], headers: dict[str, str]) -> str:
    sid = new_id()
    url = session_url("/cookie_needed_echo", sid, "xhr")
    async with client.post(url, headers=headers) as resp:
        assert await resp.read() == b"o\n"
    return sid


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [(None, "JSESSIONID=dummy; Path=/"), ("JSESSIONID=abcdef", "JSESSIONID=abcdef; Path=/")],
)
@pytest.mark.parametrize(
    ("method", "transport"),
    [
        ("POST", "xhr"),
        ("POST", "xhr_send"),
        ("POST", "xhr_streaming"),
        ("GET", "eventsource"),
        ("GET", "htmlfile?c=x"),
        ("GET", "jsonp?c=x"),
        ("POST", "jsonp_send"),
        ("OPTIONS", "xhr"),
        ("OPTIONS", "xhr_send"),
    ],
)
async def test_jsessionid(
    aiohttp_client: Any, method: str, transport: str, cookie: str | None, expected: str
) -> None:
    """With cookie_needed every session response sets JSESSIONID (client's value or dummy)."""
    from aiohttp import DummyCookieJar

    from demo.conformance import make_app

    client = await aiohttp_client(make_app(**FAST), cookie_jar=DummyCookieJar())
    headers = {} if cookie is None else {"Cookie": cookie}
    # Senders need an open session; receivers open a new one and answer at once.
    sid = await open_cookie_session(client, headers) if "send" in transport else new_id()
    url = session_url("/cookie_needed_echo", sid, transport)
    async with client.request(method, url, headers=headers, data=b'["x"]') as resp:
        assert resp.status in (200, 204), await resp.text()
        assert resp.headers.getall("Set-Cookie") == [expected]


async def test_no_jsessionid_by_default(conformance: TestClient[Any, Any]) -> None:
    """Without cookie_needed no session response sets a cookie, even if the client has one."""
    sid = new_id()
    headers = {"Cookie": "JSESSIONID=abcdef"}
    async with conformance.post(session_url("/echo", sid, "xhr"), headers=headers) as resp:
        assert "Set-Cookie" not in resp.headers
    url = session_url("/echo", sid, "xhr_send")
    async with conformance.post(url, headers=headers, data='["x"]') as resp:
        assert "Set-Cookie" not in resp.headers


@pytest.mark.parametrize(
    ("method", "transport", "status"),
    [
        ("POST", "xhr", 200),
        ("POST", "xhr_send", 204),
        ("POST", "xhr_streaming", 200),
        ("GET", "eventsource", 200),
        ("GET", "htmlfile?c=cb", 200),
        ("GET", "jsonp?c=cb", 200),
        ("POST", "jsonp_send", 200),
    ],
)
async def test_session_responses_are_not_cached(
    conformance: TestClient[Any, Any], method: str, transport: str, status: int
) -> None:
    """Every session response carries the no-cache header and no Expires or Last-Modified."""
    sid = await open_xhr_session(conformance, "/echo") if "send" in transport else new_id()
    url = session_url("/echo", sid, transport)
    async with conformance.request(method, url, data=b'["x"]') as resp:
        assert resp.status == status
        assert resp.headers["Cache-Control"] == NO_CACHE
        assert "Expires" not in resp.headers
        assert "Last-Modified" not in resp.headers
