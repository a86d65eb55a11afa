"""The code blocks of README.md and docs/: found here, run by the doc example tests.

Each block is claimed by one runner, by its language and what it holds
(see :func:`runner`); a block no runner claims fails the test that lists
them, so a new block cannot go unchecked.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Block:
    """One code block: where it is, its language and its text."""

    path: str
    index: int
    lang: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.path}-{self.index}-{self.lang}"


def _markdown(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^```(\w*)[^\n]*\n(.*?)^```$", text, re.M | re.S)


def _rst(text: str) -> list[tuple[str, str]]:
    found = re.findall(r"^\.\. code-block:: (\w+)\n((?:[ \t]*\n|   .*\n)*)", text, re.M)
    return [(lang, textwrap.dedent(body).strip("\n") + "\n") for lang, body in found]


def files() -> list[Path]:
    """README.md and every page of docs/ (its build output aside)."""
    docs = [
        p
        for p in sorted((ROOT / "docs").rglob("*"))
        if p.suffix in (".rst", ".md") and "_build" not in p.parts
    ]
    return [ROOT / "README.md", *docs]


def blocks() -> list[Block]:
    """Every code block, in file order."""
    found = []
    for path in files():
        text = path.read_text()
        parsed = _rst(text) if path.suffix == ".rst" else _markdown(text)
        for index, (lang, code) in enumerate(parsed):
            found.append(Block(str(path.relative_to(ROOT)), index, lang, code))
    return found


def runner(block: Block) -> str:
    """Which runner executes the block."""
    if block.lang == "python":
        if "RedisSentinel(" in block.code:
            return "sentinel"  # tests/cluster: a master, a replica, three sentinels
        if "RedisCluster" in block.code:
            return "redis-cluster"  # tests/cluster: three masters in cluster mode
        if "RedisBroker" in block.code or "Publisher" in block.code:
            return "redis"  # tests/cluster: needs a real redis-server
        if "web.run_app(" in block.code:
            return "server"
        if re.search(r"^(async )?def test_", block.code, re.M):
            return "pytest"
        if "aiohttp_sockjs.client import" in block.code:
            return "client"  # its main(url) runs against a real server
        return "script"
    if block.lang == "sh":
        return "shell"
    if block.lang == "html":
        return "page"
    if block.lang == "nginx":
        return "nginx"
    if block.lang == "toml":
        return "pytest-config"
    return "none"
