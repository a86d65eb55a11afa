"""SockJS websocket and raw websocket (§2, §4, §6)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from tests.wire import bounded, new_id, session_url

UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


async def ws_open(client: TestClient[Any, Any], base: str = "/echo", sid: str | None = None) -> Any:
    ws = await bounded(client.ws_connect(session_url(base, sid or new_id(), "websocket")))
    assert await text(ws) == "o"
    return ws


async def text(ws: aiohttp.ClientWebSocketResponse) -> str:
    msg = await bounded(ws.receive())
    assert msg.type is WSMsgType.TEXT, msg
    return str(msg.data)


async def assert_closed(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """The next thing on ``ws`` is the end of the socket, not a data frame."""
    msg = await bounded(ws.receive())
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING), msg
    return msg


async def test_websocket_echo(conformance: TestClient[Any, Any]) -> None:
    """A websocket session opens with o and echoes each message in an a frame."""
    ws = await ws_open(conformance)
    await ws.send_str('["a"]')
    assert await text(ws) == 'a["a"]'
    await ws.send_str('["b","c"]')
    got: list[str] = []
    while len(got) < 2:
        frame = await text(ws)
        assert frame.startswith("a[")
        got += json.loads(frame[1:])
    assert got == ["b", "c"]
    await ws.close()


async def test_websocket_unsolicited_pong(conformance: TestClient[Any, Any]) -> None:
    """A pong no ping asked for (RFC 6455 5.5.3 allows it) reaches the read
    loop, which notes it; the session carries on."""
    ws = await ws_open(conformance)
    await ws.pong(b"unasked")
    await ws.send_str('["after"]')
    assert await text(ws) == 'a["after"]'
    await ws.pong()
    await ws.send_str('["again"]')
    assert await text(ws) == 'a["again"]'
    await ws.close()


async def test_websocket_single_string(conformance: TestClient[Any, Any]) -> None:
    """A single JSON string (not an array) is accepted as one message."""
    ws = await ws_open(conformance)
    await ws.send_str('"single"')
    assert await text(ws) == 'a["single"]'
    await ws.close()


@pytest.mark.parametrize("frame", ["", "[]"])
async def test_websocket_empty_frames_ignored(
    conformance: TestClient[Any, Any], frame: str
) -> None:
    """An empty frame or [] carries no message and keeps the socket open."""
    ws = await ws_open(conformance)
    await ws.send_str(frame)
    await ws.send_str('["after"]')
    assert await text(ws) == 'a["after"]'
    await ws.close()


@pytest.mark.parametrize("frame", ['["x', "x", "[1]", "{}", '["a",2]', "1"])
async def test_websocket_broken_json_drops_socket(
    conformance: TestClient[Any, Any], frame: str
) -> None:
    """Broken JSON from the client ends the socket at once, with no reply frame."""
    ws = await ws_open(conformance)
    await ws.send_str(frame)
    await assert_closed(ws)
    assert ws.closed or ws.close_code is not None


async def test_websocket_binary_frame_closes(conformance: TestClient[Any, Any]) -> None:
    """A binary frame is not SockJS; the server closes the socket."""
    ws = await ws_open(conformance)
    await ws.send_bytes(b'["x"]')
    await assert_closed(ws)


async def test_websocket_post_is_405(conformance: TestClient[Any, Any]) -> None:
    """POST to the websocket URL is 405 with Allow, no content type and no body."""
    async with conformance.post(session_url("/echo", new_id(), "websocket")) as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET"
        assert "Content-Type" not in resp.headers
        assert await resp.read() == b""


@pytest.mark.parametrize("path", ["/echo/000/{sid}/websocket", "/echo/websocket"])
async def test_plain_get_is_400(conformance: TestClient[Any, Any], path: str) -> None:
    """A GET without an upgrade is 400 Can "Upgrade" only to "WebSocket"."""
    async with conformance.get(path.format(sid=new_id())) as resp:
        assert resp.status == 400
        assert await resp.text() == 'Can "Upgrade" only to "WebSocket".'


@pytest.mark.parametrize("path", ["/echo/000/{sid}/websocket", "/echo/websocket"])
@pytest.mark.parametrize(
    "change",
    [
        {"Connection": "close"},
        {"Upgrade": "h2c"},
        {"Sec-WebSocket-Version": "99"},
        {"Sec-WebSocket-Key": "short"},
    ],
)
async def test_bad_upgrade_is_400(
    conformance: TestClient[Any, Any], path: str, change: dict[str, str]
) -> None:
    """An upgrade with Connection: close or other broken handshake fields is 400."""
    headers = {**UPGRADE, **change}
    async with conformance.get(path.format(sid=new_id()), headers=headers) as resp:
        assert resp.status == 400
        assert "Upgrade" not in resp.headers or resp.headers["Upgrade"] != "websocket"


async def test_websocket_session_id_reuse(conformance: TestClient[Any, Any]) -> None:
    """A websocket session id can be used again once its socket closed."""
    sid = new_id()
    ws = await ws_open(conformance, sid=sid)
    await ws.send_str('["one"]')
    assert await text(ws) == 'a["one"]'
    await ws.close()
    ws = await ws_open(conformance, sid=sid)
    await ws.send_str('["two"]')
    assert await text(ws) == 'a["two"]'
    await ws.close()


async def test_two_sockets_share_session_id(conformance: TestClient[Any, Any]) -> None:
    """Two sockets on one session id are two independent sessions."""
    sid = new_id()
    ws1 = await ws_open(conformance, sid=sid)
    ws2 = await ws_open(conformance, sid=sid)
    await ws1.send_str('["to one"]')
    await ws2.send_str('["to two"]')
    assert await text(ws1) == 'a["to one"]'
    assert await text(ws2) == 'a["to two"]'
    await ws1.close()
    await ws2.send_str('["still"]')
    assert await text(ws2) == 'a["still"]'
    await ws2.close()


async def test_websocket_app_close(conformance: TestClient[Any, Any]) -> None:
    """An application close sends c[3000,"Go away!"] and then closes the socket."""
    ws = await ws_open(conformance, base="/close")
    assert await text(ws) == 'c[3000,"Go away!"]'
    await assert_closed(ws)


async def test_websocket_does_not_touch_http_sessions(conformance: TestClient[Any, Any]) -> None:
    """A websocket session id is not visible to xhr_send."""
    sid = new_id()
    ws = await ws_open(conformance, sid=sid)
    async with conformance.post(session_url("/echo", sid, "xhr_send"), data='["x"]') as resp:
        assert resp.status == 404
    await ws.close()


async def test_raw_websocket_echo(conformance: TestClient[Any, Any]) -> None:
    """The raw websocket has no framing: each text frame is one message both ways."""
    ws = await bounded(conformance.ws_connect("/echo/websocket"))
    for message in ["hello", '["not json framing"]', "", "ünï\u2028cödé 😀"]:
        await ws.send_str(message)
        assert await text(ws) == message
    await ws.close()


async def test_raw_websocket_app_close(conformance: TestClient[Any, Any]) -> None:
    """An application close ends the raw socket with that code and reason."""
    ws = await bounded(conformance.ws_connect("/close/websocket"))
    msg = await bounded(ws.receive())
    assert msg.type is WSMsgType.CLOSE
    assert msg.data == 3000
    assert msg.extra == "Go away!"
    assert ws.close_code == 3000


async def test_raw_websocket_custom_close(serve: Any) -> None:
    """A raw socket closed by the app with (4001, reason) sees exactly that."""

    async def handler(session: Any) -> None:
        message = await session.receive()
        await session.close(4001, "bye " + message)

    client = await serve(handler)
    ws = await bounded(client.ws_connect("/e/websocket"))
    await ws.send_str("now")
    msg = await bounded(ws.receive())
    assert msg.type is WSMsgType.CLOSE
    assert (msg.data, msg.extra) == (4001, "bye now")


async def test_websocket_custom_close(serve: Any) -> None:
    """An app close with (4001, reason) sends c[4001,"reason"] and ends the socket."""

    async def handler(session: Any) -> None:
        message = await session.receive()
        session.send("last")
        await session.close(4001, "done with " + message)

    client = await serve(handler)
    ws = await bounded(client.ws_connect(session_url("/e", new_id(), "websocket")))
    assert await text(ws) == "o"
    await ws.send_str('["it"]')
    assert await text(ws) == 'a["last"]'
    assert await text(ws) == 'c[4001,"done with it"]'
    await assert_closed(ws)


@pytest.mark.parametrize(
    ("upgrade", "connection"),
    [("WebSocket", "Upgrade"), ("websocket", "keep-alive, Upgrade"), ("websocket", "upgrade")],
)
async def test_browser_handshake_variants(
    conformance: TestClient[Any, Any], upgrade: str, connection: str
) -> None:
    """Handshakes as real browsers send them (mixed case, keep-alive, Upgrade) are accepted."""
    reader, writer = await asyncio.open_connection(conformance.host, conformance.port)
    try:
        writer.write(
            (
                f"GET /echo/000/{new_id()}/websocket HTTP/1.1\r\n"
                f"Host: {conformance.host}\r\nUpgrade: {upgrade}\r\n"
                f"Connection: {connection}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Key: {UPGRADE['Sec-WebSocket-Key']}\r\n\r\n"
            ).encode()
        )
        head = await bounded(reader.readuntil(b"\r\n\r\n"))
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
        # The first websocket frame: unmasked text frame holding "o".
        assert await bounded(reader.readexactly(3)) == b"\x81\x01o"
    finally:
        writer.close()
        await writer.wait_closed()
