"""Fixtures: applications with small configured delays, served for real."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import aiohttp_sockjs
from aiohttp_sockjs import testing
from demo.conformance import echo, make_app

#: Delays for most tests: heartbeats rare enough not to show up in exact
#: bodies, expiry short enough that nothing lingers.
FAST: dict[str, Any] = {"heartbeat_delay": 10.0, "disconnect_delay": 1.0}

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def conformance(aiohttp_client: Any) -> TestClient[Any, Any]:
    """A client of the conformance server (demo.conformance) with fast delays."""
    client: TestClient[Any, Any] = await aiohttp_client(make_app(**FAST))
    return client


@pytest.fixture
def serve(aiohttp_client: Any) -> ClientFactory:
    """Serve one endpoint at ``/e`` with ``handler`` (echo by default) and options.

    ``await serve(handler, **options)`` returns the client; the endpoint is
    ``client.app[aiohttp_sockjs.ENDPOINTS]["/e"]``.
    """

    async def go(handler: Any = echo, **options: Any) -> TestClient[Any, Any]:
        app = web.Application()
        testing.setup(app, "/e", handler, **{**FAST, **options})
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client

    return go


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test by its layer's folder, so ``-m "not slow"`` picks a quick run."""
    for item in items:
        layer = item.path.parent.name
        if layer in ("slow", "browser", "cluster"):
            item.add_marker(layer)


def endpoint_of(client: TestClient[Any, Any], prefix: str = "/e") -> aiohttp_sockjs.Endpoint:
    """The endpoint served under ``prefix``."""
    app = client.app
    assert app is not None
    return app[aiohttp_sockjs.ENDPOINTS][prefix]
