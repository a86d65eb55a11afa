"""The package as a user gets it: the built wheel alone in a fresh venv, away from this tree.

A throwaway venv gets the wheel with its ``testing`` extra and nothing
else; a fresh folder gets the README's echo server, client and testing
examples as they stand (the server's port swapped for a free one). Then
the server answers, the client example ends by itself, and the testing
example passes under pytest-asyncio's default strict mode, warnings as
errors.

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
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiohttp_sockjs.client import TRANSPORTS

ROOT = Path(__file__).resolve().parents[2]
#: The port the README's echo server and client use.
README_PORT = "8090"

pytestmark = pytest.mark.timeout(600)


def readme_block(language: str, *needles: str) -> str:
    """The one README code block in ``language`` that contains every needle."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)
    found = [block for block in blocks if all(needle in block for needle in needles)]
    assert len(found) == 1, f"README: {len(found)} {language} blocks with {needles}"
    return found[0]


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
    """The README's echo server, run from its own file on a free port."""
    port = free_port()
    server = readme_block("python", "aiohttp_sockjs.setup(", "web.run_app(", README_PORT)
    (project / "server.py").write_text(server.replace(README_PORT, str(port)))
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


def test_readme_server_and_client(python: Path, project: Path, echo_server: int) -> None:
    """The server answers /info; the client example sends, gets its echo and ends by itself."""
    with urllib.request.urlopen(f"http://127.0.0.1:{echo_server}/echo/info", timeout=10) as resp:
        assert json.loads(resp.read())["websocket"] is True
    client = readme_block("python", "from aiohttp_sockjs.client import connect", README_PORT)
    (project / "client.py").write_text(client.replace(README_PORT, str(echo_server)))
    result = run(python, "client.py", cwd=project, timeout=60)
    assert result.stdout == "hello\n1000 Normal closure\n"


def test_readme_testing_example_in_strict_mode(python: Path, project: Path) -> None:
    """The testing example, with the README's pytest settings: passes, no warning."""
    (project / "test_example.py").write_text(readme_block("python", "sockjs_client", "def test_"))
    (project / "pyproject.toml").write_text(readme_block("toml", "[tool.pytest.ini_options]"))
    result = run(
        python,
        *("-m", "pytest", "-v", "-W", "error", "--strict-markers", "-p", "no:cacheprovider"),
        cwd=project,
        timeout=180,
    )
    # "mode=strict", or "mode=Mode.STRICT" in pytest-asyncio 1.x's header.
    assert re.search(r"asyncio: mode=(Mode\.)?strict\b", result.stdout, re.I), result.stdout
    assert f"{len(TRANSPORTS) + 2} passed in" in result.stdout, result.stdout
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
