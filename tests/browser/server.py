"""The server the browser tests talk to, run as a subprocess.

Two origins on 127.0.0.1, each on its own free port:

- the SockJS origin: the conformance app (``demo.conformance.make_app``)
  with its iframe page pointing at the local copy of the client, plus that
  client at ``/static/sockjs.min.js`` and the test page at ``/page.html``;
- the page origin: only the test page and the client, so a page loaded
  from here talks to SockJS cross-origin, as in real deployments.

Besides the conformance endpoints, the SockJS origin serves echo endpoints
with websocket compression on: ``/echo_deflate`` (the default threshold),
``/echo_deflate_200`` (threshold 200 bytes, so a battery sees compressed
and uncompressed frames) and ``/echo_deflate_0`` (every frame compressed).

Prints one JSON line ``{"sockjs": port, "page": port}`` once both listen,
then serves until its stdin closes (the test process ended).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "node_modules" / "sockjs-client" / "dist" / "sockjs.min.js"
PAGE = Path(__file__).resolve().with_name("page.html")

sys.path.insert(0, str(ROOT))

import aiohttp_sockjs  # noqa: E402
from demo.conformance import echo, make_app  # noqa: E402

#: The compression endpoints: prefix -> websocket_compression_threshold.
DEFLATE_ENDPOINTS = {"/echo_deflate": 1024, "/echo_deflate_200": 200, "/echo_deflate_0": 0}


def listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def add_static(app: web.Application) -> None:
    client = CLIENT.read_bytes()
    page = PAGE.read_bytes()

    async def sockjs_client(request: web.Request) -> web.Response:
        return web.Response(body=client, content_type="application/javascript")

    async def test_page(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html")

    app.router.add_get("/static/sockjs.min.js", sockjs_client)
    app.router.add_get("/page.html", test_page)


async def wait_for_stdin_eof() -> None:
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.buffer.read, 1):
        pass


async def main() -> None:
    sockjs_sock, page_sock = listen(), listen()
    sockjs_port = sockjs_sock.getsockname()[1]
    page_port = page_sock.getsockname()[1]

    app = make_app(sockjs_url=f"http://127.0.0.1:{sockjs_port}/static/sockjs.min.js")
    add_static(app)
    for prefix, threshold in DEFLATE_ENDPOINTS.items():
        aiohttp_sockjs.setup(
            app,
            prefix,
            echo,
            websocket_compression=True,
            websocket_compression_threshold=threshold,
        )
    page_app = web.Application()
    add_static(page_app)

    runners = [web.AppRunner(app), web.AppRunner(page_app)]
    for runner in runners:
        await runner.setup()
    await web.SockSite(runners[0], sockjs_sock).start()
    await web.SockSite(runners[1], page_sock).start()
    print(json.dumps({"sockjs": sockjs_port, "page": page_port}), flush=True)
    try:
        await wait_for_stdin_eof()
    finally:
        for runner in runners:
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
