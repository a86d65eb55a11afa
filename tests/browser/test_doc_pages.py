"""The HTML pages of README.md and the tutorial, in Chromium, served by the program before them.

Each program runs as a user would run it (``python server.py`` in a folder
with ``static/index.html`` and the pinned sockjs-client), on a free port.
"""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docblocks import ROOT, Block, blocks, runner

from .tools import CHROMIUM, CHROMIUM_ARGS, CLIENT, require_tools

pytestmark = pytest.mark.browser

BLOCKS = blocks()
PAGES = [pytest.param(b, id=b.id) for b in BLOCKS if b.lang == "html"]


def program_before(page: Block) -> Block:
    return [
        b for b in BLOCKS if b.path == page.path and b.index < page.index and runner(b) == "server"
    ][-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_tools()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.parametrize("page", PAGES)
def test_page_shows_the_echo(page: Block, browser: Any, tmp_path: Path) -> None:
    program = program_before(page)
    port = free_port()
    assert "port=8090" in program.code
    (tmp_path / "server.py").write_text(program.code.replace("port=8090", f"port={port}"))
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "index.html").write_text(page.code)
    (tmp_path / "static" / "sockjs.min.js").write_bytes(CLIENT.read_bytes())
    proc = subprocess.Popen(
        [sys.executable, "server.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not listen within 20 s"
            select.select([], [], [], 0.05)
        context = browser.new_context()
        try:
            tab = context.new_page()
            tab.goto(f"http://127.0.0.1:{port}/static/index.html")
            tab.wait_for_function("document.body.textContent.includes('hello')", timeout=10_000)
        finally:
            context.close()
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0].decode(errors="replace")
    assert "Traceback" not in output, output
