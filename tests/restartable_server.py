"""A demo app in a server process that a test kills (SIGKILL) and starts again, on one port.

``python -m tests.restartable_server APP OPTIONS_JSON`` picks a free
loopback port and prints ``port N``, then obeys one command a line on its
stdin: ``start`` forks a server process that serves ``demo.APP``'s
``make_app(**options)`` on that port, and prints ``started PID`` once it
listens; ``kill`` kills it with SIGKILL (no shutdown, as a crash or an OOM
kill does: the kernel closes its sockets), waits for it and prints
``killed``. EOF on stdin kills the server and exits. The supervisor imports
everything once, so a restart takes a fork, not a Python start-up.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import socket
import sys
from typing import Any

from aiohttp import web


def _serve(app_name: str, options: dict[str, Any], port: int, ready: int) -> None:
    async def serve() -> None:
        app: web.Application = importlib.import_module(f"demo.{app_name}").make_app(**options)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        os.write(ready, b"1")
        await asyncio.Event().wait()

    asyncio.run(serve())


def main(app_name: str, options: dict[str, Any]) -> None:
    importlib.import_module(f"demo.{app_name}")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    print(f"port {port}", flush=True)
    child = 0
    for line in sys.stdin:
        command = line.strip()
        if command == "start" and not child:
            ready_r, ready_w = os.pipe()
            child = os.fork()
            if child == 0:
                os.close(ready_r)
                try:
                    _serve(app_name, options, port, ready_w)
                finally:
                    os._exit(1)
            os.close(ready_w)
            started = os.read(ready_r, 1)
            os.close(ready_r)
            if not started:
                os.waitpid(child, 0)
                child = 0
                print("failed", flush=True)
                continue
            print(f"started {child}", flush=True)
        elif command == "kill" and child:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            child = 0
            print("killed", flush=True)
        else:
            print(f"unknown or out of turn: {command!r}", flush=True)
    if child:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
