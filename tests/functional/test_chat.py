"""The chat demo's server side, over real HTTP and websocket connections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

import demo.chat
from demo.chat import MAX_NICK, MAX_TEXT, make_app

Client = TestClient[Any, Any]


@pytest.fixture
async def client(aiohttp_client: Any) -> Client:
    app = make_app(heartbeat_delay=10.0, disconnect_delay=0.5)
    result: Client = await aiohttp_client(app)
    return result


def _decode_frame(frame: str) -> list[dict[str, Any]]:
    """The chat messages in one SockJS frame (heartbeats and opens carry none)."""
    if frame.startswith("a"):
        return [json.loads(m) for m in json.loads(frame[1:])]
    assert frame in ("o", "h"), frame
    return []


class WebsocketUser:
    """A chat user on the SockJS websocket transport."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.pending: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, client: Client, session: str) -> WebsocketUser:
        ws = await client.ws_connect(f"/chat/000/{session}/websocket")
        msg = await ws.receive(timeout=5)
        assert msg.data == "o"
        return cls(ws)

    async def send(self, message: Any) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        await self.ws.send_str(json.dumps([text]))

    async def receive(self) -> dict[str, Any]:
        while not self.pending:
            msg = await self.ws.receive(timeout=5)
            assert msg.type is WSMsgType.TEXT, msg
            self.pending.extend(_decode_frame(msg.data))
        return self.pending.pop(0)

    async def close_frame(self) -> list[Any]:
        """The close frame that ends the session (after any messages)."""
        assert not self.pending, self.pending
        while True:
            msg = await self.ws.receive(timeout=5)
            assert msg.type is WSMsgType.TEXT, msg
            if msg.data.startswith("c"):
                result: list[Any] = json.loads(msg.data[1:])
                return result
            assert not _decode_frame(msg.data), msg.data


class XhrUser:
    """A chat user on the SockJS xhr-polling transport."""

    def __init__(self, client: Client, session: str) -> None:
        self.client = client
        self.base = f"/chat/000/{session}"
        self.pending: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, client: Client, session: str) -> XhrUser:
        user = cls(client, session)
        response = await client.post(user.base + "/xhr")
        assert await response.text() == "o\n"
        return user

    async def send(self, message: Any) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        response = await self.client.post(self.base + "/xhr_send", data=json.dumps([text]))
        assert response.status == 204, await response.text()

    async def receive(self) -> dict[str, Any]:
        while not self.pending:
            response = await self.client.post(self.base + "/xhr")
            assert response.status == 200
            self.pending.extend(_decode_frame((await response.text()).rstrip("\n")))
        return self.pending.pop(0)


async def _join(user: WebsocketUser | XhrUser, nick: str) -> None:
    assert (await user.receive())["type"] == "online"
    await user.send({"type": "join", "nick": nick})
    assert await user.receive() == {"type": "welcome", "nick": nick}
    joined = await user.receive()
    assert joined["type"] == "join"
    assert joined["nick"] == nick


async def test_people_online_are_listed_on_connect(client: Client) -> None:
    alice = await WebsocketUser.connect(client, "a")
    await _join(alice, "alice")
    bob = await XhrUser.connect(client, "b")
    assert await bob.receive() == {
        "type": "online",
        "people": [{"nick": "alice", "transport": "websocket"}],
    }


async def test_join_and_say_reach_the_other_session(client: Client) -> None:
    alice = await WebsocketUser.connect(client, "a")
    await _join(alice, "alice")
    bob = await XhrUser.connect(client, "b")
    await _join(bob, "bob")

    joined = await alice.receive()
    assert joined == {
        "type": "join",
        "nick": "bob",
        "people": [
            {"nick": "alice", "transport": "websocket"},
            {"nick": "bob", "transport": "xhr"},
        ],
    }

    await alice.send({"type": "say", "text": "hi bob"})
    said = {"type": "say", "nick": "alice", "text": "hi bob"}
    assert await bob.receive() == said
    assert await alice.receive() == said  # broadcast includes the sender

    await bob.send({"type": "say", "text": "<img src=x onerror=alert(1)>"})
    said = {"type": "say", "nick": "bob", "text": "<img src=x onerror=alert(1)>"}
    assert await alice.receive() == said
    assert await bob.receive() == said


async def test_leaving_is_announced_with_the_new_list(client: Client) -> None:
    alice = await WebsocketUser.connect(client, "a")
    await _join(alice, "alice")
    bob = await WebsocketUser.connect(client, "b")
    await _join(bob, "bob")
    assert (await alice.receive())["nick"] == "bob"

    await bob.ws.close()
    assert await alice.receive() == {
        "type": "leave",
        "nick": "bob",
        "people": [{"nick": "alice", "transport": "websocket"}],
    }


async def test_leave_message_ends_the_session(client: Client) -> None:
    alice = await WebsocketUser.connect(client, "a")
    await _join(alice, "alice")
    bob = await XhrUser.connect(client, "b")
    await _join(bob, "bob")
    assert (await alice.receive())["nick"] == "bob"

    await bob.send({"type": "leave"})
    assert await alice.receive() == {
        "type": "leave",
        "nick": "bob",
        "people": [{"nick": "alice", "transport": "websocket"}],
    }
    response = await client.post("/chat/000/b/xhr")
    assert await response.text() == 'c[1000,"Goodbye"]\n'  # and no leave notice


async def test_changing_nickname(client: Client) -> None:
    alice = await WebsocketUser.connect(client, "a")
    await _join(alice, "alice")
    await alice.send({"type": "join", "nick": "  Alice \n  Liddell "})
    assert await alice.receive() == {"type": "leave", "nick": "alice", "people": []}
    assert await alice.receive() == {"type": "welcome", "nick": "Alice Liddell"}
    assert await alice.receive() == {
        "type": "join",
        "nick": "Alice Liddell",
        "people": [{"nick": "Alice Liddell", "transport": "websocket"}],
    }


@pytest.mark.parametrize(
    "nick",
    ["x" * (MAX_NICK + 1), "", "   ", "bell\x07", None, 42, ["alice"]],
    ids=["too-long", "empty", "blank", "control-char", "null", "number", "list"],
)
async def test_bad_nickname_gets_a_polite_error(client: Client, nick: Any) -> None:
    alice = await WebsocketUser.connect(client, "a")
    assert (await alice.receive())["type"] == "online"
    await alice.send({"type": "join", "nick": nick})
    assert await alice.receive() == {
        "type": "error",
        "text": f"Pick a nickname of 1 to {MAX_NICK} printable characters.",
    }
    # Still connected, and a good nickname works.
    await alice.send({"type": "join", "nick": "x" * MAX_NICK})
    assert await alice.receive() == {"type": "welcome", "nick": "x" * MAX_NICK}


async def test_too_long_message_gets_a_polite_error(client: Client) -> None:
    alice = await XhrUser.connect(client, "a")
    await _join(alice, "alice")
    bob = await WebsocketUser.connect(client, "b")
    await _join(bob, "bob")

    await bob.send({"type": "say", "text": "y" * (MAX_TEXT + 1)})
    assert await bob.receive() == {
        "type": "error",
        "text": f"Messages are limited to {MAX_TEXT} characters.",
    }
    # The error went to bob only; a message at the limit goes to everyone.
    await bob.send({"type": "say", "text": "y" * MAX_TEXT})
    said = {"type": "say", "nick": "bob", "text": "y" * MAX_TEXT}
    assert await bob.receive() == said
    assert (await alice.receive())["nick"] == "bob"  # bob's join
    assert await alice.receive() == said


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("{not json", "That was not valid JSON."),
        ("[" * 50_000, "That was not valid JSON."),
        ('"just a string"', 'Messages need a "type" of "join", "say" or "leave".'),
        ('{"type": "shout"}', 'Messages need a "type" of "join", "say" or "leave".'),
        ('{"type": "say", "text": "hi"}', "Pick a nickname before you say something."),
    ],
    ids=["broken", "nested-too-deep", "not-an-object", "unknown-type", "say-before-join"],
)
async def test_bad_message_gets_a_polite_error(client: Client, raw: str, error: str) -> None:
    alice = await WebsocketUser.connect(client, "a")
    assert (await alice.receive())["type"] == "online"
    await alice.send(raw)
    assert await alice.receive() == {"type": "error", "text": error}
    await _join_after_error(alice)


async def _join_after_error(user: WebsocketUser) -> None:
    await user.send({"type": "join", "nick": "still here"})
    assert await user.receive() == {"type": "welcome", "nick": "still here"}


async def test_empty_message_gets_a_polite_error(client: Client) -> None:
    alice = await WebsocketUser.connect(client, "a")
    await _join(alice, "alice")
    for text in ["", "  \n ", None, 7]:
        await alice.send({"type": "say", "text": text})
        assert await alice.receive() == {"type": "error", "text": "A message needs some text."}


async def test_page_and_client_library_share_one_url(client: Client) -> None:
    page = await (await client.get("/")).text()
    assert '<script src="/sockjs.min.js"></script>' in page
    # The iframe transports load the client from the endpoint's sockjs_url.
    iframe = await (await client.get("/chat/iframe.html")).text()
    assert 'src="/sockjs.min.js"' in iframe
    for asset in ("/static/chat.js", "/static/chat.css"):
        assert (await client.get(asset)).status == 200


async def test_client_library_from_node_modules(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "sockjs.min.js"
    local.write_text("/* sockjs-client */")
    monkeypatch.setattr(demo.chat, "LOCAL_CLIENT", local)
    response = await client.get("/sockjs.min.js")
    assert response.status == 200
    assert "javascript" in response.headers["Content-Type"]
    assert await response.text() == "/* sockjs-client */"


async def test_client_library_from_the_cdn_without_npm(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo.chat, "LOCAL_CLIENT", tmp_path / "missing.js")
    response = await client.get("/sockjs.min.js", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == demo.chat.CDN_CLIENT
