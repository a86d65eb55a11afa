"""Fuzz the chat demo's handler through real sessions: no input breaks it.

Random JSON of every shape (wrong types, huge and non-ASCII strings, lone
surrogates, deep nesting) from a few websocket sessions at once, some of
them joined. Each message must get an answer (a chat message, or the
"Goodbye" close of a ``leave``), never a 1011, and nothing may be logged
as an error.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from demo.chat import MAX_NICK, MAX_TEXT, make_app

Factory = Callable[..., Awaitable[TestClient[Any, Any]]]

SEED = 21
MESSAGES = 4000
SESSIONS = 4
#: Sent after each fuzzed message: its answer marks the end of that turn.
PROBE = "{not json"
PROBE_ANSWER = {"type": "error", "text": "That was not valid JSON."}
#: The demo's max_message_size: a longer frame is refused before the handler.
MAX_FRAME = 64 * 1024

STRINGS = [
    "",
    " ",
    "alice",
    "ALICE",
    "\uff21\uff4c\uff49\uff43\uff45",  # full-width: the same nickname as alice
    "é",
    "\U0001f600",
    "\udc80",  # a lone surrogate, valid in JSON text
    "\x00",
    "\u2028",
    "bell\x07",
    "<script>",
    "x" * MAX_NICK,
    "x" * (MAX_NICK + 1),
    "y" * MAX_TEXT,
    "y" * (MAX_TEXT + 1),
    "é" * 5_000,  # 30 kB of JSON escapes, under max_message_size
]


def _string(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return rng.choice(STRINGS)
    alphabet = 'aé\U0001f600\udc80\x00 \t\n"\\{}[]'
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 7, 2**70, 1.5, -0.0])
    if kind in (3, 4, 5):
        return _string(rng)
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_string(rng): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _message(rng: random.Random) -> str:
    """One text a page could send: mostly chat-shaped, often wrong."""
    roll = rng.random()
    if roll < 0.05:
        return rng.choice(["{not json", "[" * 5000, "", "nul", "1e999999", '"\\ud800"'])
    if roll < 0.15:
        return json.dumps(_value(rng))
    message: dict[str, Any] = {
        "type": rng.choice(["join", "join", "say", "say", "leave", "shout", 7, None, ["join"]])
    }
    for key in ("nick", "text", "token"):
        if rng.random() < 0.6:
            message[key] = _string(rng) if rng.random() < 0.7 else _value(rng)
    if rng.random() < 0.1:
        message[_string(rng)] = _value(rng)
    return json.dumps(message)


class Page:
    """One websocket session of the chat, reopened when it ends."""

    def __init__(self, client: TestClient[Any, Any], name: str) -> None:
        self.client = client
        self.name = name
        self.opened = 0
        self.ws: Any = None

    async def open(self) -> None:
        self.opened += 1
        self.ws = await self.client.ws_connect(f"/chat/000/{self.name}-{self.opened}/websocket")
        assert (await self.ws.receive(timeout=5)).data == "o"

    async def exchange(self, text: str) -> None:
        """Send ``text`` then a probe; read until the probe's answer, checking each frame."""
        await self.ws.send_str(json.dumps([text, PROBE]))
        # The session answers in order: the probe's error comes after
        # everything ``text`` caused. ``text`` gets the same error when it is
        # not JSON (the demo parses with json.loads too).
        wanted = 2 if _not_json(text) else 1
        while wanted:
            msg = await self.ws.receive(timeout=5)
            assert msg.type is WSMsgType.TEXT, (text[:200], msg)
            frame = msg.data
            if frame.startswith("c"):
                # Only a leave ends a session (and drops the probe); reopen.
                assert json.loads(frame[1:]) == [1000, "Goodbye"], (text[:200], frame)
                await self.ws.close()
                await self.open()
                return
            if frame.startswith("a"):
                for message in map(json.loads, json.loads(frame[1:])):
                    assert isinstance(message, dict) and "type" in message, frame
                    wanted -= message == PROBE_ANSWER
            else:
                assert frame == "h", frame


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return True
    return False


@pytest.mark.timeout(300)
async def test_no_input_breaks_the_chat(
    aiohttp_client: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    # Rate limits off: the fuzzer sends faster than a person types, and the
    # rate limits are tested elsewhere; every other option is the demo's.
    app = make_app(rejoin_grace=0.05, rate_limit=None, client_rate_limit=None, heartbeat_delay=10.0)
    client = await aiohttp_client(app)
    rng = random.Random(SEED)
    pages = [Page(client, f"p{i}") for i in range(SESSIONS)]
    for page in pages:
        await page.open()
    for _ in range(MESSAGES):
        text = _message(rng)
        while len(json.dumps([text, PROBE])) > MAX_FRAME:
            text = _message(rng)  # the protocol's 1009 is not the handler's doing
        await rng.choice(pages).exchange(text)
    for page in pages:
        await page.ws.close()

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]
