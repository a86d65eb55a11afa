"""The SockJS conformance server: the endpoints the public test suites expect.

Run from the repository root::

    python -m demo.conformance --port 8081

and point ``sockjs-protocol`` or a browser test page at it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs import Session


async def echo(session: Session) -> None:
    """Send every message back."""
    async for message in session:
        session.send(message)


async def close(session: Session) -> None:
    """Close every new session at once."""
    await session.close(3000, "Go away!")


async def ticker(session: Session) -> None:
    """Send ``tick!`` every second."""
    while not session.closed:
        session.send("tick!")
        # Wake at once on close, so shutdown never waits for a sleeping ticker.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(session.wait_closed(), 1)


async def amplify(session: Session) -> None:
    """Answer ``n`` with ``2**n`` x characters (n in 1..18, else 1)."""
    async for message in session:
        try:
            n = int(message)
        except ValueError:
            n = 1
        if not 1 <= n <= 18:
            n = 1
        session.send("x" * 2**n)


def make_app(sockjs_url: str | None = None, **options: Any) -> web.Application:
    """Build the conformance app; ``options`` go to every endpoint."""
    app = web.Application()
    extra: dict[str, Any] = dict(options)
    if sockjs_url is not None:
        extra["sockjs_url"] = sockjs_url
    aiohttp_sockjs.setup(app, "/echo", echo, response_limit=4096, **extra)
    aiohttp_sockjs.setup(
        app,
        "/disabled_websocket_echo",
        echo,
        disabled_transports={"websocket"},
        **extra,
    )
    aiohttp_sockjs.setup(app, "/cookie_needed_echo", echo, cookie_needed=True, **extra)
    aiohttp_sockjs.setup(app, "/close", close, **extra)
    aiohttp_sockjs.setup(app, "/ticker", ticker, **extra)
    aiohttp_sockjs.setup(app, "/amplify", amplify, **extra)
    broadcast = aiohttp_sockjs.setup(app, "/broadcast", **extra)

    @broadcast.on_message
    def relay(session: Session, message: str) -> None:
        broadcast.broadcast(message)

    return app


def main() -> None:
    """Run the conformance server from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--sockjs-url", default=None, help="client URL for the iframe page")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    web.run_app(make_app(args.sockjs_url), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
