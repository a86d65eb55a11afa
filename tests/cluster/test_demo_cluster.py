"""``python -m demo.cluster``: the chat on two processes behind nginx, one command.

The launcher runs as a real command; two people talk to it over xhr through
its nginx, on different processes (each response names its process, which
an aiohttp trace on the clients' ``ClientSession`` reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
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

from aiohttp_sockjs.client import SockJSClient, connect

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


class ServedBy:
    """Which process answered each request of each session, read from ``X-Served-By``.

    An aiohttp trace on the clients' ``ClientSession`` sees the headers of
    every response the public client gets (polls, sends), before the client
    reads its body.
    """

    def __init__(self) -> None:
        self.by_session: dict[str, list[str]] = {}
        self.config = aiohttp.TraceConfig()
        self.config.on_request_end.append(self._on_request_end)

    async def _on_request_end(
        self, http: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        # Session URLs are <prefix>/<server>/<session>/<transport>.
        path = params.url.path.split("/")
        if len(path) >= 4:
            served = params.response.headers.get("X-Served-By", "nobody")
            self.by_session.setdefault(path[-2], []).append(served)


class Person:
    """A chat page's session over xhr polling, on the public client."""

    def __init__(self, client: SockJSClient, served_by: ServedBy) -> None:
        self.client = client
        self.served_by = served_by
        #: The process that answered the poll that opened the session.
        self.process = self.served()[0]
        #: What the process said it is, in its first message.
        self.says_server: str | None = None

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, origin: str, served_by: ServedBy) -> Person:
        client = await connect(f"{origin}/chat", transports="xhr", session=http)
        person = cls(client, served_by)
        first = await person.wait_for(lambda m: True)
        assert first["type"] == "online", first
        person.says_server = first.get("server")
        return person

    def served(self) -> list[str]:
        """The process that answered each request of the session so far, in order."""
        assert self.client.session_id is not None
        return self.served_by.by_session.get(self.client.session_id, [])

    def assert_one_process(self) -> None:
        """Every request of the session so far reached the process that opened it."""
        served = self.served()
        assert set(served) == {self.process}, served

    async def send(self, **message: Any) -> None:
        await self.client.send(json.dumps(message))
        self.assert_one_process()

    async def wait_for(self, check: Any) -> dict[str, Any]:
        """The first message for which ``check(message)`` holds (others are skipped)."""
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            text = await asyncio.wait_for(self.client.receive(), max(left, 0.01))
            self.assert_one_process()
            message: dict[str, Any] = json.loads(text)
            if check(message):
                return message

    async def close(self) -> None:
        await self.client.close()


async def test_chat_across_two_processes(demo_cluster: tuple[str, list[int]]) -> None:
    origin, _ = demo_cluster
    served_by = ServedBy()
    async with aiohttp.ClientSession(trace_configs=[served_by.config]) as http:
        people: dict[str, Person] = {}
        extra = []
        try:
            for _ in range(30):  # sessions land where their id hashes to
                person = await Person.open(http, origin, served_by)
                if person.process in people:
                    extra.append(person)
                    continue
                people[person.process] = person
                if len(people) == 2:
                    break
            assert sorted(people) == ["worker1", "worker2"], list(people)
            # Each page is told which process holds its session (the page shows it).
            for process, person in people.items():
                assert person.says_server == process
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
            carol = await Person.open(http, origin, served_by)
            extra.append(carol)
            other = "bob" if carol.process == "worker1" else "alice"
            await carol.send(type="join", nick=other.upper())
            refused = await carol.wait_for(lambda m: m["type"] in ("error", "welcome"))
            assert refused["type"] == "error" and "taken" in refused["text"], refused

            # The open poll, the sends and the polls since: all seen, each
            # answered by the process that holds the session.
            for person in (alice, bob, carol):
                person.assert_one_process()
                assert len(person.served()) >= 3, person.served()
        finally:
            for person in [*people.values(), *extra]:
                await person.close()


@pytest.mark.browser
def test_page_shows_the_serving_worker(demo_cluster: tuple[str, list[int]]) -> None:
    """The page names the process that holds its session: the one in its responses' header."""
    from playwright.sync_api import expect, sync_playwright

    from tests.browser.tools import CHROMIUM, CHROMIUM_ARGS, require_tools

    require_tools()
    origin, _ = demo_cluster
    served: dict[str, set[str]] = {}

    def on_response(response: Any) -> None:
        # Session URLs are /chat/<server>/<session>/<transport>.
        path = response.url.removeprefix(origin).split("?")[0].split("/")
        if len(path) == 5 and path[1] == "chat":
            served.setdefault(path[3], set()).add(response.headers.get("x-served-by", "nobody"))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            shown = set()
            for transport in ("xhr-polling", "xhr-streaming", "xhr-polling", "xhr-streaming"):
                page = browser.new_context().new_page()
                page.on("response", on_response)
                page.goto(f"{origin}/?transport={transport}")
                label = page.locator("#served-by")
                expect(label).to_have_text(re.compile(r"served by worker\d"), timeout=WAIT * 1000)
                [session] = [sid for sid in served if sid not in shown]
                shown.add(session)
                assert served[session] == {label.inner_text().removeprefix("served by ")}
                page.context.close()
        finally:
            browser.close()
