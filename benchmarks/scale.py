"""Scale: one process up to the open-files limit, and one machine at 100,000 sessions.

    python -m benchmarks.scale single [--sizes 1000,5000,10000,19000] [--idle 30]
    python -m benchmarks.scale machine [--sessions 100000] [--servers 6] [--idle 30]

Started by hand, bounded in time (every wait has a deadline), not part of
the test suite (tests/cluster/test_benchmark_smoke.py runs a tiny
``single`` and ``machine`` to keep it working). Prints a Markdown table
and, with ``--json FILE``, the raw figures.

**single**: for each N and each server (ours with default options but
``max_sessions``, as ``--serve``; a plain aiohttp handler,
``--serve --baseline``, with the same heartbeat frames every 25 s and a
1001 at shutdown), one server process and one load generator
process (``--gen``) holding N sessions: websocket only, and for ours also
a mix (a third each of websocket, xhr_streaming and xhr polling). Figures:
RSS per session, the rate of new sessions, idle CPU over ``--idle``
seconds (one heartbeat period by default, so every session gets its
heartbeat and ping), the sweeper's time per sweep
(``endpoint.stats().last_sweep_seconds``, read every 3 s while idle:
median and largest; a sweep includes the heartbeats it sends),
``--rounds`` broadcasts of one message to all (time from the call to the
first and the last delivery, deliveries per server CPU-second), and
shutdown (stdin closed: time until the process exits, and how many
clients got the 1001 close).

**machine**: ``--servers`` server processes sharing a private Redis
(``RedisBroker``), each with its own port and its own generator process
holding its share of ``--sessions`` websocket sessions; the same figures,
summed over all processes, with one ``broadcast()`` made on the first
server timed to the last delivery on every process.

Each generator stays under the open-files limit (20,000 on our machines).
Times across processes are wall-clock (``time.time()``), one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from benchmarks.cluster import Redis
from benchmarks.loadgen import HOST, HTTPConn, WSClient, _sid, cpu_of, http_connect, rss_of

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 600.0  # the longest any one step may take


# --- the server (ours) ---------------------------------------------------------


def serving_app(broker_url: str | None) -> web.Application:
    """``/bcast`` with default options (room for 20,000 sessions), and control routes.

    But the share of one client: the generators open every session from one address.
    """
    import aiohttp_sockjs

    app = web.Application()
    extra: dict[str, Any] = {"max_sessions_per_client": None}
    if broker_url:
        from aiohttp_sockjs.broker import RedisBroker

        extra["broker"] = RedisBroker(broker_url)

    async def listen(session: aiohttp_sockjs.Session) -> None:
        async for _ in session:
            pass

    bcast = aiohttp_sockjs.setup(app, "/bcast", listen, max_sessions=20_000, **extra)

    async def broadcast(request: web.Request) -> web.Response:
        for i in range(int(request.query.get("n", "1"))):
            bcast.broadcast(f"b{i}")
        return web.Response(text="ok")

    async def stats(request: web.Request) -> web.Response:
        s = bcast.stats()
        return web.json_response(
            {"open": s.open_sessions, "last_sweep_seconds": s.last_sweep_seconds}
        )

    app.router.add_post("/ctl/broadcast", broadcast)
    app.router.add_get("/ctl/stats", stats)
    return app


def baseline_app() -> web.Application:
    """Plain aiohttp: ``/bcast`` websockets that get an ``h`` every 25 s from one
    sweeper (as ``benchmarks.server``'s baseline), 1001 at shutdown (as
    aiohttp's docs advise), and the same control routes."""
    app = web.Application()
    sockets: dict[web.WebSocketResponse, float] = {}

    async def listen(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("o")
        sockets[ws] = asyncio.get_running_loop().time() + 25.0
        try:
            async for _ in ws:
                pass
        finally:
            sockets.pop(ws, None)
        return ws

    async def heartbeats() -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            for ws, due in list(sockets.items()):
                if due <= now and not ws.closed:
                    sockets[ws] = now + 25.0
                    with contextlib.suppress(ConnectionError):
                        await ws.send_str("h")

    async def sweeper(app: web.Application) -> Any:
        task = asyncio.ensure_future(heartbeats())
        yield
        task.cancel()

    async def going_away(app: web.Application) -> None:
        for ws in list(sockets):
            with contextlib.suppress(ConnectionError):
                await ws.send_str('c[1001,"Going away"]')
                await ws.close(code=1001)

    async def broadcast(request: web.Request) -> web.Response:
        for i in range(int(request.query.get("n", "1"))):
            frame = json.dumps([f"b{i}"])
            for ws in list(sockets):
                with contextlib.suppress(ConnectionError):
                    await ws.send_str("a" + frame)
        return web.Response(text="ok")

    app.cleanup_ctx.append(sweeper)
    app.on_shutdown.append(going_away)
    app.router.add_get("/bcast/{server}/{session}/websocket", listen)
    app.router.add_post("/ctl/broadcast", broadcast)
    return app


def serve(broker_url: str | None, baseline: bool = False) -> None:
    from benchmarks.server import _raise_fd_limit
    from benchmarks.server import serve as serve_runner

    _raise_fd_limit()
    app = baseline_app() if baseline else serving_app(broker_url)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    asyncio.run(serve_runner(runner))


class Proc:
    """A subprocess speaking lines: the server prints its port; a generator answers JSON."""

    def __init__(
        self, args: list[str], module: str = "benchmarks.scale", cpu: int | None = None
    ) -> None:
        pin = [] if cpu is None else ["taskset", "-c", str(cpu)]
        self.proc = subprocess.Popen(
            [*pin, sys.executable, "-m", module, *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid

    def line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.proc.args!r} ended: {self.proc.wait()}")
        return line

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.line())
        return answer

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()

    def stop(self) -> None:
        self.close_stdin()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(kind: str, broker: str | None = None, cpu: int | None = None) -> tuple[Proc, int]:
    if kind == "ours":
        server = Proc(["--serve", *(["--broker", broker] if broker else [])], cpu=cpu)
    else:
        server = Proc(["--serve", "--baseline"], cpu=cpu)
    return server, int(server.line())


# --- the load generator (a process of its own) ----------------------------------


class State:
    """What the generator's sessions saw."""

    def __init__(self) -> None:
        self.armed = False
        self.first: float | None = None
        self.last: float | None = None
        self.got = 0
        self.closes = 0
        self.going_away = 0

    def message(self, seen: list[bool]) -> None:
        if self.armed and not seen[0]:
            seen[0] = True
            now = time.time()
            self.first = now if self.first is None else self.first
            self.last = now
            self.got += 1

    def close_frame(self, payload: bytes) -> None:
        if payload.startswith(b"c[1001"):
            self.going_away += 1


class WSListener(WSClient):
    def __init__(self, port: int, state: State) -> None:
        super().__init__(f"/bcast/0/{_sid()}/websocket", port)
        self.state = state
        self.seen = [False]

    def on_messages(self, frame: bytes) -> None:
        self.state.message(self.seen)

    def _text(self, payload: bytes) -> None:
        if payload[:1] == b"c":
            self.state.close_frame(payload)
        super()._text(payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.closes += 1
        super().connection_lost(exc)


class StreamListener:
    """An xhr_streaming session; ``poll=True`` makes it an xhr polling one."""

    def __init__(self, port: int, state: State, poll: bool) -> None:
        self.port, self.state, self.poll = port, state, poll
        self.path = f"/bcast/0/{_sid()}/" + ("xhr" if poll else "xhr_streaming")
        self.seen = [False]
        self.conn: HTTPConn | None = None
        self.task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.conn = await http_connect(self.port)
        if self.poll:
            status, body = await self.conn.request("POST", self.path)
            assert status == 200 and body.startswith(b"o"), (status, body)
            self.task = asyncio.ensure_future(self._poll())
        else:
            opened = asyncio.get_running_loop().create_future()

            def on_data(chunk: bytes) -> None:
                if not opened.done():
                    if b"o\n" in chunk:
                        opened.set_result(None)
                    return
                self._frames(chunk)

            status, _ = await self.conn.request("POST", self.path, on_data=on_data)
            assert status == 200, status
            await opened
            self.task = asyncio.ensure_future(self._watch())

    def _frames(self, chunk: bytes) -> None:
        if b"a[" in chunk:
            self.state.message(self.seen)
        if b"c[" in chunk:
            self.state.close_frame(chunk[chunk.index(b"c[") :])

    async def _watch(self) -> None:
        assert self.conn is not None
        await self.conn.lost
        self.state.closes += 1

    async def _poll(self) -> None:
        assert self.conn is not None
        try:
            while True:
                _, body = await self.conn.request("POST", self.path)
                self._frames(body)
                if body.startswith(b"c["):
                    break
        except ConnectionError:
            pass
        self.state.closes += 1


async def generate(port: int) -> None:
    """Obey JSON commands on stdin, one answer line each, until stdin ends."""
    from benchmarks.server import _raise_fd_limit

    _raise_fd_limit()
    loop = asyncio.get_running_loop()
    state = State()
    clients: list[Any] = []
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)  # timing starts once the generator is up

    async def open_n(n: int, kind: str) -> None:
        sem = asyncio.Semaphore(100)

        async def one() -> None:
            async with sem:
                c: Any
                if kind == "ws":
                    _, c = await loop.create_connection(lambda: WSListener(port, state), HOST, port)
                    await c.opened
                else:
                    c = StreamListener(port, state, poll=kind == "xhr")
                    await c.open()
                clients.append(c)

        await asyncio.gather(*(one() for _ in range(n)))

    while line := await reader.readline():
        command = json.loads(line)
        op = command["op"]
        answer: dict[str, Any] = {}
        if op == "open":
            t0 = time.time()
            for kind, n in command["kinds"].items():
                await open_n(n, kind)
            answer = {"opened": len(clients), "seconds": time.time() - t0}
        elif op == "arm":
            state.armed, state.first, state.last, state.got = True, None, None, 0
            for c in clients:
                c.seen[0] = False
        elif op == "report":
            deadline = time.monotonic() + command.get("timeout", 30)
            while state.got < len(clients) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            answer = {"first": state.first, "last": state.last, "got": state.got}
            state.armed = False
        elif op == "closes":
            deadline = time.monotonic() + command.get("timeout", 30)
            while state.closes < len(clients) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            answer = {"closes": state.closes, "going_away": state.going_away, "at": time.time()}
        print(json.dumps(answer), flush=True)
    for c in clients:
        if isinstance(c, WSClient):
            c.abort()
        elif c.conn is not None and c.conn.transport is not None:
            c.conn.transport.abort()


# --- the runs --------------------------------------------------------------------


def http(port: int, method: str, path: str) -> bytes:
    import urllib.request

    request = urllib.request.Request(f"http://{HOST}:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        body: bytes = response.read()
        return body


def sweep_seconds(ports: list[int]) -> float | None:
    """The largest ``last_sweep_seconds`` of the servers (ours only)."""
    seen = []
    for port in ports:
        with contextlib.suppress(OSError, ValueError):
            value = json.loads(http(port, "GET", "/ctl/stats"))["last_sweep_seconds"]
            if value is not None:
                seen.append(value)
    return max(seen) if seen else None


def run(
    servers: list[tuple[Proc, int]],
    shares: list[dict[str, int]],
    idle: float,
    rounds: int,
    settle: float,
    gen_cpu: int | None = None,
    profile: str = "",
) -> dict[str, Any]:
    """Open the sessions, then measure idle, broadcast and shutdown; the figures."""
    pids = [s.pid for s, _ in servers]
    ports = [p for _, p in servers]
    time.sleep(settle / 2)
    rss0 = sum(rss_of(pid) for pid in pids)
    gens = [Proc(["--gen", str(port)], cpu=gen_cpu) for port in ports]
    try:
        for gen in gens:
            gen.line()
        cpu0 = sum(cpu_of(pid) for pid in pids)
        t0 = time.time()
        for gen, share in zip(gens, shares, strict=True):
            assert gen.proc.stdin is not None
            gen.proc.stdin.write(json.dumps({"op": "open", "kinds": share}) + "\n")
            gen.proc.stdin.flush()
        opened = [json.loads(g.line()) for g in gens]
        open_wall = time.time() - t0
        open_cpu = sum(cpu_of(pid) for pid in pids) - cpu0
        n = sum(o["opened"] for o in opened)
        time.sleep(settle)
        rss1 = sum(rss_of(pid) for pid in pids)

        # Idle: default heartbeats (and the pings that ride them).
        spy = None
        if profile:
            # py-spy (the bench extra) samples the first server while it idles.
            spy = subprocess.Popen(
                ["py-spy", "record", "--nonblocking", "-d", str(int(idle)), "-p", str(pids[0]),
                 "-f", "raw", "-o", f"{profile}-{n}.txt"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        cpu0, w0 = sum(cpu_of(pid) for pid in pids), time.perf_counter()
        sweeps = []
        while time.perf_counter() - w0 < idle:
            time.sleep(min(3.0, idle / 4))  # stats() walks the sessions: not too often
            sweeps.append(sweep_seconds(ports))
        idle_wall = time.perf_counter() - w0
        idle_cpu = sum(cpu_of(pid) for pid in pids) - cpu0
        if spy is not None:
            spy.wait(60)
        sweeps_seen = [s for s in sweeps if s is not None]

        # Broadcasts of one message to everyone, made on the first server.
        firsts, lasts, got = [], [], []
        cpu0 = sum(cpu_of(pid) for pid in pids)
        for _ in range(rounds):
            for gen in gens:
                gen.ask(op="arm")
            t_call = time.time()
            http(ports[0], "POST", "/ctl/broadcast?n=1")
            reports = [g.ask(op="report", timeout=30) for g in gens]
            got.append(sum(r["got"] for r in reports))
            firsts.append(min(r["first"] or 1e18 for r in reports) - t_call)
            lasts.append(max(r["last"] or 0 for r in reports) - t_call)
        bcast_cpu = sum(cpu_of(pid) for pid in pids) - cpu0

        # Shutdown: every server at once.
        t_stop = time.time()
        for server, _ in servers:
            server.close_stdin()
        for server, _ in servers:
            try:
                server.proc.wait(60)
            except subprocess.TimeoutExpired:
                server.proc.kill()
        exited = time.time() - t_stop
        closes = [g.ask(op="closes", timeout=30) for g in gens]
    finally:
        for gen in gens:
            gen.stop()
    return {
        "sessions": n,
        "rss_mb": rss1 / 2**20,
        "rss_per_session_kb": (rss1 - rss0) / n / 1024,
        "open_per_s": n / open_wall,
        "open_cpu_us": 1e6 * open_cpu / n,
        "idle_cpu_pct": 100 * idle_cpu / idle_wall,
        "sweep_ms": 1e3 * statistics.median(sweeps_seen) if sweeps_seen else None,
        "sweep_max_ms": 1e3 * max(sweeps_seen) if sweeps_seen else None,
        "bcast_first_ms": 1e3 * statistics.median(firsts),
        "bcast_last_ms": 1e3 * statistics.median(lasts),
        "bcast_last_max_ms": 1e3 * max(lasts),
        "bcast_all_reached": min(got) == n,
        "deliveries_per_cpu_s": sum(got) / max(bcast_cpu, 1e-9),
        "shutdown_s": exited,
        "last_close_s": max(c["at"] for c in closes) - t_stop,
        "closed": sum(c["closes"] for c in closes),
        "got_1001": sum(c["going_away"] for c in closes),
    }


def single(
    sizes: list[int], idle: float, rounds: int, mix: bool, settle: float, profile: str
) -> list[dict[str, Any]]:
    rows = []
    kinds = [("ours", "ws"), ("baseline", "ws")] + ([("ours", "mix")] if mix else [])
    for n in sizes:
        for kind, sessions in kinds:
            if sessions == "ws":
                share = {"ws": n}
            else:
                share = {"ws": n - 2 * (n // 3), "xhr_streaming": n // 3, "xhr": n // 3}
            # As benchmarks.cluster: the server on CPU 0, its generator on CPU 1.
            server = start_server(kind, cpu=0)
            try:
                spy = f"{profile}-{kind}-{sessions}" if profile else ""
                row = run([server], [share], idle, rounds, settle, gen_cpu=1, profile=spy)
            finally:
                server[0].stop()
            row.update(server=kind, mix=sessions, n=n)
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def machine(
    total: int, count: int, idle: float, rounds: int, settle: float, profile: str
) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as directory:
        redis = Redis(directory)
        servers = []
        try:
            for _ in range(count):
                servers.append(start_server("ours", redis.url))
            shares = [{"ws": total // count + (i < total % count)} for i in range(count)]
            row = run(servers, shares, idle, rounds, settle, profile=profile)
        finally:
            for server, _ in servers:
                server.stop()
            redis.stop()
    row.update(server=f"ours x{count} + Redis", mix="ws", n=total)
    print(json.dumps(row), file=sys.stderr, flush=True)
    return [row]


COLUMNS = [
    ("server", "server", "{}"),
    ("mix", "sessions", "{}"),
    ("sessions", "N", "{:,}"),
    ("rss_per_session_kb", "RSS/session KB", "{:.1f}"),
    ("rss_mb", "RSS MB", "{:.0f}"),
    ("open_per_s", "new sessions/s", "{:,.0f}"),
    ("idle_cpu_pct", "idle CPU %", "{:.2f}"),
    ("sweep_ms", "sweep p50 ms", "{:.1f}"),
    ("sweep_max_ms", "sweep max ms", "{:.1f}"),
    ("bcast_first_ms", "bcast first ms", "{:.0f}"),
    ("bcast_last_ms", "bcast last ms", "{:.0f}"),
    ("deliveries_per_cpu_s", "deliveries/CPU-s", "{:,.0f}"),
    ("shutdown_s", "shutdown s", "{:.2f}"),
    ("got_1001", "got 1001", "{:,}"),
]


def table(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [fmt.format(row[k]) if row.get(k) is not None else "-" for k, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=["single", "machine"])
    parser.add_argument("--sizes", default="1000,5000,10000,19000")
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--servers", type=int, default=6)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-mix", action="store_true")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before RSS is read")
    parser.add_argument("--json", default="")
    parser.add_argument("--profile", default="", help="py-spy the idle server: file prefix")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--broker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gen", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.broker, args.baseline)
        return 0
    if args.gen:
        asyncio.run(generate(args.gen))
        return 0
    if args.mode == "single":
        sizes = [int(s) for s in args.sizes.split(",")]
        rows = single(sizes, args.idle, args.rounds, not args.no_mix, args.settle, args.profile)
    elif args.mode == "machine":
        rows = machine(
            args.sessions, args.servers, args.idle, args.rounds, args.settle, args.profile
        )
    else:
        parser.error("say single or machine")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    print(
        f"{time.strftime('%Y-%m-%d')}, {platform.node()}, {os.cpu_count()} CPUs, "
        f"commit {commit}, idle window {args.idle:.0f} s, {args.rounds} broadcasts"
    )
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
