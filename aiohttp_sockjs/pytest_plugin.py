"""pytest plugin: test SockJS handlers through a real client over a real socket.

Installing aiohttp-sockjs registers it (entry point ``pytest11``); its
fixtures need pytest-aiohttp for the test server, which the ``testing``
extra brings (without it, a test that uses them fails and says what to
install). Disable it with ``-p no:aiohttp_sockjs``.

- ``sockjs_client``: a factory. ``await sockjs_client(app, "/chat")`` serves
  ``app`` with pytest-aiohttp's test server and returns a connected
  :class:`~aiohttp_sockjs.client.SockJSClient`; every client and server is
  closed after the test. Its clients' ``receive()`` gives up after
  :data:`RECEIVE_TIMEOUT` seconds without a message (pass
  ``idle_timeout=`` for another limit, ``None`` for none), so a handler
  that stays silent fails the test instead of hanging it.
- ``sockjs_transport``: a test that asks for it runs once per client
  transport (:data:`~aiohttp_sockjs.client.TRANSPORTS`), or once per name
  given with ``@pytest.mark.sockjs_transports("websocket", "xhr")``; in such
  a test ``sockjs_client`` connects over that transport unless told another.

In pytest-asyncio's strict mode (its default) mark the tests with
``@pytest.mark.asyncio``::

    @pytest.mark.asyncio
    async def test_greets(sockjs_client, sockjs_transport):
        client = await sockjs_client(make_app(), "/chat")
        await client.send("hi")
        assert await client.receive() == "hello, hi"
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Final, Protocol, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer

from ._extras import hint
from .client import TRANSPORTS, SockJSClient, connect

try:
    import pytest_aiohttp  # noqa: F401  (its plugin serves the applications)
    from pytest_asyncio import fixture as _async_fixture
except ImportError:
    # Installed without the testing extra: the fixtures say so when used.
    _MISSING: str | None = (
        f"the sockjs_client fixture needs pytest-aiohttp, which is not installed; {hint('testing')}"
    )
    _async_fixture = pytest.fixture  # type: ignore[assignment]
else:
    _MISSING = None

__all__ = ["RECEIVE_TIMEOUT", "SockJSClientFactory"]

#: Seconds a ``sockjs_client`` client's ``receive()`` waits for a message.
RECEIVE_TIMEOUT: Final = 10.0
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
        ``options`` go to :func:`~aiohttp_sockjs.client.connect`;
        ``idle_timeout`` is :data:`RECEIVE_TIMEOUT` unless given.
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


@pytest.fixture
def sockjs_client(request: pytest.FixtureRequest) -> SockJSClientFactory:
    """Connect SockJS clients to applications served for this test."""
    if _MISSING is not None:
        pytest.fail(_MISSING, pytrace=False)
    # Asked for here rather than as an argument: without pytest-aiohttp the
    # test fails with the message above, not "fixture not found".
    return cast(SockJSClientFactory, request.getfixturevalue("_sockjs_client_factory"))


@_async_fixture
async def _sockjs_client_factory(
    request: pytest.FixtureRequest, aiohttp_server: Any
) -> AsyncIterator[SockJSClientFactory]:
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
        options.setdefault("idle_timeout", RECEIVE_TIMEOUT)
        client = await connect(server.make_url(prefix), transports=transport or default, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()
