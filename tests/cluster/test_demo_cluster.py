"""``python -m demo.cluster``: the chat on two processes behind nginx, one command.

The launcher runs as a real command; two people talk to it over xhr through
its nginx, on different processes (each response names its process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.wire import new_id

from .proxies import free_port, require

ROOT = Path(__file__).resolve().parents[2]
WAIT = 15.0


@pytest.fixture
def demo_cluster() -> Iterator[tuple[str, list[int]]]:
    """The launcher with two workers: its origin and the pids it printed."""
    require("nginx")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "demo.cluster", "--workers", "2", "--port", str(port)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        bufsize=0,  # unbuffered: select() then sees every line that is waiting
        env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
    )
    assert proc.stdout is not None
    pids = []
    lines = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            line = proc.stdout.readline().decode() if ready else ""
            lines.append(line)
            if ": pid " in line:
                pids.append(int(line.split(": pid ")[1].split(",")[0]))
            if line.startswith("Chat demo on 2 processes"):
                break
            if proc.poll() is not None:
                break
        else:
            pytest.fail("the launcher did not start:\n" + "".join(lines))
        assert len(pids) == 2, lines
        yield f"http://127.0.0.1:{port}", pids
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        finally:
            proc.stdout.close()
    # The launcher stopped what it started.
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid), f"worker {pid} left"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][:1]
    except OSError:
        return "gone"


class Person:
    """A chat page's session over xhr polling, reading in the background."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.url = f"/chat/000/{new_id()}/"
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.process = ""
        self.task: asyncio.Task[None] | None = None

    async def open(self) -> Person:
        async with self.http.post(self.url + "xhr") as response:
            assert await response.text() == "o\n"
            self.process = response.headers["X-Served-By"]
        self.task = asyncio.ensure_future(self._poll())
        return self

    async def _poll(self) -> None:
        while True:
            async with self.http.post(self.url + "xhr") as response:
                assert response.status == 200
                assert response.headers["X-Served-By"] == self.process
                frame = (await response.text()).rstrip("\n")
            if frame.startswith("a"):
                for message in json.loads(frame[1:]):
                    self.inbox.put_nowait(json.loads(message))

    async def send(self, **message: Any) -> None:
        async with self.http.post(self.url + "xhr_send", json=[json.dumps(message)]) as sent:
            assert sent.status == 204, await sent.text()
            assert sent.headers["X-Served-By"] == self.process

    async def wait_for(self, check: Any) -> dict[str, Any]:
        """The first message for which ``check(message)`` holds (others are skipped)."""
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            message = await asyncio.wait_for(self.inbox.get(), max(left, 0.01))
            if check(message):
                return message

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, AssertionError, aiohttp.ClientError):
                await self.task


async def test_chat_across_two_processes(demo_cluster: tuple[str, list[int]]) -> None:
    origin, _ = demo_cluster
    async with aiohttp.ClientSession(base_url=origin) as http:
        people: dict[str, Person] = {}
        extra = []
        try:
            for _ in range(30):  # sessions land where their id hashes to
                person = await Person(http).open()
                if person.process in people:
                    extra.append(person)
                    continue
                people[person.process] = person
                if len(people) == 2:
                    break
            assert sorted(people) == ["worker1", "worker2"], list(people)
            alice, bob = people["worker1"], people["worker2"]
            await alice.send(type="join", nick="alice")
            await bob.send(type="join", nick="bob")
            await bob.send(type="say", text="hello from worker2")
            said = await alice.wait_for(lambda m: m["type"] == "say")
            assert (said["nick"], said["text"]) == ("bob", "hello from worker2")

            # The online list is the cluster's, on both processes.
            def everyone(message: dict[str, Any]) -> bool:
                nicks = sorted(p["nick"] for p in message.get("people", ()))
                return message["type"] == "online" and nicks == ["alice", "bob"]

            for person in (alice, bob):
                online = await person.wait_for(everyone)
                assert {p["transport"] for p in online["people"]} == {"xhr"}
                # Ids are unique across the processes: the page compares them.
                assert len({p["id"] for p in online["people"]}) == 2, online

            # A nickname taken on the other process is refused.
            carol = await Person(http).open()
            extra.append(carol)
            other = "bob" if carol.process == "worker1" else "alice"
            await carol.send(type="join", nick=other.upper())
            refused = await carol.wait_for(lambda m: m["type"] in ("error", "welcome"))
            assert refused["type"] == "error" and "taken" in refused["text"], refused
        finally:
            for person in [*people.values(), *extra]:
                await person.close()
