"""Per-client admission over real sockets: sessions per client, a rate per client.

Loopback has a whole /8 on Linux: a second client connects from 127.0.0.2.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

import aiohttp_sockjs
from aiohttp_sockjs import Options, RateLimit, TrustedProxies
from demo import chat
from demo.conformance import echo
from tests.wire import bounded, new_id, session_url, xhr, xhr_send

Factory = Any
Client = TestClient[Any, Any]

REFUSED = "Too many sessions from this client."


async def serve(aiohttp_client: Factory, **options: Any) -> tuple[Client, aiohttp_sockjs.Endpoint]:
    app = web.Application()
    endpoint = aiohttp_sockjs.setup(app, "/echo", echo, **options)
    client: Client = await aiohttp_client(app)
    return client, endpoint


@pytest.fixture
async def other_address() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client whose connections come from 127.0.0.2."""
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        yield http


async def _refusals(client: Client, path: str, method: str = "POST") -> tuple[int, str]:
    async with client.request(method, path) as response:
        return response.status, await response.text()


async def test_one_address_holds_at_most_its_share_by_default(
    aiohttp_client: Factory, other_address: aiohttp.ClientSession
) -> None:
    share = Options().max_sessions_per_client
    assert share is not None and share * 10 == Options().max_sessions
    # disconnect_delay only keeps the polling sessions alive while the test
    # opens them all; every admission option is the default.
    client, endpoint = await serve(aiohttp_client, disconnect_delay=60.0)
    gate = asyncio.Semaphore(32)

    async def open_one() -> str:
        async with gate:
            sid = new_id()
            async with client.post(session_url("/echo", sid, "xhr")) as response:
                assert response.status == 200, await response.text()
            return sid

    sids = await asyncio.gather(*(open_one() for _ in range(share)))
    assert len(endpoint) == share
    # Every way of opening one more from this address is refused, before any upgrade.
    for transport, method in (("xhr", "POST"), ("xhr_streaming", "POST"), ("eventsource", "GET")):
        path = session_url("/echo", new_id(), transport)
        assert await _refusals(client, path, method) == (503, REFUSED)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(session_url("/echo", new_id(), "websocket"))
    assert refused.value.status == 503
    assert endpoint.stats().refused["too_many_client_sessions"] == 4
    assert len(endpoint) == share
    # Its sessions go on; another address is another client.
    await xhr_send(client, "/echo", sids[0], "still here")
    assert await xhr(client, "/echo", sids[0]) == 'a["still here"]\n'
    url = client.make_url(session_url("/echo", new_id(), "xhr"))
    async with other_address.post(url) as response:
        assert (response.status, await response.text()) == (200, "o\n")


async def test_trusted_proxies_name_the_client(
    aiohttp_client: Factory, other_address: aiohttp.ClientSession
) -> None:
    client, endpoint = await serve(
        aiohttp_client,
        client_key=TrustedProxies(["127.0.0.1"]),
        max_sessions_per_client=2,
    )

    async def open_as(forwarded_for: str, http: Any = None) -> int:
        headers = {"X-Forwarded-For": forwarded_for}
        url = client.make_url(session_url("/echo", new_id(), "xhr"))
        async with (http or client.session).post(url, headers=headers) as response:
            return response.status

    # 127.0.0.1 is the trusted proxy: the hop it forwards for is the client.
    assert [await open_as("203.0.113.1") for _ in range(3)] == [200, 200, 503]
    assert await open_as("203.0.113.2") == 200
    # A client naming itself in front of the proxy's entry changes nothing.
    assert await open_as("198.51.100.9, 203.0.113.1") == 503
    # 127.0.0.2 is not a proxy: its header is not believed.
    assert [await open_as(f"203.0.113.{n}", other_address) for n in (3, 4, 5)] == [200, 200, 503]
    assert endpoint.clients is not None
    assert endpoint.clients.sessions("127.0.0.2") == 2
    assert endpoint.clients.sessions("203.0.113.1") == 2


async def test_an_application_key_limits_per_user(aiohttp_client: Factory) -> None:
    def user(request: web.BaseRequest) -> str:
        return request.cookies.get("user", "anonymous")

    client, _ = await serve(aiohttp_client, client_key=user, max_sessions_per_client=1)

    async def open_as(name: str) -> int:
        url = session_url("/echo", new_id(), "xhr")
        async with client.post(url, cookies={"user": name}) as response:
            return response.status

    assert [await open_as("alice"), await open_as("alice"), await open_as("bob")] == [
        200,
        503,
        200,
    ]


async def test_the_client_rate_is_shared_over_xhr_send(aiohttp_client: Factory) -> None:
    rate = RateLimit(messages_per_second=1, burst=3.0)
    client, endpoint = await serve(aiohttp_client, client_rate_limit=rate, disconnect_delay=5.0)
    first, second = new_id(), new_id()
    for sid in (first, second):
        assert await xhr(client, "/echo", sid) == "o\n"
    await xhr_send(client, "/echo", first, "1", "2")
    await xhr_send(client, "/echo", second, "3")
    await xhr_send(client, "/echo", second, "4", "5")  # over: not delivered, the session closes
    assert await xhr(client, "/echo", first) == 'a["1","2"]\n'
    assert await xhr(client, "/echo", second) == 'a["3"]\n'
    assert await xhr(client, "/echo", second) == 'c[1008,"Client rate limit exceeded"]\n'
    assert endpoint.stats().refused["client_rate_limit"] == 1


async def test_demo_one_address_gets_the_client_rate_over_any_number_of_sessions(
    aiohttp_client: Factory,
) -> None:
    """20 chat sessions from one address, each within its own rate limit, flood the room."""
    limit = chat.CLIENT_RATE_LIMIT
    assert limit.messages_per_second is not None
    app = chat.make_app(heartbeat_delay=10.0)
    client: Client = await aiohttp_client(app)
    endpoint = app[chat.ROOM].endpoint
    assert endpoint is not None
    watcher = await client.ws_connect("/chat/000/watcher/websocket")
    flooders = [await client.ws_connect(f"/chat/000/f{i}/websocket") for i in range(20)]
    per_session = 40  # under each session's own burst (chat.RATE_LIMIT)
    started = time.monotonic()
    for i, ws in enumerate(flooders):
        await ws.send_str(json.dumps([json.dumps({"type": "join", "nick": f"f{i}"})]))
    for n in range(per_session):
        for ws in flooders:
            await ws.send_str(json.dumps([json.dumps({"type": "say", "text": f"spam {n}"})]))

    async def finished(ws: Any) -> str:
        """How a flooder's session ended: its close frame, or its last echo."""
        last = {"type": "say", "nick": ws_nick[id(ws)], "text": f"spam {per_session - 1}"}
        while True:
            msg = await ws.receive(timeout=5)
            assert msg.type is WSMsgType.TEXT, msg
            if msg.data.startswith("c"):
                return msg.data
            if msg.data.startswith("a"):
                for m in json.loads(msg.data[1:]):
                    message = json.loads(m)
                    if {k: message.get(k) for k in last} == last:
                        return "done"

    ws_nick = {id(ws): f"f{i}" for i, ws in enumerate(flooders)}
    endings = await bounded(asyncio.gather(*(finished(ws) for ws in flooders)), 30)
    # Everything said went to the watcher before this marker.
    endpoint.broadcast(json.dumps({"type": "marker"}))
    said = 0
    while True:
        msg = await watcher.receive(timeout=5)
        if not msg.data.startswith("a"):
            continue
        kinds = [json.loads(m)["type"] for m in json.loads(msg.data[1:])]
        said += kinds.count("say")
        if "marker" in kinds:
            break
    elapsed = time.monotonic() - started
    allowed = limit.messages_per_second * (limit.burst + elapsed)
    assert 0 < said <= allowed, (said, allowed, elapsed)
    assert 'c[1008,"Client rate limit exceeded"]' in endings
    assert endpoint.stats().refused["client_rate_limit"] >= 1
    for ws in [watcher, *flooders]:
        await ws.close()
