"""Application life: shutdown, several endpoints, setup, decorators, request, broadcast."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web

import aiohttp_sockjs
from aiohttp_sockjs import ENDPOINTS, Session, testing
from demo.conformance import echo
from tests.conftest import FAST, endpoint_of
from tests.wire import (
    XHR_PRELUDE,
    Receiver,
    Stream,
    bounded,
    eventually,
    new_id,
    open_xhr_session,
    receiver_attached,
    session_url,
    xhr,
    xhr_send,
)

GOING_AWAY = 'c[1001,"Going away"]'


def sockjs_tasks() -> list[asyncio.Task[Any]]:
    """Unfinished tasks running code of this package or of a test handler."""
    found = []
    for task in asyncio.all_tasks():
        if task.done() or task is asyncio.current_task():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        if "aiohttp_sockjs" in filename or "test_lifecycle" in filename:
            found.append(task)
    return found


async def test_shutdown_closes_every_session(aiohttp_server: Any) -> None:
    """App shutdown sends 1001 to every client, lets handlers see it and leaves no task."""
    seen: list[tuple[str, int | None]] = []

    async def handler(session: Session) -> None:
        async for message in session:
            session.send(message)
        seen.append((session.transport, session.close_code))

    app = web.Application()
    endpoint = aiohttp_sockjs.setup(app, "/e", handler, **FAST)
    server = await aiohttp_server(app)
    base = f"http://{server.host}:{server.port}/e"
    async with aiohttp.ClientSession() as http:
        ws = await bounded(http.ws_connect(f"{base}/000/{new_id()}/websocket"))
        assert (await bounded(ws.receive())).data == "o"
        raw = await bounded(http.ws_connect(f"{base}/websocket"))
        stream_resp = await bounded(http.post(f"{base}/000/{new_id()}/xhr_streaming"))
        stream = Stream(stream_resp)
        assert await stream.exactly(len(XHR_PRELUDE) + 2) == XHR_PRELUDE + b"o\n"
        es_resp = await bounded(http.get(f"{base}/000/{new_id()}/eventsource"))
        es = Stream(es_resp)
        assert await es.exactly(13) == b"\r\ndata: o\r\n\r\n"
        poll_sid = new_id()
        async with http.post(f"{base}/000/{poll_sid}/xhr") as resp:
            assert await resp.read() == b"o\n"
        poll = asyncio.ensure_future(http.post(f"{base}/000/{poll_sid}/xhr"))
        await eventually(lambda: len(endpoint) == 5)
        await receiver_attached(endpoint, poll_sid)
        assert sockjs_tasks() != []  # the check below does see the actors

        await bounded(server.close())

        assert (await bounded(ws.receive())).data == GOING_AWAY
        assert (await bounded(ws.receive())).type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
        msg = await bounded(raw.receive())
        assert msg.type is WSMsgType.CLOSE
        assert msg.data == 1001
        assert await stream.until(b"\n") == GOING_AWAY.encode() + b"\n"
        assert await stream.at_eof()
        assert await es.until(b"\r\n\r\n") == b"data: " + GOING_AWAY.encode() + b"\r\n\r\n"
        assert await es.at_eof()
        poll_resp = await bounded(poll)
        assert await poll_resp.read() == GOING_AWAY.encode() + b"\n"
        poll_resp.release()
        stream_resp.release()
        es_resp.release()
        await ws.close()
        await raw.close()
    assert sorted(seen) == sorted(
        [(t, 1001) for t in ("websocket", "raw_websocket", "xhr_streaming", "eventsource", "xhr")]
    )
    assert len(endpoint) == 0
    assert sockjs_tasks() == []


async def test_shutdown_cancels_a_stuck_handler(serve: Any) -> None:
    """A handler that ignores the close is cancelled after the shutdown timeout."""
    cancelled = asyncio.Event()

    async def stubborn(session: Session) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    client = await serve(stubborn)
    endpoint = endpoint_of(client)
    rx = Receiver(client, "/e", new_id(), "websocket")
    assert await rx.start() == "o"
    await bounded(endpoint.shutdown(timeout=0.1))
    assert cancelled.is_set()
    assert await rx.frame() == GOING_AWAY
    assert sockjs_tasks() == []


async def test_several_endpoints(aiohttp_client: Any) -> None:
    """Endpoints side by side keep their own handlers, options and sessions."""

    async def upper(session: Session) -> None:
        async for message in session:
            session.send(message.upper())

    app = web.Application()
    a = aiohttp_sockjs.setup(app, "/a", echo, **FAST)
    b = aiohttp_sockjs.setup(app, "/b", upper, disabled_transports={"websocket"}, **FAST)
    client = await aiohttp_client(app)
    sid = new_id()
    assert await xhr(client, "/a", sid) == "o\n"
    async with client.post(session_url("/b", sid, "xhr_send"), data='["x"]') as resp:
        assert resp.status == 404
    assert await xhr(client, "/b", sid) == "o\n"
    await xhr_send(client, "/a", sid, "hello")
    await xhr_send(client, "/b", sid, "hello")
    assert await bounded(xhr(client, "/a", sid)) == 'a["hello"]\n'
    assert await bounded(xhr(client, "/b", sid)) == 'a["HELLO"]\n'
    assert (len(a), len(b)) == (1, 1)
    async with client.get("/a/info") as resp:
        assert (await resp.json())["websocket"] is True
    async with client.get("/b/info") as resp:
        assert (await resp.json())["websocket"] is False


async def test_setup_returns_the_registered_endpoint() -> None:
    """setup returns the Endpoint stored at app[ENDPOINTS][prefix]; prefixes are unique."""
    app = web.Application()
    endpoint = aiohttp_sockjs.setup(app, "/chat/", echo)
    assert isinstance(endpoint, aiohttp_sockjs.Endpoint)
    assert app[ENDPOINTS]["/chat"] is endpoint
    assert aiohttp_sockjs.get_endpoint(app, "chat") is endpoint
    assert endpoint.prefix == "/chat"
    with pytest.raises(ValueError):
        aiohttp_sockjs.setup(app, "/chat", echo)


@pytest.mark.parametrize("transport", ["websocket", "xhr_streaming"])
async def test_decorator_style(aiohttp_client: Any, transport: str) -> None:
    """on_open, on_message (sync or async) and on_close drive a session without a handler."""
    app = web.Application()
    endpoint = aiohttp_sockjs.setup(app, "/d", **FAST)
    events: list[tuple[str, Any]] = []

    @endpoint.on_open
    async def opened(session: Session) -> None:
        events.append(("open", session.transport))
        session.send("welcome")

    @endpoint.on_message
    def message(session: Session, text: str) -> Any:
        events.append(("message", text))
        if text == "bye":
            return session.close(3003, "bye bye")
        session.send(text.upper())
        return None

    @endpoint.on_close
    def closed(session: Session) -> None:
        events.append(("close", (session.close_code, session.close_reason)))

    client = await aiohttp_client(app)
    rx = Receiver(client, "/d", new_id(), transport)
    assert await rx.start() == "o"
    assert await rx.messages(1) == ["welcome"]
    await rx.send("hi")
    assert await rx.messages(1) == ["HI"]
    await rx.send("bye")
    assert await rx.frame() == 'c[3003,"bye bye"]'
    await eventually(lambda: len(events) == 4)
    assert events == [
        ("open", transport),
        ("message", "hi"),
        ("message", "bye"),
        ("close", (3003, "bye bye")),
    ]


async def test_on_close_when_client_leaves(aiohttp_client: Any) -> None:
    """on_close runs when the client goes away, not only when the app closes."""
    app = web.Application()
    endpoint = aiohttp_sockjs.setup(app, "/d", **FAST)
    closed: list[int | None] = []
    endpoint.on_close(lambda session: closed.append(session.close_code))
    client = await aiohttp_client(app)
    rx = Receiver(client, "/d", new_id(), "websocket")
    assert await rx.start() == "o"
    await rx.close()
    await eventually(lambda: closed != [])
    assert closed == [1000]


async def test_session_request(serve: Any) -> None:
    """session.request is the opening request, with its headers, cookies and match info."""
    sessions: list[Session] = []

    async def handler(session: Session) -> None:
        sessions.append(session)
        async for message in session:
            session.send(message)

    client = await serve(handler)
    sid = new_id()
    headers = {"X-Test": "yes", "Cookie": "flavour=oat"}
    async with client.post(f"/e/srv7/{sid}/xhr", headers=headers) as resp:
        assert await resp.read() == b"o\n"
    await eventually(lambda: len(sessions) == 1)
    session = sessions[0]
    assert session.transport == "xhr"
    assert session.request.headers["X-Test"] == "yes"
    assert session.request.cookies["flavour"] == "oat"
    assert session.request.match_info["server_id"] == "srv7"
    assert session.request.match_info["session_id"] == sid
    assert session.request.method == "POST"
    # A later request of the same session does not replace it.
    await xhr_send(client, "/e", sid, "x")
    assert session.request.method == "POST" and session.request.path.endswith("/xhr")

    ws = await client.ws_connect("/e/websocket", headers={"X-Test": "raw"})
    await eventually(lambda: len(sessions) == 2)
    assert sessions[1].transport == "raw_websocket"
    assert sessions[1].request.headers["X-Test"] == "raw"
    await ws.close()


async def test_broadcast_reaches_every_session(serve: Any) -> None:
    """endpoint.broadcast delivers to every session, attached or not, on every transport."""
    client = await serve()
    endpoint = endpoint_of(client)
    receivers = [
        Receiver(client, "/e", new_id(), t) for t in ("websocket", "xhr_streaming", "eventsource")
    ]
    for rx in receivers:
        assert await rx.start() == "o"
    raw = await bounded(client.ws_connect("/e/websocket"))
    idle = await open_xhr_session(client, "/e")
    await eventually(lambda: len(endpoint) == 5)
    endpoint.broadcast("to all")
    for rx in receivers:
        assert await rx.frame() == 'a["to all"]'
    assert (await bounded(raw.receive())).data == "to all"
    assert await bounded(xhr(client, "/e", idle)) == 'a["to all"]\n'
    await raw.close()
    for rx in receivers:
        await rx.close()


async def test_endpoint_len_and_sessions(serve: Any) -> None:
    """len(endpoint) and endpoint.sessions list the open sessions only."""
    sessions: list[Session] = []

    async def handler(session: Session) -> None:
        sessions.append(session)
        async for message in session:
            session.send(message)

    client = await serve(handler)
    endpoint = endpoint_of(client)
    assert len(endpoint) == 0
    assert endpoint.sessions == []
    ws1 = await bounded(client.ws_connect(session_url("/e", new_id(), "websocket")))
    ws2 = await bounded(client.ws_connect(session_url("/e", new_id(), "websocket")))
    await open_xhr_session(client, "/e")
    await eventually(lambda: len(sessions) == 3)
    assert len(endpoint) == 3
    assert set(endpoint.sessions) == set(sessions)
    assert set(endpoint) == set(sessions)
    await ws1.close()
    await eventually(lambda: len(endpoint) == 2)
    assert sessions[0] not in endpoint.sessions
    await ws2.close()


async def test_ended_sessions_leave_no_tasks(serve: Any) -> None:
    """Sessions that end (socket closed, expired, stream cut) leave no task behind."""
    client = await serve(disconnect_delay=0.1)
    rx = Receiver(client, "/e", new_id(), "websocket")
    assert await rx.start() == "o"
    await rx.close()
    await open_xhr_session(client, "/e")
    stream = Receiver(client, "/e", new_id(), "xhr_streaming")
    assert await stream.start() == "o"
    await stream.close()
    raw = await bounded(client.ws_connect("/e/websocket"))
    await raw.close()

    endpoint = endpoint_of(client)

    def all_gone() -> bool:
        # Parked sessions hold no task, so no task left is not enough: the
        # sessions must have left the endpoint too.
        sweeper = testing.sweeper(endpoint)
        idle = sweeper is not None and sockjs_tasks() == [sweeper]
        return idle and not testing.held_sessions(endpoint)

    await eventually(all_gone)
    assert len(endpoint) == 0


async def test_handler_outliving_its_session_is_kept_and_awaited(serve: Any) -> None:
    """A handler still running after its session ended is neither lost to the
    garbage collector nor left out of shutdown, which waits for it."""
    release = asyncio.Event()
    finished: list[str] = []

    async def lingering(session: Session) -> None:
        async for _ in session:
            pass
        await release.wait()  # keeps running after the session has ended
        finished.append("done")

    client = await serve(lingering)
    endpoint = endpoint_of(client)
    rx = Receiver(client, "/e", new_id(), "websocket")
    assert await rx.start() == "o"
    await rx.close()
    await eventually(lambda: len(endpoint) == 0)
    assert testing.running_handlers(endpoint) == 1
    gc.collect()
    shutdown = asyncio.ensure_future(endpoint.shutdown(timeout=5))
    await asyncio.sleep(0.05)
    assert not shutdown.done()  # waiting for the handler
    release.set()
    await bounded(shutdown)
    assert finished == ["done"]
    assert testing.running_handlers(endpoint) == 0
