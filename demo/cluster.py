"""The chat demo on several processes behind nginx, sharing one Redis: one command.

Run from the repository root (needs Debian's ``nginx`` and ``redis-server``
and the ``redis`` extra)::

    python -m demo.cluster --workers 3 --port 8080

then open http://127.0.0.1:8080 in several tabs. It starts, all on
loopback:

- a private ``redis-server`` on a free port, without persistence (or uses
  ``--redis URL``);
- ``--workers`` chat processes (:mod:`demo.chat`'s app with a
  :class:`~aiohttp_sockjs.broker.RedisBroker`), each on its own free port;
- nginx on ``--port`` with the configuration that
  :func:`aiohttp_sockjs.deploy.nginx_config` prints, routing every request
  of a SockJS session to the process that owns it.

Messages reach every tab whichever process it is on, and the "online" list
shows everyone in the cluster (from presence, so a second or two late for
people on other processes; a nickname taken on another process is refused
once that process's heartbeat has carried it). Each response names its
process in an ``X-Served-By`` header. Stop one worker (``kill PID``; the pids are
printed) and its tabs reconnect to the others. Ctrl+C stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs.deploy import nginx_config

try:
    from aiohttp_sockjs.broker import RedisBroker

    from . import chat
except ImportError as exc:
    if __name__ != "__main__":
        raise
    # Run as a command (the launcher or a worker): the hint, without a traceback.
    raise SystemExit(f"python -m demo.cluster: {exc}") from None

HOST: Final = "127.0.0.1"
#: Each person of a process is in a room named after them, so that the
#: cluster's presence lists everyone: ``people:["nick","transport"]``.
PEOPLE: Final = "people:"
#: How often a worker compares the cluster's people with what its tabs show.
SYNC_INTERVAL: Final = 0.5
log = logging.getLogger("demo.cluster")


# --- one worker ---------------------------------------------------------------


def _person_room(session: aiohttp_sockjs.Session) -> str | None:
    person: chat.Person | None = session.data.get("person")
    if person is None or person.session is not session:
        return None
    return PEOPLE + json.dumps(person.public(), sort_keys=True)


async def _share_people(room: chat.Room, endpoint: aiohttp_sockjs.Endpoint) -> None:
    """Keep ``room.others`` (the people of the other processes) up to date.

    Each person of this process is put in a room named after them, so the
    cluster's presence (:meth:`Endpoint.presence`, refreshed by every
    process's broker heartbeat) lists everyone. When the people of the
    other processes change, this process's tabs get the new list.
    """
    while True:
        await asyncio.sleep(SYNC_INTERVAL)
        for session in endpoint.sessions:
            want = _person_room(session)
            for name in session.rooms:
                if name.startswith(PEOPLE) and name != want:
                    session.leave(name)
            if want is not None:
                session.join(want)
        try:
            presence = await endpoint.presence()
        except Exception as exc:  # Redis unreachable: the broker logs it once
            log.debug("presence unavailable: %s", exc)
            continue
        others = []
        for name, count in sorted(presence.rooms.items()):
            if name.startswith(PEOPLE) and count > 0:
                person = json.loads(name[len(PEOPLE) :])
                if not str(person.get("id", "")).startswith(room.id_prefix):
                    others.append(person)
        if others != room.others:
            room.others = others
            message = json.dumps({"type": "online", "people": room.people()})
            endpoint.broadcast(message, sessions=endpoint.sessions)  # this process only


def worker_app(redis_url: str, name: str) -> web.Application:
    """The chat app of one worker: a broker, people shared, ``X-Served-By``."""
    broker = RedisBroker(redis_url, heartbeat_interval=1.0, process_ttl=3.0, process_id=name)
    # Person ids like "worker2:5" are unique in the cluster.
    # Behind nginx every peer is 127.0.0.1: believe its X-Forwarded-For
    # (and nobody else's), or all the pages would be one client.
    proxies = aiohttp_sockjs.TrustedProxies(["127.0.0.1", "::1"])
    app = chat.make_app(id_prefix=f"{name}:", server=name, broker=broker, client_key=proxies)
    endpoint = aiohttp_sockjs.get_endpoint(app, chat.PREFIX)

    async def served_by(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Served-By"] = name

    async def sync(app: web.Application) -> Any:
        task = asyncio.ensure_future(_share_people(app[chat.ROOM], endpoint))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.on_response_prepare.append(served_by)
    app.cleanup_ctx.append(sync)
    return app


def run_worker(redis_url: str, name: str, port: int) -> None:
    """Serve one worker until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.WARNING, format=f"{name}: %(message)s")
    web.run_app(worker_app(redis_url, name), host=HOST, port=port, print=None, access_log=None)


# --- the launcher ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} does not listen on port {port}")


def _binary(name: str, path: str) -> str:
    found = shutil.which(name) or (path if os.access(path, os.X_OK) else None)
    if found is None:
        raise SystemExit(f"{name} not found: apt-get install {name}")
    return found


def launch(workers: int, port: int, redis_url: str | None, directory: Path) -> None:
    """Start Redis (unless given), the workers and nginx; stop them all on exit."""
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(what: str, command: list[str], quiet: bool = False) -> subprocess.Popen[bytes]:
        out = subprocess.DEVNULL if quiet else None
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out)
        procs.append((what, proc))
        return proc

    try:
        if redis_url is None:
            redis_port = _free_port()
            redis = start("redis-server", [
                _binary("redis-server", "/usr/bin/redis-server"),
                "--port", str(redis_port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--dir", str(directory), "--loglevel", "warning",
            ], quiet=True)  # fmt: skip
            _wait_for_port(redis_port, redis, "redis-server")
            redis_url = f"redis://{HOST}:{redis_port}/0"
        servers = []
        for number in range(1, workers + 1):
            worker_port = _free_port()
            name = f"worker{number}"
            proc = start(name, [
                sys.executable, "-m", "demo.cluster", "--worker", name,
                "--port", str(worker_port), "--redis", redis_url,
            ])  # fmt: skip
            _wait_for_port(worker_port, proc, name)
            servers.append(f"{HOST}:{worker_port}")
            print(f"{name}: pid {proc.pid}, http://{HOST}:{worker_port}", flush=True)
        config = directory / "nginx.conf"
        config.write_text(nginx_config(servers, listen=f"{HOST}:{port}", standalone=True))
        (directory / "tmp").mkdir(exist_ok=True)
        nginx = start("nginx", [
            _binary("nginx", "/usr/sbin/nginx"), "-p", str(directory), "-c", str(config),
        ])  # fmt: skip
        _wait_for_port(port, nginx, "nginx")
        print(f"nginx: {config}", flush=True)
        print(
            f"Chat demo on {workers} processes: open http://{HOST}:{port} (Ctrl+C to stop)",
            flush=True,
        )
        # Run until interrupted, or until nginx or Redis goes away (a worker
        # may be stopped on purpose, to watch its tabs move).
        essential = [p for what, p in procs if not what.startswith("worker")]
        while all(p.poll() is None for p in essential):
            time.sleep(0.5)
        raise SystemExit("nginx or redis-server stopped")
    finally:
        for _, proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main(argv: list[str] | None = None) -> None:
    """Run the launcher (or, with ``--worker NAME``, one worker)."""
    parser = argparse.ArgumentParser(
        prog="python -m demo.cluster",
        description="The chat demo on several processes behind nginx, with Redis.",
    )
    parser.add_argument("--workers", type=int, default=3, help="chat processes (3)")
    parser.add_argument("--port", type=int, default=8080, help="nginx's port (8080)")
    parser.add_argument("--redis", default=None, help="use this Redis instead of starting one")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        run_worker(args.redis, args.worker, args.port)
        return
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    # SIGTERM stops the launcher the way Ctrl+C does: through the finally above.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with (
        tempfile.TemporaryDirectory(prefix="sockjs-demo-") as directory,
        contextlib.suppress(KeyboardInterrupt),
    ):
        launch(args.workers, args.port, args.redis, Path(directory))


if __name__ == "__main__":
    main()
