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

from tests.docblocks import blocks, runner
from tests.functional.test_doc_examples import run_program, talk

from .conftest import RedisServer

pytestmark = pytest.mark.cluster

REDIS = [pytest.param(b, id=b.id) for b in blocks() if runner(b) == "redis"]


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
