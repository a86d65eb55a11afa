"""Fixtures for the cluster tests: real components, started here and stopped after.

Each component has its own block below (Redis first); keep them apart so
fixtures for other components can be added beside them without merging pains.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .proxies import Cluster, start_cluster

# --- Redis: a real redis-server (Debian package) -------------------------------

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A redis-server on a free loopback port, with no persistence.

    ``stop()`` and ``start()`` again keep the port, so clients see an
    outage and a restart of the same server (empty, as nothing is saved).
    """

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.config = directory / "redis.conf"
        self.config.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    "protected-mode yes",
                    "daemonize no",
                    'save ""',
                    "appendonly no",
                    f"dir {directory}",
                    "loglevel warning",
                    f"logfile {directory / 'redis.log'}",
                    "databases 1",
                ]
            )
            + "\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        assert self.process is None
        self.process = subprocess.Popen(
            [REDIS_SERVER, str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited: {log[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING within 10 s")
            time.sleep(0.01)

    def stop(self) -> None:
        """Kill the server (no clean shutdown, no save) and wait for it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def ping(self) -> bool:
        """Whether the server answers PING (raw RESP, no client library)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server for one test, stopped after it."""
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.fail(f"{REDIS_SERVER} is missing: install Debian's redis-server (.ci/run does)")
    with tempfile.TemporaryDirectory(prefix="sockjs-redis-") as directory:
        server = RedisServer(Path(directory))
        server.start()
        try:
            yield server
        finally:
            with contextlib.suppress(Exception):
                server.stop()


# --- end of Redis -----------------------------------------------------------------


# --- Deployment: server processes behind nginx or haproxy (see proxies.py) ----

ClusterFactory = Callable[..., Cluster]


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[ClusterFactory]:
    """``cluster_factory(kind, count, args=(), edit=None)``: processes behind a proxy.

    Everything it started is stopped when the test ends.
    """
    started: list[Cluster] = []

    def make(kind: str, count: int, args: Any = (), **options: Any) -> Cluster:
        cluster = start_cluster(kind, tmp_path / f"cluster{len(started)}", count, args, **options)
        started.append(cluster)
        return cluster

    yield make
    for cluster in started:
        cluster.stop()


@dataclass
class RelayCluster:
    """Three ``server.py`` processes with ``/relay`` on one Redis, behind nginx."""

    cluster: Cluster
    redis: RedisServer
    process_ttl: float


#: Small presence intervals, so a dead process drops out quickly.
PRESENCE_INTERVAL = 0.2
PROCESS_TTL = 1.0


@pytest.fixture
def relay_cluster(tmp_path: Path) -> Iterator[RelayCluster]:
    """``/relay`` on three processes sharing one Redis, behind nginx; heartbeats every 0.5 s."""
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    args = [
        "--redis", redis.url,
        "--heartbeat-delay", "0.5",
        "--presence-interval", str(PRESENCE_INTERVAL),
        "--process-ttl", str(PROCESS_TTL),
    ]  # fmt: skip
    try:
        cluster = start_cluster("nginx", tmp_path / "cluster", 3, args)
        try:
            yield RelayCluster(cluster, redis, PROCESS_TTL)
        finally:
            cluster.stop()
    finally:
        redis.stop()


# --- end of Deployment -----------------------------------------------------------
