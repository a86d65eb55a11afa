"""What one Redis stream can carry: XADD and XREAD rates, and Redis CPU per entry.

    python -m benchmarks.redis_rates [--requests 100000] [--size 100]

Starts a private ``redis-server`` (as benchmarks.cluster, on CPU 1) and
runs ``redis-benchmark`` (from Debian's redis-tools) against it with the
broker's own commands and entry shape (fields ``o``, ``s``, ``m``; a
``--size``-byte message; ``MAXLEN ~ 10000``):

- ``XADD`` from one connection, one at a time: one process's writer when
  it has one broadcast to send;
- ``XADD`` from 50 connections, 16 pipelined each: the stream's ceiling;
- ``XREAD COUNT 1`` and ``XREAD COUNT 100`` of a full stream from 50
  connections: a process reading a broadcast at a time (low rates), and
  catching up in batches (high rates; the broker reads up to 512).

For each, requests per second and the Redis server's CPU microseconds per
stream entry (from /proc), which is what sizing Redis needs: Redis runs
commands on one core. Started by hand; a smoke run is in tests/cluster.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import tempfile
import time

from benchmarks.cluster import Redis
from benchmarks.loadgen import HOST, cpu_of


def bench(port: int, requests: int, clients: int, pipeline: int, command: list[str]) -> float:
    """Requests per second that ``redis-benchmark`` measured for ``command``."""
    out = subprocess.run(
        ["taskset", "-c", "0", "redis-benchmark", "-h", HOST, "-p", str(port),
         "-n", str(requests), "-c", str(clients), "-P", str(pipeline), "--csv", *command],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )  # fmt: skip
    rows = list(csv.reader(io.StringIO(out.stdout)))
    return float(rows[-1][1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args(argv)
    message = "x" * args.size
    xadd = ["XADD", "bench", "MAXLEN", "~", "10000", "*", "o", "host:1:abc", "s", "1", "m", message]
    runs = [
        ("XADD, 1 connection, unpipelined", 1, 1, 1, xadd),
        ("XADD, 50 connections, 16 pipelined", 50, 16, 1, xadd),
        ("XREAD COUNT 1, 50 connections", 50, 1, 1,
         ["XREAD", "COUNT", "1", "STREAMS", "bench", "0"]),
        ("XREAD COUNT 100, 50 connections", 50, 1, 100,
         ["XREAD", "COUNT", "100", "STREAMS", "bench", "0"]),
    ]  # fmt: skip
    print(
        f"{time.strftime('%Y-%m-%d')}, {args.requests:,} requests each, {args.size}-byte messages"
    )
    print("| command | requests/s | entries/s | Redis CPU µs per entry |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as directory:
        redis = Redis(directory)
        try:
            for title, clients, pipeline, entries, command in runs:
                cpu0 = cpu_of(redis.proc.pid)
                rps = bench(redis.port, args.requests, clients, pipeline, command)
                cpu = cpu_of(redis.proc.pid) - cpu0
                per_entry = 1e6 * cpu / (args.requests * entries)
                print(f"| {title} | {rps:,.0f} | {rps * entries:,.0f} | {per_entry:.2f} |")
        finally:
            redis.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
