"""The package as a user gets it: the built wheel alone in a fresh venv, away from this tree.

A throwaway venv gets the wheel with its ``testing`` extra and nothing
else; a fresh folder gets the examples as they stand: the README's echo
server and its page (with the pinned sockjs-client), the client example
(:mod:`aiohttp_sockjs.client`'s, which the docs show), and the testing
how-to's test module with its pytest settings. The server's port is
swapped for a free one. Then the server answers and its page shows the
echo in Chromium, the client example ends by itself, and the test module
passes under pytest-asyncio's default strict mode, warnings as errors.

``SOCKJS_WHEEL`` names the wheel to test (``.ci/run`` passes the one it
built); otherwise the test builds one with pip. Packages come from wherever
pip is configured to look (its cache first).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiohttp_sockjs import client as client_module
from tests.browser.tools import CHROMIUM, CHROMIUM_ARGS, CLIENT, require_tools
from tests.docblocks import ROOT, Block, blocks, runner

#: The port of the README's echo server, which the client example talks to.
EXAMPLE_PORT = "8090"

pytestmark = pytest.mark.timeout(600)


def the_block(path: str, kind: str, *needles: str) -> Block:
    """The first block of ``path`` that ``kind`` runs and that holds every needle."""
    found = [
        b
        for b in blocks()
        if b.path == path and runner(b) == kind and all(n in b.code for n in needles)
    ]
    assert found, f"{path}: no {kind} block with {needles}"
    return found[0]


def following(block: Block, lang: str) -> Block:
    """The first block of ``lang`` after ``block`` in its file."""
    return next(
        b for b in blocks() if b.path == block.path and b.index > block.index and b.lang == lang
    )


def client_example() -> str:
    """The program in :mod:`aiohttp_sockjs.client`'s docstring (the docs render it)."""
    doc = client_module.__doc__ or ""
    literal = re.search(r"::\n\n((?:    .*\n|\n)+)", doc)
    assert literal is not None, "no example in aiohttp_sockjs.client's docstring"
    return textwrap.dedent(literal.group(1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env() -> dict[str, str]:
    """This process's environment without what points at this tree or its venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("SOCKJS_WHEEL")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", out, ROOT, cwd=out)
    [built] = out.glob("aiohttp_sockjs-*.whl")
    return built


@pytest.fixture(scope="module")
def python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a fresh venv holding the wheel and its testing extra only."""
    where = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", where, cwd=where)
    interpreter = where / "bin" / "python"
    run(interpreter, "-m", "pip", "install", "--quiet", f"{wheel}[testing]", cwd=where)
    return interpreter


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh folder, far from this tree."""
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


@pytest.fixture
def echo_server(python: Path, project: Path) -> Iterator[int]:
    """The README's echo server and its page, run from the project folder on a free port."""
    port = free_port()
    server = the_block("README.md", "server", "async def echo", f"port={EXAMPLE_PORT}")
    (project / "server.py").write_text(server.code.replace(f"port={EXAMPLE_PORT}", f"port={port}"))
    # What the README's npm/cp line and its page block lay out.
    (project / "static").mkdir()
    (project / "static" / "index.html").write_text(following(server, "html").code)
    if CLIENT.is_file():
        (project / "static" / "sockjs.min.js").write_bytes(CLIENT.read_bytes())
    proc = subprocess.Popen(
        [python, "server.py"],
        cwd=project,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                output, _ = proc.communicate()
                pytest.fail(f"the README's server exited:\n{output}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the README's server does not listen"
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_imported_from_the_venv(python: Path, project: Path) -> None:
    """The package comes from the venv's site-packages, typed, with its license."""
    found = run(
        python,
        "-c",
        "import aiohttp_sockjs, pathlib, importlib.metadata as m; "
        "p = pathlib.Path(aiohttp_sockjs.__file__).parent; "
        "print(p); print((p / 'py.typed').is_file()); "
        "print(m.metadata('aiohttp-sockjs')['License-Expression'])",
        cwd=project,
    ).stdout.split("\n")
    assert Path(found[0]).is_relative_to(python.parent.parent), found
    assert found[1:3] == ["True", "Apache-2.0"]


def test_server_and_client_examples(python: Path, project: Path, echo_server: int) -> None:
    """The server answers /info; the client example sends, gets its echo and ends by itself."""
    with urllib.request.urlopen(f"http://127.0.0.1:{echo_server}/echo/info", timeout=10) as resp:
        assert json.loads(resp.read())["websocket"] is True
    client = client_example()
    assert f"127.0.0.1:{EXAMPLE_PORT}/echo" in client
    (project / "client.py").write_text(client.replace(EXAMPLE_PORT, str(echo_server)))
    result = run(python, "client.py", cwd=project, timeout=60)
    assert result.stdout == "hello\n1000 Normal closure\n"


def test_readme_page_in_chromium(project: Path, echo_server: int) -> None:
    """The README's page, served by the installed package, shows the echo."""
    require_tools()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            tab: Any = browser.new_page()
            tab.goto(f"http://127.0.0.1:{echo_server}/static/index.html")
            tab.wait_for_function("document.body.textContent.includes('hello')", timeout=15_000)
        finally:
            browser.close()


def test_testing_example_in_strict_mode(python: Path, project: Path) -> None:
    """The testing how-to's module, with its pytest settings: passes, no warning."""
    module = the_block("docs/howto/testing.rst", "pytest", "sockjs_client")
    (project / "test_example.py").write_text(module.code)
    (project / "pyproject.toml").write_text(following(module, "toml").code)
    result = run(
        python,
        *("-m", "pytest", "-v", "-W", "error", "--strict-markers", "-p", "no:cacheprovider"),
        cwd=project,
        timeout=180,
    )
    # "mode=strict", or "mode=Mode.STRICT" in pytest-asyncio 1.x's header.
    assert re.search(r"asyncio: mode=(Mode\.)?strict\b", result.stdout, re.I), result.stdout
    assert re.search(r"\b[1-9]\d* passed in", result.stdout), result.stdout
    assert re.search(r"\b(failed|skipped|error)", result.stdout) is None, result.stdout
    assert "warning" not in result.stdout.lower(), result.stdout


def test_missing_extra_hint_works(python: Path, wheel: Path, project: Path) -> None:
    """Without the prometheus extra the import says how to add it, and that command works."""
    check = [python, "-c", "import aiohttp_sockjs.metrics"]
    missing = subprocess.run(check, cwd=project, env=clean_env(), capture_output=True, text=True)
    assert missing.returncode == 1
    hint = missing.stderr.strip().splitlines()[-1]
    assert "'prometheus' extra" in hint, missing.stderr
    assert "pip install '<path to aiohttp-sockjs or its wheel>[prometheus]'" in hint
    run(python, "-m", "pip", "install", "--quiet", f"{wheel}[prometheus]", cwd=project)
    run(*check, cwd=project)
