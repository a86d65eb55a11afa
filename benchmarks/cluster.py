"""Cross-process broadcast: two servers sharing one Redis, against one server alone.

    python -m benchmarks.cluster [--scale smoke|quick|full] [--reps N]

(``python -m benchmarks`` runs it too, after the single-server scenarios.)
Starts a private ``redis-server`` (Debian package) on a free loopback port,
then, for each repetition:

- **single**: one server process (``python -m benchmarks.cluster --serve``,
  the same ``/bcast`` endpoint as ``benchmarks.server ours``), no broker: N websocket
  sessions on ``/bcast``, one message broadcast per round through
  ``/ctl/broadcast``, until every session has it (the ``broadcast_1``
  scenario); then latency: a ``/pub`` session publishes at a fixed rate
  (1,000 broadcasts/s) to a few ``/bcast`` sessions, each message stamped
  with the generator's clock when it is sent.
- **cluster**: two such processes with ``--broker``; the N sessions are spread
  over both, broadcasts are made on the first, so half the deliveries cross
  Redis. Latency is reported for the sessions of the second process
  (publish on one process, delivery on the other) and of the first.

Servers are pinned to CPU 0, Redis and this generator to CPU 1. Server CPU
is read from ``/proc`` for every server process (both, for the cluster),
so "deliveries per server CPU-second" compares the cost of a delivery
whatever else the machine is doing. Prints a table and, with ``--json``,
the raw runs.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

import aiohttp_sockjs
from benchmarks.loadgen import (
    HOST,
    Listener,
    WSClient,
    _sid,
    _wait,
    cpu_of,
    http_connect,
    open_many,
    ws_connect,
    ws_frame,
)

ROOT = Path(__file__).resolve().parents[1]
REDIS_SERVER = "/usr/bin/redis-server"

SCALES: dict[str, dict[str, float]] = {
    "smoke": {"sessions": 20, "rounds": 3, "lat_sessions": 4, "lat_seconds": 0.5, "rate": 200},
    "quick": {"sessions": 1000, "rounds": 60, "lat_sessions": 10, "lat_seconds": 2, "rate": 1000},
    "full": {"sessions": 1000, "rounds": 150, "lat_sessions": 10, "lat_seconds": 5, "rate": 1000},
}
TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Redis:
    """A private redis-server on CPU 1, no persistence."""

    def __init__(self, directory: str) -> None:
        self.port = _free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self.proc = subprocess.Popen(
            ["taskset", "-c", "1", REDIS_SERVER, "--port", str(self.port), "--bind", HOST,
             "--save", "", "--appendonly", "no", "--dir", directory, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def serving_app(broker_url: str | None) -> web.Application:
    """The server under test: ``/bcast`` listeners, ``/pub`` publishers, ``/ctl/broadcast``.

    With ``broker_url``, ``/bcast`` has a :class:`~aiohttp_sockjs.broker.RedisBroker`,
    so its broadcasts reach the ``/bcast`` sessions of every server sharing that Redis.
    """
    app = web.Application()
    # The load generators open every session from one address.
    extra: dict[str, Any] = {"max_sessions_per_client": None}
    if broker_url is not None:
        from aiohttp_sockjs.broker import RedisBroker

        extra["broker"] = RedisBroker(broker_url)

    async def listen(session: aiohttp_sockjs.Session) -> None:
        async for _ in session:
            pass

    bcast = aiohttp_sockjs.setup(app, "/bcast", listen, **extra)

    async def publish(session: aiohttp_sockjs.Session) -> None:
        async for message in session:
            bcast.broadcast(message)

    aiohttp_sockjs.setup(app, "/pub", publish)

    async def broadcast(request: web.Request) -> web.Response:
        for i in range(int(request.query.get("n", "1"))):
            bcast.broadcast(f"b{i}")
        return web.Response(text="ok")

    app.router.add_post("/ctl/broadcast", broadcast)
    return app


def serve(broker_url: str | None) -> None:
    """Serve :func:`serving_app` on a free port (printed) until stdin closes."""
    from benchmarks.server import _raise_fd_limit
    from benchmarks.server import serve as serve_runner

    _raise_fd_limit()
    runner = web.AppRunner(serving_app(broker_url), access_log=None, handle_signals=False)
    asyncio.run(serve_runner(runner))


class Server:
    """A :func:`serve` process on CPU 0, optionally with a broker."""

    def __init__(self, broker: str | None) -> None:
        args = ["--broker", broker] if broker else []
        command = [sys.executable, "-m", "benchmarks.cluster", "--serve", *args]
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", *command],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("server did not start")
        self.port = int(line)
        self.pid = self.proc.pid

    def stop(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


class Window:
    """Wall time and the CPU seconds of every server over a measured window."""

    def __init__(self, servers: list[Server]) -> None:
        self.pids = [s.pid for s in servers]

    def __enter__(self) -> Window:
        self.t0 = time.perf_counter()
        self.c0 = [cpu_of(pid) for pid in self.pids]
        self.g0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.server_cpu = sum(cpu_of(p) - c for p, c in zip(self.pids, self.c0, strict=True))
        self.gen_cpu = time.process_time() - self.g0


async def broadcast(servers: list[Server], sessions: int, rounds: int) -> dict[str, Any]:
    """Deliveries per second of one-message broadcasts made on the first server."""
    loop = asyncio.get_running_loop()
    state: dict[str, Any] = {"target": 1}
    clients: list[Listener] = []
    share = sessions // len(servers)
    for number, server in enumerate(servers):
        count = sessions - share * (len(servers) - 1) if number == 0 else share
        factory = functools.partial(Listener, server.port, state)
        clients += await open_many(factory, server.port, count)
    ctl = await http_connect(servers[0].port)
    await asyncio.sleep(0.5)  # the broker's reader is blocked in XREAD by now
    times: list[float] = []
    deadline = time.perf_counter() + TIMEOUT
    with Window(servers) as window:
        for _ in range(rounds):
            state["remaining"] = sessions
            state["done"] = loop.create_future()
            t0 = time.perf_counter()
            status, _ = await ctl.request("POST", "/ctl/broadcast?n=1")
            assert status == 200, status
            if not await _wait(state["done"], max(0.1, deadline - time.perf_counter())):
                break
            times.append(state["done"].result() - t0)
    for client in clients:
        client.abort()
    assert ctl.transport is not None
    ctl.transport.abort()
    if not times:
        raise RuntimeError("no broadcast round completed")
    deliveries = sessions * len(times) / sum(times)
    return {
        "deliveries": deliveries,
        "per_cpu_s": sessions * len(times) / max(window.server_cpu, 1e-3),
        "all_ms": statistics.median(times) * 1e3,
        "wall": window.wall,
        "server_cpu": window.server_cpu,
        "gen_cpu": window.gen_cpu,
        "rounds": len(times),
        "timed_out": len(times) < rounds,
    }


class StampListener(WSClient):
    """Records, for each message ``t<seq>``, how long after it was sent it arrived."""

    def __init__(self, port: int, sent_at: dict[int, float], delays: list[float]) -> None:
        super().__init__(f"/bcast/0/{_sid()}/websocket", port)
        self.sent_at = sent_at
        self.delays = delays

    def on_messages(self, frame: bytes) -> None:
        now = time.perf_counter()
        for message in json.loads(frame[1:]):
            self.delays.append(now - self.sent_at[int(message[1:])])


def _percentiles(delays: list[float]) -> tuple[float, float]:
    if not delays:
        raise RuntimeError("no deliveries")
    delays = sorted(delays)
    p50 = delays[len(delays) // 2]
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    return p50 * 1e6, p99 * 1e6


async def latency(
    servers: list[Server], sessions: int, seconds: float, rate: float
) -> dict[str, Any]:
    """Publish ``rate`` broadcasts/s on the first server; delays per receiving server."""
    sent_at: dict[int, float] = {}
    delays: list[list[float]] = [[] for _ in servers]
    listeners: list[StampListener] = []
    for number, server in enumerate(servers):
        factory = functools.partial(StampListener, server.port, sent_at, delays[number])
        listeners += await open_many(factory, server.port, max(1, sessions // len(servers)))
    publisher = await ws_connect(
        lambda: WSClient(f"/pub/0/{_sid()}/websocket", servers[0].port), servers[0].port
    )
    await asyncio.sleep(0.5)
    expected = 0
    interval = 1.0 / rate
    seq = 0
    with Window(servers) as window:
        start = time.perf_counter()
        end = start + seconds
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            due = int((now - start) / interval) + 1
            while seq < due:
                sent_at[seq] = time.perf_counter()
                publisher.write(ws_frame(b'["t%d"]' % seq))
                seq += 1
            await asyncio.sleep(interval)
        expected = seq * len(listeners)
        deadline = time.perf_counter() + 5.0
        while sum(map(len, delays)) < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
    publisher.abort()
    for listener in listeners:
        listener.abort()
    out: dict[str, Any] = {
        "broadcasts": seq,
        "lost": expected - sum(map(len, delays)),
        "wall": window.wall,
        "server_cpu": window.server_cpu,
        "gen_cpu": window.gen_cpu,
    }
    for number, server_delays in enumerate(delays):
        out[f"p50_{number}"], out[f"p99_{number}"] = _percentiles(server_delays)
    return out


async def one_run(redis: Redis, scale: dict[str, float]) -> dict[str, Any]:
    run: dict[str, Any] = {}
    for label, count, broker in (("single", 1, None), ("cluster", 2, redis.url)):
        servers = [Server(broker) for _ in range(count)]
        try:
            run[label] = {
                "broadcast": await broadcast(servers, int(scale["sessions"]), int(scale["rounds"])),
                "latency": await latency(
                    servers, int(scale["lat_sessions"]), scale["lat_seconds"], scale["rate"]
                ),
            }
        finally:
            for server in servers:
                server.stop()
    return run


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def table(runs: list[dict[str, Any]], scale: dict[str, float]) -> str:
    """The markdown table of the medians of ``runs``."""

    def med(label: str, part: str, key: str) -> float:
        return statistics.median(float(r[label][part][key]) for r in runs)

    def busy(label: str, part: str) -> str:
        return f"{100 * med(label, part, 'server_cpu') / med(label, part, 'wall'):.0f}%"

    sessions = int(scale["sessions"])
    rate = int(scale["rate"])
    ratio = med("cluster", "broadcast", "per_cpu_s") / med("single", "broadcast", "per_cpu_s")
    speed = med("cluster", "broadcast", "deliveries") / med("single", "broadcast", "deliveries")

    def pair(label: str, number: int) -> str:
        p50 = med(label, "latency", f"p50_{number}")
        return f"{_fmt(p50)} / {_fmt(med(label, 'latency', f'p99_{number}'))}"

    p99_remote = med("cluster", "latency", "p99_1")
    rows = [
        "| Figure | 1 process | 2 processes + Redis | Ratio | Target | Met |",
        "|---|--:|--:|--:|--:|:-:|",
        f"| broadcast to {sessions} websockets: deliveries [/s] "
        f"| {_fmt(med('single', 'broadcast', 'deliveries'))} "
        f"| {_fmt(med('cluster', 'broadcast', 'deliveries'))} "
        f"| {speed:.2f} | - |  |",
        f"| deliveries per server CPU-second "
        f"| {_fmt(med('single', 'broadcast', 'per_cpu_s'))} "
        f"| {_fmt(med('cluster', 'broadcast', 'per_cpu_s'))} "
        f"| {ratio:.2f} | >= 0.5x | {'yes' if ratio >= 0.5 else '**no**'} |",
        f"| time until all [ms] | {_fmt(med('single', 'broadcast', 'all_ms'))} "
        f"| {_fmt(med('cluster', 'broadcast', 'all_ms'))} | - | - |  |",
        f"| server CPU busy | {busy('single', 'broadcast')} | {busy('cluster', 'broadcast')} "
        "(of one core, both servers) | - | - |  |",
        f"| latency at {rate} broadcasts/s, same process: p50 / p99 [us] "
        f"| {pair('single', 0)} | {pair('cluster', 0)} | - | - |  |",
        f"| latency at {rate} broadcasts/s, other process: p50 / p99 [us] | - "
        f"| {pair('cluster', 1)} | - "
        f"| p99 < 5,000 | {'yes' if p99_remote < 5000 else '**no**'} |",
        f"| latency run: server CPU busy | {busy('single', 'latency')} "
        f"| {busy('cluster', 'latency')} | - | - |  |",
    ]
    lost = sum(int(r[label]["latency"]["lost"]) for r in runs for label in ("single", "cluster"))
    if lost:
        rows.append(f"\n{lost} deliveries of the latency runs never arrived.")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", default="")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--broker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.broker)
        return 0
    if not os.access(REDIS_SERVER, os.X_OK):
        raise SystemExit(f"{REDIS_SERVER} is missing: apt-get install redis-server")
    scale = SCALES[args.scale]
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - the bench extra is not installed
        runner = asyncio.run
    os.sched_setaffinity(0, {1})
    runs = []
    with tempfile.TemporaryDirectory(prefix="sockjs-bench-redis-") as directory:
        redis = Redis(directory)
        try:
            for rep in range(args.reps):
                runs.append(runner(one_run(redis, scale)))
                print(f"# cluster rep {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)
        finally:
            redis.stop()
    print(
        f"# cross-process broadcast, scale={args.scale}, reps={args.reps} (medians), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(table(runs, scale))
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
