"""The deployment recipe: HTTP transports through a proxy that routes by session.

Three server processes behind the real nginx (or haproxy) with the
configuration from :mod:`aiohttp_sockjs.deploy`. Every request of a session
must reach the process that owns the session: the servers name themselves
in ``X-Served-By``. The same clients through a round-robin balancer (the
recipe with its session routing taken out) lose their sessions, which is
why the recipe exists.
"""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import pytest

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
