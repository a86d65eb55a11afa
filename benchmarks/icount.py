"""Instructions per operation of our server, counted by valgrind: a measure noise cannot move.

    python -m benchmarks.icount                       # this checkout
    python -m benchmarks.icount /tmp/before /tmp/other  # and other checkouts, same table
    python -m benchmarks.icount --only ws_echo,broadcast
    python -m benchmarks.icount --repeat 3 /tmp/before # each cell the median of 3

The throughput tables of ``python -m benchmarks`` swing by 10-20% between
two runs of the same code on a shared machine, which hides the few percent
a change to the session core is about. This counts instead: each checkout's
benchmark server (``benchmarks/server.py ours``) runs under valgrind's
cachegrind, and a client in this process drives one fixed workload against
it, ``HIGH`` and then ``LOW`` operations. Instructions per operation are
``(I(HIGH) - I(LOW)) / (HIGH - LOW)``, so start-up, connecting and shutdown
cancel out; the LOW run then idles as long as the HIGH run took, so the
work that comes with time (the sweeper, heartbeats) cancels out too. Every
workload waits for each answer before the next request, so how work is
batched does not depend on how fast the server runs under valgrind. The
count covers the whole server process: asyncio, aiohttp and ours.
The server's start-up alone is about 1.8 billion instructions and moves by
a million or two between runs of the same code (timing: how reads batch,
how many sweeper rounds), so each workload's span is about 400 million
instructions of work, which keeps that under 0.5% of a row.
Valgrind must be installed (Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Websockets listening to each broadcast.
LISTENERS = 200
BATCH = 100
#: Messages of a broadcast burst.
BURST = 20


def _sid() -> str:
    return uuid.uuid4().hex


async def _frames(ws: aiohttp.ClientWebSocketResponse) -> str:
    """The next SockJS frame that is not a heartbeat."""
    while True:
        msg = await ws.receive(timeout=120)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"websocket ended: {msg.type.name}")
        if msg.data != "h":
            return str(msg.data)


async def ws_echo(http: aiohttp.ClientSession, base: str, n: int) -> None:
    async with http.ws_connect(f"{base}/echo/000/{_sid()}/websocket") as ws:
        assert await _frames(ws) == "o"
        for i in range(n):
            await ws.send_str(json.dumps([f"m{i}"]))
            assert await _frames(ws) == f'a["m{i}"]'


async def ws_echo_batch(
    http: aiohttp.ClientSession, base: str, n: int, prefix: str = "/echo"
) -> None:
    async with http.ws_connect(f"{base}{prefix}/000/{_sid()}/websocket") as ws:
        assert await _frames(ws) == "o"
        for i in range(n):
            await ws.send_str(json.dumps([f"m{i}.{k}" for k in range(BATCH)]))
            got = 0
            while got < BATCH:
                frame = await _frames(ws)
                got += len(json.loads(frame[1:]))


async def ws_echo_batch_api(http: aiohttp.ClientSession, base: str, n: int) -> None:
    await ws_echo_batch(http, base, n, "/echob")


async def broadcast(http: aiohttp.ClientSession, base: str, n: int, query: str = "n=1") -> None:
    sockets = [
        await http.ws_connect(f"{base}/bcast/000/{_sid()}/websocket") for _ in range(LISTENERS)
    ]
    per = int(query.split("&")[0][2:])
    try:
        for ws in sockets:
            assert await _frames(ws) == "o"
        for _ in range(n):
            async with http.post(f"{base}/ctl/broadcast?{query}") as response:
                assert response.status == 200
            for ws in sockets:
                got = 0
                while got < per:
                    frame = await _frames(ws)
                    assert frame.startswith("a[")
                    got += len(json.loads(frame[1:]))
    finally:
        for ws in sockets:
            await ws.close()


async def burst(http: aiohttp.ClientSession, base: str, n: int) -> None:
    await broadcast(http, base, n, f"n={BURST}")


async def burst_many(http: aiohttp.ClientSession, base: str, n: int) -> None:
    await broadcast(http, base, n, f"n={BURST}&many=1")


async def xhr_streaming_echo(http: aiohttp.ClientSession, base: str, n: int) -> None:
    url = f"{base}/echo/000/{_sid()}/"
    async with http.post(url + "xhr_streaming") as stream:
        prelude = await stream.content.readline()
        assert prelude.strip(b"h\n") == b""
        assert await stream.content.readline() == b"o\n"
        for i in range(n):
            async with http.post(url + "xhr_send", data=json.dumps([f"m{i}"])) as sent:
                assert sent.status == 204
            line = await stream.content.readline()
            while line == b"h\n":
                line = await stream.content.readline()
            assert line == b'a["m%d"]\n' % i


async def xhr_polling(http: aiohttp.ClientSession, base: str, n: int) -> None:
    url = f"{base}/echo/000/{_sid()}/"
    async with http.post(url + "xhr") as opened:
        assert await opened.read() == b"o\n"
    for i in range(n):
        async with http.post(url + "xhr_send", data=json.dumps([f"m{i}"])) as sent:
            assert sent.status == 204
        async with http.post(url + "xhr") as polled:
            assert await polled.read() == b'a["m%d"]\n' % i


async def ws_churn(http: aiohttp.ClientSession, base: str, n: int) -> None:
    for _ in range(n):
        async with http.ws_connect(f"{base}/echo/000/{_sid()}/websocket") as ws:
            assert await _frames(ws) == "o"


@dataclass(frozen=True)
class Workload:
    name: str
    what: str
    unit: str
    run: Callable[[aiohttp.ClientSession, str, int], Awaitable[None]]
    low: int
    high: int
    per: int = 1  # units per operation


WORKLOADS = [
    Workload("ws_echo", "websocket echo, one message at a time", "message", ws_echo, 100, 2600),
    Workload(
        "ws_echo_batch",
        f"websocket echo, frames of {BATCH} messages",
        "message",
        ws_echo_batch,
        10,
        410,
        BATCH,
    ),
    Workload(
        "broadcast",
        f"broadcast of one message to {LISTENERS} websockets",
        "delivery",
        broadcast,
        5,
        105,
        LISTENERS,
    ),
    Workload(
        "ws_echo_batch_api",
        f"websocket echo, frames of {BATCH} messages, receive_many + send_many",
        "message",
        ws_echo_batch_api,
        10,
        410,
        BATCH,
    ),
    Workload(
        "burst",
        f"{BURST} broadcasts to {LISTENERS} websockets",
        "delivery",
        burst,
        2,
        22,
        LISTENERS * BURST,
    ),
    Workload(
        "burst_many",
        f"broadcast_many of {BURST} messages to {LISTENERS} websockets",
        "delivery",
        burst_many,
        2,
        42,
        LISTENERS * BURST,
    ),
    Workload(
        "xhr_streaming_echo",
        "xhr_send + xhr_streaming echo",
        "message",
        xhr_streaming_echo,
        50,
        1050,
    ),
    Workload("xhr_polling", "xhr_send + xhr poll round trip", "round trip", xhr_polling, 50, 650),
    Workload("ws_churn", "websocket session opened and closed", "session", ws_churn, 20, 420),
]


#: Messages in flight in the client workload: sent before the first answer is read.
CLIENT_WINDOW = 100


@dataclass(frozen=True)
class ClientWorkload:
    """Our client (benchmarks/client_load.py) under valgrind too, against the server."""

    name: str
    what: str
    low: int
    high: int


CLIENT_WORKLOADS = [
    ClientWorkload(
        "client_ws_pipelined",
        f"client websocket echo, {CLIENT_WINDOW} messages in flight",
        1000,
        6000,
    ),
]


def _valgrind(*command: str) -> list[str]:
    return [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        *command,
    ]


def _instructions(stderr: bytes) -> int:
    found = re.search(rb"I\s+refs:\s+([\d,]+)", stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {stderr[-500:]!r}")
    return int(found.group(1).replace(b",", b""))


def count_client(root: str, n: int, pad_to: float = 0.0) -> tuple[int, int, float]:
    """Instructions of the server and of our client at ``root`` for ``n`` echoed messages.

    Both run under valgrind, each in its own process; returns the server's
    count, the client's, and how long the server ran (``pad_to`` as in
    :func:`count`).
    """
    started = time.monotonic()
    server = subprocess.Popen(
        _valgrind(sys.executable, "-m", "benchmarks.server", "ours"),
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert server.stdin is not None and server.stdout is not None and server.stderr is not None
    try:
        line = server.stdout.readline()
        if not line:
            raise RuntimeError(f"server at {root} did not start: {server.stderr.read()!r}")
        base = f"http://127.0.0.1:{int(line)}"
        client = subprocess.run(
            _valgrind(
                sys.executable, "-m", "benchmarks.client_load", base, str(n), str(CLIENT_WINDOW)
            ),
            cwd=root,
            capture_output=True,
            timeout=600,
        )
        if client.returncode != 0:
            raise RuntimeError(f"the client failed: {client.stderr[-2000:]!r}")
        idle = pad_to - (time.monotonic() - started)
        if idle > 0:
            time.sleep(idle)
        duration = time.monotonic() - started
        server.stdin.close()
        server.wait(timeout=600)
        err = server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return _instructions(err), _instructions(client.stderr), duration


def count(
    root: str, workload: Workload, n: int, server_args: list[str], pad_to: float = 0.0
) -> tuple[int, float]:
    """Instructions the server at ``root`` executes for ``n`` operations, start to exit.

    Also returns how long the server ran before it was asked to exit; with
    ``pad_to``, it idles until then, so the work that comes with time (the
    sweeper's rounds, heartbeats) is the same in both runs of a pair.
    """
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "benchmarks.server",
            "ours",
            *server_args,
        ],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server at {root} did not start: {proc.stderr.read()!r}")
        base = f"http://127.0.0.1:{int(line)}"

        async def drive() -> None:
            timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
                await workload.run(http, base, n)

        asyncio.run(drive())
        idle = pad_to - (time.monotonic() - started)
        if idle > 0:
            time.sleep(idle)
        duration = time.monotonic() - started
        proc.stdin.close()
        proc.wait(timeout=600)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    found = re.search(rb"I\s+refs:\s+([\d,]+)", err)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {err[-500:]!r}")
    return int(found.group(1).replace(b",", b"")), duration


def _cell(found: list[float]) -> str:
    """The median of a cell's counts, with their range when there are several."""
    median = f"{statistics.median(found):,.0f}"
    if len(found) == 1:
        return median
    return f"{median} ({min(found):,.0f}-{max(found):,.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("others", nargs="*", help="other checkouts (git worktrees) to count too")
    parser.add_argument("--only", default="", help="comma-separated workload names")
    parser.add_argument("--metrics", action="store_true", help="this checkout serves /metrics")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="count each cell this many times, the checkouts taking turns, and show the median",
    )
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    workloads = [w for w in WORKLOADS if not names or w.name in names]
    client_workloads = [w for w in CLIENT_WORKLOADS if not names or w.name in names]
    roots = [ROOT, *(os.path.abspath(o) for o in args.others)]
    labels = ["this checkout" + (" (--metrics)" if args.metrics else "")] + [
        os.path.basename(r) for r in args.others
    ]
    started = time.time()
    columns = [f"{label} [instructions]" for label in labels]
    columns += [f"{label} / this" for label in labels[1:]]
    print("| Workload | unit | " + " | ".join(columns) + " |")
    print("|---|---|" + "--:|" * len(columns))
    for workload in workloads:
        # The checkouts take turns, so that a change in the machine's load
        # (which moves how reads batch) falls on all of them alike.
        counts: list[list[float]] = [[] for _ in roots]
        for _ in range(args.repeat):
            for root, found in zip(roots, counts, strict=True):
                extra = ["--metrics"] if args.metrics and root == ROOT else []
                high, duration = count(root, workload, workload.high, extra)
                low, _ = count(root, workload, workload.low, extra, pad_to=duration)
                found.append((high - low) / (workload.high - workload.low) / workload.per)
        per_unit = [statistics.median(found) for found in counts]
        ratios = [p / per_unit[0] for p in per_unit[1:]]
        cells = [_cell(found) for found in counts] + [f"{r:.3f}" for r in ratios]
        print(f"| {workload.what} | {workload.unit} | " + " | ".join(cells) + " |", flush=True)
    if client_workloads:
        print(
            "\n| Workload | checkout | server [instructions/message] "
            "| client [instructions/message] | client / server |"
        )
        print("|---|---|--:|--:|--:|")
    for cw in client_workloads:
        for root, label in zip(roots, labels, strict=True):
            if not os.path.exists(os.path.join(root, "benchmarks", "client_load.py")):
                print(f"| {cw.what} | {label} | | | (no client_load.py) |", flush=True)
                continue
            server_high, client_high, duration = count_client(root, cw.high)
            server_low, client_low, _ = count_client(root, cw.low, pad_to=duration)
            span = cw.high - cw.low
            server_per = (server_high - server_low) / span
            client_per = (client_high - client_low) / span
            print(
                f"| {cw.what} | {label} | {server_per:,.0f} | {client_per:,.0f} "
                f"| {client_per / server_per:.2f} |",
                flush=True,
            )
    print(f"\n{time.time() - started:.0f} s, Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
