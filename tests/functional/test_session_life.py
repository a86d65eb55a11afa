"""Session life: creation, the one-receiver rule, close, abort, expiry, heartbeats (§3, §4, §8)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from aiohttp_sockjs import Session, SessionState
from tests.conftest import endpoint_of
from tests.wire import (
    ALL_TRANSPORTS,
    HTTP_RECEIVERS,
    Receiver,
    bounded,
    eventually,
    new_id,
    open_xhr_session,
    poll_after_abort,
    receiver_attached,
    session_url,
    xhr,
    xhr_send,
)

ANOTHER = 'c[2010,"Another connection still open"]'
GO_AWAY = 'c[3000,"Go away!"]'
INTERRUPTED = 'c[1002,"Connection interrupted"]'
STREAMING = ("xhr_streaming", "eventsource", "htmlfile")


def recorder() -> tuple[list[Session], Any]:
    """An echo handler that records its sessions; returns (sessions, handler)."""
    sessions: list[Session] = []

    async def handler(session: Session) -> None:
        sessions.append(session)
        async for message in session:
            session.send(message)

    return sessions, handler


@pytest.mark.parametrize("sender", ["xhr_send", "jsonp_send"])
async def test_senders_do_not_create_sessions(
    conformance: TestClient[Any, Any], sender: str
) -> None:
    """xhr_send and jsonp_send to an unknown session answer 404 and create nothing."""
    sid = new_id()
    for _ in range(2):
        async with conformance.post(session_url("/echo", sid, sender), data=b'["x"]') as resp:
            assert resp.status == 404
    assert len(endpoint_of(conformance, "/echo")) == 0


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
async def test_receivers_create_sessions(conformance: TestClient[Any, Any], transport: str) -> None:
    """Each receiving transport creates a session on an unknown id and sends o."""
    rx = Receiver(conformance, "/echo", new_id(), transport)
    assert await rx.start() == "o"
    assert len(endpoint_of(conformance, "/echo")) == 1
    await rx.send("ping")
    assert await rx.messages(1) == ["ping"]
    await rx.close()


@pytest.mark.parametrize("second", HTTP_RECEIVERS)
@pytest.mark.parametrize("first", STREAMING)
async def test_one_receiver_at_a_time_streaming(
    conformance: TestClient[Any, Any], first: str, second: str
) -> None:
    """A second receiver gets c[2010] and ends; the first stream keeps working."""
    sid = new_id()
    rx1 = Receiver(conformance, "/echo", sid, first)
    assert await rx1.start() == "o"
    rx2 = Receiver(conformance, "/echo", sid, second)
    assert await rx2.start() == ANOTHER
    if rx2.stream is not None:
        assert await rx2.stream.at_eof()
    await rx2.close()
    await xhr_send(conformance, "/echo", sid, "x")
    assert await rx1.frame() == 'a["x"]'
    await rx1.close()


@pytest.mark.parametrize("second", HTTP_RECEIVERS)
async def test_one_receiver_at_a_time_polling(
    conformance: TestClient[Any, Any], second: str
) -> None:
    """While an xhr poll waits, another receiver gets c[2010]; the poll then gets the echo."""
    sid = await open_xhr_session(conformance, "/echo")
    poll = asyncio.ensure_future(xhr(conformance, "/echo", sid))
    await receiver_attached(endpoint_of(conformance, "/echo"), sid)
    rx2 = Receiver(conformance, "/echo", sid, second)
    assert await rx2.start() == ANOTHER
    await rx2.close()
    assert not poll.done()
    await xhr_send(conformance, "/echo", sid, "x")
    assert await bounded(poll) == 'a["x"]\n'


@pytest.mark.parametrize("transport", HTTP_RECEIVERS)
async def test_app_close_repeats_to_every_receiver(
    conformance: TestClient[Any, Any], transport: str
) -> None:
    """After the app closes a session, every later receiver gets the same close frame."""
    sid = new_id()
    rx = Receiver(conformance, "/close", sid, transport)
    assert await rx.start() == "o"
    assert await rx.frame() == GO_AWAY
    if rx.stream is not None:
        assert await rx.stream.at_eof()
    await rx.close()
    for kind in (transport, "xhr", "jsonp", "xhr_streaming"):
        again = Receiver(conformance, "/close", sid, kind)
        assert await again.start() == GO_AWAY
        await again.close()


async def test_closed_session_expires(serve: Any) -> None:
    """A closed session keeps answering its close frame until disconnect_delay, then is gone."""
    sessions: list[Session] = []

    async def handler(session: Session) -> None:
        sessions.append(session)
        await session.close(3001, "Closed here")

    client = await serve(handler, disconnect_delay=0.1)
    sid = new_id()
    assert await xhr(client, "/e", sid) == "o\n"
    assert await bounded(xhr(client, "/e", sid)) == 'c[3001,"Closed here"]\n'
    assert await bounded(xhr(client, "/e", sid)) == 'c[3001,"Closed here"]\n'
    await eventually(lambda: sessions[0].state is SessionState.CLOSED)
    assert await bounded(xhr(client, "/e", sid)) == "o\n"
    assert len(sessions) == 2


@pytest.mark.parametrize("transport", STREAMING)
async def test_streaming_abort_closes_session(serve: Any, transport: str) -> None:
    """A stream cut by the client closes the session: the app sees 1002, the next poll too."""
    sessions, handler = recorder()
    client = await serve(handler)
    sid = new_id()
    rx = Receiver(client, "/e", sid, transport)
    assert await rx.start() == "o"
    await rx.close()
    assert await poll_after_abort(client, "/e", sid) in (INTERRUPTED + "\n", "o\n")
    await eventually(lambda: sessions[0].closed)
    assert (sessions[0].close_code, sessions[0].close_reason) == (1002, "Connection interrupted")


@pytest.mark.parametrize("transport", ["xhr", "jsonp"])
async def test_polling_abort_closes_session(serve: Any, transport: str) -> None:
    """A waiting poll cut by the client closes the session with 1002."""
    sessions, handler = recorder()
    client = await serve(handler)
    sid = await open_xhr_session(client, "/e")
    rx = Receiver(client, "/e", sid, transport)
    poll = asyncio.ensure_future(rx.frame())
    await receiver_attached(endpoint_of(client, "/e"), sid)
    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll
    assert await poll_after_abort(client, "/e", sid) in (INTERRUPTED + "\n", "o\n")
    await eventually(lambda: sessions[0].closed)
    assert sessions[0].close_code == 1002


async def test_session_expires_after_disconnect_delay(serve: Any) -> None:
    """A session with no receiver expires after disconnect_delay; the app sees it closed."""
    sessions, handler = recorder()
    client = await serve(handler, disconnect_delay=0.1)
    sid = new_id()
    assert await xhr(client, "/e", sid) == "o\n"
    assert sessions[0].state is SessionState.OPEN
    await eventually(lambda: sessions[0].state is SessionState.CLOSED)
    assert sessions[0].closed
    async with client.post(session_url("/e", sid, "xhr_send"), data=b'["x"]') as resp:
        assert resp.status == 404
    assert await bounded(xhr(client, "/e", sid)) == "o\n"
    assert len(sessions) == 2


async def test_attached_receiver_prevents_expiry(serve: Any) -> None:
    """A session does not expire while a stream is attached, however long it is quiet."""
    sessions, handler = recorder()
    client = await serve(handler, disconnect_delay=0.05, heartbeat_delay=0.05)
    sid = new_id()
    rx = Receiver(client, "/e", sid, "xhr_streaming")
    assert await rx.start() == "o"
    # Five heartbeats: five times the disconnect delay has passed.
    for _ in range(5):
        assert await rx.frame() == "h"
    assert not sessions[0].closed
    await xhr_send(client, "/e", sid, "still here")
    assert await rx.frame() == 'a["still here"]'
    await rx.close()


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
async def test_heartbeat(serve: Any, transport: str) -> None:
    """With a small heartbeat_delay an idle receiver gets h frames."""
    client = await serve(heartbeat_delay=0.05)
    rx = Receiver(client, "/e", new_id(), transport)
    assert await rx.start() == "o"
    assert await rx.frame() == "h"
    assert await rx.frame() == "h"
    await rx.close()


async def test_no_heartbeat_before_delay(serve: Any) -> None:
    """No h frame comes before heartbeat_delay has passed."""
    client = await serve(heartbeat_delay=5.0)
    rx = Receiver(client, "/e", new_id(), "xhr_streaming")
    assert await rx.start() == "o"
    assert rx.stream is not None
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(rx.stream.until(b"\n"), 0.2)
    await rx.close()


@pytest.mark.parametrize("transport", HTTP_RECEIVERS)
async def test_queued_messages_come_in_one_frame(serve: Any, transport: str) -> None:
    """Messages sent while no receiver is attached go out together in one a frame."""
    sessions, handler = recorder()
    client = await serve(handler)
    sid = await open_xhr_session(client, "/e")
    for message in ("a", "b", "c"):
        sessions[0].send(message)
    rx = Receiver(client, "/e", sid, transport)
    assert await rx.start() == 'a["a","b","c"]'
    await rx.close()


async def test_echoes_queued_while_away_arrive_in_order(serve: Any) -> None:
    """Messages echoed while the client had no poll open all arrive, in order."""
    client = await serve()
    sid = await open_xhr_session(client, "/e")
    for message in ("1", "2", "3", "4"):
        await xhr_send(client, "/e", sid, message)
    assert await Receiver(client, "/e", sid, "xhr").messages(4) == ["1", "2", "3", "4"]


async def test_handler_return_closes_session(serve: Any) -> None:
    """When the handler returns, queued messages go out, then c[3000,"Go away!"]."""

    async def handler(session: Session) -> None:
        session.send("bye")

    client = await serve(handler)
    sid = new_id()
    assert await xhr(client, "/e", sid) == "o\n"
    assert await bounded(xhr(client, "/e", sid)) == 'a["bye"]\n'
    assert await bounded(xhr(client, "/e", sid)) == GO_AWAY + "\n"
    assert await bounded(xhr(client, "/e", sid)) == GO_AWAY + "\n"


async def test_close_with_code_while_receiver_attached(serve: Any) -> None:
    """session.close(code, reason) reaches an attached stream, which then ends."""

    async def handler(session: Session) -> None:
        message = await session.receive()
        await session.close(3456, "because " + message)

    client = await serve(handler)
    sid = new_id()
    rx = Receiver(client, "/e", sid, "xhr_streaming")
    assert await rx.start() == "o"
    await xhr_send(client, "/e", sid, "x")
    assert await rx.frame() == 'c[3456,"because x"]'
    assert rx.stream is not None
    assert await rx.stream.at_eof()


# --- the conformance endpoints ---------------------------------------------


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
async def test_conformance_close(conformance: TestClient[Any, Any], transport: str) -> None:
    """/close closes every new session at once with 3000 Go away!."""
    rx = Receiver(conformance, "/close", new_id(), transport)
    assert await rx.start() == "o"
    assert await rx.frame() == GO_AWAY
    await rx.close()


@pytest.mark.parametrize("transport", ["websocket", "xhr_streaming", "xhr"])
async def test_conformance_ticker(conformance: TestClient[Any, Any], transport: str) -> None:
    """/ticker sends tick! as soon as the session opens."""
    rx = Receiver(conformance, "/ticker", new_id(), transport)
    assert await rx.start() == "o"
    assert await rx.frame() == 'a["tick!"]'
    await rx.close()


@pytest.mark.parametrize(
    ("message", "length"),
    [
        ("1", 2),
        ("2", 4),
        ("10", 1024),
        ("18", 2**18),
        ("0", 2),
        ("19", 2),
        ("-3", 2),
        ("abc", 2),
        ("", 2),
    ],
)
async def test_conformance_amplify(
    conformance: TestClient[Any, Any], message: str, length: int
) -> None:
    """/amplify answers n with 2**n x characters for n in 1..18, else with 2."""
    rx = Receiver(conformance, "/amplify", new_id(), "websocket")
    assert await rx.start() == "o"
    await rx.send(message)
    assert await rx.messages(1) == ["x" * length]
    await rx.close()


async def test_conformance_broadcast(conformance: TestClient[Any, Any]) -> None:
    """/broadcast relays every message to every open session, whatever its transport."""
    receivers = [
        Receiver(conformance, "/broadcast", new_id(), transport)
        for transport in ("websocket", "websocket", "xhr_streaming", "eventsource")
    ]
    for rx in receivers:
        assert await rx.start() == "o"
    await receivers[0].send("hello all")
    for rx in receivers:
        assert await rx.messages(1) == ["hello all"]
    await receivers[2].send("again")
    for rx in receivers:
        assert await rx.messages(1) == ["again"]
    for rx in receivers:
        await rx.close()


@pytest.mark.parametrize("attached", [False, True], ids=["no-receiver", "streaming"])
async def test_handler_failure_closes_with_1011(
    serve: Any, attached: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that raises closes its session with c[1011,"Internal error"], kept until expiry."""

    async def handler(session: Session) -> None:
        async for _ in session:
            raise RuntimeError("boom")

    client = await serve(handler)
    sid = new_id()
    if attached:
        rx = Receiver(client, "/e", sid, "xhr_streaming")
        assert await rx.start() == "o"
        await xhr_send(client, "/e", sid, "x")
        assert await rx.frame() == 'c[1011,"Internal error"]'
        await rx.close()
    else:
        assert await xhr(client, "/e", sid) == "o\n"
        await xhr_send(client, "/e", sid, "x")
    for _ in range(2):
        assert await bounded(xhr(client, "/e", sid)) == 'c[1011,"Internal error"]\n'
    assert "boom" in caplog.text
