"""The Python examples of README.md and docs/usage.rst run as they stand.

Each example is executed whole, with ``web.run_app`` recording the app and
where it would listen instead of blocking; the app is then served for real
and a client sends a message through it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import aiohttp_sockjs
from tests.wire import bounded, new_id, session_url

ROOT = Path(__file__).resolve().parents[2]
#: The ports the chat demo and the conformance server use by default.
DEMO_PORTS = {8080, 8081}


def _markdown_examples(path: Path) -> list[str]:
    """The Python blocks of the Usage section (the ones meant to run as they stand)."""
    text = path.read_text()
    start = text.index("\n## Usage\n")
    usage = text[start : text.index("\n## ", start + 1)]
    return re.findall(r"^```python\n(.*?)^```$", usage, re.M | re.S)


def _rst_examples(path: Path) -> list[str]:
    blocks = re.findall(r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)", path.read_text(), re.M)
    return [re.sub(r"^    ", "", block, flags=re.M) for block in blocks]


EXAMPLES = [
    *(("README.md", n, code) for n, code in enumerate(_markdown_examples(ROOT / "README.md"))),
    *(
        ("docs/usage.rst", n, code)
        for n, code in enumerate(_rst_examples(ROOT / "docs" / "usage.rst"))
    ),
]


def test_examples_found() -> None:
    """Both files hold the handler and the callback example."""
    assert [(name, n) for name, n, _ in EXAMPLES] == [
        ("README.md", 0),
        ("README.md", 1),
        ("docs/usage.rst", 0),
        ("docs/usage.rst", 1),
    ]


@pytest.mark.parametrize(
    "code", [code for _, _, code in EXAMPLES], ids=[f"{name}-{n}" for name, n, _ in EXAMPLES]
)
async def test_example_serves_sockjs(
    code: str, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example builds an app on its own loopback port whose endpoint relays messages."""
    runs: list[tuple[web.Application, dict[str, Any]]] = []
    monkeypatch.setattr(web, "run_app", lambda app, **kw: runs.append((app, kw)))
    exec(compile(code, "<example>", "exec"), {"__name__": "__main__"})

    [(app, where)] = runs
    assert where["host"] == "127.0.0.1"
    assert where["port"] not in DEMO_PORTS
    [prefix] = app[aiohttp_sockjs.ENDPOINTS]
    client = await aiohttp_client(app)
    sid = new_id()
    async with client.post(session_url(prefix, sid, "xhr")) as resp:
        assert await resp.text() == "o\n"
    async with client.post(session_url(prefix, sid, "xhr_send"), data='["hello"]') as resp:
        assert resp.status == 204
    frames = ""
    while '"hello"' not in frames:
        async with client.post(session_url(prefix, sid, "xhr")) as resp:
            frames += await bounded(resp.text())
