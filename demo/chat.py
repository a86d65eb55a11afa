"""A chat room on aiohttp-sockjs: the demo to run first, and to copy from.

Run from the repository root::

    python -m demo.chat --port 8080

then open http://127.0.0.1:8080 in two browser tabs.

Browsers and server talk in JSON messages over one SockJS session per tab.
From the browser::

    {"type": "join", "nick": "alice"}     pick a nickname (again to change it)
    {"type": "join", "nick": "alice", "token": "..."}
                                          come back after a reconnection
    {"type": "say", "text": "hello"}      say something to everyone
    {"type": "leave"}                     leave; the server closes the session

From the server::

    {"type": "online", "people": [...]}   who is here: sent when a tab connects,
                                          and when the list changes quietly
    {"type": "online", "people": [...], "server": "worker2"}
                                          in the cluster demo, the first one
                                          also names the process of the session
    {"type": "welcome", "id": ..., "nick": "alice", "token": ...}
                                          your join worked: who you are
    {"type": "join", "id": ..., "nick": ..., "people": [...]}    someone joined
    {"type": "rename", "id": ..., "old": ..., "nick": ..., "people": [...]}
    {"type": "leave", "id": ..., "nick": ..., "people": [...]}   someone left
    {"type": "say", "id": ..., "nick": ..., "text": ...}         someone said something
    {"type": "error", "text": ...}        your last message was refused

``id`` is the identity the server gave a person when they joined: pages
compare ids, never nicknames. ``people`` is a list of ``{"id": ...,
"nick": ..., "transport": ...}``, the transport being the one the server
sees for that person's session (``null`` while they are reconnecting).

A nickname is taken while someone online (or reconnecting) has it,
whatever its case or Unicode form: ``Alice``, ``ALICE`` and ``Alice`` in
full-width letters are one nickname. When a person's connection ends, their identity is kept for
``rejoin_grace`` seconds: a page that comes back within it (a transport
switch, a reload, a short network outage) sends the ``token`` from its
welcome and gets its identity back without a "left"/"joined" notice.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web

import aiohttp_sockjs
from aiohttp_sockjs import Endpoint, Session

try:
    from aiohttp_sockjs.metrics import setup_metrics
except ImportError as exc:
    if __name__ != "__main__":
        raise
    # Run as a command: the hint, without a traceback.
    raise SystemExit(f"python -m demo.chat: {exc}") from None

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
#: Per session: 10 messages a second, in bursts of up to 50.
RATE_LIMIT: Final = aiohttp_sockjs.RateLimit(
    messages_per_second=10, bytes_per_second=32 * 1024, burst=5.0
)
#: Per client (an address, see ``client_key``) over all of its sessions: 20
#: messages a second, in bursts of up to 100. A person with a few tabs open
#: stays well under it; a script opening many sessions gets no more.
CLIENT_RATE_LIMIT: Final = aiohttp_sockjs.RateLimit(
    messages_per_second=20, bytes_per_second=64 * 1024, burst=5.0
)
#: Seconds a person who lost their connection stays in the room, waiting to rejoin.
REJOIN_GRACE: Final = 15.0
#: The close code of a session whose person rejoined on another connection.
CLOSE_REJOINED: Final = 4001


def _error(session: Session, text: str) -> None:
    session.send(json.dumps({"type": "error", "text": text}))


def _clean_nick(value: Any) -> str | None:
    """The nickname to use, or ``None`` when ``value`` is not a usable one."""
    if not isinstance(value, str):
        return None
    nick = " ".join(value.split())  # no newlines, tabs or runs of spaces
    if not nick or len(nick) > MAX_NICK or not nick.isprintable():
        return None
    return nick


def nick_key(nick: str) -> str:
    """What two nicknames compare by: "Alice", "ALICE" and full-width "Alice" are one.

    NFKC folds compatibility forms (full-width letters, ligatures) and
    composes accents; casefold ignores case. NFKC again after casefold,
    since case folding can undo a composition.
    """
    folded = unicodedata.normalize("NFKC", nick).casefold()
    return unicodedata.normalize("NFKC", folded)


@dataclass(eq=False)
class Person:
    """Someone in the room: an identity that outlives any one connection."""

    id: str
    nick: str
    #: Secret: given to the person's page only, to rejoin as this person.
    token: str
    #: The session the person is on; ``None`` while they are reconnecting.
    session: Session | None
    #: While reconnecting: the timer that lets them go.
    expiry: asyncio.TimerHandle | None = None

    def public(self) -> dict[str, Any]:
        """What everyone may see of this person."""
        transport = self.session.transport if self.session is not None else None
        return {"id": self.id, "nick": self.nick, "transport": transport}


class Room:
    """The chat room: who is in it, and the handler that runs each session."""

    def __init__(
        self, rejoin_grace: float = REJOIN_GRACE, id_prefix: str = "", server: str | None = None
    ) -> None:
        self.rejoin_grace = rejoin_grace
        #: The process's name in a cluster (demo.cluster), told to each page.
        self.server = server
        self.endpoint: Endpoint | None = None  # set once the endpoint exists
        self._people: dict[str, Person] = {}  # by id, in joining order
        self._ids = itertools.count(1)
        #: Makes ids unique across the processes of a cluster (demo.cluster).
        self.id_prefix = id_prefix
        #: The people of the other processes of a cluster, as ``public()``
        #: dicts; demo.cluster keeps it up to date from presence.
        self.others: list[dict[str, Any]] = []

    # --- who is here ----------------------------------------------------------

    def people(self) -> list[dict[str, Any]]:
        """Everyone in the room, reconnecting ones included."""
        return self.local_people() + self.others

    def local_people(self) -> list[dict[str, Any]]:
        """The people of this process."""
        return [person.public() for person in self._people.values()]

    def _holder(self, nick: str) -> Person | None:
        """The person who has ``nick`` (in any case or Unicode form), if anyone."""
        key = nick_key(nick)
        return next((p for p in self._people.values() if nick_key(p.nick) == key), None)

    def _taken_elsewhere(self, nick: str) -> bool:
        """Whether someone on another process of a cluster has ``nick``."""
        key = nick_key(nick)
        return any(nick_key(p["nick"]) == key for p in self.others)

    def _by_token(self, token: Any) -> Person | None:
        if not isinstance(token, str):
            return None
        # compare_digest takes str of ASCII only (TypeError otherwise): compare
        # bytes. surrogatepass, since JSON can carry a lone surrogate.
        given = token.encode("utf-8", "surrogatepass")
        for person in self._people.values():
            if secrets.compare_digest(person.token.encode(), given):
                return person
        return None

    def _broadcast(self, message: dict[str, Any]) -> None:
        # broadcast() encodes the frame once and queues it on every open
        # session. It never waits for slow clients.
        assert self.endpoint is not None
        self.endpoint.broadcast(json.dumps(message))

    def _announce(self, kind: str, person: Person, **extra: Any) -> None:
        self._broadcast(
            {"type": kind, "id": person.id, "nick": person.nick, **extra, "people": self.people()}
        )

    # --- joining, leaving, coming back --------------------------------------

    def _welcome(self, session: Session, person: Person) -> None:
        session.send(
            json.dumps(
                {"type": "welcome", "id": person.id, "nick": person.nick, "token": person.token}
            )
        )

    def _join(self, session: Session, nick: str) -> None:
        person_id = f"{self.id_prefix}{next(self._ids)}"
        person = Person(person_id, nick, secrets.token_urlsafe(16), session)
        self._people[person.id] = person
        session.data["person"] = person  # per-session state lives in session.data
        self._welcome(session, person)
        self._announce("join", person)

    def _rename(self, person: Person, nick: str) -> None:
        old, person.nick = person.nick, nick
        assert person.session is not None
        self._welcome(person.session, person)
        self._announce("rename", person, old=old)

    async def _rejoin(self, session: Session, person: Person) -> None:
        """Give ``person`` back to their page, now on ``session``: no notice."""
        if person.expiry is not None:
            person.expiry.cancel()
            person.expiry = None
        old = person.session
        person.session = session
        session.data["person"] = person
        self._welcome(session, person)
        self._broadcast({"type": "online", "people": self.people()})
        if old is not None:
            # Still open: the page switched transport (a polling session
            # lingers until it expires) or was duplicated with its storage.
            old.data.pop("person", None)
            await old.close(CLOSE_REJOINED, "Rejoined on another connection")

    def _leave(self, person: Person) -> None:
        if person.expiry is not None:
            person.expiry.cancel()
        if self._people.pop(person.id, None) is not None:
            self._announce("leave", person)

    def _hold(self, person: Person) -> None:
        """The connection is gone: keep the person for a while, quietly."""
        person.session = None
        loop = asyncio.get_running_loop()
        person.expiry = loop.call_later(self.rejoin_grace, self._leave, person)
        self._broadcast({"type": "online", "people": self.people()})

    def close(self) -> None:
        """Stop the timers of people still reconnecting (the server is stopping)."""
        for person in self._people.values():
            if person.expiry is not None:
                person.expiry.cancel()
        self._people.clear()

    # --- one session -----------------------------------------------------------

    async def chat(self, session: Session) -> None:
        """Run one visitor's session: from connecting until the tab goes away."""
        hello: dict[str, Any] = {"type": "online", "people": self.people()}
        if self.server is not None:
            hello["server"] = self.server
        session.send(json.dumps(hello))
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
                me: Person | None = session.data.get("person")

                if kind == "join":
                    back = self._by_token(message.get("token")) if me is None else None
                    if back is not None:
                        await self._rejoin(session, back)
                        continue
                    nick = _clean_nick(message.get("nick"))
                    if nick is None:
                        _error(session, f"Pick a nickname of 1 to {MAX_NICK} printable characters.")
                        continue
                    holder = self._holder(nick)
                    if (holder is not None and holder is not me) or self._taken_elsewhere(nick):
                        _error(session, f"{nick} is already taken: pick another nickname.")
                    elif me is None:
                        self._join(session, nick)
                    elif nick != me.nick:
                        self._rename(me, nick)
                    else:
                        self._welcome(session, me)

                elif kind == "say":
                    text = message.get("text")
                    if me is None:
                        _error(session, "Pick a nickname before you say something.")
                    elif not isinstance(text, str) or not text.strip():
                        _error(session, "A message needs some text.")
                    elif len(text) > MAX_TEXT:
                        _error(session, f"Messages are limited to {MAX_TEXT} characters.")
                    else:
                        # Sent as data: the page shows it with textContent, never as HTML.
                        self._broadcast({"type": "say", "id": me.id, "nick": me.nick, "text": text})

                elif kind == "leave":
                    # Close first, so that the notice goes to the others
                    # only, and leave at once rather than after the grace.
                    session.data.pop("person", None)
                    await session.close(1000, "Goodbye")
                    if me is not None:
                        self._leave(me)
                    break

                else:
                    _error(session, 'Messages need a "type" of "join", "say" or "leave".')
        finally:
            # Runs however the session ended, unless the person rejoined on
            # another session meanwhile (that one took "person" away).
            person = session.data.pop("person", None)
            if person is not None and person.session is session:
                self._hold(person)


#: The chat room of an app made by :func:`make_app`.
ROOM: Final = web.AppKey("chat_room", Room)


async def index(request: web.Request) -> web.FileResponse:
    """The chat page."""
    return web.FileResponse(STATIC / "index.html")


async def sockjs_client(request: web.Request) -> web.StreamResponse:
    """The SockJS client: from node_modules when installed, else from the CDN."""
    if LOCAL_CLIENT.is_file():
        return web.FileResponse(LOCAL_CLIENT)
    raise web.HTTPFound(CDN_CLIENT)


def make_app(
    rejoin_grace: float = REJOIN_GRACE,
    id_prefix: str = "",
    server: str | None = None,
    **options: Any,
) -> web.Application:
    """Build the chat app; ``options`` go to :func:`aiohttp_sockjs.setup`.

    The room is ``app[ROOM]``; ``id_prefix`` keeps ids unique in a cluster,
    and ``server`` names the process to its pages.
    """
    room = Room(rejoin_grace, id_prefix, server)
    app = web.Application()
    app[ROOM] = room
    app.router.add_get("/", index)
    app.router.add_get(CLIENT_URL, sockjs_client)
    app.router.add_static("/static", STATIC)
    options.setdefault("sockjs_url", CLIENT_URL)
    # Messages longer than max_message_size end the session (a protocol
    # error). Keep it well above MAX_TEXT so that a long chat message gets
    # the polite error from the handler instead.
    options.setdefault("max_message_size", 64 * 1024)
    # A person types a few lines a second at most; a client sending far more
    # is a script flooding the room, and is disconnected (close 1008).
    options.setdefault("rate_limit", RATE_LIMIT)
    # ...and more sessions give a client no more messages a second.
    options.setdefault("client_rate_limit", CLIENT_RATE_LIMIT)
    room.endpoint = aiohttp_sockjs.setup(app, PREFIX, room.chat, **options)

    async def close_room(app: web.Application) -> None:
        room.close()

    app.on_cleanup.append(close_room)
    setup_metrics(app)  # Prometheus metrics at /metrics
    return app


def main() -> None:
    """Run the chat server from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m demo.chat", description="The aiohttp-sockjs chat demo."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    parser.add_argument(
        "--rejoin-grace",
        type=float,
        default=REJOIN_GRACE,
        metavar="SECONDS",
        help=f"how long someone whose connection dropped may rejoin quietly ({REJOIN_GRACE:g})",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not LOCAL_CLIENT.is_file():
        print("node_modules/sockjs-client not found: the page loads SockJS from the CDN.")
    host = f"[{args.host}]" if ":" in args.host else args.host

    def ready(_: str) -> None:  # called by run_app once the port is open
        print(f"Chat demo: open http://{host}:{args.port} (Ctrl+C to stop)", flush=True)

    try:
        web.run_app(
            make_app(args.rejoin_grace),
            host=args.host,
            port=args.port,
            print=ready,
            access_log=None,
        )
    except OSError as exc:  # most likely the port is taken
        raise SystemExit(f"Cannot start the chat demo: {exc.strerror or exc}") from None


if __name__ == "__main__":
    main()
