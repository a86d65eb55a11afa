"""The raw wire layer of the tests, and their bounded waits.

Behaviour tests use the public client (:mod:`aiohttp_sockjs.client`); what
is here is for tests of the wire format itself: exact bytes, headers,
preludes, frames as each transport carries them, requests cut at an exact
point. It talks to a real server over real sockets; what it observes of the
server goes through :mod:`aiohttp_sockjs.testing`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import socket
import struct
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any, ClassVar, TypeVar

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

import aiohttp_sockjs
from aiohttp_sockjs import testing

T = TypeVar("T")

#: Bound on any single wait in the suite, so a broken server fails a test
#: instead of hanging it.
WAIT = 3.0

NO_CACHE = "no-store, no-cache, no-transform, must-revalidate, max-age=0"
CACHE_YEAR = "public, max-age=31536000"
JS = "application/javascript; charset=UTF-8"
TEXT = "text/plain; charset=UTF-8"
HTML = "text/html; charset=UTF-8"
JSON_TYPE = "application/json; charset=UTF-8"

XHR_PRELUDE = b"h" * 2048 + b"\n"

#: The characters the server must send escaped.
SERVER_ESCAPES = re.compile("[\x00-\x1f\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff]")
#: Every character of that set, in order.
SERVER_ESCAPE_SET = "".join(
    chr(c)
    for lo, hi in (
        (0x00, 0x1F),
        (0x200C, 0x200F),
        (0x2028, 0x202F),
        (0x2060, 0x206F),
        (0xFFF0, 0xFFFF),
    )
    for c in range(lo, hi + 1)
)

#: The receiving transports reachable over plain HTTP.
HTTP_RECEIVERS = ("xhr", "xhr_streaming", "eventsource", "htmlfile", "jsonp")
#: Every transport a message can round-trip over.
ALL_TRANSPORTS = ("xhr", "xhr_streaming", "eventsource", "htmlfile", "jsonp", "websocket")


def new_id() -> str:
    """A fresh session id."""
    return uuid.uuid4().hex


async def bounded(aw: Awaitable[T], timeout: float = WAIT) -> T:
    """Await ``aw`` but fail instead of hanging."""
    return await asyncio.wait_for(aw, timeout)


def session_url(base: str, sid: str, transport: str) -> str:
    """The URL of ``transport`` for session ``sid`` under ``base``."""
    return f"{base}/000/{sid}/{transport}"


def client_payload(*messages: str) -> str:
    """What a browser client sends: a JSON array, everything non-ASCII escaped."""
    return json.dumps(list(messages))


async def xhr(client: TestClient[Any, Any], base: str, sid: str, **kw: Any) -> str:
    """One xhr poll; returns the body after checking status and type."""
    async with client.post(session_url(base, sid, "xhr"), **kw) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == JS
        return await resp.text()


async def xhr_send(client: TestClient[Any, Any], base: str, sid: str, *messages: str) -> None:
    """Send ``messages`` through xhr_send and check the 204."""
    # BytesIO: aiohttp warns about large raw bytes bodies.
    body = io.BytesIO(client_payload(*messages).encode())
    async with client.post(session_url(base, sid, "xhr_send"), data=body) as resp:
        assert resp.status == 204, await resp.text()


async def open_xhr_session(client: TestClient[Any, Any], base: str) -> str:
    """Create a session with an xhr poll and return its id."""
    sid = new_id()
    assert await bounded(xhr(client, base, sid)) == "o\n"
    return sid


class Stream:
    """Reads a streaming response piece by piece, with its own buffer.

    aiohttp's ``readuntil`` refuses lines longer than its buffer limit, and
    frames of a megabyte are part of the tests.
    """

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp
        self.buf = bytearray()

    async def _more(self) -> bool:
        chunk = await bounded(self.resp.content.readany())
        if not chunk:
            return False
        self.buf += chunk
        return True

    async def until(self, sep: bytes) -> bytes:
        """Everything up to and including the next ``sep``."""
        start = 0
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                end = i + len(sep)
                data = bytes(self.buf[:end])
                del self.buf[:end]
                return data
            start = max(0, len(self.buf) - len(sep) + 1)
            if not await self._more():
                raise AssertionError(f"stream ended before {sep!r}; got {bytes(self.buf)!r}")

    async def exactly(self, n: int) -> bytes:
        """The next ``n`` bytes."""
        while len(self.buf) < n:
            if not await self._more():
                raise AssertionError(f"stream ended after {bytes(self.buf)!r}")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def at_eof(self) -> bool:
        """Whether the response ends with nothing more to read."""
        if self.buf:
            return False
        return not await self._more()

    async def rest(self) -> bytes:
        """Everything until the end of the response."""
        while await self._more():
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data


def parse_eventsource(event: bytes) -> str:
    """The frame inside one ``data: ...\\r\\n\\r\\n`` event, percent-decoded."""
    assert event.startswith(b"data: ") and event.endswith(b"\r\n\r\n"), event
    data = event[6:-4].decode()
    assert "\r" not in data and "\n" not in data and "\x00" not in data
    return urllib.parse.unquote(data, errors="strict")


HTMLFILE_CHUNK = re.compile(rb"<script>\np\((.*)\);\n</script>\r\n", re.DOTALL)


def parse_htmlfile(chunk: bytes) -> str:
    """The frame inside one htmlfile script block."""
    m = HTMLFILE_CHUNK.fullmatch(chunk)
    assert m is not None, chunk
    assert b"</script" not in m.group(1).lower() and b"<!--" not in m.group(1)
    frame = json.loads(m.group(1))
    assert isinstance(frame, str)
    return frame


def parse_jsonp(body: bytes, callback: str) -> str:
    """The frame inside a JSONP answer ``/**/callback("...");\\r\\n``."""
    prefix = f"/**/{callback}(".encode()
    assert body.startswith(prefix) and body.endswith(b");\r\n"), body[:200]
    frame = json.loads(body[len(prefix) : -4])
    assert isinstance(frame, str)
    return frame


def messages_of(frame: str) -> list[str]:
    """The messages of an ``a[...]`` frame."""
    assert frame.startswith("a["), frame[:100]
    messages = json.loads(frame[1:])
    assert isinstance(messages, list)
    return messages


class Receiver:
    """A receiving connection of any transport, yielding whole frames.

    ``frame()`` returns the next frame as the client's JavaScript would see
    it; ``wire`` keeps the raw bytes of the last frame for encoding checks.
    """

    def __init__(self, client: TestClient[Any, Any], base: str, sid: str, transport: str) -> None:
        self.client = client
        self.base = base
        self.sid = sid
        self.transport = transport
        self.wire = b""
        #: The open streaming response, its reader, or the websocket, for
        #: tests of what follows the frames (the end of a stream, a close).
        self.resp: aiohttp.ClientResponse | None = None
        self.stream: Stream | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def start(self) -> str:
        """Open the connection and return the first frame (normally ``o``)."""
        t = self.transport
        url = session_url(self.base, self.sid, t)
        if t == "websocket":
            self.ws = await bounded(self.client.ws_connect(url))
            return await self.frame()
        if t in ("xhr", "jsonp"):
            return await self.frame()
        if t == "xhr_streaming":
            resp = await bounded(self.client.post(url))
            prelude = XHR_PRELUDE
        elif t == "eventsource":
            resp = await bounded(self.client.get(url))
            prelude = b"\r\n"
        else:
            assert t == "htmlfile"
            resp = await bounded(self.client.get(url, params={"c": "callback"}))
            prelude = b""
        assert resp.status == 200
        self.resp = resp
        self.stream = Stream(resp)
        if prelude:
            assert await self.stream.exactly(len(prelude)) == prelude
        else:
            head = await self.stream.until(b"</script>")
            assert b"parent.callback" in head
        return await self.frame()

    async def frame(self) -> str:
        """The next frame."""
        t = self.transport
        if t == "websocket":
            assert self.ws is not None
            msg = await bounded(self.ws.receive())
            assert msg.type is aiohttp.WSMsgType.TEXT, msg
            self.wire = msg.data.encode("utf-8", "surrogatepass")
            return str(msg.data)
        if t == "xhr":
            resp = await bounded(self.client.post(session_url(self.base, self.sid, t)))
            async with resp:
                assert resp.status == 200
                self.wire = await bounded(resp.read())
            assert self.wire.endswith(b"\n") and self.wire.count(b"\n") == 1
            return self.wire[:-1].decode()
        if t == "jsonp":
            url = session_url(self.base, self.sid, t)
            resp = await bounded(self.client.get(url, params={"c": "cb"}))
            async with resp:
                assert resp.status == 200
                self.wire = await bounded(resp.read())
            return parse_jsonp(self.wire, "cb")
        assert self.stream is not None
        if t == "xhr_streaming":
            self.wire = await self.stream.until(b"\n")
            return self.wire[:-1].decode()
        if t == "eventsource":
            self.wire = await self.stream.until(b"\r\n\r\n")
            return parse_eventsource(self.wire)
        chunk = await self.stream.until(b"\n</script>\r\n")
        # Only padding may come between the prelude's script and the first frame.
        start = chunk.find(b"<script>\np(")
        assert start >= 0 and chunk[:start].strip() == b"", chunk[:200]
        self.wire = chunk[start:]
        return parse_htmlfile(self.wire)

    async def close(self) -> None:
        """Close the connection from the client side."""
        if self.ws is not None:
            await self.ws.close()
        if self.resp is not None:
            self.resp.close()

    async def send(self, *messages: str) -> None:
        """Send messages the way this transport's client would."""
        if self.transport == "websocket":
            assert self.ws is not None
            await self.ws.send_str(client_payload(*messages))
        elif self.transport == "jsonp":
            url = session_url(self.base, self.sid, "jsonp_send")
            form = urllib.parse.urlencode({"d": client_payload(*messages)}).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            async with self.client.post(url, data=io.BytesIO(form), headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                assert await resp.text() == "ok"
        else:
            await xhr_send(self.client, self.base, self.sid, *messages)

    async def messages(self, n: int) -> list[str]:
        """Collect ``n`` messages, skipping heartbeats, across frames."""
        got: list[str] = []
        while len(got) < n:
            frame = await self.frame()
            if frame == "h":
                continue
            got += messages_of(frame)
        assert len(got) == n, got
        return got


async def roundtrip(
    client: TestClient[Any, Any], base: str, transport: str, message: str
) -> tuple[str, str, bytes]:
    """Echo ``message`` over ``transport``.

    Returns the message that came back, the frame holding it as the client
    sees it, and the raw bytes that carried that frame.
    """
    rx = Receiver(client, base, new_id(), transport)
    try:
        assert await rx.start() == "o"
        await rx.send(message)
        frame = await rx.frame()
        while frame == "h":
            frame = await rx.frame()
        messages = messages_of(frame)
        assert len(messages) == 1
        return messages[0], frame, rx.wire
    finally:
        await rx.close()


async def poll_after_abort(client: TestClient[Any, Any], base: str, sid: str) -> str:
    """The first xhr answer once the server has noticed a receiver the client cut.

    Until the server sees the cut it rightly answers ``c[2010,...]``; the
    loop is bounded, so a server that never notices fails the test.
    """
    for _ in range(100):
        body = await bounded(xhr(client, base, sid))
        if body != 'c[2010,"Another connection still open"]\n':
            return body
        await asyncio.sleep(0.01)
    raise AssertionError("the server never noticed the aborted receiver")


async def receiver_attached(endpoint: aiohttp_sockjs.Endpoint, sid: str) -> None:
    """Wait until session ``sid`` has a receiver attached: a poll has reached the server."""

    def attached() -> bool:
        return any(testing.session_id(s) == sid and testing.attached(s) for s in endpoint.sessions)

    await eventually(attached)


async def eventually(predicate: Any, timeout: float = WAIT) -> None:
    """Wait, in small steps and for at most ``timeout`` s, until ``predicate()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition never held: {predicate}")
        await asyncio.sleep(0.01)


def open_sockets(port: int) -> int:
    """This process's TCP sockets connected to ``port`` on loopback, counted in /proc.

    A socket counts from its creation until its file descriptor is closed,
    whatever its TCP state: a connection the client forgot stays counted.
    """
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[9] in inodes:
                    count += 1
    return count


# --- raw sockets: cutting a connection at an exact point ----------------------


def raw_http(method: str, path: str, body: bytes = b"", length: int | None = None) -> bytes:
    """A raw HTTP/1.1 request; ``length`` may promise more body than is sent."""
    length = len(body) if length is None else length
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
    return head.encode() + body


def ws_frame(opcode: int, payload: bytes, length: int | None = None) -> bytes:
    """A masked client websocket frame; ``length`` may announce more payload than follows."""
    length = len(payload) if length is None else length
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def raw_websocket(
    port: int, path: str, *, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket handshake over a raw socket (with a small receive buffer if
    ``rcvbuf`` is given); returns the streams after the 101 headers."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await bounded(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await bounded(reader.readuntil(b"\r\n\r\n"))
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer


def cut(writer: asyncio.StreamWriter, how: str) -> None:
    """Go away: ``"fin"`` closes the socket normally, ``"rst"`` resets it (as an
    aborting browser or a crashed client does)."""
    if how == "rst":
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    else:
        writer.close()


# --- a bare websocket client: reads only when told, answers pings or not -------

OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


def parse_frames(data: bytes, limit: int = -1) -> tuple[list[tuple[int, bytes]], int]:
    """The whole frames at the start of ``data`` (as ``(opcode, payload)``, at
    most ``limit`` if given) and how many bytes they take; a frame cut short
    is left for later."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while len(data) - pos >= 2 and len(frames) != limit:
        b0, b1 = data[pos], data[pos + 1]
        length, head = b1 & 0x7F, 2
        if length == 126:
            if len(data) - pos < 4:
                break
            (length,) = struct.unpack_from("!H", data, pos + 2)
            head = 4
        elif length == 127:
            if len(data) - pos < 10:
                break
            (length,) = struct.unpack_from("!Q", data, pos + 2)
            head = 10
        mask = b""
        if b1 & 0x80:
            mask = data[pos + head : pos + head + 4]
            head += 4
        if len(data) - pos < head + length:
            break
        payload = data[pos + head : pos + head + length]
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        frames.append((b0 & 0x0F, payload))
        pos += head + length
    return frames, pos


def close_payload(payload: bytes) -> tuple[int, str]:
    """The code and reason of a close frame's payload."""
    (code,) = struct.unpack_from("!H", payload)
    return code, payload[2:].decode()


class BareWebsocket:
    """A websocket client on a plain socket that reads nothing unless told to.

    Nothing reads its socket in the background (as an asyncio stream would),
    so a client that "stops reading" leaves the server's bytes in the
    kernel, where :meth:`peek` sees them without taking them. Or
    :meth:`answer_pings` reads everything, answering pings as a browser does.
    """

    #: Every client made and not yet closed, for a fixture to close after a test.
    opened: ClassVar[list[BareWebsocket]] = []

    def __init__(self, sock: socket.socket, buf: bytes) -> None:
        BareWebsocket.opened.append(self)
        self.sock = sock
        self.buf = bytearray(buf)
        #: Every frame read so far (by :meth:`frame` or the ping answerer).
        self.frames: list[tuple[int, bytes]] = []
        #: How many pings the answerer has read (and answered).
        self.pings = 0
        self.eof = False
        self._answerer: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls, port: int, path: str, *, rcvbuf: int | None = None, early: bytes = b""
    ) -> BareWebsocket:
        """Open ``path`` with a websocket handshake; the 101 headers are read.

        ``early``: frames sent in the same write as the upgrade request.
        """
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await bounded(loop.sock_connect(sock, ("127.0.0.1", port)))
        await bounded(
            loop.sock_sendall(
                sock,
                f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
                + early,
            )
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await bounded(loop.sock_recv(sock, 4096))
            assert chunk, head
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        return cls(sock, rest)

    def peek(self) -> list[tuple[int, bytes]]:
        """The whole frames waiting to be read, read and kept in place.

        A reset connection shows as no frames (the kernel drops what it held).
        """
        try:
            waiting = self.sock.recv(1 << 22, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            waiting = b""
        except OSError:
            return []
        return parse_frames(bytes(self.buf) + waiting)[0]

    def peek_eof(self) -> bool:
        """Whether the server has closed (or reset) the connection with nothing
        left to read before the end."""
        if self.buf:
            return False
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    async def frame(self, timeout: float = WAIT) -> tuple[int, bytes] | None:
        """Read the next frame; ``None`` at the end of the connection."""
        loop = asyncio.get_running_loop()
        while True:
            frames, used = parse_frames(bytes(self.buf), 1)
            if frames:
                del self.buf[:used]
                self.frames.append(frames[0])
                return frames[0]
            if self.eof:
                return None
            try:
                chunk = await bounded(loop.sock_recv(self.sock, 65536), timeout)
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk

    async def text(self) -> str:
        """The next frame, which must be a text frame."""
        got = await self.frame()
        assert got is not None and got[0] == OP_TEXT, got
        return got[1].decode()

    async def send(self, opcode: int, payload: bytes) -> None:
        """Send one masked frame."""
        await bounded(asyncio.get_running_loop().sock_sendall(self.sock, ws_frame(opcode, payload)))

    async def send_text(self, text: str) -> None:
        """Send one text frame."""
        await self.send(OP_TEXT, text.encode())

    async def rest(self, timeout: float = WAIT) -> list[tuple[int, bytes]]:
        """Read every frame until the server ends the connection."""

        async def drain() -> list[tuple[int, bytes]]:
            got = []
            while (f := await self.frame(timeout)) is not None:
                got.append(f)
            return got

        return await bounded(drain(), timeout)

    def answer_pings(self) -> None:
        """Read everything from now on in the background, answering each ping
        with a pong; frames land in :attr:`frames`."""

        async def answer() -> None:
            while (f := await self.frame(timeout=3600)) is not None:
                if f[0] == OP_PING:
                    self.pings += 1
                    await self.send(OP_PONG, f[1])

        self._answerer = asyncio.ensure_future(answer())

    def texts(self) -> list[str]:
        """The text frames read so far."""
        return [payload.decode() for op, payload in self.frames if op == OP_TEXT]

    async def cut(self, how: str) -> None:
        """Go away: ``"fin"`` closes normally, ``"rst"`` resets (as an aborting
        browser or a crashed client does)."""
        if how == "rst":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await self.close()

    async def stop_reading(self) -> None:
        """Stop the ping answerer: from now on nothing is read (idempotent)."""
        if self._answerer is not None:
            self._answerer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._answerer
            self._answerer = None

    async def close(self) -> None:
        """Stop reading and close the socket (idempotent)."""
        await self.stop_reading()
        self.sock.close()
        with contextlib.suppress(ValueError):
            BareWebsocket.opened.remove(self)


async def stalled_request(
    port: int, method: str, path: str, until: bytes, made: list[socket.socket]
) -> socket.socket:
    """A request on a socket with a small receive buffer that reads up to
    ``until`` (nothing if empty) and then never again; the socket joins
    ``made``, for the test to close."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    made.append(sock)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await bounded(loop.sock_connect(sock, ("127.0.0.1", port)))
    await bounded(loop.sock_sendall(sock, raw_http(method, path)))
    got = b""
    while until not in got:
        chunk = await bounded(loop.sock_recv(sock, 1))
        assert chunk, got
        got += chunk
    return sock


def request_handler_tasks() -> list[asyncio.Task[Any]]:
    """aiohttp's per-connection tasks that are still running."""
    return [
        t
        for t in asyncio.all_tasks()
        if not t.done() and "RequestHandler" in getattr(t.get_coro(), "__qualname__", "")
    ]


class ManualClock:
    """A monotonic clock the test moves by hand (``now``), for ``testing.setup(clock=...)``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[tuple[web.AppRunner, int]]:
    """``app`` served for real on a free loopback port: its runner and the port."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield runner, runner.addresses[0][1]
    finally:
        await runner.cleanup()
