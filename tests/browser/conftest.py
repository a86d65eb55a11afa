"""Fixtures for the browser tests: the server subprocess, Chromium, pages.

These tests need Debian's Chromium at /usr/bin/chromium and the pinned
sockjs-client from ``npm ci``. Either one missing fails the run with a
message saying what to install: a browser suite that skips itself would let
a broken client path go unnoticed.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .tools import CHROMIUM, CHROMIUM_ARGS, ROOT, require_tools

SERVER = Path(__file__).resolve().with_name("server.py")


@dataclass
class Server:
    """The running server subprocess and where to reach it."""

    sockjs_origin: str
    page_origin: str
    log_path: Path
    log_offset: int = 0

    def new_log(self) -> str:
        """The server's stderr written since the last call."""
        with self.log_path.open("rb") as log:
            log.seek(self.log_offset)
            data = log.read()
        self.log_offset += len(data)
        return data.decode(errors="replace")


@pytest.fixture(scope="session")
def sockjs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_tools()
    log_path = tmp_path_factory.mktemp("browser") / "server.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(SERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
            env=env,
        )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline() if ready else b""
        if not line:
            proc.kill()
            proc.wait()
            pytest.fail(
                "the browser test server did not start:\n" + log_path.read_text(), pytrace=False
            )
        ports = json.loads(line)
        yield Server(
            sockjs_origin=f"http://127.0.0.1:{ports['sockjs']}",
            page_origin=f"http://127.0.0.1:{ports['page']}",
            log_path=log_path,
        )
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    # Errors after the last test's own check (its connections closing) count too.
    log = log_path.read_text(errors="replace")
    if "Traceback" in log or "Error" in log:
        pytest.fail(f"the browser test server logged errors:\n{log[-8000:]}", pytrace=False)


@pytest.fixture(scope="module")
def browser(sockjs_server: Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Page:
    """A browser page on the test page, with what it logged and fetched."""

    page: Any
    server: Server
    events: list[str] = field(default_factory=list)

    def call(self, name: str, *args: Any) -> Any:
        """Call ``harness.<name>(*args)`` in the page and return its result."""
        return self.page.evaluate(f"args => window.harness.{name}(...args)", list(args))

    def diagnostics(self) -> str:
        """What the browser and the server said, for failure messages."""
        lines = self.events[-60:]
        log = self.server.new_log()
        return "\n".join(["-- browser events:", *lines, "-- server log:", log[-4000:] or "(empty)"])


@pytest.fixture
def page_factory(browser: Any, sockjs_server: Server) -> Iterator[Any]:
    contexts: list[Any] = []

    def open_page(origin: str) -> Page:
        context = browser.new_context()
        contexts.append(context)
        raw = context.new_page()
        page = Page(raw, sockjs_server)
        raw.on("console", lambda m: page.events.append(f"console.{m.type}: {m.text}"))
        raw.on("pageerror", lambda e: page.events.append(f"pageerror: {e}"))
        raw.on(
            "requestfailed",
            lambda r: page.events.append(f"requestfailed: {r.method} {r.url} {r.failure}"),
        )
        raw.on(
            "response",
            lambda r: (
                page.events.append(f"response {r.status}: {r.request.method} {r.url}")
                if r.status >= 400
                else None
            ),
        )
        raw.goto(origin + "/page.html")
        return page

    yield open_page
    for context in contexts:
        context.close()
