"""Fuzz a live server: random requests on every route, then check it is unharmed.

Every request must get a well-formed HTTP answer, nothing may log a
traceback, and an honest session opened beside the fuzzing keeps echoing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

import aiohttp_sockjs
from demo.conformance import make_app

Factory = Callable[..., Awaitable[TestClient[Any, Any]]]

PREFIXES = ["/echo", "/close", "/amplify", "/broadcast", "/cookie_needed_echo", "/strict", ""]
TAILS = [
    "xhr",
    "xhr_send",
    "xhr_streaming",
    "eventsource",
    "htmlfile",
    "jsonp",
    "jsonp_send",
    "websocket",
    "",
    "info",
    "bogus",
    "xhr/",
    "websocket/x",
]
# Methods the HTTP parser accepts; malformed requests are in RAW_REQUESTS.
METHODS = ["GET", "POST", "OPTIONS", "HEAD", "PUT", "DELETE", "PATCH"]
# A small pool of session ids, so requests often land on live sessions.
IDS = ["a", "b", "c", "d", "00", "x.y", "%00", "é", "-", "a" * 300]


def _junk_text(rng: random.Random, n: int) -> str:
    alphabet = "abc\x00\x01\"'\\<>%&=;/?#é\u2028\U0001f600 \t\r\n{}[],:0123456789"
    return "".join(rng.choice(alphabet) for _ in range(n))


def _deep(rng: random.Random) -> bytes:
    depth = rng.choice([10, 1000, 100_000])
    return b"[" * depth + b'"x"' + b"]" * rng.choice([0, depth])


def _body(rng: random.Random) -> bytes | None:
    kind = rng.randrange(14)
    if kind == 0:
        return None
    if kind == 1:
        return rng.randbytes(rng.randrange(1, 2000))  # mostly invalid UTF-8
    if kind == 2:
        return _deep(rng)
    if kind == 3:
        return b"[" + b"9" * rng.randrange(1, 5000) + b"]"
    if kind == 4:
        return b'["a\x00b", "\x00"]'
    if kind == 5:
        return json.dumps([_junk_text(rng, 50) for _ in range(rng.randrange(5))]).encode()
    if kind == 6:
        return json.dumps(rng.choice([{}, 1, None, "s", [1], [None], [[]], [{}]])).encode()
    if kind == 7:
        return b"d=" + rng.randbytes(50)
    if kind == 8:
        return b"d=" + json.dumps(["ok", "\u0000"]).encode() + b"&d=2"
    if kind == 9:
        return b'["\\ud800", "\\udfff\\ud800", "\\u0000"]'
    if kind == 10:
        return b'["' + b"\xff\xfe" * 10 + b'"]'
    if kind == 11:
        return json.dumps(["m"] * rng.randrange(0, 30)).encode()
    if kind == 12:
        return b"1e999999999"
    return b""


def _query(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:
        return ""
    if kind == 1:
        return "?c=cb"
    if kind == 2:
        return "?c=" + "a" * rng.choice([255, 256, 257, 5000])
    if kind == 3:
        return "?c=%00alert(1)"
    if kind == 4:
        return "?c=" + _junk_text(rng, 20).replace("#", "%23")
    if kind == 5:
        return "?c=cb&c=other&d=%ff%fe"
    if kind == 6:
        return "?t=" + str(rng.random())
    return "?c=a.b-c_d"


def _headers(rng: random.Random) -> dict[str, str]:
    headers: dict[str, str] = {}
    if rng.random() < 0.5:
        headers["Origin"] = rng.choice(
            ["https://example.com", "null", "https://evil.com", "http://x.example.com", "%%"]
        )
    if rng.random() < 0.4:
        headers["Content-Type"] = rng.choice(
            [
                "application/x-www-form-urlencoded",
                "application/json",
                "text/plain; charset=latin-1",
                "multipart/form-data; boundary=x",
                "garbage",
            ]
        )
    if rng.random() < 0.2:
        headers["Upgrade"] = rng.choice(["websocket", "WebSocket", "h2c", ""])
        headers["Connection"] = rng.choice(["Upgrade", "keep-alive, upgrade", "close"])
    if rng.random() < 0.2:
        headers["Cookie"] = rng.choice(
            ["JSESSIONID=abc", "JSESSIONID=;;;", "JSESSIONID=" + "z" * 300]
        )
    if rng.random() < 0.2:
        headers["Access-Control-Request-Headers"] = rng.choice(["x-a, x-b", "\t", "a" * 1000])
    if rng.random() < 0.1:
        headers["If-None-Match"] = rng.choice(['"abc"', "*", ""])
    return headers


async def _one(http: aiohttp.ClientSession, base: str, rng: random.Random) -> int:
    prefix = rng.choice(PREFIXES)
    shape = rng.randrange(6)
    if shape == 0:
        path = prefix + rng.choice(
            [
                "",
                "/",
                "/info",
                "/iframe.html",
                "/iframe-1.2.3.html",
                "/iframe-x!.html",
                "/websocket",
                "/info/x",
            ]
        )
    elif shape == 1:
        path = prefix + "/" + "/".join(_junk_text(rng, 5).replace("?", "") for _ in range(3))
    else:
        path = f"{prefix}/{rng.choice(['000', 'srv', 'a.b'])}/{rng.choice(IDS)}/{rng.choice(TAILS)}"
    url = base + path + _query(rng)
    method = rng.choice(METHODS) if rng.random() < 0.3 else rng.choice(["GET", "POST"])
    body, headers = _body(rng), _headers(rng)
    if "Upgrade" in headers:
        # aiohttp treats any request with "Connection: Upgrade" as upgraded and
        # stops parsing that connection whatever the answer: keep it off the pool.
        headers["Connection"] = "Upgrade, close"
    if shape == 2:
        # Open a session first, so the body reaches the payload decoder.
        prefix = rng.choice(["/echo", "/broadcast", "/strict"])
        sid = f"{prefix}/000/p{rng.randrange(10**9)}"
        async with http.post(base + sid + "/xhr") as opened:
            assert opened.status in (200, 403), opened.status
        url = base + sid + rng.choice(["/xhr_send", "/jsonp_send"])
        method = "POST"
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with http.request(
            method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            assert 100 <= response.status <= 599
            streaming = ("text/event-stream", "text/html")
            if response.headers.get("Content-Type", "").startswith(streaming):
                await response.content.read(100)  # streaming: take a little and hang up
            elif "xhr_streaming" not in path:
                await response.read()
            return response.status
    except asyncio.TimeoutError:
        raise AssertionError(f"no answer: {method} {url} {headers} {body!r:.200}") from None


async def _websocket_case(http: aiohttp.ClientSession, base: str, rng: random.Random) -> None:
    prefix = rng.choice(["/echo", "/amplify", "/strict", "/close", "/broadcast"])
    path = prefix + rng.choice(["/websocket", f"/000/{rng.choice(IDS)}/websocket"])
    try:
        ws = await http.ws_connect(base + path, headers=_headers(rng), max_msg_size=0)
    except aiohttp.WSServerHandshakeError as exc:
        assert 400 <= exc.status <= 599
        return
    for _ in range(rng.randrange(4)):
        choice = rng.randrange(6)
        if ws.closed:
            break
        if choice == 0:
            await ws.send_bytes(rng.randbytes(20))
        elif choice == 1:
            await ws.send_str(_deep(rng).decode())
        elif choice == 2:
            await ws.send_str(_junk_text(rng, 30))
        elif choice == 3:
            await ws.send_str(json.dumps([_junk_text(rng, 10)]))
        elif choice == 4:
            await ws.send_str('"' + "q" * 2000 + '"')
        else:
            await ws.send_str("[1e99999, null]")
    await ws.close()


@pytest.mark.timeout(120)
async def test_fuzz_every_route(aiohttp_client: Factory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_app(
        heartbeat_delay=0.05,
        disconnect_delay=0.2,
        max_message_size=1000,
        max_request_size=20_000,
        max_messages_per_request=20,
    )

    async def echo(session: aiohttp_sockjs.Session) -> None:
        async for message in session:
            session.send(message)

    aiohttp_sockjs.setup(
        app,
        "/strict",
        echo,
        allowed_origins=["https://*.example.com"],
        heartbeat_delay=0.05,
        disconnect_delay=0.2,
    )
    client = await aiohttp_client(app)
    base = str(client.make_url("")).rstrip("/")
    honest = await client.session.ws_connect(base + "/echo/000/honest/websocket")
    assert await honest.receive_str() == "o"
    # The honest client reads all the time, as a browser does (aiohttp's
    # client answers the server's pings as it reads): a client that stops
    # reading for two heartbeats is dropped as stalled.
    frames: asyncio.Queue[str] = asyncio.Queue()

    async def read_honest() -> None:
        async for msg in honest:
            if msg.type is aiohttp.WSMsgType.TEXT and msg.data != "h":
                frames.put_nowait(msg.data)

    reader = asyncio.ensure_future(read_honest())

    async def check_honest(n: int) -> None:
        await honest.send_str(json.dumps([f"still here {n}"]))
        msg = await asyncio.wait_for(frames.get(), 5)
        assert msg == "a" + json.dumps([f"still here {n}"])

    rng = random.Random(20261127)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32))
    statuses: dict[int, int] = {}
    cases = 5000
    try:
        sem = asyncio.Semaphore(24)

        async def case(i: int) -> None:
            local = random.Random(rng.random())
            async with sem:
                if i % 10 == 0:
                    await _websocket_case(http, base, local)
                else:
                    status = await _one(http, base, local)
                    statuses[status] = statuses.get(status, 0) + 1

        for start in range(0, cases, 500):
            await asyncio.gather(*(case(i) for i in range(start, start + 500)))
            await check_honest(start)
    finally:
        await http.close()
    # The fuzzing reached past the routing layer.
    assert {200, 204, 404, 413}.issubset(statuses), sorted(statuses.items())
    assert sum(statuses.values()) == cases - cases // 10
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert tracebacks == [], tracebacks[:3]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], errors[:3]
    await check_honest(-1)
    await honest.close()
    await reader


RAW_REQUESTS = [
    b"GET /echo/info HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x00\x01\x02\r\n\r\n",
    b"GET /echo/000/a/xhr HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /echo/000/a/xhr_send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /echo/" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /echo/info HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 20000 + b"\r\n\r\n",
    b"GET /echo/info HTTP/9.9\r\n\r\n",
    b"FOO /echo/000/a/xhr HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /echo/000/zz/xhr HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n\xff\xfe\x00",
    b"GET /echo/000/a/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"GET /echo/000/a/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 99\r\n\r\n",
]


async def test_malformed_http_gets_an_answer(
    aiohttp_client: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await aiohttp_client(make_app(heartbeat_delay=0.05, disconnect_delay=0.2))
    for raw in RAW_REQUESTS:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        writer.write(raw)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        assert status_line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), (raw[:40], status_line)
        assert 100 <= int(status_line.split()[1]) <= 599
        writer.close()
    # aiohttp's parser logs its own rejections (an unknown method at ERROR,
    # with a traceback); anything else with a traceback is a failure.
    parse_errors = (aiohttp.http_exceptions.HttpProcessingError,)
    tracebacks = [
        r for r in caplog.records if r.exc_info and not isinstance(r.exc_info[1], parse_errors)
    ]
    assert tracebacks == []
