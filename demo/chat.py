"""A chat room on aiohttp-sockjs: the demo to run first, and to copy from.

Run from the repository root::

    python -m demo.chat --port 8080

then open http://127.0.0.1:8080 in two browser tabs.

Browsers and server talk in JSON messages over one SockJS session per tab.
From the browser::

    {"type": "join", "nick": "alice"}     pick a nickname (again to change it)
    {"type": "say", "text": "hello"}      say something to everyone
    {"type": "leave"}                     leave; the server closes the session

From the server::

    {"type": "online", "people": [...]}   who is here, sent when a tab connects
    {"type": "welcome", "nick": "alice"}  your join worked
    {"type": "join", "nick": ..., "people": [...]}   someone joined
    {"type": "leave", "nick": ..., "people": [...]}  someone left
    {"type": "say", "nick": ..., "text": ...}        someone said something
    {"type": "error", "text": ...}        your last message was refused

``people`` is a list of ``{"nick": ..., "transport": ...}``, the transport
being the one the server sees for that person's session.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Final

from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs import Endpoint, Session

HERE: Final = Path(__file__).resolve().parent
STATIC: Final = HERE / "static"
#: The client library, when ``npm install`` has been run at the repository root.
LOCAL_CLIENT: Final = HERE.parent / "node_modules" / "sockjs-client" / "dist" / "sockjs.min.js"
CDN_CLIENT: Final = "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js"
#: The one URL both the page and SockJS's hidden iframe load the client from:
#: the iframe transports need the same client version on both sides.
CLIENT_URL: Final = "/sockjs.min.js"

PREFIX: Final = "/chat"
MAX_NICK: Final = 24
MAX_TEXT: Final = 500


def _error(session: Session, text: str) -> None:
    session.send(json.dumps({"type": "error", "text": text}))


def _people(endpoint: Endpoint) -> list[dict[str, str]]:
    # endpoint.sessions is every open session; the ones with a nickname have joined.
    return [
        {"nick": s.data["nick"], "transport": s.transport}
        for s in endpoint.sessions
        if "nick" in s.data
    ]


def _clean_nick(value: Any) -> str | None:
    """The nickname to use, or ``None`` when ``value`` is not a usable one."""
    if not isinstance(value, str):
        return None
    nick = " ".join(value.split())  # no newlines, tabs or runs of spaces
    if not nick or len(nick) > MAX_NICK or not nick.isprintable():
        return None
    return nick


async def chat(session: Session) -> None:
    """Run one visitor's session: from connecting until the tab goes away."""
    # The session's endpoint is the room: broadcast and the list of sessions.
    room = session.endpoint

    def announce(kind: str, nick: str) -> None:
        # broadcast() encodes the frame once and queues it on every open
        # session, this one included. It never waits for slow clients.
        room.broadcast(json.dumps({"type": kind, "nick": nick, "people": _people(room)}))

    session.send(json.dumps({"type": "online", "people": _people(room)}))
    try:
        # One message at a time, in order; the loop ends when the session
        # closes for any reason (tab closed, network gone, server stopping).
        async for raw in session:
            try:
                message = json.loads(raw)
            except (ValueError, RecursionError):  # "[[[[..." nests too deep
                _error(session, "That was not valid JSON.")
                continue
            kind = message.get("type") if isinstance(message, dict) else None

            if kind == "join":
                nick = _clean_nick(message.get("nick"))
                if nick is None:
                    _error(session, f"Pick a nickname of 1 to {MAX_NICK} printable characters.")
                    continue
                old = session.data.get("nick")
                if old is not None:  # a change of nickname: leave under the old one
                    del session.data["nick"]
                    announce("leave", old)
                session.data["nick"] = nick  # per-session state lives in session.data
                session.send(json.dumps({"type": "welcome", "nick": nick}))
                announce("join", nick)

            elif kind == "say":
                nick = session.data.get("nick")
                text = message.get("text")
                if nick is None:
                    _error(session, "Pick a nickname before you say something.")
                elif not isinstance(text, str) or not text.strip():
                    _error(session, "A message needs some text.")
                elif len(text) > MAX_TEXT:
                    _error(session, f"Messages are limited to {MAX_TEXT} characters.")
                else:
                    # Sent as data: the page shows it with textContent, never as HTML.
                    room.broadcast(json.dumps({"type": "say", "nick": nick, "text": text}))

            elif kind == "leave":
                # Close now rather than just returning (which also closes),
                # so that the leave notice below goes to the others only.
                await session.close(1000, "Goodbye")
                break

            else:
                _error(session, 'Messages need a "type" of "join", "say" or "leave".')
    finally:
        # Runs however the session ended. Forget the nickname first so the
        # list sent with the notice no longer has this person in it.
        nick = session.data.pop("nick", None)
        if nick is not None:
            announce("leave", nick)


async def index(request: web.Request) -> web.FileResponse:
    """The chat page."""
    return web.FileResponse(STATIC / "index.html")


async def sockjs_client(request: web.Request) -> web.StreamResponse:
    """The SockJS client: from node_modules when installed, else from the CDN."""
    if LOCAL_CLIENT.is_file():
        return web.FileResponse(LOCAL_CLIENT)
    raise web.HTTPFound(CDN_CLIENT)


def make_app(**options: Any) -> web.Application:
    """Build the chat app; ``options`` go to :func:`aiohttp_sockjs.setup`."""
    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get(CLIENT_URL, sockjs_client)
    app.router.add_static("/static", STATIC)
    options.setdefault("sockjs_url", CLIENT_URL)
    # Messages longer than max_message_size end the session (a protocol
    # error). Keep it well above MAX_TEXT so that a long chat message gets
    # the polite error from the handler instead.
    options.setdefault("max_message_size", 64 * 1024)
    aiohttp_sockjs.setup(app, PREFIX, chat, **options)
    return app


def main() -> None:
    """Run the chat server from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m demo.chat", description="The aiohttp-sockjs chat demo."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not LOCAL_CLIENT.is_file():
        print("node_modules/sockjs-client not found: the page loads SockJS from the CDN.")
    host = f"[{args.host}]" if ":" in args.host else args.host

    def ready(_: str) -> None:  # called by run_app once the port is open
        print(f"Chat demo: open http://{host}:{args.port} (Ctrl+C to stop)", flush=True)

    try:
        web.run_app(make_app(), host=args.host, port=args.port, print=ready, access_log=None)
    except OSError as exc:  # most likely the port is taken
        raise SystemExit(f"Cannot start the chat demo: {exc.strerror or exc}") from None


if __name__ == "__main__":
    main()
