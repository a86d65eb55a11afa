"""JSONP polling and jsonp_send (§6, callbacks and CVE-2014-4671)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import endpoint_of
from tests.wire import (
    JS,
    NO_CACHE,
    TEXT,
    bounded,
    messages_of,
    new_id,
    parse_jsonp,
    receiver_attached,
    session_url,
)


async def jsonp(client: TestClient[Any, Any], sid: str, callback: str = "cb") -> bytes:
    """One JSONP poll on /echo; returns the body after checking the headers."""
    url = session_url("/echo", sid, "jsonp")
    async with client.get(url, params={"c": callback}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == JS
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Cache-Control"] == NO_CACHE
        return await resp.read()


async def open_jsonp(client: TestClient[Any, Any]) -> str:
    sid = new_id()
    assert await bounded(jsonp(client, sid)) == b'/**/cb("o");\r\n'
    return sid


async def test_jsonp_opens_session(conformance: TestClient[Any, Any]) -> None:
    """The first jsonp poll answers /**/CALLBACK("o"); with nosniff and no-cache."""
    sid = new_id()
    assert await bounded(jsonp(conformance, sid, "a.b_c-1")) == b'/**/a.b_c-1("o");\r\n'


async def test_jsonp_send_form(conformance: TestClient[Any, Any]) -> None:
    """A form-encoded d=<json> is accepted with 200 ok and echoed on the next poll."""
    sid = await open_jsonp(conformance)
    url = session_url("/echo", sid, "jsonp_send")
    async with conformance.post(url, data={"d": '["x","y z"]'}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == TEXT
        assert resp.headers["Cache-Control"] == NO_CACHE
        assert await resp.read() == b"ok"
    assert await bounded(jsonp(conformance, sid)) == b'/**/cb("a[\\"x\\",\\"y z\\"]");\r\n'


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=UTF-8"],
)
async def test_jsonp_send_form_percent_encoded(
    conformance: TestClient[Any, Any], content_type: str
) -> None:
    """A hand-encoded form body with other fields around d is decoded properly."""
    sid = await open_jsonp(conformance)
    url = session_url("/echo", sid, "jsonp_send")
    headers = {"Content-Type": content_type}
    body = b"x=1&d=%5B%22a%26b%3Dc%2B%22%5D&y=2"
    async with conformance.post(url, data=body, headers=headers) as resp:
        assert resp.status == 200
        assert await resp.read() == b"ok"
    body = await bounded(jsonp(conformance, sid))
    assert messages_of(parse_jsonp(body, "cb")) == ["a&b=c+"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json", "T"])
async def test_jsonp_send_raw_body(
    conformance: TestClient[Any, Any], content_type: str | None
) -> None:
    """A raw JSON body (not form-encoded) is accepted too."""
    sid = await open_jsonp(conformance)
    url = session_url("/echo", sid, "jsonp_send")
    headers = {} if content_type is None else {"Content-Type": content_type}
    async with conformance.post(url, data=b'["raw"]', headers=headers) as resp:
        assert resp.status == 200
        assert await resp.read() == b"ok"
    assert await bounded(jsonp(conformance, sid)) == b'/**/cb("a[\\"raw\\"]");\r\n'


@pytest.mark.parametrize(
    ("body", "form", "text"),
    [
        (b"", True, "Payload expected."),
        (b"", False, "Payload expected."),
        (b"d=", True, "Payload expected."),
        (b"p=p", True, "Payload expected."),
        (b"d=%5B%22x", True, "Broken JSON encoding."),
        (b"d=x", True, "Broken JSON encoding."),
        (b'["x', False, "Broken JSON encoding."),
        (b"[1]", False, "Broken JSON encoding."),
    ],
)
async def test_jsonp_send_bad_payload(
    conformance: TestClient[Any, Any], body: bytes, form: bool, text: str
) -> None:
    """Missing or broken jsonp_send payloads get a 500 with the protocol's text."""
    sid = await open_jsonp(conformance)
    url = session_url("/echo", sid, "jsonp_send")
    ctype = "application/x-www-form-urlencoded" if form else "text/plain"
    async with conformance.post(url, data=body, headers={"Content-Type": ctype}) as resp:
        assert resp.status == 500
        assert await resp.text() == text
    async with conformance.post(url, data={"d": '["alive"]'}) as resp:
        assert await resp.read() == b"ok"
    assert await bounded(jsonp(conformance, sid)) == b'/**/cb("a[\\"alive\\"]");\r\n'


async def test_jsonp_waits_for_messages(conformance: TestClient[Any, Any]) -> None:
    """A jsonp poll with nothing queued stays open until a message arrives."""
    sid = await open_jsonp(conformance)
    poll = asyncio.ensure_future(jsonp(conformance, sid))
    await receiver_attached(endpoint_of(conformance, "/echo"), sid)
    assert not poll.done()
    url = session_url("/echo", sid, "jsonp_send")
    async with conformance.post(url, data={"d": '["later"]'}) as resp:
        assert await resp.read() == b"ok"
    assert await bounded(poll) == b'/**/cb("a[\\"later\\"]");\r\n'


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("", '"callback" parameter required'),
        ("?c=", '"callback" parameter required'),
        ("?c=&callback=cb", '"callback" parameter required'),
        ("?callback=", '"callback" parameter required'),
        ("?c=%20", 'invalid "callback" parameter'),
        ("?callback=%20", 'invalid "callback" parameter'),
        ("?c=cb%3Balert(1)", 'invalid "callback" parameter'),
        ("?callback=cb%3Balert(1)", 'invalid "callback" parameter'),
        ("?callback=%3Cscript%3E", 'invalid "callback" parameter'),
        ("?callback=" + "a" * 257, 'invalid "callback" parameter'),
        ("?c=%3Cscript%3E", 'invalid "callback" parameter'),
        ("?c=a(b)", 'invalid "callback" parameter'),
        ("?c=a%2Fb", 'invalid "callback" parameter'),
        ("?c=a%22b", 'invalid "callback" parameter'),
        ("?c=%E2%80%A8", 'invalid "callback" parameter'),
    ],
)
async def test_jsonp_bad_callback(conformance: TestClient[Any, Any], query: str, text: str) -> None:
    """jsonp refuses a missing or unsafe callback with a 500, never reflecting it."""
    sid = new_id()
    url = f"http://{conformance.host}:{conformance.port}/echo/000/{sid}/jsonp{query}"
    async with conformance.session.get(url) as resp:
        assert resp.status == 500
        assert resp.headers["Content-Type"] == TEXT
        assert await resp.text() == text
    async with conformance.post(session_url("/echo", sid, "jsonp_send"), data=b'["x"]') as resp:
        assert resp.status == 404


async def test_jsonp_callback_parameter(conformance: TestClient[Any, Any]) -> None:
    """The callback may come as ``callback=`` too (as sockjs-node takes it); ``c=`` wins."""
    sid = new_id()
    url = session_url("/echo", sid, "jsonp")
    async with conformance.get(url, params={"callback": "my.cb_1"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == JS
        assert await resp.read() == b'/**/my.cb_1("o");\r\n'
    async with conformance.post(session_url("/echo", sid, "jsonp_send"), data={"d": '["x"]'}):
        pass
    async with conformance.get(url, params={"c": "first", "callback": "second"}) as resp:
        assert await resp.read() == b'/**/first("a[\\"x\\"]");\r\n'


async def test_jsonp_script_cannot_be_broken(conformance: TestClient[Any, Any]) -> None:
    """A message with </script> or <!-- does not appear literally in the JSONP body."""
    sid = await open_jsonp(conformance)
    url = session_url("/echo", sid, "jsonp_send")
    async with conformance.post(url, data={"d": '["</script><!--"]'}) as resp:
        assert await resp.read() == b"ok"
    body = await bounded(jsonp(conformance, sid))
    assert b"<" not in body and b">" not in body
    assert body.startswith(b'/**/cb("a[\\"') and body.endswith(b'\\"]");\r\n')
