"""Every code block of README.md and docs/ runs as it stands (or is checked where it cannot).

- Python programs that end in ``web.run_app`` run whole, with ``run_app``
  recording the app instead of blocking; the app is then served on a free
  loopback port and real SockJS clients talk to it.
- Python test modules run under pytest in a fresh folder, in
  pytest-asyncio's default strict mode, with warnings as errors.
- HTML pages are served by the program before them (Chromium loads them in
  tests/browser/test_doc_pages.py); nginx configurations are the output of
  the command before them.
- Shell commands run when they are cheap and local; install commands are
  checked against what they name (extras in pyproject.toml, the pinned
  sockjs-client, the test command in .ci/run).
- Blocks that need Redis run in tests/cluster/test_doc_examples_redis.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs.client import SockJSClient, connect
from demo.conformance import make_app
from tests.docblocks import ROOT, Block, blocks, runner
from tests.wire import open_sockets

#: The ports the chat demo and the conformance server use by default.
DEMO_PORTS = {8080, 8081}
BLOCKS = blocks()
CLIENT_JS = ROOT / "node_modules" / "sockjs-client" / "dist" / "sockjs.min.js"


def of(kind: str) -> list[Any]:
    return [pytest.param(b, id=b.id) for b in BLOCKS if runner(b) == kind]


def following(block: Block, lang: str) -> Block | None:
    """The first block of ``lang`` after ``block`` in the same file."""
    return next(
        (b for b in BLOCKS if b.path == block.path and b.index > block.index and b.lang == lang),
        None,
    )


def test_every_block_has_a_runner() -> None:
    assert {b.path for b in BLOCKS} >= {"README.md", "docs/tutorial.rst"}
    unclaimed = [b.id for b in BLOCKS if runner(b) == "none"]
    assert not unclaimed, f"blocks no test runs: {unclaimed}"


# --- Python programs -------------------------------------------------------------


def run_program(block: Block, monkeypatch: pytest.MonkeyPatch) -> tuple[web.Application, Any]:
    """Execute the block as ``__main__``; return the app it would run and where."""
    runs: list[tuple[web.Application, dict[str, Any]]] = []
    monkeypatch.setattr(web, "run_app", lambda app, **kw: runs.append((app, kw)))
    exec(compile(block.code, f"<{block.id}>", "exec"), {"__name__": "__main__"})
    [(app, where)] = runs
    return app, where


def lay_out_static(block: Block, folder: Path) -> str | None:
    """The page after a program that serves ``static/``, with the client beside it."""
    page = following(block, "html")
    if '"static"' not in block.code or page is None:
        return None
    (folder / "static").mkdir()
    (folder / "static" / "index.html").write_text(page.code)
    shutil.copy(CLIENT_JS, folder / "static" / "sockjs.min.js")
    return page.code


async def talk(base: Any, block: Block) -> None:
    """Two clients on the first endpoint: what one sends reaches the other, or itself."""
    prefix = next(iter(block_app_prefixes(base)))
    url = base.make_url(prefix)
    headers = {}
    expected = '"hello"'
    if "middlewares" in block.code:
        # Without the login cookie, SockJS's own URLs are refused.
        status = await _status(base, prefix + "/info")
        assert status == 401
        headers = {"Cookie": "token=s3cret-token"}
        expected = "ada: hello"
    if "presence" in block.code:
        expected = "in the lobby"
    async with (
        connect(url, transports="xhr", headers=headers) as a,
        connect(url, transports="xhr", headers=headers) as b,
    ):
        await a.send("hello")
        await b.send("hello")
        await receive_until(b, a, expected)


def block_app_prefixes(server: Any) -> list[str]:
    return list(server.app[aiohttp_sockjs.ENDPOINTS])


async def _status(server: Any, path: str) -> int:
    from aiohttp import ClientSession

    async with ClientSession() as http, http.get(server.make_url(path)) as resp:
        return resp.status


async def receive_until(receiver: SockJSClient, sender: SockJSClient, expected: str) -> None:
    """Wait for a message holding ``expected``; ``sender`` says hello meanwhile.

    Some examples broadcast to a room the receiver joins when its own first
    message is handled: the sender repeats itself until the receiver is in.
    """
    seen: list[str] = []

    async def wait() -> None:
        while True:
            message = await receiver.receive()
            seen.append(message)
            if expected in json.dumps(message) or expected in message:
                return

    waiter = asyncio.ensure_future(wait())
    try:
        for _ in range(100):
            done, _pending = await asyncio.wait({waiter}, timeout=0.1)
            if done:
                waiter.result()
                return
            await sender.send("hello")
        raise AssertionError(f"no message with {expected!r}; got {seen}")
    finally:
        waiter.cancel()


@pytest.mark.parametrize("block", of("server"))
async def test_program_serves_sockjs(
    block: Block, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The program listens on loopback, off the demo's ports, and its endpoint talks."""
    monkeypatch.chdir(tmp_path)
    page = lay_out_static(block, tmp_path)
    app, where = run_program(block, monkeypatch)
    assert where["host"] == "127.0.0.1"
    assert where["port"] not in DEMO_PORTS
    server = await aiohttp_server(app)
    await talk(server, block)
    if page is not None:
        from aiohttp import ClientSession

        async with ClientSession() as http:
            async with http.get(server.make_url("/static/index.html")) as resp:
                assert resp.status == 200 and await resp.text() == page
            script = re.search(r'<script src="([^"]+)"', page)
            assert script is not None
            assert app[aiohttp_sockjs.ENDPOINTS]
            [endpoint] = app[aiohttp_sockjs.ENDPOINTS].values()
            assert endpoint.options.sockjs_url == script.group(1)
            async with http.get(server.make_url(script.group(1))) as resp:
                assert resp.status == 200 and b"SockJS" in await resp.read()
    if "setup_metrics" in block.code:
        from aiohttp import ClientSession

        async with ClientSession() as http, http.get(server.make_url("/metrics")) as resp:
            assert "sockjs_sessions_opened_total" in await resp.text()


def test_pages_follow_a_program() -> None:
    for block in BLOCKS:
        if block.lang == "html":
            before = [b for b in BLOCKS if b.path == block.path and b.index < block.index]
            assert any(runner(b) == "server" and '"static"' in b.code for b in before), block.id


# --- Python test modules -------------------------------------------------------------


@pytest.mark.parametrize("block", of("pytest"))
def test_test_module_passes_in_a_fresh_project(block: Block, tmp_path: Path) -> None:
    """In a folder of its own, with the docs' pytest configuration if they give one."""
    config = following(next(b for b in BLOCKS if b.path == block.path and b.index == 0), "toml")
    (tmp_path / "pyproject.toml").write_text(config.code if config else "")
    (tmp_path / "test_example.py").write_text(block.code)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\d+ passed", result.stdout) and "skipped" not in result.stdout


def test_scripts_run(tmp_path: Path) -> None:
    """Other Python blocks run as scripts and exit cleanly."""
    for block in BLOCKS:
        if runner(block) == "script":
            result = subprocess.run(
                [sys.executable, "-c", block.code], cwd=tmp_path, capture_output=True, timeout=60
            )
            assert result.returncode == 0, f"{block.id}: {result.stderr.decode()}"


# --- Shell commands -------------------------------------------------------------------

PYPROJECT = (ROOT / "pyproject.toml").read_text()
CI = (ROOT / ".ci" / "run").read_text()


def extras(spec: str) -> list[str]:
    match = re.search(r"\[([\w,]+)\]", spec)
    return match.group(1).split(",") if match else []


def check_extras(spec: str) -> None:
    for extra in extras(spec):
        assert re.search(rf"^{extra} = \[", PYPROJECT, re.M), f"no extra {extra!r}"


def check_command(command: str, folder: Path, outputs: list[str]) -> None:
    """Run or check one command of a shell block."""
    argv = shlex.split(command)
    if command in ("python3 -m venv .venv", ". .venv/bin/activate", "npm ci", "pytest"):
        return  # the start of the two README commands, which CI runs
    if command in ("ruff check .", "mypy"):
        assert f"&& {command} &&" in CI
    elif argv[:2] == ["pip", "install"]:
        spec = argv[-1]
        assert argv[2:-1] in ([], ["-e"]), command
        assert spec.split("[")[0] in (".", "/path/to/aiohttp-sockjs"), command
        check_extras(spec)
    elif argv[:3] == ["python", "-m", "demo.chat"] or argv[:3] == ["python", "-m", "demo.cluster"]:
        help_ = subprocess.run(
            [sys.executable, "-m", argv[2], "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert help_.returncode == 0, help_.stderr
        for flag in (a for a in argv[3:] if a.startswith("--")):
            assert flag in help_.stdout, flag
    elif argv[:3] == ["python", "-m", "aiohttp_sockjs.deploy"]:
        result = subprocess.run(
            [sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    elif argv[:2] == ["npm", "install"]:
        [spec] = argv[2:]
        name, version = spec.rsplit("@", 1)
        pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]
        assert pinned[name] == version
        (folder / "node_modules").symlink_to(ROOT / "node_modules")
    elif argv[0] in ("mkdir", "cp"):
        assert subprocess.run(argv, cwd=folder).returncode == 0
        if argv[0] == "cp":
            assert (folder / argv[-1] / Path(argv[1]).name).is_file()
    elif argv[:2] == ["apt-get", "update"]:
        return
    elif argv[:3] == ["apt-get", "install", "-y"]:
        assert {"python3-venv", "nodejs", "npm"} <= set(argv[3:])
        for package in re.findall(r"packages\+=\(([\w-]+)\)", CI):
            assert package in argv[3:], package
    else:
        raise AssertionError(f"no check for {command!r}")


@pytest.mark.parametrize("block", of("shell"))
def test_shell_block(block: Block, tmp_path: Path) -> None:
    outputs: list[str] = []
    for line in block.code.splitlines():
        if line.strip() and "&& pytest" in line:
            # The test command: CI runs it word for word.
            assert line in CI, "the test command differs from .ci/run's"
        for command in line.split(" && "):
            if command.strip():
                check_command(command.strip(), tmp_path, outputs)
    config = following(block, "nginx")
    if outputs and config is not None:
        assert config.code == outputs[-1]


@pytest.mark.parametrize("block", of("nginx"))
def test_nginx_config_follows_its_command(block: Block) -> None:
    before = [b for b in BLOCKS if b.path == block.path and b.index < block.index]
    assert before and "aiohttp_sockjs.deploy nginx" in before[-1].code


# --- Client programs -------------------------------------------------------------


async def _printed_until(main: Any, url: str, done: Any, timeout: float = 15.0) -> str:
    """Run ``main(url)`` until it returns or what it printed satisfies ``done``; return that."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        task = asyncio.ensure_future(main(url))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not task.done() and not done(out.getvalue()):
            assert loop.time() < deadline, f"{url}: printed only {out.getvalue()!r}"
            await asyncio.sleep(0.02)
        if task.done():
            task.result()
        else:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return out.getvalue()


@pytest.mark.parametrize("block", of("client"))
async def test_client_program(block: Block, aiohttp_server: Any) -> None:
    """A client block's ``main(url)`` against demo.conformance: /echo answers, /close closes.

    A reconnect loop must get its echo, then come back after the server
    closes its session (twice); a one-session program must print the echo
    and return.
    """
    namespace: dict[str, Any] = {"__name__": "doc_example"}
    exec(compile(block.code, f"<{block.id}>", "exec"), namespace)
    main = namespace["main"]
    server = await aiohttp_server(make_app(heartbeat_delay=0.1))
    base = str(server.make_url("")).rstrip("/")
    before = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    if "reconnecting(" in block.code:
        printed = await _printed_until(main, f"{base}/echo", lambda o: "got subscribe" in o)
        assert "got subscribe" in printed
        printed = await _printed_until(
            main, f"{base}/close", lambda o: o.count("session ended: 3000 Go away!") >= 2
        )
        assert printed.count("session ended: 3000 Go away!") >= 2
    else:
        printed = await _printed_until(main, f"{base}/echo", lambda o: False)
        assert "hello" in printed
    assert open_sockets(server.port) == 0
    assert {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} <= before
