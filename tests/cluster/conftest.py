"""Fixtures for the cluster tests: real components, started here and stopped after.

Each component has its own block below (Redis first); keep them apart so
fixtures for other components can be added beside them without merging pains.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
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

    def __init__(
        self, directory: Path, extra: list[str] | None = None, *, sentinel: bool = False
    ) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.sentinel = sentinel
        self.config = directory / "redis.conf"
        base = [
            "bind 127.0.0.1",
            f"port {self.port}",
            "daemonize no",
            f"dir {directory}",
            "loglevel warning",
            f"logfile {directory / 'redis.log'}",
        ]
        if not sentinel:
            base += ["protected-mode yes", 'save ""', "appendonly no", "databases 1"]
        self.config.write_text("\n".join(base + (extra or [])) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        assert self.process is None
        # Debian's redis-sentinel is redis-server under another name; the
        # flag makes one without the redis-sentinel package.
        self.process = subprocess.Popen(
            [REDIS_SERVER, str(self.config), *(["--sentinel"] if self.sentinel else [])],
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

    def pause(self, paused: bool = True) -> None:
        """SIGSTOP the server (it takes no traffic, replicates nothing), or SIGCONT it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def ping(self) -> bool:
        """Whether the server answers PING (raw RESP, no client library)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def address(self) -> tuple[str, int]:
        """Host and port, as Sentinel and Cluster clients take them."""
        return ("127.0.0.1", self.port)


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


# --- Redis Sentinel: a master, a replica and three sentinels ---------------------

SENTINEL_MASTER = "sockjs"
#: How long the sentinels wait before they call an unanswering master down.
SENTINEL_DOWN_AFTER_MS = 500


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll ``check`` until it holds (a component's start, not a test's condition)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


class ReplicationLink:
    """A TCP relay from the replica to the master, which the test can make lossy.

    After ``drop()`` what the master sends is read and thrown away: the
    master believes its writes went out, the replica never sees them, as
    when a link fails with data in flight. (Pausing the replica would not
    do: the kernel keeps what the master wrote for it.)
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.dropping = threading.Event()
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def drop(self) -> None:
        """From now on, lose what the master sends."""
        self.dropping.set()

    def _accept(self) -> None:
        while True:
            try:
                replica, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                master = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the master is gone: so is this link
                replica.close()
                continue
            self.sockets += [replica, master]
            threading.Thread(target=self._pump, args=(master, replica, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(replica, master, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, lossy: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not (lossy and self.dropping.is_set()):
                    sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


@dataclass
class SentinelGroup:
    """A master, its replica (through a relay) and three sentinels (quorum 2)."""

    master: RedisServer
    replica: RedisServer
    sentinels: list[RedisServer]
    link: ReplicationLink | None = None

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [s.address() for s in self.sentinels]

    def master_address(self) -> tuple[str, int] | None:
        """Where the sentinels say the master is (the first that answers)."""
        import redis

        for sentinel in self.sentinels:
            if sentinel.process is None:
                continue
            with contextlib.suppress(redis.RedisError), redis.Redis(*sentinel.address()) as r:
                host, port = r.sentinel_get_master_addr_by_name(SENTINEL_MASTER)
                return (host.decode() if isinstance(host, bytes) else host, int(port))
        return None

    def stop(self) -> None:
        for server in (*self.sentinels, self.replica, self.master):
            with contextlib.suppress(Exception):
                server.stop()
        if self.link is not None:
            self.link.close()


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A replicated Redis under three sentinels, all on loopback, stopped after the test."""
    import redis

    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.fail(f"{REDIS_SERVER} is missing: install Debian's redis-server (.ci/run does)")
    dirs = {name: tmp_path / name for name in ("master", "replica", "s0", "s1", "s2")}
    for directory in dirs.values():
        directory.mkdir()
    # Diskless replication without its default delay: the replica is in sync
    # a moment after it starts.
    sync = ["repl-diskless-sync yes", "repl-diskless-sync-delay 0"]
    master = RedisServer(dirs["master"], sync)
    group = SentinelGroup(master, RedisServer(dirs["replica"], sync), [])
    try:
        master.start()
        group.link = ReplicationLink(master.port)
        group.replica.config.write_text(
            group.replica.config.read_text() + f"replicaof 127.0.0.1 {group.link.port}\n"
        )
        group.replica.start()

        def replica_in_sync() -> bool:
            with redis.Redis(*group.replica.address()) as r:
                return r.info("replication").get("master_link_status") == "up"

        wait_until(replica_in_sync, "the replica's sync")
        for name in ("s0", "s1", "s2"):
            sentinel = RedisServer(
                dirs[name],
                [
                    f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {master.port} 2",
                    f"sentinel down-after-milliseconds {SENTINEL_MASTER} {SENTINEL_DOWN_AFTER_MS}",
                    # Long, or a sentinel would point the replica at the
                    # master itself, around the relay, after this long.
                    f"sentinel failover-timeout {SENTINEL_MASTER} 60000",
                    f"sentinel parallel-syncs {SENTINEL_MASTER} 1",
                ],
                sentinel=True,
            )
            group.sentinels.append(sentinel)
            sentinel.start()

        def sentinels_ready() -> bool:
            for sentinel in group.sentinels:
                with redis.Redis(*sentinel.address()) as r:
                    if len(r.sentinel_slaves(SENTINEL_MASTER)) != 1:
                        return False
                    if len(r.sentinel_sentinels(SENTINEL_MASTER)) != 2:
                        return False
            return True

        # Each sentinel must know the replica (to promote it) and the other
        # two (to reach the quorum); they find each other within seconds.
        wait_until(sentinels_ready, "the sentinels' discovery")
        yield group
    finally:
        group.stop()


# --- end of Redis Sentinel -------------------------------------------------------


# --- Redis Cluster: three masters, no replicas -----------------------------------

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


@dataclass
class RedisClusterNodes:
    """Three redis-server processes in cluster mode, the 16384 slots split between them."""

    nodes: list[RedisServer]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [n.address() for n in self.nodes]


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisClusterNodes]:
    """A Redis Cluster made for the test with ``redis-cli --cluster create``."""
    import redis

    nodes: list[RedisServer] = []
    try:
        for i in range(3):
            directory = tmp_path / f"node{i}"
            directory.mkdir()
            node = RedisServer(
                directory,
                [
                    "cluster-enabled yes",
                    f"cluster-config-file {directory / 'nodes.conf'}",
                    "cluster-node-timeout 2000",
                    # A free port of its own: the default, port + 10000, may be taken.
                    f"cluster-port {free_port()}",
                ],
            )
            nodes.append(node)
            node.start()
        subprocess.run(
            [
                REDIS_CLI, "--cluster", "create",
                *(f"127.0.0.1:{n.port}" for n in nodes),
                "--cluster-replicas", "0", "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )  # fmt: skip

        def agreed() -> bool:
            for node in nodes:
                with redis.Redis(*node.address()) as r:
                    info = r.cluster("INFO")
                    state = info.get("cluster_state") if isinstance(info, dict) else None
                    if state != "ok" or len(r.cluster("SLOTS")) != 3:
                        return False
            return True

        # Every node must know every slot's owner before clients come.
        wait_until(agreed, "the cluster's agreement")
        yield RedisClusterNodes(nodes)
    finally:
        for node in nodes:
            with contextlib.suppress(Exception):
                node.stop()


# --- end of Redis Cluster --------------------------------------------------------


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
