"""One server process of the test cluster, run as a subprocess.

Serves the conformance endpoints (``demo.conformance``), the browser test
page and client (as ``tests/browser/server.py`` does), and names itself in an
``X-Served-By`` header on every response, so tests can see which process
answered a request that went through the proxy.

With ``--redis URL`` it also serves ``/relay`` through a
:class:`~aiohttp_sockjs.broker.RedisBroker` (process id = ``--name``), whose
sessions take text commands:

- ``all:TEXT`` broadcasts TEXT to every session of the cluster,
- ``room:ROOM:TEXT`` broadcasts TEXT to ROOM's members,
- ``join:ROOM`` / ``leave:ROOM`` answer ``joined:ROOM`` / ``left:ROOM``,
- ``presence`` answers ``presence:{"sessions":..,"rooms":..,"processes":..}``,
- ``whoami`` answers ``me:NAME``; anything else is echoed.

Listens on a free loopback port (``--unix PATH`` for a unix socket instead),
prints one JSON line ``{"port": ..., "pid": ...}`` once it listens, and
serves until its stdin closes or it gets SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs import Session

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from demo.conformance import make_app  # noqa: E402
from tests.browser.server import add_static, wait_for_stdin_eof  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--unix", default=None)
    parser.add_argument("--sockjs-url", default=None)
    parser.add_argument("--heartbeat-delay", type=float, default=25.0)
    parser.add_argument("--disconnect-delay", type=float, default=5.0)
    parser.add_argument("--redis", default=None)
    parser.add_argument("--presence-interval", type=float, default=0.2)
    parser.add_argument("--process-ttl", type=float, default=1.0)
    return parser.parse_args()


def add_relay(app: web.Application, args: argparse.Namespace) -> None:
    from aiohttp_sockjs.broker import RedisBroker

    broker = RedisBroker(
        args.redis,
        heartbeat_interval=args.presence_interval,
        process_ttl=args.process_ttl,
        retry_interval=0.2,
        process_id=args.name,
    )

    async def relay(session: Session) -> None:
        endpoint = session.endpoint
        async for message in session:
            command, _, rest = message.partition(":")
            if command == "all":
                endpoint.broadcast(rest)
            elif command == "room":
                room, _, text = rest.partition(":")
                endpoint.broadcast(text, room=room)
            elif command == "join":
                session.join(rest)
                session.send(f"joined:{rest}")
            elif command == "leave":
                session.leave(rest)
                session.send(f"left:{rest}")
            elif command == "presence":
                presence = await endpoint.presence()
                figures = {
                    "sessions": presence.sessions,
                    "rooms": dict(presence.rooms),
                    "processes": dict(presence.processes),
                }
                session.send("presence:" + json.dumps(figures, sort_keys=True))
            elif command == "whoami":
                session.send(f"me:{args.name}")
            else:
                session.send(message)

    aiohttp_sockjs.setup(
        app,
        "/relay",
        relay,
        broker=broker,
        **({"sockjs_url": args.sockjs_url} if args.sockjs_url else {}),
        heartbeat_delay=args.heartbeat_delay,
        disconnect_delay=args.disconnect_delay,
    )


def build(args: argparse.Namespace) -> web.Application:
    app = make_app(
        sockjs_url=args.sockjs_url,
        heartbeat_delay=args.heartbeat_delay,
        disconnect_delay=args.disconnect_delay,
    )
    add_static(app)
    if args.redis:
        add_relay(app, args)

    async def served_by(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Served-By"] = args.name
        # Let a cross-origin page read it too.
        response.headers["Access-Control-Expose-Headers"] = "X-Served-By"

    app.on_response_prepare.append(served_by)
    return app


async def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format=f"{args.name} %(levelname)s %(message)s")
    runner = web.AppRunner(build(args), handle_signals=False, access_log=None)
    await runner.setup()
    if args.unix:
        site: web.BaseSite = web.UnixSite(runner, args.unix)
        await site.start()
        port = None
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        port = sock.getsockname()[1]
        site = web.SockSite(runner, sock)
        await site.start()
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    eof = asyncio.ensure_future(wait_for_stdin_eof())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([eof, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        await runner.cleanup()
        # The stdin reader thread blocks in read(); leave without joining it.
        os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
