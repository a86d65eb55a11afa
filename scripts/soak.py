"""Soak test: 100,000 sessions through a real server process, watching its memory.

Run from the repository root (not part of the test suite)::

    python scripts/soak.py                 # 100,000 sessions
    python scripts/soak.py --sessions 20000 --concurrency 100

It starts a server in a child process, churns sessions over every transport
through it (a share of them aborted mid-request, every surviving session
checked for lost or reordered messages), and prints the server's RSS after
warm-up, at its peak and at the end, once every session has expired. It then
opens 1,000 sessions and times the endpoint's shutdown.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp_sockjs  # noqa: E402
from aiohttp_sockjs import Session  # noqa: E402
from aiohttp_sockjs.client import SockJSClient, connect  # noqa: E402
from tests.churn import churn  # noqa: E402


def rss_kib(pid: int) -> int:
    """The resident set size of process ``pid``, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# --- the server process ---------------------------------------------------------


async def echo(session: Session) -> None:
    """Send every message back."""
    async for message in session:
        session.send(message)


def serve(port: int) -> None:
    """The server process: /echo plus /stats and /shutdown for the driver."""
    app = web.Application()
    endpoint = aiohttp_sockjs.setup(
        app,
        "/echo",
        echo,
        heartbeat_delay=2.0,
        disconnect_delay=5.0,
        response_limit=4096,
        max_sessions=None,
    )

    async def stats(request: web.Request) -> web.Response:
        if request.query.get("gc"):
            gc.collect()
        body = {
            "sessions": len(endpoint._sessions),
            "handlers": len(endpoint._handler_tasks),
            "tasks": len(asyncio.all_tasks()),
        }
        if request.query.get("dump"):
            where = collections.Counter()
            for task in asyncio.all_tasks():
                frames = task.get_stack()
                where[" < ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in frames[-3:])] += 1
            body["where"] = where.most_common(8)  # type: ignore[assignment]
        return web.json_response(body)

    async def shutdown(request: web.Request) -> web.Response:
        count = len(endpoint._sessions)
        start = time.perf_counter()
        await endpoint.shutdown()
        elapsed = time.perf_counter() - start
        await endpoint.start()  # keep serving for the rest of the run
        return web.json_response({"closed": count, "seconds": elapsed})

    app.router.add_get("/stats", stats)
    app.router.add_post("/shutdown", shutdown)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --- the driver -------------------------------------------------------------------


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def drive(args: argparse.Namespace) -> None:
    """Run the soak against a server child process."""
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        for _ in range(100):
            try:
                async with http.get(base + "/stats") as r:
                    await r.read()
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        print(f"server pid {server.pid}, RSS at start {rss_kib(server.pid) / 1024:.1f} MiB")
        peak = 0
        sampling = True

        async def sample() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, rss_kib(server.pid))
                await asyncio.sleep(0.2)

        sampler = asyncio.ensure_future(sample())
        start = time.perf_counter()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
            warm = await churn(
                client, base + "/echo", args.warmup, concurrency=args.concurrency, seed=7
            )
        left = await settle(http, base)
        after_warmup = rss_kib(server.pid)
        print(
            f"after {args.warmup} warm-up sessions ({warm}): RSS {after_warmup / 1024:.1f} MiB; "
            f"left on the server: {left}"
        )
        done = 0
        totals = {"clean": 0, "aborted": 0}
        while done < args.sessions:
            batch = min(args.batch, args.sessions - done)
            # A fresh client per batch: real clients' connections end too.
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
                stats = await churn(
                    client, base + "/echo", batch, concurrency=args.concurrency, seed=done + 11
                )
            for key, value in stats.items():
                totals[key] += value
            done += batch
            rate = done / (time.perf_counter() - start)
            busy = rss_kib(server.pid)
            left = await settle(http, base)
            print(
                f"  {done} sessions, {rate:.0f}/s; RSS {busy / 1024:.1f} MiB with the batch's "
                f"sessions alive, {rss_kib(server.pid) / 1024:.1f} MiB once they expired "
                f"(left: {left['sessions']} sessions, {left['tasks']} tasks)"
            )
        sampling = False
        await sampler
        left = await settle(http, base)
        end = rss_kib(server.pid)
        print(f"{done} sessions {totals} in {time.perf_counter() - start:.0f} s")
        print(
            f"RSS: after warm-up {after_warmup / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
            f"end {end / 1024:.1f} MiB ({(end - after_warmup) / after_warmup:+.1%}); "
            f"left on the server: {left}"
        )
        async with http.get(base + "/stats?dump=1") as r:
            print(f"server tasks at the end: {await r.text()}")
        await time_shutdown(http, base)
    finally:
        await http.close()
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()


async def settle(http: aiohttp.ClientSession, base: str) -> dict[str, int]:
    """Wait until every session has expired on the server; returns its stats."""
    for _ in range(200):
        async with http.get(base + "/stats?gc=1") as r:
            stats: dict[str, int] = json.loads(await r.text())
        if stats["sessions"] == 0 and stats["handlers"] == 0:
            break
        await asyncio.sleep(0.1)
    return stats


async def time_shutdown(http: aiohttp.ClientSession, base: str) -> None:
    """Open 1,000 sessions and time the endpoint's shutdown."""
    kinds = ["websocket", "xhr_streaming", "eventsource", "htmlfile", "xhr"]
    sem = asyncio.Semaphore(100)

    async def open_one(kind: str) -> SockJSClient:
        async with sem:
            return await connect(base + "/echo", transports=kind, session=http)

    clients = await asyncio.gather(*(open_one(kinds[i % len(kinds)]) for i in range(1000)))

    async def until_close(c: SockJSClient) -> tuple[int | None, str | None]:
        await c.wait_closed()
        return c.close_code, c.close_reason

    readers = [asyncio.ensure_future(until_close(c)) for c in clients]
    await asyncio.sleep(1)
    async with http.post(base + "/shutdown") as r:
        result = json.loads(await r.text())
    _, pending = await asyncio.wait(readers, timeout=30)
    stuck = collections.Counter(
        c.transport for c, r in zip(clients, readers, strict=True) if r in pending
    )
    for r in pending:
        r.cancel()
    frames = [r.result() for r in readers if r not in pending and not r.exception()]
    got = sum(1 for f in frames if f == (1001, "Going away"))
    if stuck:
        print(f"clients that got no frame within 30 s: {dict(stuck)}")
    print(
        f"shutdown: {result['closed']} sessions closed in {result['seconds'] * 1000:.0f} ms; "
        f"{got} clients got the 1001 close frame"
    )
    for c in clients:
        await c.close()


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
    else:
        asyncio.run(drive(args))


if __name__ == "__main__":
    main()
