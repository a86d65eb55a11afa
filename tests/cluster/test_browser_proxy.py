"""The browser battery through nginx (and haproxy), in front of three server processes.

The same battery as ``tests/browser/test_browser_transports.py`` (its
functions, page and fixtures are reused as they are), but the SockJS URL is
nginx configured by :func:`aiohttp_sockjs.deploy.nginx_config`: every
transport Chromium can use must work through the recipe (and through
:func:`~aiohttp_sockjs.deploy.haproxy_config`'s), websockets
upgraded, streams unbuffered, each session's requests on one process. The
page comes from one server process directly, another origin than nginx.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.browser import test_browser_transports as battery
from tests.browser.conftest import browser, page_factory
from tests.browser.tools import require_tools

from .proxies import Cluster, start_cluster

__all__ = ["browser", "page_factory"]  # the browser harness's own fixtures

pytestmark = pytest.mark.browser

# Every transport the cross-origin page can use (direct htmlfile is
# same-origin only; the battery's same-origin runs cover it without a proxy).
TRANSPORTS = [t for t in battery.TRANSPORTS if t != "htmlfile"]


@dataclass
class ThroughProxy:
    """What the battery needs to know of its server, here a cluster behind nginx."""

    cluster: Cluster
    sockjs_origin: str
    page_origin: str

    def new_log(self) -> str:
        return self.cluster.new_log()


@pytest.fixture(scope="module", params=["nginx", "haproxy"])
def sockjs_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThroughProxy]:
    require_tools()
    kind = request.param
    # The iframe page loads the client by a path, from the proxy's origin.
    args = ["--sockjs-url", "/static/sockjs.min.js"]
    cluster = start_cluster(kind, tmp_path_factory.mktemp(kind) / "c", 3, args)
    try:
        yield ThroughProxy(
            cluster,
            sockjs_origin=cluster.origin,
            page_origin=f"http://127.0.0.1:{cluster.backends[0].port}",
        )
    finally:
        cluster.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_transport_battery_through_proxy(
    page_factory: Any, sockjs_server: ThroughProxy, transport: str
) -> None:
    battery.test_transport_battery(page_factory, sockjs_server, transport, battery.CROSS)  # type: ignore[arg-type]


def test_fallback_through_proxy(page_factory: Any, sockjs_server: ThroughProxy) -> None:
    battery.test_disabled_websocket_falls_back(page_factory, sockjs_server, battery.CROSS)  # type: ignore[arg-type]
