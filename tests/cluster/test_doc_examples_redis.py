"""The README's and docs' code blocks that need Redis, run against a real redis-server.

The rest run in tests/functional/test_doc_examples.py, with the same checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import aiohttp_sockjs
from tests.docblocks import blocks, runner
from tests.functional.test_doc_examples import run_program, talk

from .conftest import RedisClusterNodes, RedisServer, SentinelGroup

pytestmark = pytest.mark.cluster


def of_kind(kind: str) -> list[Any]:
    """The blocks the runner gives to ``kind``, as test parameters."""
    return [pytest.param(b, id=b.id) for b in blocks() if runner(b) == kind]


REDIS = of_kind("redis")


@pytest.mark.parametrize("block", REDIS)
async def test_block_runs_with_redis(
    block: Any,
    redis_server: RedisServer,
    aiohttp_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Programs serve SockJS through their broker; scripts publish and exit cleanly."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    if "web.run_app(" in block.code:
        monkeypatch.setattr(sys, "argv", ["app.py", "0"])
        app, where = run_program(block, monkeypatch)
        assert where["host"] == "127.0.0.1"
        server = await aiohttp_server(app)
        await talk(server, block)
    else:
        result = subprocess.run(
            [sys.executable, "-c", block.code],
            cwd=tmp_path,
            env=dict(os.environ, REDIS_URL=redis_server.url),
            capture_output=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr.decode()


@pytest.mark.parametrize("block", of_kind("sentinel"))
async def test_block_runs_with_sentinel(
    block: Any, sentinel_group: SentinelGroup, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Programs that find Redis through Sentinel serve SockJS through their broker."""
    addresses = ",".join(f"{host}:{port}" for host, port in sentinel_group.addresses)
    monkeypatch.setenv("REDIS_SENTINELS", addresses)
    await serve_and_talk(block, aiohttp_server, monkeypatch)


@pytest.mark.parametrize("block", of_kind("redis-cluster"))
async def test_block_runs_with_redis_cluster(
    block: Any,
    redis_cluster: RedisClusterNodes,
    aiohttp_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Programs on a Redis Cluster serve SockJS through their broker."""
    host, port = redis_cluster.addresses[0]
    monkeypatch.setenv("REDIS_CLUSTER_URL", f"redis://{host}:{port}")
    await serve_and_talk(block, aiohttp_server, monkeypatch)


async def serve_and_talk(block: Any, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "web.run_app(" in block.code, block.id
    monkeypatch.setattr(sys, "argv", ["app.py", "0"])
    app, where = run_program(block, monkeypatch)
    assert where["host"] == "127.0.0.1"
    server = await aiohttp_server(app)
    await talk(server, block)
    # The broker reached Redis: its reader and writer run.
    broker = next(iter(app[aiohttp_sockjs.ENDPOINTS].values())).broker
    assert broker is not None and broker.connected
