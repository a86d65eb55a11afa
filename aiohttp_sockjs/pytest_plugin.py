"""pytest plugin: test SockJS handlers through a real client over a real socket.

Installing aiohttp-sockjs registers it (entry point ``pytest11``); it needs
pytest-aiohttp for the test server. Disable it with ``-p no:aiohttp_sockjs``.

- ``sockjs_client``: a factory. ``await sockjs_client(app, "/chat")`` serves
  ``app`` with pytest-aiohttp's test server and returns a connected
  :class:`~aiohttp_sockjs.client.SockJSClient`; every client and server is
  closed after the test.
- ``sockjs_transport``: a test that asks for it runs once per client
  transport (:data:`~aiohttp_sockjs.client.TRANSPORTS`), or once per name
  given with ``@pytest.mark.sockjs_transports("websocket", "xhr")``; in such
  a test ``sockjs_client`` connects over that transport unless told another.

::

    async def test_greets(sockjs_client, sockjs_transport):
        client = await sockjs_client(make_app(), "/chat")
        await client.send("hi")
        assert await client.receive() == "hello, hi"
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer

from .client import TRANSPORTS, SockJSClient, connect

try:
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - pytest-aiohttp brings pytest-asyncio
    _async_fixture = pytest.fixture  # type: ignore[assignment]

__all__ = ["SockJSClientFactory"]

_MARKER = "sockjs_transports"


class SockJSClientFactory(Protocol):
    """The ``sockjs_client`` fixture's type, for annotating tests."""

    async def __call__(
        self,
        app: web.Application | BaseTestServer,
        prefix: str = "",
        *,
        transport: str | Sequence[str] | None = None,
        **options: Any,
    ) -> SockJSClient:
        """Serve ``app`` (once per test) and connect a client to ``prefix`` on it.

        ``transport`` is a name or a fallback list as for
        :func:`~aiohttp_sockjs.client.connect`; by default the test's
        ``sockjs_transport`` if it has one, else the default list.
        ``options`` go to :func:`~aiohttp_sockjs.client.connect`.
        """
        ...


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker, so ``--strict-markers`` accepts it."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(*names): run a test that uses sockjs_transport over these transports only",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses ``sockjs_transport`` once per transport."""
    if "sockjs_transport" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        if "sockjs_transport" in argnames:
            return  # the test chose its transports itself
    marker = metafunc.definition.get_closest_marker(_MARKER)
    names = tuple(marker.args) if marker is not None and marker.args else TRANSPORTS
    unknown = [name for name in names if name not in TRANSPORTS]
    if unknown:
        raise pytest.UsageError(f"{_MARKER}: unknown transports {unknown}; known: {TRANSPORTS}")
    metafunc.parametrize("sockjs_transport", names, indirect=True, ids=list(names))


@pytest.fixture
def sockjs_transport(request: pytest.FixtureRequest) -> str:
    """The transport of this run of the test; the test runs once per transport.

    Narrow the set with ``@pytest.mark.sockjs_transports(...)``.
    """
    name: str = request.param
    return name


@_async_fixture
async def sockjs_client(
    request: pytest.FixtureRequest, aiohttp_server: Any
) -> AsyncIterator[SockJSClientFactory]:
    """Connect SockJS clients to applications served for this test."""
    servers: dict[int, tuple[web.Application, BaseTestServer]] = {}
    clients: list[SockJSClient] = []
    default = (
        request.getfixturevalue("sockjs_transport")
        if "sockjs_transport" in request.fixturenames
        else None
    )

    async def factory(
        app: web.Application | BaseTestServer,
        prefix: str = "",
        *,
        transport: str | Sequence[str] | None = None,
        **options: Any,
    ) -> SockJSClient:
        if isinstance(app, BaseTestServer):
            server = app
        elif id(app) in servers:
            server = servers[id(app)][1]
        else:
            server = await aiohttp_server(app)
            servers[id(app)] = (app, server)
        client = await connect(server.make_url(prefix), transports=transport or default, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()
