"""The deployment recipe: HTTP transports through a proxy that routes by session.

Three server processes behind the real nginx (or haproxy) with the
configuration from :mod:`aiohttp_sockjs.deploy`. Every request of a session
must reach the process that owns the session: the servers name themselves
in ``X-Served-By``. The same clients through a round-robin balancer (the
recipe with its session routing taken out) lose their sessions, which is
why the recipe exists.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest
from yarl import URL

from .conftest import ClusterFactory
from .proxies import Cluster

PROXIES = ["nginx", "haproxy"]
SESSIONS = 12


def round_robin(config: str) -> str:
    """The recipe without its session routing: a plain round-robin balancer."""
    edited = re.sub(r"\n\s*hash \$sockjs_session consistent;", "", config)
    edited = edited.replace("balance hash path,field(-2,/)", "balance roundrobin")
    assert edited != config
    return edited


async def xhr_session(
    http: aiohttp.ClientSession, cluster: Cluster, sid: str
) -> tuple[set[str], list[Any]]:
    """Open a session over xhr, send two messages, poll them back.

    Returns the processes that answered and what the requests got.
    """
    base = f"{cluster.origin}/echo/000/{sid}"
    served: set[str] = set()
    got: list[Any] = []
    for method, path, body in [
        ("POST", "/xhr", None),
        ("POST", "/xhr_send", json.dumps([f"one {sid}", f"two {sid}"])),
        ("POST", "/xhr", None),
    ]:
        async with http.request(method, base + path, data=body) as response:
            served.add(response.headers["X-Served-By"])
            got.append((response.status, await response.text()))
    return served, got


def expected(sid: str) -> list[Any]:
    return [(200, "o\n"), (204, ""), (200, f'a["one {sid}","two {sid}"]\n')]


@pytest.mark.parametrize("kind", PROXIES)
async def test_every_request_of_a_session_reaches_one_process(
    cluster_factory: ClusterFactory, kind: str
) -> None:
    cluster = cluster_factory(kind, 3)
    owners: dict[str, str] = {}
    async with aiohttp.ClientSession() as http:
        for i in range(SESSIONS):
            sid = f"session{i}"
            served, got = await xhr_session(http, cluster, sid)
            assert got == expected(sid), f"{sid} through {kind}: {got}"
            assert len(served) == 1, f"{sid}'s requests went to {served}"
            owners[sid] = served.pop()
    # Consistent hashing spreads the sessions: more than one process works.
    assert len(set(owners.values())) > 1, owners
    assert cluster.new_log() == ""


@pytest.mark.parametrize("kind", PROXIES)
async def test_round_robin_loses_sessions(cluster_factory: ClusterFactory, kind: str) -> None:
    """Why the recipe routes by session: without it, xhr_send reaches a stranger."""
    cluster = cluster_factory(kind, 3, edit=round_robin)
    failed = []
    async with aiohttp.ClientSession() as http:
        for i in range(SESSIONS):
            sid = f"session{i}"
            served, got = await xhr_session(http, cluster, sid)
            if got != expected(sid):
                failed.append((sid, served, got))
    # A session whose requests met several processes got "404 session
    # not found" from a process that never saw it.
    assert failed, "round-robin kept every session on one process"
    assert any((404, "") in got or got[1][0] == 404 for _, _, got in failed), failed


@pytest.mark.parametrize("kind", PROXIES)
async def test_streams_through_the_proxy(cluster_factory: ClusterFactory, kind: str) -> None:
    """Streaming responses are not buffered: each frame arrives while the stream is open."""
    cluster = cluster_factory(kind, 2)
    async with aiohttp.ClientSession() as http:
        for i in range(4):
            sid = f"stream{i}"
            base = f"{cluster.origin}/echo/000/{sid}"
            async with http.get(base + "/eventsource") as stream:
                owner = stream.headers["X-Served-By"]
                assert stream.headers["Content-Type"].startswith("text/event-stream")
                assert await stream.content.readline() == b"\r\n"
                assert await stream.content.readline() == b"data: o\r\n"
                assert await stream.content.readline() == b"\r\n"
                for n in range(3):
                    message = f"message {n} of {sid}"
                    async with http.post(base + "/xhr_send", json=[message]) as sent:
                        assert sent.status == 204, await sent.text()
                        assert sent.headers["X-Served-By"] == owner
                    line = await stream.content.readline()
                    assert line == f"data: a{json.dumps([message])}\r\n".encode()
                    assert await stream.content.readline() == b"\r\n"
    assert cluster.new_log() == ""


@pytest.mark.parametrize("kind", PROXIES)
async def test_requests_without_a_session_are_spread(
    cluster_factory: ClusterFactory, kind: str
) -> None:
    """/info carries no session id: any process answers it, round-robin."""
    cluster = cluster_factory(kind, 2)
    served = set()
    async with aiohttp.ClientSession() as http:
        for _ in range(6):
            async with http.get(cluster.origin + "/echo/info") as response:
                assert response.status == 200
                served.add(response.headers["X-Served-By"])
    assert served == {"p1", "p2"}


@pytest.mark.parametrize("kind", PROXIES)
@pytest.mark.parametrize("heartbeat", [0.5, 25.0])
async def test_heartbeats_keep_idle_connections_through_the_proxy(
    cluster_factory: ClusterFactory, kind: str, heartbeat: float
) -> None:
    """The proxy's timeout (2 s here) must be longer than heartbeat_delay.

    With heartbeats every 0.5 s an idle websocket and an idle xhr_streaming
    response outlive the timeout several times over; with the default 25 s
    the proxy cuts both after its 2 s, which is why the recipe's timeout is
    longer than the heartbeat.
    """
    args = ["--heartbeat-delay", str(heartbeat)]
    cluster = cluster_factory(kind, 2, args, timeout=2)
    async with aiohttp.ClientSession(base_url=cluster.origin) as http:
        ws = await http.ws_connect("/echo/000/idle-ws/websocket")
        stream = await http.post("/echo/000/idle-stream/xhr_streaming")
        try:
            assert (await ws.receive()).data == "o"
            assert await stream.content.readexactly(2049) == b"h" * 2048 + b"\n"
            assert await stream.content.readline() == b"o\n"

            async def frames_for(seconds: float) -> list[str]:
                """What the websocket and the stream got over ``seconds``, or how they ended."""
                got: list[str] = []

                async def read_ws() -> None:
                    while True:
                        msg = await ws.receive()
                        if msg.type is not aiohttp.WSMsgType.TEXT:
                            got.append(f"websocket {msg.type.name}")
                            return
                        got.append("ws " + msg.data)

                async def read_stream() -> None:
                    while True:
                        try:
                            line = await stream.content.readline()
                        except aiohttp.ClientPayloadError:  # cut mid-chunk
                            line = b""
                        if not line:
                            got.append("stream ended")
                            return
                        got.append("stream " + line.decode().strip())

                tasks = [asyncio.ensure_future(read_ws()), asyncio.ensure_future(read_stream())]
                await asyncio.wait(tasks, timeout=seconds)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                return got

            if heartbeat < 2:
                got = await frames_for(4)
                assert "ws h" in got and "stream h" in got, got
                assert not [g for g in got if "ended" in g or g.startswith("websocket")], got
                # Still open: an echo goes through both sessions.
                await ws.send_str('["still here"]')
                assert (await ws.receive()).data == 'a["still here"]'
            else:
                got = await frames_for(15)  # bounded; the proxy cuts after 2 s
                assert "stream ended" in got, got
                assert any(g.startswith("websocket ") for g in got), got
                assert not [g for g in got if g in ("ws h", "stream h")], got
        finally:
            await ws.close()
            stream.close()


@pytest.mark.parametrize("kind", PROXIES)
async def test_a_client_gone_mid_stream_closes_its_session(
    cluster_factory: ClusterFactory, kind: str
) -> None:
    """The server learns through the proxy that a client went away mid-response.

    The proxy must drop its request to the server when the client drops
    its connection (haproxy only does with ``option abortonclose``). If it
    does not, the session keeps the dead stream attached until a heartbeat
    fails (25 s here), and the client's next request is refused with 2010
    instead of learning that its session was interrupted (1002).
    """
    cluster = cluster_factory(kind, 1, ["--heartbeat-delay", "25"])
    origin = URL(cluster.origin)
    assert origin.host is not None and origin.port is not None
    reader, writer = await asyncio.open_connection(origin.host, origin.port)
    writer.write(
        b"POST /echo/000/leaver/xhr_streaming HTTP/1.1\r\n"
        b"Host: localhost\r\nContent-Length: 0\r\n\r\n"
    )
    # The stream is attached once its open frame arrives.
    received = b""
    while b"o\n" not in received.rpartition(b"h" * 2048)[2]:
        chunk = await asyncio.wait_for(reader.read(4096), 10)
        assert chunk, received
        received += chunk
    writer.transport.abort()
    async with aiohttp.ClientSession(base_url=cluster.origin) as http:
        answer = ""
        for _ in range(100):
            async with http.post("/echo/000/leaver/xhr") as response:
                answer = await response.text()
            if answer != 'c[2010,"Another connection still open"]\n':
                break
            await asyncio.sleep(0.05)
    assert answer == 'c[1002,"Connection interrupted"]\n'
