"""Rooms in one process, no broker: join, leave, broadcast to rooms, presence."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import aiohttp_sockjs
from tests.conftest import ClientFactory, endpoint_of
from tests.wire import Receiver, eventually, new_id

Client = TestClient[Any, Any]


async def rooms_handler(session: aiohttp_sockjs.Session) -> None:
    """``join R``, ``leave R``, ``rooms``, ``to R1,R2 TEXT`` (the sender hears ``sent``)."""
    async for message in session:
        command, _, argument = message.partition(" ")
        if command == "join":
            session.join(argument)
            session.send("joined " + argument)
        elif command == "leave":
            session.leave(argument)
            session.send("left " + argument)
        elif command == "rooms":
            session.send(",".join(sorted(session.rooms)))
        elif command == "to":
            rooms, _, text = argument.partition(" ")
            session.endpoint.broadcast(text, room=rooms.split(","), exclude=session)
            session.send("sent")


async def open_rx(client: Client, transport: str) -> Receiver:
    rx = Receiver(client, "/e", new_id(), transport)
    assert await rx.start() == "o"
    return rx


async def ask(rx: Receiver, text: str) -> str:
    await rx.send(text)
    (answer,) = await rx.messages(1)
    return answer


@pytest.mark.parametrize("transport", ["websocket", "xhr_streaming", "xhr", "eventsource"])
async def test_broadcast_to_a_room_reaches_its_members_only(
    serve: ClientFactory, transport: str
) -> None:
    client = await serve(rooms_handler)
    member, other, outsider = [await open_rx(client, transport) for _ in range(3)]
    assert await ask(member, "join news") == "joined news"
    assert await ask(other, "join news") == "joined news"
    endpoint = endpoint_of(client)
    endpoint.broadcast("extra!", room="news")
    endpoint.broadcast("to all")
    assert await member.messages(2) == ["extra!", "to all"]
    assert await other.messages(2) == ["extra!", "to all"]
    assert await outsider.messages(1) == ["to all"]
    for rx in (member, other, outsider):
        await rx.close()


async def test_several_rooms_reach_each_member_once(serve: ClientFactory) -> None:
    client = await serve(rooms_handler)
    both, red, blue, sender = [await open_rx(client, "websocket") for _ in range(4)]
    for rx, rooms in ((both, "red blue"), (red, "red"), (blue, "blue")):
        for room in rooms.split():
            assert await ask(rx, "join " + room) == "joined " + room
    assert await ask(both, "rooms") == "blue,red"
    assert await ask(sender, "to red,blue,nobody hello") == "sent"  # exclude=sender
    endpoint_of(client).broadcast("end")
    for rx in (both, red, blue):
        assert await rx.messages(2) == ["hello", "end"]
    assert await sender.messages(1) == ["end"]
    for rx in (both, red, blue, sender):
        await rx.close()


async def test_a_session_that_left_gets_no_more(serve: ClientFactory) -> None:
    client = await serve(rooms_handler)
    rx = await open_rx(client, "websocket")
    assert await ask(rx, "join a") == "joined a"
    assert await ask(rx, "join a") == "joined a"  # twice is once
    assert await ask(rx, "leave a") == "left a"
    assert await ask(rx, "leave a") == "left a"  # not in it: nothing happens
    assert await ask(rx, "rooms") == ""
    endpoint = endpoint_of(client)
    endpoint.broadcast("to a", room="a")
    endpoint.broadcast("end")
    assert await rx.messages(1) == ["end"]
    assert "a" not in endpoint.rooms
    await rx.close()


@pytest.mark.parametrize("transport", ["websocket", "xhr"])
async def test_closed_sessions_leave_their_rooms(serve: ClientFactory, transport: str) -> None:
    client = await serve(rooms_handler, disconnect_delay=0.2, sweep_interval=0.02)
    endpoint = endpoint_of(client)
    stays, goes = await open_rx(client, "websocket"), await open_rx(client, transport)
    assert await ask(stays, "join lobby") == "joined lobby"
    assert await ask(goes, "join lobby") == "joined lobby"
    assert await endpoint.presence() == aiohttp_sockjs.Presence(
        2, {"lobby": 2}, {aiohttp_sockjs.rooms.LOCAL_PROCESS: 2}
    )
    leaving = endpoint.sessions[-1]  # sessions are listed in the order they opened
    await goes.close()  # a websocket ends now, an xhr session expires
    await eventually(lambda: leaving.closed and leaving.rooms == frozenset())
    assert endpoint.rooms.members("lobby") == endpoint.sessions
    assert endpoint.rooms.count("lobby") == 1
    assert (await endpoint.presence()).rooms == {"lobby": 1}
    leaving.join("again")  # a closed session joins nothing
    assert "again" not in endpoint.rooms
    await stays.close()
    await eventually(lambda: len(endpoint.rooms) == 0)


async def test_room_arguments_are_checked(serve: ClientFactory) -> None:
    client = await serve(rooms_handler)
    endpoint = endpoint_of(client)
    with pytest.raises(ValueError, match="not both"):
        endpoint.broadcast("x", room="a", sessions=[])
    with pytest.raises(TypeError):
        endpoint.broadcast("x", room=b"a")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        endpoint.broadcast("x", room=["a", 1])  # type: ignore[list-item]
    endpoint.broadcast("x", room=[])  # no rooms: nobody
    rx = await open_rx(client, "websocket")
    (session,) = endpoint.sessions
    with pytest.raises(TypeError):
        session.join(7)  # type: ignore[arg-type]
    await rx.close()


async def bounded_rooms_handler(session: aiohttp_sockjs.Session) -> None:
    """``join R``: ``joined R``, or the limit the join went past; ``rooms``: how many."""
    async for message in session:
        command, _, argument = message.partition(" ")
        if command == "join":
            try:
                session.join(argument)
            except aiohttp_sockjs.RoomLimitExceeded as exc:
                session.send(f"refused {exc.option}={exc.limit}")
            else:
                session.send("joined")
        elif command == "leave":
            session.leave(argument)
            session.send("left")
        elif command == "rooms":
            session.send(str(len(session.rooms)))


async def test_rooms_per_session_are_bounded_by_default(serve: ClientFactory) -> None:
    """128 rooms a session by default; the 129th join is refused and the session goes on."""
    limit = aiohttp_sockjs.Options().max_rooms_per_session
    assert limit == 128
    client = await serve(bounded_rooms_handler)
    rx = await open_rx(client, "websocket")
    for n in range(limit):
        assert await ask(rx, f"join r{n}") == "joined"
    assert await ask(rx, "join one-more") == f"refused max_rooms_per_session={limit}"
    assert await ask(rx, "join r0") == "joined"  # already in it: not a new room
    assert await ask(rx, "rooms") == str(limit)
    assert "one-more" not in endpoint_of(client).rooms
    assert await ask(rx, "leave r0") == "left"
    assert await ask(rx, "join one-more") == "joined"
    presence = await endpoint_of(client).presence()
    assert len(presence.rooms) == limit and "r0" not in presence.rooms
    await rx.close()


async def test_room_names_are_bounded_by_default(serve: ClientFactory) -> None:
    longest = aiohttp_sockjs.Options().max_room_name_length
    assert longest == 255
    client = await serve(bounded_rooms_handler)
    endpoint = endpoint_of(client)
    rx = await open_rx(client, "xhr_streaming")
    assert await ask(rx, "join " + "é" * longest) == "joined"
    assert await ask(rx, "join " + "x" * (longest + 1)) == f"refused max_room_name_length={longest}"
    assert await ask(rx, "join " + "x" * 500_000) == f"refused max_room_name_length={longest}"
    assert await ask(rx, "rooms") == "1"
    assert list(endpoint.rooms) == ["é" * longest]
    # A broadcast to a name no session can be in is the application's bug.
    with pytest.raises(aiohttp_sockjs.RoomLimitExceeded) as raised:
        endpoint.broadcast("x", room=["ok", "y" * (longest + 1)])
    assert raised.value.option == "max_room_name_length"
    assert len(str(raised.value)) < 100  # the name is cut in the message
    with pytest.raises(aiohttp_sockjs.RoomLimitExceeded):
        endpoint.broadcast_many(["x"], room="y" * (longest + 1))
    endpoint.broadcast("to the room", room="é" * longest)
    assert await rx.messages(1) == ["to the room"]
    await rx.close()


async def test_room_limits_are_options(serve: ClientFactory) -> None:
    client = await serve(bounded_rooms_handler, max_rooms_per_session=2, max_room_name_length=3)
    rx = await open_rx(client, "websocket")
    assert await ask(rx, "join abc") == "joined"
    assert await ask(rx, "join abcd") == "refused max_room_name_length=3"
    assert await ask(rx, "join b") == "joined"
    assert await ask(rx, "join c") == "refused max_rooms_per_session=2"
    await rx.close()
    unbounded = await serve(
        bounded_rooms_handler, max_rooms_per_session=None, max_room_name_length=None
    )
    rx = await open_rx(unbounded, "websocket")
    for n in range(200):
        assert await ask(rx, f"join {n}" + "z" * 300) == "joined"
    await rx.close()
    for bad in (0, -1):
        with pytest.raises(ValueError, match="max_rooms_per_session"):
            aiohttp_sockjs.Options(max_rooms_per_session=bad)
        with pytest.raises(ValueError, match="max_room_name_length"):
            aiohttp_sockjs.Options(max_room_name_length=bad)
