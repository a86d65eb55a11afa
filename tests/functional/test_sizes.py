"""Sizes: 1 MiB messages on every transport, and clear errors past the caps (§7)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType

from aiohttp_sockjs import Session
from tests.conftest import endpoint_of
from tests.wire import (
    ALL_TRANSPORTS,
    TEXT,
    Receiver,
    bounded,
    eventually,
    new_id,
    open_xhr_session,
    roundtrip,
    session_url,
    xhr_send,
)

MIB = 1 << 20
# 1 MiB of characters, more than 1 MiB of UTF-8, with characters that need
# escaping on the way in and out.
BIG = ('é\u2028"\\' + "x" * 1020) * 1024
assert len(BIG) == MIB


def recorder() -> tuple[list[str], Any]:
    """An echo handler that also records what it received."""
    received: list[str] = []

    async def handler(session: Session) -> None:
        async for message in session:
            received.append(message)
            session.send(message)

    return received, handler


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
async def test_one_mib_roundtrip(serve: Any, transport: str) -> None:
    """A 1 MiB message round-trips on every transport with the default options."""
    client = await serve()
    back, _, _ = await roundtrip(client, "/e", transport, BIG)
    assert back == BIG


async def test_one_mib_raw_websocket(serve: Any) -> None:
    """A 1 MiB message round-trips on the raw websocket."""
    client = await serve()
    ws = await bounded(client.ws_connect("/e/websocket"))
    await ws.send_str(BIG)
    msg = await bounded(ws.receive())
    assert msg.type is WSMsgType.TEXT
    assert msg.data == BIG
    await ws.close()


async def test_xhr_send_body_over_aiohttp_default_cap(serve: Any) -> None:
    """An xhr_send body well over aiohttp's 1 MiB default is accepted (several messages)."""
    client = await serve()
    sid = await open_xhr_session(client, "/e")
    messages = ["y" * (MIB // 2)] * 5
    body = json.dumps(messages).encode()
    assert len(body) > 2 * MIB
    async with client.post(session_url("/e", sid, "xhr_send"), data=io.BytesIO(body)) as resp:
        assert resp.status == 204
    assert await Receiver(client, "/e", sid, "xhr").messages(5) == messages


@pytest.mark.parametrize("sender", ["xhr_send", "jsonp_send"])
async def test_message_over_max_message_size_is_413(serve: Any, sender: str) -> None:
    """A message longer than max_message_size gets 413; earlier and later ones still flow."""
    received, handler = recorder()
    client = await serve(handler, max_message_size=1000)
    sid = await open_xhr_session(client, "/e")
    url = session_url("/e", sid, sender)
    await xhr_send(client, "/e", sid, "before")
    async with client.post(url, data=json.dumps(["z" * 1001])) as resp:
        assert resp.status == 413
        assert resp.headers["Content-Type"] == TEXT
        assert (await resp.text()).strip()
    await xhr_send(client, "/e", sid, "a" * 1000)
    rx = Receiver(client, "/e", sid, "xhr")
    assert await rx.messages(2) == ["before", "a" * 1000]
    assert received == ["before", "a" * 1000]


@pytest.mark.parametrize("sender", ["xhr_send", "jsonp_send"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_max_request_size_is_413(serve: Any, sender: str, chunked: bool) -> None:
    """A request body larger than max_request_size gets 413, with or without a length."""
    client = await serve(max_request_size=10_000)
    sid = await open_xhr_session(client, "/e")
    body = json.dumps(["q" * 20_000]).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    data: Any = chunks() if chunked else body
    async with client.post(session_url("/e", sid, sender), data=data) as resp:
        assert resp.status == 413
        assert resp.headers["Content-Type"] == TEXT
    await xhr_send(client, "/e", sid, "fine")
    assert await Receiver(client, "/e", sid, "xhr").messages(1) == ["fine"]


async def test_websocket_message_over_max_message_size_closes_1009(serve: Any) -> None:
    """On websocket a message over max_message_size closes the socket with 1009."""
    received, handler = recorder()
    client = await serve(handler, max_message_size=1000)
    ws = await bounded(client.ws_connect(session_url("/e", new_id(), "websocket")))
    assert (await bounded(ws.receive())).data == "o"
    await ws.send_str('["first"]')
    assert (await bounded(ws.receive())).data == 'a["first"]'
    await ws.send_str(json.dumps(["z" * 1001]))
    msg = await bounded(ws.receive())
    assert msg.type is WSMsgType.CLOSE
    assert msg.data == 1009
    assert received == ["first"]


async def test_websocket_earlier_messages_reach_the_app(serve: Any) -> None:
    """Messages sent just before an oversized one still reach the application."""
    received, handler = recorder()
    client = await serve(handler, max_message_size=1000)
    ws = await bounded(client.ws_connect(session_url("/e", new_id(), "websocket")))
    assert (await bounded(ws.receive())).data == "o"
    await ws.send_str('["one","two"]')
    await ws.send_str(json.dumps(["z" * 1001]))
    while (await bounded(ws.receive())).type is WSMsgType.TEXT:
        pass
    assert ws.close_code == 1009
    await eventually(lambda: received == ["one", "two"])


async def test_raw_websocket_message_over_max_message_size_closes_1009(serve: Any) -> None:
    """On the raw websocket a message over max_message_size closes the socket with 1009."""
    client = await serve(max_message_size=1000)
    ws = await bounded(client.ws_connect("/e/websocket"))
    await ws.send_str("k" * 1000)
    assert (await bounded(ws.receive())).data == "k" * 1000
    await ws.send_str("k" * 1001)
    msg = await bounded(ws.receive())
    assert msg.type is WSMsgType.CLOSE
    assert msg.data == 1009


@pytest.mark.parametrize("path", ["/e/000/{sid}/websocket", "/e/websocket"])
async def test_websocket_frame_over_max_request_size_closes_1009(serve: Any, path: str) -> None:
    """A websocket frame larger than max_request_size closes the socket with 1009."""
    client = await serve(max_request_size=10_000)
    ws = await bounded(client.ws_connect(path.format(sid=new_id())))
    if "000" in path:
        assert (await bounded(ws.receive())).data == "o"
    await ws.send_str(json.dumps(["q" * 20_000]))
    msg = await bounded(ws.receive())
    assert msg.type is WSMsgType.CLOSE
    assert msg.data == 1009


async def test_oversize_ends_the_websocket_session(serve: Any) -> None:
    """The session of a socket closed for an oversized message leaves the endpoint."""
    client = await serve(max_message_size=10)
    ws = await bounded(client.ws_connect(session_url("/e", new_id(), "websocket")))
    assert (await bounded(ws.receive())).data == "o"
    await ws.send_str(json.dumps(["z" * 11]))
    assert (await bounded(ws.receive())).type is WSMsgType.CLOSE
    await eventually(lambda: len(endpoint_of(client)) == 0)
