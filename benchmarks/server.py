"""The servers under test, run as a subprocess: ours and the aiohttp baseline.

``python -m benchmarks.server ours|baseline|baseline-coalesce [--uvloop]
[--heartbeat S]`` binds 127.0.0.1 on a free port and prints the port on
stdout. ``BENCH_WS_PING=S`` in the environment sets our server's
``websocket_ping_interval`` (``0``: no pings, to measure what they cost).
Routes used by the load generator:

- ``/echo/{server}/{session}/websocket``: SockJS websocket echo
  (``o``, then ``a["m"]`` per ``["m"]``).
- ``/echo/{server}/{session}/xhr_send|xhr_streaming|xhr``: xhr echo.
- ``/echob/{server}/{session}/websocket``: the same echo, written with our
  batch API (``receive_many`` / ``send_many``); the baseline's is the same
  handler as ``/echo``.
- ``/bcast/{server}/{session}/websocket``: sessions that only receive.
- ``POST /ctl/broadcast?n=N&size=B``: broadcast N messages to every
  ``/bcast`` session, each about B bytes of JSON (default: ``b0``, ``b1``...);
  with ``&many=1`` ours sends them with one ``broadcast_many`` call.

``--metrics`` also serves Prometheus metrics at ``/metrics`` (needs
prometheus-client). ``--compression on|off`` sets our endpoints' ``websocket_compression``
(unset: the default); ``--no-frame-reuse`` makes our shared compressor
forget every frame, to measure what compressing a broadcast frame once
saves. The baseline uses aiohttp's default, which accepts permessage-deflate.

The baseline is plain aiohttp with no SockJS logic: it speaks just enough
of the wire format to be driven the same way. ``baseline`` answers every
websocket frame with one frame; ``baseline-coalesce`` answers everything
that arrived while its writer was busy with one ``a[...]`` frame, and sends
a burst of broadcast messages to each socket as one frame.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

XHR_PRELUDE = b"h" * 2048 + b"\n"
JS_HEADERS = {"Content-Type": "application/javascript; charset=UTF-8"}


def message(i: int, size: int) -> str:
    """The i-th broadcast message: ``b<i>``, padded with JSON to ``size`` bytes."""
    head = f"b{i}"
    if size <= len(head):
        return head
    fields = []
    k = 0
    total = len(head) + 2
    while total < size:
        field = f'"k{k}":{{"id":{i * 7 + k},"name":"item {k}","ok":true}}'
        fields.append(field)
        total += len(field) + 1
        k += 1
    return head + " {" + ",".join(fields) + "}"


def ours_app(
    heartbeat: float, compression: bool | None = None, reuse: bool = True, metrics: bool = False
) -> web.Application:
    import aiohttp_sockjs
    from aiohttp_sockjs._aiohttp import writes

    if not reuse:
        # Benchmark only: the shared compressor remembers no frame.
        writes._Deflater.KEEP = 0
    app = web.Application()
    # The load generators open every session from one address.
    options: dict[str, Any] = {"max_sessions_per_client": None}
    if os.environ.get("BENCH_WS_PING"):
        options["websocket_ping_interval"] = float(os.environ["BENCH_WS_PING"])
    if compression is not None:
        options["websocket_compression"] = compression

    async def echo(session: aiohttp_sockjs.Session) -> None:
        async for message in session:
            session.send(message)

    async def echo_batches(session: aiohttp_sockjs.Session) -> None:
        with contextlib.suppress(aiohttp_sockjs.SessionClosed):
            while True:
                session.send_many(await session.receive_many())

    async def listen(session: aiohttp_sockjs.Session) -> None:
        async for _ in session:
            pass

    # A large response_limit keeps one xhr_streaming response per session,
    # as the baseline does: this measures the steady state.
    aiohttp_sockjs.setup(
        app, "/echo", echo, heartbeat_delay=heartbeat, response_limit=1 << 40, **options
    )
    aiohttp_sockjs.setup(
        app, "/echob", echo_batches, heartbeat_delay=heartbeat, response_limit=1 << 40, **options
    )
    # Room for the 10,000-session broadcast (the default max_sessions is 10,000).
    bcast = aiohttp_sockjs.setup(
        app, "/bcast", listen, heartbeat_delay=heartbeat, max_sessions=20_000, **options
    )

    async def broadcast(request: web.Request) -> web.Response:
        n = int(request.query.get("n", "1"))
        size = int(request.query.get("size", "0"))
        if request.query.get("many") == "1":
            bcast.broadcast_many([message(i, size) for i in range(n)])
            return web.Response(text="ok")
        for i in range(n):
            bcast.broadcast(message(i, size))
        return web.Response(text="ok")

    app.router.add_post("/ctl/broadcast", broadcast)
    if metrics:
        from aiohttp_sockjs.metrics import setup_metrics

        setup_metrics(app)
    return app


class _XhrSession:
    __slots__ = ("opened", "pending", "stream", "waiter")

    def __init__(self) -> None:
        self.opened = False
        self.pending: list[str] = []
        self.stream: web.StreamResponse | None = None
        self.waiter: asyncio.Future[None] | None = None


def baseline_app(coalesce: bool, heartbeat: float = 25.0) -> web.Application:
    app = web.Application()
    listeners: set[web.WebSocketResponse] = set()
    xhr_sessions: dict[str, _XhrSession] = {}
    # The same heartbeats as ours: an "h" frame to each echo websocket every
    # ``heartbeat`` seconds, counted from its own start, written by one
    # sweeper as a plain aiohttp app would (an awaited send_str each).
    beats: dict[web.WebSocketResponse, float] = {}

    async def heartbeats() -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, heartbeat / 5))
            now = loop.time()
            for ws, due in list(beats.items()):
                if due <= now and not ws.closed:
                    beats[ws] = now + heartbeat
                    with contextlib.suppress(ConnectionError):
                        await ws.send_str("h")

    async def sweeper(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.ensure_future(heartbeats())
        yield
        task.cancel()

    app.cleanup_ctx.append(sweeper)

    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        # One coroutine per socket (no helper): idle RSS per session is compared.
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("o")
        beats[ws] = asyncio.get_running_loop().time() + heartbeat
        if not coalesce:
            try:
                async for msg in ws:
                    if msg.type is WSMsgType.TEXT:
                        # ["m"] -> a["m"]: the frame is echoed without parsing.
                        await ws.send_str("a" + msg.data)
            finally:
                beats.pop(ws, None)
            return ws
        pending: list[str] = []
        wake = asyncio.Event()
        done = False

        async def writer() -> None:
            while True:
                await wake.wait()
                wake.clear()
                if pending:
                    items = ",".join(p[1:-1] for p in pending)
                    pending.clear()
                    await ws.send_str("a[" + items + "]")
                if done:
                    return

        task = asyncio.ensure_future(writer())
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    pending.append(msg.data)
                    wake.set()
        finally:
            beats.pop(ws, None)
            done = True
            wake.set()
            await asyncio.gather(task, return_exceptions=True)
        return ws

    async def ws_listen(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("o")
        listeners.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            listeners.discard(ws)
        return ws

    async def broadcast(request: web.Request) -> web.Response:
        n = int(request.query.get("n", "1"))
        size = int(request.query.get("size", "0"))
        encoded = [json.dumps(message(i, size)) for i in range(n)]
        frames = [f"a[{e}]" for e in encoded]
        joined = "a[" + ",".join(encoded) + "]"
        for ws in list(listeners):
            if ws.closed:
                continue
            if coalesce:
                await ws.send_str(joined)
            else:
                for frame in frames:
                    await ws.send_str(frame)
        return web.Response(text="ok")

    def xhr_session(request: web.Request) -> _XhrSession:
        sid = request.match_info["session"]
        s = xhr_sessions.get(sid)
        if s is None:
            s = xhr_sessions[sid] = _XhrSession()
        return s

    async def xhr_send(request: web.Request) -> web.Response:
        s = xhr_sessions.get(request.match_info["session"])
        if s is None:
            return web.Response(status=404)
        body = await request.text()
        frame = "a" + body
        if s.stream is not None:
            await s.stream.write((frame + "\n").encode())
        else:
            s.pending.append(body[1:-1])
            if s.waiter is not None and not s.waiter.done():
                s.waiter.set_result(None)
        return web.Response(status=204)

    async def xhr_streaming(request: web.Request) -> web.StreamResponse:
        s = xhr_session(request)
        resp = web.StreamResponse(headers=JS_HEADERS)
        await resp.prepare(request)
        await resp.write(XHR_PRELUDE + b"o\n")
        s.opened = True
        s.stream = resp
        done = asyncio.get_running_loop().create_future()
        try:
            await done  # until the client goes away
        finally:
            s.stream = None
            xhr_sessions.pop(request.match_info["session"], None)
        return resp

    async def xhr(request: web.Request) -> web.Response:
        s = xhr_session(request)
        if not s.opened:
            s.opened = True
            return web.Response(body=b"o\n", headers=JS_HEADERS)
        if not s.pending:
            s.waiter = asyncio.get_running_loop().create_future()
            await s.waiter
            s.waiter = None
        body = ("a[" + ",".join(s.pending) + "]\n").encode()
        s.pending.clear()
        return web.Response(body=body, headers=JS_HEADERS)

    session = "/{server}/{session}"
    app.router.add_get("/echo" + session + "/websocket", ws_echo)
    app.router.add_get("/echob" + session + "/websocket", ws_echo)
    app.router.add_get("/bcast" + session + "/websocket", ws_listen)
    app.router.add_post("/echo" + session + "/xhr_send", xhr_send)
    app.router.add_post("/echo" + session + "/xhr_streaming", xhr_streaming)
    app.router.add_post("/echo" + session + "/xhr", xhr)
    app.router.add_post("/ctl/broadcast", broadcast)
    return app


def make_app(
    kind: str,
    heartbeat: float = 25.0,
    compression: bool | None = None,
    reuse: bool = True,
    metrics: bool = False,
) -> web.Application:
    """The app for ``kind``: "ours", "baseline" or "baseline-coalesce"."""
    if kind == "ours":
        return ours_app(heartbeat, compression, reuse, metrics)
    return baseline_app(kind == "baseline-coalesce", heartbeat)


def make_runner(
    kind: str,
    heartbeat: float = 25.0,
    compression: bool | None = None,
    reuse: bool = True,
    metrics: bool = False,
) -> web.AppRunner:
    """An app runner for ``kind``; the baseline drops the streaming handlers
    of clients that went away by having aiohttp cancel them."""
    return web.AppRunner(
        make_app(kind, heartbeat, compression, reuse, metrics),
        access_log=None,
        handle_signals=False,
        handler_cancellation=kind != "ours",
        shutdown_timeout=0.5,
    )


async def serve(runner: web.AppRunner) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    await runner.setup()
    site = web.SockSite(runner, sock, backlog=4096)
    await site.start()
    print(sock.getsockname()[1], flush=True)
    try:
        # The harness ends the server by closing our stdin.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["ours", "baseline", "baseline-coalesce"])
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--heartbeat", type=float, default=25.0)
    parser.add_argument("--compression", choices=["on", "off"], default=None)
    parser.add_argument("--no-frame-reuse", action="store_true")
    parser.add_argument("--metrics", action="store_true")
    args = parser.parse_args(argv)
    _raise_fd_limit()
    compression = None if args.compression is None else args.compression == "on"
    runner = make_runner(
        args.kind, args.heartbeat, compression, not args.no_frame_reuse, args.metrics
    )
    if args.uvloop:
        import uvloop

        uvloop.run(serve(runner))
    else:
        asyncio.run(serve(runner))


def _raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":
    main()
