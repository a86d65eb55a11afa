"""A demo app served by its own process, for tests that measure the server.

``python -m tests.process_server APP OPTIONS_JSON`` serves ``demo.APP``'s
``make_app(**options)`` on a free loopback port, prints ``port N`` once it
listens, and shuts down cleanly on SIGTERM. :class:`ServerProcess` runs it
from a test: the server's memory (``VmRSS``) is then the server's alone,
not the test client's.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """``demo.APP`` served by a subprocess; use as a context manager."""

    def __init__(self, app: str, **options: Any) -> None:
        self.app = app
        self.options = options
        self.port = 0
        self.output = ""
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServerProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.process_server", self.app, json.dumps(self.options)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        lines: list[str] = []
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], 20)
            line = proc.stdout.readline() if ready else ""
            if not line:
                self.__exit__()
                raise RuntimeError("the server did not start:\n" + "".join(lines) + self.output)
            lines.append(line)
            if line.startswith("port "):
                self.port = int(line.split()[1])
                return self

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        self.output += out

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss(self) -> int:
        """The server's resident set size, in bytes."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")


async def _serve(app_name: str, options: dict[str, Any]) -> None:
    module = importlib.import_module(f"demo.{app_name}")
    app: web.Application = module.make_app(**options)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    _host, port = runner.addresses[0][:2]
    print(f"port {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], json.loads(sys.argv[2])))
