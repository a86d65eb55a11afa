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
    # A grace far longer than any test: people only leave when a test says so.
    app = make_app(rejoin_grace=60.0, heartbeat_delay=10.0, disconnect_delay=0.5)
    result: Client = await aiohttp_client(app)
    return result


@pytest.fixture
async def short_grace(aiohttp_client: Any) -> Client:
    """A chat whose people who lose their connection leave after 0.2 s."""
    app = make_app(rejoin_grace=0.2, heartbeat_delay=10.0, disconnect_delay=0.5)
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


User = WebsocketUser | XhrUser


async def _join(user: User, nick: str) -> dict[str, Any]:
    """Join as ``nick``; returns the welcome (``id``, ``nick``, ``token``)."""
    assert (await user.receive())["type"] == "online"
    await user.send({"type": "join", "nick": nick})
    welcome = await user.receive()
    assert welcome["type"] == "welcome"
    assert welcome["nick"] == nick
    assert isinstance(welcome["id"], str) and isinstance(welcome["token"], str)
    joined = await user.receive()
    assert joined["type"] == "join"
    assert (joined["id"], joined["nick"]) == (welcome["id"], nick)
    return welcome


async def _quiet_until(user: User, wanted: dict[str, Any]) -> None:
    """Receive until ``wanted``: only quiet list updates may come before it."""
    while (message := await user.receive()) != wanted:
        assert message["type"] == "online", message


def _person(welcome: dict[str, Any], transport: str | None) -> dict[str, Any]:
    return {"id": welcome["id"], "nick": welcome["nick"], "transport": transport}


async def test_people_online_are_listed_on_connect(client: Client) -> None:
    alice = await WebsocketUser.connect(client, "a")
    a = await _join(alice, "alice")
    bob = await XhrUser.connect(client, "b")
    assert await bob.receive() == {"type": "online", "people": [_person(a, "websocket")]}


async def test_join_and_say_reach_the_other_session(client: Client) -> None:
    alice = await WebsocketUser.connect(client, "a")
    a = await _join(alice, "alice")
    bob = await XhrUser.connect(client, "b")
    b = await _join(bob, "bob")
    assert a["id"] != b["id"] and a["token"] != b["token"]

    assert await alice.receive() == {
        "type": "join",
        "id": b["id"],
        "nick": "bob",
        "people": [_person(a, "websocket"), _person(b, "xhr")],
    }

    await alice.send({"type": "say", "text": "hi bob"})
    said = {"type": "say", "id": a["id"], "nick": "alice", "text": "hi bob"}
    assert await bob.receive() == said
    assert await alice.receive() == said  # broadcast includes the sender

    await bob.send({"type": "say", "text": "<img src=x onerror=alert(1)>"})
    said = {"type": "say", "id": b["id"], "nick": "bob", "text": "<img src=x onerror=alert(1)>"}
    assert await alice.receive() == said
    assert await bob.receive() == said


async def test_a_flooding_client_is_disconnected_and_the_room_goes_on(client: Client) -> None:
    """The demo sets a rate limit: a script flooding the room is closed with 1008."""
    alice = await WebsocketUser.connect(client, "a")
    a = await _join(alice, "alice")
    mallory = await WebsocketUser.connect(client, "m")
    m = await _join(mallory, "mallory")
    assert (await alice.receive())["type"] == "join"
    flood = [json.dumps({"type": "say", "text": f"spam {i}"}) for i in range(500)]
    await mallory.ws.send_str(json.dumps(flood))
    while True:  # mallory sees nothing of its flood, then the close frame
        msg = await mallory.ws.receive(timeout=5)
        if msg.data.startswith("c"):
            break
        assert all(m["type"] in ("online", "join", "leave") for m in _decode_frame(msg.data))
    # Over the session's rate_limit and its client's client_rate_limit at
    # once: the client's bucket is checked first.
    assert json.loads(msg.data[1:]) == [1008, "Client rate limit exceeded"]
    # Alice was not flooded: she sees mallory go (now or after the grace)
    # and can still talk.
    await alice.send({"type": "say", "text": "still here"})
    said = {"type": "say", "id": a["id"], "nick": "alice", "text": "still here"}
    while (message := await alice.receive()) != said:
        assert message["type"] in ("online", "leave"), message
        assert message.get("id", m["id"]) == m["id"]


async def test_lost_connection_leaves_after_the_grace(short_grace: Client) -> None:
    """A dropped connection is a quiet "reconnecting" first, a leave after the grace."""
    alice = await WebsocketUser.connect(short_grace, "a")
    a = await _join(alice, "alice")
    bob = await WebsocketUser.connect(short_grace, "b")
    b = await _join(bob, "bob")
    assert (await alice.receive())["id"] == b["id"]

    await bob.ws.close()
    reconnecting = [_person(a, "websocket"), _person(b, None)]
    assert await alice.receive() == {"type": "online", "people": reconnecting}
    assert await alice.receive() == {
        "type": "leave",
        "id": b["id"],
        "nick": "bob",
        "people": [_person(a, "websocket")],
    }
    # The nickname is free again.
    carol = await WebsocketUser.connect(short_grace, "c")
    await _join(carol, "Bob")


async def test_leave_message_ends_the_session_at_once(client: Client) -> None:
    alice = await WebsocketUser.connect(client, "a")
    a = await _join(alice, "alice")
    bob = await XhrUser.connect(client, "b")
    b = await _join(bob, "bob")
    assert (await alice.receive())["nick"] == "bob"

    await bob.send({"type": "leave"})
    assert await alice.receive() == {
        "type": "leave",
        "id": b["id"],
        "nick": "bob",
        "people": [_person(a, "websocket")],
    }
    response = await client.post("/chat/000/b/xhr")
    assert await response.text() == 'c[1000,"Goodbye"]\n'  # and no leave notice
    # Gone for good: the token no longer brings bob back.
    carol = await WebsocketUser.connect(client, "c")
    assert (await carol.receive())["type"] == "online"
    await carol.send({"type": "join", "nick": "carol", "token": b["token"]})
    assert (await carol.receive())["nick"] == "carol"


async def test_changing_nickname(client: Client) -> None:
    alice = await WebsocketUser.connect(client, "a")
    a = await _join(alice, "alice")
    await alice.send({"type": "join", "nick": "  Alice \n  Liddell "})
    assert await alice.receive() == {**a, "nick": "Alice Liddell"}
    assert await alice.receive() == {
        "type": "rename",
        "id": a["id"],
        "old": "alice",
        "nick": "Alice Liddell",
        "people": [{"id": a["id"], "nick": "Alice Liddell", "transport": "websocket"}],
    }
    # A change of case of one's own nickname is no clash with oneself.
    await alice.send({"type": "join", "nick": "ALICE LIDDELL"})
    assert (await alice.receive())["nick"] == "ALICE LIDDELL"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("alice", "alice"),
        ("alice", "ALICE"),
        ("Alice", "aLiCe"),
        ("alice", "\uff41\uff4c\uff49\uff43\uff45"),  # full-width letters
        ("Ren\u00e9e", "rene\u0301e"),  # composed and decomposed accent
        ("stra\u00dfe", "STRASSE"),  # casefold: sharp s
        ("\ufb00", "FF"),  # a ligature
    ],
    ids=["same", "upper", "mixed", "fullwidth", "nfc-nfd", "sharp-s", "ligature"],
)
async def test_nickname_online_is_refused(client: Client, first: str, second: str) -> None:
    """A nickname someone has is refused in any case or Unicode form."""
    alice = await WebsocketUser.connect(client, "a")
    await _join(alice, first)
    bob = await XhrUser.connect(client, "b")
    assert (await bob.receive())["type"] == "online"
    await bob.send({"type": "join", "nick": second})
    assert await bob.receive() == {
        "type": "error",
        "text": f"{second} is already taken: pick another nickname.",
    }
    await bob.send({"type": "join", "nick": "bob"})
    assert (await bob.receive())["type"] == "welcome"


async def test_nickname_is_held_during_the_grace(client: Client) -> None:
    """While its owner is reconnecting, a nickname stays taken."""
    alice = await WebsocketUser.connect(client, "a")
    await _join(alice, "alice")
    bob = await WebsocketUser.connect(client, "b")
    await _join(bob, "bob")
    await alice.ws.close()
    assert (await bob.receive())["type"] == "online"  # alice is reconnecting
    await bob.send({"type": "join", "nick": "Alice"})
    assert (await bob.receive())["type"] == "error"


async def test_rejoin_with_the_token_is_quiet(client: Client) -> None:
    """Back within the grace (new session, new transport): same identity, no notices."""
    alice = await WebsocketUser.connect(client, "a")
    a = await _join(alice, "alice")
    bob = await WebsocketUser.connect(client, "b")
    b = await _join(bob, "bob")
    assert (await alice.receive())["id"] == b["id"]

    await alice.ws.close()
    away = {"type": "online", "people": [_person(a, None), _person(b, "websocket")]}
    assert await bob.receive() == away

    again = await XhrUser.connect(client, "a2")
    assert await again.receive() == away
    await again.send({"type": "join", "nick": "alice", "token": a["token"]})
    assert await again.receive() == a  # the same welcome: id, nick and token
    back = {"type": "online", "people": [_person(a, "xhr"), _person(b, "websocket")]}
    assert await again.receive() == back
    assert await bob.receive() == back  # a list update, no "left" or "joined"

    await again.send({"type": "say", "text": "still me"})
    said = {"type": "say", "id": a["id"], "nick": "alice", "text": "still me"}
    assert await bob.receive() == said


async def test_rejoin_takes_over_a_session_still_open(client: Client) -> None:
    """A page that switched transport before its old session ended: the old one is closed."""
    alice = await XhrUser.connect(client, "a")
    a = await _join(alice, "alice")
    bob = await WebsocketUser.connect(client, "b")
    b = await _join(bob, "bob")

    again = await WebsocketUser.connect(client, "a2")
    assert (await again.receive())["type"] == "online"
    await again.send({"type": "join", "nick": "alice", "token": a["token"]})
    assert await again.receive() == a
    back = {"type": "online", "people": [_person(a, "websocket"), _person(b, "websocket")]}
    await _quiet_until(bob, back)

    response = await client.post("/chat/000/a/xhr")
    text = await response.text()
    while text.startswith("a"):  # what the old session had queued
        response = await client.post("/chat/000/a/xhr")
        text = await response.text()
    assert text == 'c[4001,"Rejoined on another connection"]\n'
    # The old session ending does not make alice leave.
    await again.send({"type": "say", "text": "here"})
    said = {"type": "say", "id": a["id"], "nick": "alice", "text": "here"}
    await _quiet_until(bob, said)


async def test_unknown_token_is_a_plain_join(client: Client) -> None:
    """A token the server does not know (a restart, a guess) joins by nickname."""
    alice = await WebsocketUser.connect(client, "a")
    a = await _join(alice, "alice")
    bob = await WebsocketUser.connect(client, "b")
    assert (await bob.receive())["type"] == "online"
    await bob.send({"type": "join", "nick": "alice", "token": a["token"] + "x"})
    assert (await bob.receive())["type"] == "error"
    await bob.send({"type": "join", "nick": "bob", "token": 7})
    welcome = await bob.receive()
    assert welcome["nick"] == "bob" and welcome["id"] != a["id"]
    assert (await bob.receive())["type"] == "join"


@pytest.mark.parametrize(
    "token",
    ["é", "\U0001f600" * 30, "\udc80", "x" * 30_000],
    ids=["accent", "emoji", "lone-surrogate", "huge"],
)
async def test_any_token_is_compared_safely(client: Client, token: str) -> None:
    """A token of any characters, while someone is in the room, is just an unknown one."""
    alice = await WebsocketUser.connect(client, "a")
    a = await _join(alice, "alice")
    bob = await WebsocketUser.connect(client, "b")
    assert (await bob.receive())["type"] == "online"
    await bob.send({"type": "join", "nick": "bob", "token": token})
    welcome = await bob.receive()
    assert (welcome["type"], welcome["nick"]) == ("welcome", "bob")
    assert welcome["id"] != a["id"]


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
    welcome = await alice.receive()
    assert (welcome["type"], welcome["nick"]) == ("welcome", "x" * MAX_NICK)


async def test_too_long_message_gets_a_polite_error(client: Client) -> None:
    alice = await XhrUser.connect(client, "a")
    await _join(alice, "alice")
    bob = await WebsocketUser.connect(client, "b")
    b = await _join(bob, "bob")

    await bob.send({"type": "say", "text": "y" * (MAX_TEXT + 1)})
    assert await bob.receive() == {
        "type": "error",
        "text": f"Messages are limited to {MAX_TEXT} characters.",
    }
    # The error went to bob only; a message at the limit goes to everyone.
    await bob.send({"type": "say", "text": "y" * MAX_TEXT})
    said = {"type": "say", "id": b["id"], "nick": "bob", "text": "y" * MAX_TEXT}
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
    assert (await user.receive())["nick"] == "still here"


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
