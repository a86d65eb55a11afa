"""The pytest plugin, as a user meets it: installed with the package, nothing to configure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs import ResponseTimeout, Session
from aiohttp_sockjs.client import TRANSPORTS, SockJSClient, connect
from aiohttp_sockjs.pytest_plugin import SockJSClientFactory

from ...wire import bounded


async def greet(session: Session) -> None:
    async for name in session:
        session.send(f"hello, {name}")


def make_app() -> web.Application:
    app = web.Application()
    aiohttp_sockjs.setup(app, "/greet", greet, disconnect_delay=1.0)
    return app


async def test_fixture_over_every_transport(
    sockjs_client: SockJSClientFactory, sockjs_transport: str
) -> None:
    """sockjs_client connects over the test's sockjs_transport; a second client shares the app."""
    app = make_app()
    client = await sockjs_client(app, "/greet")
    assert client.transport == sockjs_transport
    await client.send("Ada")
    assert await bounded(client.receive()) == "hello, Ada"
    other = await sockjs_client(app, "/greet", transport="xhr")
    assert other.transport == "xhr"
    assert other.url.port == client.url.port
    await other.send("Grace")
    assert await bounded(other.receive()) == "hello, Grace"


async def quiet_until_asked(session: Session) -> None:
    async for message in session:
        if message == "speak":
            session.send("spoken")


async def test_receive_gives_up_on_a_silent_handler(sockjs_client: SockJSClientFactory) -> None:
    """receive() raises ResponseTimeout instead of waiting forever; the session stays open."""
    app = web.Application()
    aiohttp_sockjs.setup(app, "/quiet", quiet_until_asked)
    short = await sockjs_client(app, "/quiet", transport="xhr", idle_timeout=0.2)
    await short.send("hello")
    with pytest.raises(ResponseTimeout, match=r"no message within 0\.2 s"):
        await bounded(short.receive())
    assert not short.closed
    await short.send("speak")
    assert await bounded(short.receive()) == "spoken"
    with pytest.raises(ResponseTimeout):
        await bounded(anext_of(short))


async def anext_of(client: SockJSClient) -> str:
    async for message in client:
        return message
    raise AssertionError("the session ended")


@pytest.mark.parametrize("bad", [0, -1.0])
def test_idle_timeout_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="idle_timeout"):
        connect("http://127.0.0.1:1/echo", idle_timeout=bad)


USER_TESTS = """
import pytest
from aiohttp import web
import aiohttp_sockjs


async def greet(session):
    async for name in session:
        session.send(f"hello, {name}")


def make_app():
    app = web.Application()
    aiohttp_sockjs.setup(app, "/greet", greet)
    return app


@pytest.mark.asyncio
async def test_greets(sockjs_client, sockjs_transport):
    client = await sockjs_client(make_app(), "/greet")
    assert client.transport == sockjs_transport
    await client.send("Ada")
    assert await client.receive() == "hello, Ada"


@pytest.mark.asyncio
@pytest.mark.sockjs_transports("xhr", "websocket")
async def test_some_transports(sockjs_client, sockjs_transport):
    client = await sockjs_client(make_app(), "/greet")
    assert client.transport == sockjs_transport


@pytest.mark.asyncio
@pytest.mark.parametrize("sockjs_transport", ["eventsource"], indirect=True)
async def test_own_parametrize(sockjs_client, sockjs_transport):
    client = await sockjs_client(make_app(), "/greet")
    assert client.transport == "eventsource"


@pytest.mark.asyncio
async def test_default_fallback(sockjs_client):
    client = await sockjs_client(make_app(), "/greet")
    assert client.transport == "websocket"
"""


def test_a_users_project(tmp_path: Path) -> None:
    """A fresh project: asyncio strict mode (pytest-aiohttp's default), strict markers, -W error."""
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-v",
            "--strict-markers",
            "-W",
            "error",
            "-p",
            "no:cacheprovider",
            "--timeout",
            "60",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for transport in TRANSPORTS:
        assert f"test_greets[{transport}] PASSED" in result.stdout
    assert "test_some_transports[xhr] PASSED" in result.stdout
    assert "test_some_transports[websocket] PASSED" in result.stdout
    assert "test_own_parametrize[eventsource] PASSED" in result.stdout
    assert f"{len(TRANSPORTS) + 4} passed" in result.stdout


def test_a_project_without_pytest_aiohttp(tmp_path: Path) -> None:
    """Without pytest-aiohttp the fixture fails and names the extra to install.

    pytest-aiohttp and pytest-asyncio are hidden by modules of the same names
    earlier on the path that fail to import, as if they were not installed.
    """
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for name in ("pytest_aiohttp", "pytest_asyncio"):
        (hidden / f"{name}.py").write_text(f"raise ModuleNotFoundError({name!r}, name={name!r})\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_user.py").write_text(USER_TESTS)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-k", "test_default_fallback"),
            *("-p", "no:cacheprovider", "-p", "no:aiohttp", "-p", "no:asyncio"),
        ],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(hidden)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout, result.stdout
    assert "fixture 'aiohttp_server' not found" not in result.stdout
    assert "the sockjs_client fixture needs pytest-aiohttp, which is not installed" in result.stdout
    assert "[testing]'" in result.stdout
    assert "pip install 'pytest-aiohttp>=" in result.stdout
