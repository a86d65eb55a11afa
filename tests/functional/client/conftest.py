"""Servers for the client's tests: ours (demo.conformance) and sockjs-node.

Both serve the same endpoints with the same short delays: ``/echo`` (with a
4 KiB response limit, so streams are reopened), ``/disabled_websocket_echo``
and ``/close`` (closes each session with 3000 "Go away!").
"""

from __future__ import annotations

import json
import select
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.conformance import make_app

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("sockjs_node_server.js")

#: Seconds; short so that heartbeats show up within a test.
HEARTBEAT_DELAY = 0.1
DISCONNECT_DELAY = 1.0

#: Bounds for the client in these tests: a broken server fails a test fast.
CLIENT_OPTIONS: dict[str, Any] = {"timeout": 5.0, "heartbeat_timeout": 5.0}


@pytest.fixture(scope="session")
def sockjs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """sockjs-node on a free loopback port, for the whole run; yields its base URL."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "sockjs").is_dir():
        pytest.fail("sockjs-node needs Node.js and `npm ci` in the repository root", pytrace=False)
    settings = {
        "heartbeat_delay": int(HEARTBEAT_DELAY * 1000),
        "disconnect_delay": int(DISCONNECT_DELAY * 1000),
    }
    log_path = tmp_path_factory.mktemp("sockjs-node") / "stderr.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [node, str(SCRIPT), json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
        )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline() if ready else b""
        if not line:
            pytest.fail("sockjs-node did not start:\n" + log_path.read_text(), pytrace=False)
        yield f"http://127.0.0.1:{json.loads(line)['port']}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.fixture(params=["aiohttp-sockjs", "sockjs-node"])
async def server_url(request: pytest.FixtureRequest, aiohttp_server: Any) -> str:
    """The base URL of each server in turn: ours, then sockjs-node."""
    if request.param == "sockjs-node":
        url: str = request.getfixturevalue("sockjs_node")
        return url
    app = make_app(heartbeat_delay=HEARTBEAT_DELAY, disconnect_delay=DISCONNECT_DELAY)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")
