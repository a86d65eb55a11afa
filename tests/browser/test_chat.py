"""The chat demo in Chromium, used as a person would: ``python -m demo.chat``.

Needs Debian's Chromium at /usr/bin/chromium and sockjs-client in
node_modules (``npm install`` at the repository root). Either one missing
fails the test with a message saying so: the page must load the client
from the local server, never from the CDN, so the test blocks every
request that leaves 127.0.0.1.

The fixtures live here rather than in conftest.py on purpose: they start
the chat demo itself, not the shared browser test server.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from .tools import CHROMIUM, CHROMIUM_ARGS, ROOT, require_tools

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
WAIT_MS = 15_000
#: Seconds a person whose connection dropped may come back quietly: long
#: enough for a transport switch or a reload on a busy machine, short enough
#: that a closed tab's "left" comes well within WAIT_MS.
GRACE = 4.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ChatServer:
    """``python -m demo.chat`` in a subprocess, as a person would run it."""

    def __init__(self, port: int, rejoin_grace: float = GRACE) -> None:
        self.port = port
        self.rejoin_grace = rejoin_grace
        self.url = f"http://127.0.0.1:{port}"
        self.output: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "demo.chat",
                "--port",
                str(self.port),
                "--rejoin-grace",
                str(self.rejoin_grace),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        # It prints the URL to open once it is listening.
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], 20)
            line = proc.stdout.readline() if ready else ""
            if not line:
                self.stop()
                pytest.fail("the chat demo did not start:\n" + "".join(self.output), pytrace=False)
            self.output.append(line)
            if f"open {self.url}" in line:
                return

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()  # SIGTERM: aiohttp shuts down gracefully
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        self.output.append(out)


@dataclass
class Person:
    """One browser tab (in its own context, like a separate person)."""

    page: Any
    events: list[str] = field(default_factory=list)

    def join(self, nick: str) -> None:
        from playwright.sync_api import expect

        self.page.fill("#nick", nick)
        self.page.click("#join-form button")
        expect(self.page.locator("#say-form")).to_be_visible(timeout=WAIT_MS)
        expect(self.page.locator("#me")).to_have_text(nick)

    def say(self, text: str) -> None:
        self.page.fill("#text", text)
        self.page.press("#text", "Enter")

    def expect_message(self, nick: str, text: str) -> None:
        from playwright.sync_api import expect

        last = self.page.locator("#messages .message").last
        expect(last.locator(".nick")).to_have_text(nick, timeout=WAIT_MS)
        expect(last.locator(".text")).to_have_text(text, timeout=WAIT_MS)

    def expect_notice(self, text: str) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator("#messages .notice").last).to_have_text(text, timeout=WAIT_MS)

    def notices(self) -> list[str]:
        """Every notice on the page so far."""
        texts: list[str] = self.page.locator("#messages .notice").all_text_contents()
        return texts

    def expect_people(self, *people: str) -> None:
        """The online list, as "nick transport" lines in order."""
        from playwright.sync_api import expect

        items = self.page.locator("#people li")
        expect(items).to_have_text(list(people), timeout=WAIT_MS)
        expect(self.page.locator("#people-count")).to_have_text(str(len(people)))

    def expect_transport(self, transport: str) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator("#status-text")).to_have_text(
            f"Connected · {transport}", timeout=WAIT_MS
        )


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    # One server per test: a room starts empty, and people whose page a test
    # closed (still in the rejoin grace) do not show up in the next test.
    require_tools()
    server = ChatServer(_free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chat_browser() -> Iterator[Any]:
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


OpenChat = Callable[[ChatServer, str], Person]


@pytest.fixture
def open_chat(chat_browser: Any) -> Iterator[OpenChat]:
    contexts: list[Any] = []
    people: list[Person] = []

    def open_tab(server: ChatServer, transport: str) -> Person:
        context = chat_browser.new_context(viewport={"width": 900, "height": 640})
        contexts.append(context)
        page = context.new_page()
        person = Person(page)
        people.append(person)

        def offline(route: Any) -> None:
            # The demo must work without internet: nothing may leave loopback.
            person.events.append(f"blocked off-machine request: {route.request.url}")
            route.abort()

        page.route(lambda url: not url.startswith("http://127.0.0.1:"), offline)
        page.on("console", lambda m: person.events.append(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: person.events.append(f"pageerror: {e}"))

        def dialog(d: Any) -> None:  # alert(1) would land here
            person.events.append(f"dialog: {d.message}")
            d.dismiss()

        page.on("dialog", dialog)
        page.goto(f"{server.url}/?transport={transport}")
        return person

    yield open_tab
    for context in contexts:
        context.close()
    # Whatever the test checked, these must never happen.
    for person in people:
        bad = [e for e in person.events if e.startswith(("blocked", "pageerror", "dialog"))]
        assert not bad, person.events


def test_two_people_chat_over_websocket_and_xhr_polling(
    chat_server: ChatServer, open_chat: OpenChat
) -> None:
    from playwright.sync_api import expect

    alice = open_chat(chat_server, "websocket")
    bob = open_chat(chat_server, "xhr-polling")
    alice.expect_transport("websocket")
    bob.expect_transport("xhr-polling")
    # The select shows the transport forced by the URL.
    expect(bob.page.locator("#transport-select")).to_have_value("xhr-polling")

    alice.join("alice")
    alice.expect_notice("You joined as alice.")
    bob.expect_people("alice websocket")  # bob has not joined, but sees who is here
    bob.join("bob")
    bob.expect_notice("You joined as bob.")
    alice.expect_notice("bob joined.")
    # One name per transport on a page: the menu's (sockjs-client's), in the
    # header and in the online list, not the server's "xhr".
    for person in (alice, bob):
        person.expect_people("alice websocket", "bob xhr-polling")

    alice.say("Hello from a websocket")
    bob.expect_message("alice", "Hello from a websocket")
    alice.expect_message("alice", "Hello from a websocket")
    bob.say("Hello back, from xhr polling")
    alice.expect_message("bob", "Hello back, from xhr polling")

    # Markup from others is shown as text, never run or rendered.
    alice.say(XSS)
    for person in (alice, bob):
        person.expect_message("alice", XSS)
        assert person.page.locator("#messages img").count() == 0
        assert person.page.locator("img").count() == 0

    bob.page.close()  # bob closes his tab
    alice.expect_notice("bob left.")
    alice.expect_people("alice websocket")


def test_switching_transport_rejoins_quietly(chat_server: ChatServer, open_chat: OpenChat) -> None:
    """A transport switch keeps the person: no "left"/"joined" on any page."""
    alice = open_chat(chat_server, "websocket")
    bob = open_chat(chat_server, "xhr-polling")
    alice.join("alice")
    bob.join("bob")
    alice.expect_people("alice websocket", "bob xhr-polling")
    bob.expect_people("alice websocket", "bob xhr-polling")
    seen = {"alice": alice.notices(), "bob": bob.notices()}

    # A polling session lingers on the server after the switch: taken over.
    bob.page.select_option("#transport-select", "xhr-streaming")
    bob.expect_transport("xhr-streaming")
    assert bob.page.url.endswith("?transport=xhr-streaming")
    alice.expect_people("alice websocket", "bob xhr-streaming")
    # A websocket closes at once: the person waits in the grace period.
    alice.page.select_option("#transport-select", "eventsource")
    alice.expect_transport("eventsource")
    bob.expect_people("alice eventsource", "bob xhr-streaming")

    bob.say("still here")
    alice.expect_message("bob", "still here")
    bob.expect_message("bob", "still here")
    alice.say("me too")
    bob.expect_message("alice", "me too")
    # Anything the switches announced would have come before these messages.
    assert alice.notices() == seen["alice"]
    assert bob.notices() == seen["bob"]
    # Still the same people: their own messages are theirs, the others' are not.
    for person, own in ((alice, "me too"), (bob, "still here")):
        mine = person.page.locator("#messages .message.mine .text")
        assert mine.all_text_contents() == [own]


def test_taken_nickname_is_refused(chat_server: ChatServer, open_chat: OpenChat) -> None:
    """A nickname already online, in another case or Unicode form, is refused."""
    from playwright.sync_api import expect

    alice = open_chat(chat_server, "websocket")
    bob = open_chat(chat_server, "xhr-streaming")
    alice.join("alice")
    alice.expect_notice("You joined as alice.")
    for taken in ("alice", "ALICE", "\uff21lice"):  # the last with a full-width A
        bob.page.fill("#nick", taken)
        bob.page.click("#join-form button")
        bob.expect_notice(f"{taken} is already taken: pick another nickname.")
        expect(bob.page.locator("#join-form")).to_be_visible()
        # The refused nickname stays in the box, selected, to edit or replace.
        nick = bob.page.locator("#nick")
        expect(nick).to_have_value(taken)
        assert nick.evaluate("e => e.value.slice(e.selectionStart, e.selectionEnd)") == taken
    bob.join("bob")
    bob.expect_notice("You joined as bob.")
    alice.expect_notice("bob joined.")
    bob.say("hi")
    alice.expect_message("bob", "hi")
    alice.say("hello")
    bob.expect_message("alice", "hello")
    # Each page marks only its own person's messages as its own.
    for person, own in ((alice, "hello"), (bob, "hi")):
        mine = person.page.locator("#messages .message.mine .text")
        assert mine.all_text_contents() == [own]
    assert alice.notices().count("You joined as alice.") == 1


def test_reload_rejoins_quietly_and_nickname_is_remembered(
    chat_server: ChatServer, open_chat: OpenChat
) -> None:
    """A reload comes back as the same person; a new tab offers the last nickname."""
    from playwright.sync_api import expect

    alice = open_chat(chat_server, "websocket")
    bob = open_chat(chat_server, "websocket")
    alice.join("alice")
    bob.join("bob")
    alice.expect_people("alice websocket", "bob websocket")
    seen = alice.notices()

    bob.page.reload()
    expect(bob.page.locator("#say-form")).to_be_visible(timeout=WAIT_MS)
    expect(bob.page.locator("#me")).to_have_text("bob")
    bob.expect_people("alice websocket", "bob websocket")
    bob.say("back")
    alice.expect_message("bob", "back")
    bob.expect_message("bob", "back")
    assert alice.notices() == seen
    assert bob.notices() == []  # not even "You joined as bob."

    # Another tab of bob's browser is another person: it offers "bob" but
    # does not join by itself, and joining as bob there is refused.
    tab = bob.page.context.new_page()
    tab.goto(f"{chat_server.url}/?transport=websocket")
    expect(tab.locator("#nick")).to_have_value("bob", timeout=WAIT_MS)
    expect(tab.locator("#join-form")).to_be_visible()
    tab.close()


@pytest.mark.parametrize(
    ("transport", "seen_as"),
    [
        ("websocket", "websocket"),
        ("xhr-streaming", "xhr-streaming"),
        ("eventsource", "eventsource"),
        ("iframe-eventsource", "eventsource"),
        ("htmlfile", "htmlfile"),
        ("iframe-htmlfile", "htmlfile"),
        ("xhr-polling", "xhr-polling"),
        ("iframe-xhr-polling", "xhr-polling"),
        ("jsonp-polling", "jsonp-polling"),
    ],
)
def test_every_transport_in_the_menu_works(
    chat_server: ChatServer, open_chat: OpenChat, transport: str, seen_as: str
) -> None:
    """Each transport works; a page names it as the menu does, its own as in the header.

    What another page sees is the server's view (``seen_as``): it cannot
    tell an iframe transport from the plain one.
    """
    # The iframe transports load sockjs.min.js again inside the iframe, from
    # the endpoint's sockjs_url: they only work if it matches the page's.
    person = open_chat(chat_server, transport)
    watcher = open_chat(chat_server, "websocket")
    person.expect_transport(transport)
    person.join("visitor")
    person.expect_people(f"visitor {transport}")
    watcher.expect_people(f"visitor {seen_as}")
    person.say(f"hello over {transport}")
    person.expect_message("visitor", f"hello over {transport}")


def test_page_reconnects_after_server_restart(open_chat: OpenChat) -> None:
    from playwright.sync_api import expect

    server = ChatServer(_free_port())
    server.start()
    try:
        alice = open_chat(server, "websocket")
        alice.join("alice")
        alice.expect_people("alice websocket")
        for line in range(30):  # more than the list shows at once
            alice.say(f"line {line}")
        alice.expect_message("alice", "line 29")

        server.stop()
        banner = alice.page.locator("#banner")
        expect(banner).to_be_visible(timeout=WAIT_MS)
        expect(banner).to_contain_text("Reconnecting", timeout=WAIT_MS)
        expect(alice.page.locator("#status-text")).to_have_text("Disconnected")
        # The banner pushed the list down: its newest notice is still in view.
        newest = alice.page.locator("#messages li").last
        expect(newest).to_have_text("Disconnected: The server went away.")
        expect(newest).to_be_in_viewport(ratio=1)

        server.start()
        alice.expect_transport("websocket")
        expect(banner).to_be_hidden()
        # Joined again by itself, under the same nickname: a new server
        # knows no one, so this is a join, not a quiet rejoin.
        alice.expect_people("alice websocket")
        alice.expect_notice("You joined as alice.")
        expect(alice.page.locator("#messages li").last).to_be_in_viewport(ratio=1)
    finally:
        server.stop()
