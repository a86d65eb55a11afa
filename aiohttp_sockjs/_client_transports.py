"""What every transport of the client shares: the interface, the options, the requests' helpers.

:class:`Transport` is what :class:`~aiohttp_sockjs.client.SockJSClient`
asks of a connection (open, next frame, send, ping, close, abort); the
websocket transports (``_client_websocket.py``) and the HTTP ones
(``_client_http.py``: xhr_streaming, eventsource, htmlfile, xhr and JSONP
polling) implement it. The client's options (:class:`ClientOptions`),
``/info`` and the helpers every request uses are here too. Internal: the
client module is the public API.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
import sys
import uuid
from collections.abc import (
    Awaitable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from typing import Final, TypeVar

import aiohttp
from yarl import URL

if sys.version_info >= (3, 11):
    from asyncio import timeout as _timeout
else:  # aiohttp depends on async-timeout there
    from async_timeout import timeout as _timeout

from . import protocol
from .exceptions import (
    ClientError,
    ConnectionLost,
    RemoteProtocolError,
    ResponseTimeout,
    SessionClosed,
)
from .protocol import CloseFrame, Frame, OpenFrame

# aiohttp's own timeouts stay off on the client's requests (a session's
# default would cut a long stream at 5 minutes); every wait is bounded here.
NO_TIMEOUT: Final = aiohttp.ClientTimeout()
MAX_INFO_SIZE: Final = 64 * 1024

_T = TypeVar("_T")


class Default(enum.Enum):
    """The type of :data:`DEFAULT`: a ``timeout`` left to the client's option."""

    DEFAULT = 0


DEFAULT: Final = Default.DEFAULT


@dataclass(frozen=True)
class ClientOptions:
    """What :func:`~aiohttp_sockjs.client.connect` was given, for every transport's requests."""

    headers: Mapping[str, str]
    timeout: float
    heartbeat_timeout: float | None
    max_frame_size: int
    session_id: str | None
    idle_timeout: float | None = None
    websocket_compression: bool = False


async def within(aw: Awaitable[_T], seconds: float | None, what: str) -> _T:
    """Await ``aw``, turning a timeout and a network error into a ClientError."""
    # Not asyncio.wait_for: before Python 3.12 it can swallow a cancellation
    # that arrives as ``aw`` finishes, and close() would then wait forever.
    try:
        with network_errors():
            async with _timeout(seconds):
                return await aw
    except ClientError:
        raise
    except asyncio.TimeoutError:
        raise ResponseTimeout(f"no {what} within {seconds:g} s") from None


@contextlib.contextmanager
def network_errors() -> Iterator[None]:
    """Turn aiohttp's and the OS's errors into :exc:`~aiohttp_sockjs.ConnectionLost`."""
    try:
        yield
    except ClientError:
        raise
    except asyncio.TimeoutError:
        raise
    except (aiohttp.ClientError, OSError) as exc:
        raise ConnectionLost(f"{type(exc).__name__}: {exc}") from exc


def join(base: URL, *parts: str) -> URL:
    """``base`` with ``parts`` appended to its path, its query kept."""
    return base.with_path(base.path.rstrip("/") + "/" + "/".join(parts)).with_query(base.query)


async def read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body of ``resp``; a RemoteProtocolError past ``limit`` bytes."""
    body = bytearray()
    while chunk := await resp.content.readany():
        body += chunk
        if len(body) > limit:
            raise RemoteProtocolError(f"an answer is longer than {limit} bytes")
    return bytes(body)


async def refused(resp: aiohttp.ClientResponse, what: str) -> ConnectionLost:
    """The error for a refused request: its status and the start of its body, read for 1 s."""
    text = ""
    with contextlib.suppress(Exception):
        async with _timeout(1.0):
            text = (await resp.content.read(200)).decode(errors="replace")
    resp.release()
    detail = f": {text.strip()}" if text.strip() else ""
    return ConnectionLost(f"{what} answered HTTP {resp.status}{detail}")


class Transport:
    """One transport's connection to a session: open it, read frames, send."""

    name: str
    session_id: str | None

    def __init__(self, http: aiohttp.ClientSession, base: URL, options: ClientOptions) -> None:
        self.http = http
        self.base = base
        self.options = options
        self.session_id = options.session_id or uuid.uuid4().hex
        self.session_url = join(base, f"{random.randrange(1000):03d}", self.session_id)

    async def open(self) -> None:
        """Connect and read up to the open frame."""
        frame = await self.next_frame(self.options.timeout, "open frame")
        if isinstance(frame, CloseFrame):
            raise SessionClosed(frame.code, frame.reason)
        if not isinstance(frame, OpenFrame):
            raise RemoteProtocolError(f"the first frame is {frame}, not the open frame")

    async def next_frame(self, seconds: float | None, what: str) -> Frame:
        """The next frame, waiting at most ``seconds`` for the server."""
        raise NotImplementedError

    async def send(self, messages: list[str]) -> None:
        """Deliver ``messages`` to the server, in order."""
        raise NotImplementedError

    def send_now(self, messages: list[str]) -> bool:
        """Write ``messages`` at once if that needs no waiting; ``False`` if not (nothing sent)."""
        return False

    async def close(self, code: int, reason: str) -> None:
        """Let go of the connection; idempotent."""
        raise NotImplementedError

    async def ping(self) -> None:
        """One round trip to the server: here a GET of ``/info``."""
        # SockJS has no echo of its own: /info is the cheapest request every
        # server answers at once, on the same host, port and proxies.
        await fetch_info(self.http, self.base, self.options)

    def abort(self) -> None:
        """Cut the connection at once, so that the server sees the client vanish."""


async def fetch_info(
    http: aiohttp.ClientSession, url: URL, options: ClientOptions
) -> protocol.Info:
    """The server's ``/info``, decoded; a ClientError when it is refused or malformed."""
    async with http.get(join(url, "info"), headers=options.headers, timeout=NO_TIMEOUT) as resp:
        if resp.status != 200:
            raise await refused(resp, "/info")
        body = await read_body(resp, MAX_INFO_SIZE)
    try:
        return protocol.decode_info(body)
    except protocol.FrameError as exc:
        raise RemoteProtocolError(str(exc)) from None
