"""Static URLs: greeting, 404s, the iframe page, /info and its preflight (PROTOCOL §1, §2)."""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import aiohttp_sockjs
from demo.conformance import echo
from tests.wire import CACHE_YEAR, HTML, JSON_TYPE, NO_CACHE, TEXT, new_id, session_url

IFRAME_PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="{url}"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>"""

CLIENT_URL = "http://localhost:8080/lib/sockjs.js"
ONE_YEAR = 365 * 24 * 3600


async def raw_get(client: TestClient[Any, Any], path: str, method: str = "GET") -> int:
    """Request ``path`` verbatim (no URL normalisation) and return the status."""
    url = f"http://{client.host}:{client.port}{path}"
    async with client.session.request(method, url) as resp:
        await resp.read()
        return resp.status


def assert_year_ahead(expires: str) -> None:
    """An ``Expires`` date about one year from now."""
    delta = parsedate_to_datetime(expires).timestamp() - time.time()
    assert ONE_YEAR - 3600 < delta < ONE_YEAR + 3600


@pytest.mark.parametrize("path", ["/echo", "/echo/"])
async def test_greeting(conformance: TestClient[Any, Any], path: str) -> None:
    """GET base and base/ answer the plain-text greeting without a cookie."""
    async with conformance.get(path) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == TEXT
        assert await resp.read() == b"Welcome to SockJS!\n"
        assert "Set-Cookie" not in resp.headers


async def test_greeting_sets_no_cookie_even_when_cookie_needed(
    conformance: TestClient[Any, Any],
) -> None:
    """The greeting sets no JSESSIONID even on an endpoint that wants cookies."""
    async with conformance.get("/cookie_needed_echo") as resp:
        assert resp.status == 200
        assert await resp.read() == b"Welcome to SockJS!\n"
        assert "Set-Cookie" not in resp.headers


@pytest.mark.parametrize(
    "suffix", ["/a", "/a.html", "//", "///", "/a/a", "/a/a/", "/a/", "/info/", "/a/a/a/"]
)
async def test_unknown_paths_are_404(conformance: TestClient[Any, Any], suffix: str) -> None:
    """Paths under base that are not part of the protocol answer 404."""
    assert await raw_get(conformance, "/echo" + suffix) == 404


@pytest.mark.parametrize(
    "suffix",
    [
        "/a./a/xhr",
        "/a/a./xhr",
        "/././xhr",
        "//a/xhr",
        "/a//xhr",
        "/a/a/xhr_bogus",
        "/a/a/XHR",
        "/a/a/xhr/",
    ],
)
async def test_bad_session_urls_are_404(conformance: TestClient[Any, Any], suffix: str) -> None:
    """Session URLs with dots, empty segments or unknown transports answer 404."""
    assert await raw_get(conformance, "/echo" + suffix, "POST") == 404


@pytest.mark.parametrize(
    "path",
    [
        "/iframe.html",
        "/iframe-a.html",
        "/iframe-0.1.2.html",
        "/iframe-0.1.2abc-dirty.2144.html",
        "/iframe.html?t=1234",
        "/iframe-a.html?a=b&c=d",
    ],
)
async def test_iframe_page(aiohttp_client: Any, path: str) -> None:
    """The iframe page has the configured client URL and year-long cache headers."""
    app = web.Application()
    aiohttp_sockjs.setup(app, "/echo", echo, sockjs_url=CLIENT_URL, cookie_needed=True)
    client = await aiohttp_client(app)
    async with client.get("/echo" + path) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == HTML
        assert resp.headers["Cache-Control"] == CACHE_YEAR
        assert_year_ahead(resp.headers["Expires"])
        assert resp.headers["ETag"]
        assert "Last-Modified" not in resp.headers
        assert "Set-Cookie" not in resp.headers
        assert await resp.text() == IFRAME_PAGE.format(url=CLIENT_URL)


async def test_iframe_default_client_url(conformance: TestClient[Any, Any]) -> None:
    """Without a configured URL the page loads sockjs-client 1.x from a public CDN."""
    async with conformance.get("/echo/iframe.html") as resp:
        body = await resp.text()
    start = body.index('<script src="') + len('<script src="')
    url = body[start : body.index('"', start)]
    assert url.startswith("https://") and "sockjs" in url and "@1" in url
    assert body == IFRAME_PAGE.format(url=url)


async def test_iframe_etag_is_stable_and_304(conformance: TestClient[Any, Any]) -> None:
    """The ETag is the same on every variant; If-None-Match gets 304 with no body or type."""
    etags = set()
    for path in ("/echo/iframe.html", "/echo/iframe-1.2.3.html", "/echo/iframe.html?x=1"):
        async with conformance.get(path) as resp:
            etags.add(resp.headers["ETag"])
    assert len(etags) == 1
    etag = etags.pop()
    async with conformance.get("/echo/iframe.html", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
        assert "Content-Type" not in resp.headers
        assert await resp.read() == b""
    async with conformance.get("/echo/iframe.html", headers={"If-None-Match": '"x"'}) as resp:
        assert resp.status == 200
    for header in (f'"x", {etag}', f"W/{etag}", "*"):
        async with conformance.get("/echo/iframe.html", headers={"If-None-Match": header}) as resp:
            assert resp.status == 304, header
            assert resp.headers["ETag"] == etag
            assert await resp.read() == b""


@pytest.mark.parametrize(
    "suffix",
    [
        "/iframe.htm",
        "/iframe",
        "/IFRAME.HTML",
        "/IFRAME",
        "/iframe.HTML",
        "/iframe.xml",
        "/iframe-/.html",
        "/iframe-A.html",
        "/iframe.html.html",
    ],
)
async def test_iframe_lookalikes_are_404(conformance: TestClient[Any, Any], suffix: str) -> None:
    """Only iframe.html and iframe-<[0-9a-z._-]>.html are the iframe page."""
    assert await raw_get(conformance, "/echo" + suffix) == 404


async def test_info(conformance: TestClient[Any, Any]) -> None:
    """/info answers the JSON description with no-cache and CORS headers, no cookie."""
    async with conformance.get("/echo/info") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == JSON_TYPE
        assert resp.headers["Cache-Control"] == NO_CACHE
        assert "Expires" not in resp.headers
        assert "Last-Modified" not in resp.headers
        assert "Set-Cookie" not in resp.headers
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in resp.headers
        info = json.loads(await resp.read())
    assert set(info) == {"websocket", "cookie_needed", "origins", "entropy"}
    assert info["websocket"] is True
    assert info["cookie_needed"] is False
    assert info["origins"] == ["*:*"]
    assert type(info["entropy"]) is int
    assert 0 <= info["entropy"] < 2**32


async def test_info_entropy_changes(conformance: TestClient[Any, Any]) -> None:
    """Every /info call carries a new random entropy."""
    values = set()
    for _ in range(5):
        async with conformance.get("/echo/info") as resp:
            values.add(json.loads(await resp.read())["entropy"])
    assert len(values) > 1


@pytest.mark.parametrize("origin", ["https://example.com", "null"])
async def test_info_cors_with_origin(conformance: TestClient[Any, Any], origin: str) -> None:
    """/info echoes the Origin (even the literal null) and allows credentials."""
    async with conformance.get("/echo/info", headers={"Origin": origin}) as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == origin
        assert resp.headers["Access-Control-Allow-Credentials"] == "true"


async def test_info_disabled_websocket(conformance: TestClient[Any, Any]) -> None:
    """/info says websocket false when the websocket transport is off."""
    async with conformance.get("/disabled_websocket_echo/info") as resp:
        info = json.loads(await resp.read())
    assert info["websocket"] is False
    assert info["cookie_needed"] is False


async def test_info_cookie_needed(conformance: TestClient[Any, Any]) -> None:
    """/info says cookie_needed true on a JSESSIONID endpoint but sets no cookie."""
    async with conformance.get("/cookie_needed_echo/info") as resp:
        assert "Set-Cookie" not in resp.headers
        info = json.loads(await resp.read())
    assert info["cookie_needed"] is True
    assert info["websocket"] is True


@pytest.mark.parametrize("origin", [None, "https://example.com", "null"])
async def test_info_preflight(conformance: TestClient[Any, Any], origin: str | None) -> None:
    """OPTIONS /info is a CORS preflight allowing OPTIONS and GET."""
    headers = {"Access-Control-Request-Headers": "a, b, c"}
    if origin is not None:
        headers["Origin"] = origin
    async with conformance.options("/echo/info", headers=headers) as resp:
        assert resp.status in (200, 204)
        assert await resp.read() == b""
        assert resp.headers["Cache-Control"] == CACHE_YEAR
        assert_year_ahead(resp.headers["Expires"])
        assert resp.headers["Access-Control-Max-Age"] == "31536000"
        assert resp.headers["Access-Control-Allow-Methods"] == "OPTIONS, GET"
        assert resp.headers["Access-Control-Allow-Headers"] == "a, b, c"
        assert "Set-Cookie" not in resp.headers
        if origin is None:
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "Access-Control-Allow-Credentials" not in resp.headers
        else:
            assert resp.headers["Access-Control-Allow-Origin"] == origin
            assert resp.headers["Access-Control-Allow-Credentials"] == "true"


@pytest.mark.parametrize(
    ("transport", "method", "url"),
    [
        ("websocket", "GET", "websocket"),
        ("raw_websocket", "GET", None),
        ("xhr", "POST", "xhr"),
        ("xhr_streaming", "POST", "xhr_streaming"),
        ("eventsource", "GET", "eventsource"),
        ("htmlfile", "GET", "htmlfile?c=x"),
        ("jsonp", "GET", "jsonp?c=x"),
        ("jsonp", "POST", "jsonp_send"),
    ],
)
async def test_disabled_transport_is_404(
    serve: Any, transport: str, method: str, url: str | None
) -> None:
    """A transport turned off per endpoint answers 404, even to a valid upgrade."""
    client = await serve(disabled_transports={transport})
    path = "/e/websocket" if url is None else session_url("/e", new_id(), url)
    headers = {}
    if "websocket" in transport:
        headers = {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        }
    # No body with an upgrade request: some aiohttp versions drop the
    # connection when one follows it.
    data = None if headers else b'["x"]'
    async with client.request(method, path, headers=headers, data=data) as resp:
        assert resp.status == 404


async def test_xhr_send_gone_when_every_xhr_send_user_is_off(serve: Any) -> None:
    """xhr_send is served only while some transport that sends through it is on."""
    client = await serve(disabled_transports={"xhr", "xhr_streaming", "eventsource", "htmlfile"})
    async with client.post(session_url("/e", new_id(), "xhr_send"), data=b'["x"]') as resp:
        assert resp.status == 404


UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


async def upgrade_status(client: TestClient[Any, Any], path: str) -> int:
    """The status of a valid websocket upgrade request to ``path``."""
    async with client.get(path, headers=UPGRADE) as resp:
        return resp.status


async def test_disabled_websocket_disables_raw_websocket(
    conformance: TestClient[Any, Any],
) -> None:
    """With websocket off, /info says so and base/websocket is 404 too (as sockjs-node)."""
    base = "/disabled_websocket_echo"
    async with conformance.get(base + "/info") as resp:
        assert (await resp.json())["websocket"] is False
    assert await upgrade_status(conformance, base + "/websocket") == 404
    assert await upgrade_status(conformance, session_url(base, new_id(), "websocket")) == 404


async def test_raw_websocket_kept_when_asked(serve: Any) -> None:
    """``raw_websocket=True`` keeps base/websocket while SockJS's websocket is off."""
    client = await serve(disabled_transports={"websocket"}, raw_websocket=True)
    async with client.get("/e/info") as resp:
        assert (await resp.json())["websocket"] is False
    assert await upgrade_status(client, session_url("/e", new_id(), "websocket")) == 404
    ws = await client.ws_connect("/e/websocket")
    await ws.send_str("hello")
    assert (await ws.receive(timeout=3)).data == "hello"
    await ws.close()


async def test_raw_websocket_false_keeps_websocket(serve: Any) -> None:
    """``raw_websocket=False`` turns off base/websocket only."""
    client = await serve(raw_websocket=False)
    assert await upgrade_status(client, "/e/websocket") == 404
    ws = await client.ws_connect(session_url("/e", new_id(), "websocket"))
    assert (await ws.receive(timeout=3)).data == "o"
    await ws.close()


def test_raw_websocket_true_and_disabled_is_an_error() -> None:
    """Asking for raw_websocket and disabling it at once is refused at setup."""
    with pytest.raises(ValueError, match="raw_websocket"):
        aiohttp_sockjs.setup(
            web.Application(), "/e", echo, disabled_transports={"raw_websocket"}, raw_websocket=True
        )
