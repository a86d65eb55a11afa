"""How :func:`~aiohttp_sockjs.client.connect` opens a session: ``/info``, then each transport.

:class:`Connecting` is what ``connect()`` returns; awaiting it reads
``/info`` (unless only the raw websocket is asked for) and tries the
transports in order until one opens a session. Internal: the client module
is the public API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator, Sequence
from types import TracebackType

import aiohttp
from yarl import URL

from ._client_http import HTTP_TRANSPORTS
from ._client_session import SockJSClient
from ._client_transports import ClientOptions, Transport, fetch_info, within
from ._client_websocket import KeepUpgradeSocket, WebSocketTransport, read_refused_upgrades
from .exceptions import ClientError, ConnectError, SessionClosed


class Connecting(Awaitable[SockJSClient]):
    """What :func:`connect` returns: await it, or use it with ``async with``."""

    def __init__(
        self,
        url: URL,
        transports: Sequence[str],
        session: aiohttp.ClientSession | None,
        options: ClientOptions,
        max_queue: int,
    ) -> None:
        self._url = url
        self._transports = transports
        self._session = session
        self._options = options
        self._max_queue = max_queue
        self._client: SockJSClient | None = None

    def __await__(self) -> Generator[object, None, SockJSClient]:
        return self._open().__await__()

    async def __aenter__(self) -> SockJSClient:
        self._client = await self._open()
        return self._client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.close()

    async def _open(self) -> SockJSClient:
        return await open_session(
            self._url, self._transports, self._session, self._options, self._max_queue
        )


async def open_session(
    url: URL,
    names: Sequence[str],
    session: aiohttp.ClientSession | None,
    options: ClientOptions,
    max_queue: int,
) -> SockJSClient:
    """A client on the first of the transports ``names`` that opens a session at ``url``.

    Raises :class:`~aiohttp_sockjs.ConnectError` with each attempt's error
    if none does, or at once if the server closes the session it opens.
    """
    owned = None
    if session is None:
        session = owned = _own_http_session()
    errors: dict[str, BaseException] = {}
    try:
        if any(name != "raw_websocket" for name in names):
            names = await _allowed_by_info(session, url, names, options, errors)
        for name in names:
            transport = await _open_transport(name, session, url, options, errors)
            if transport is not None:
                return SockJSClient(
                    transport,
                    url,
                    max_queue=max_queue,
                    heartbeat_timeout=options.heartbeat_timeout,
                    owned_session=owned,
                    options=options,
                )
        raise ConnectError(str(url), errors)
    except BaseException:
        if owned is not None:
            await owned.close()
        raise


def _own_http_session() -> aiohttp.ClientSession:
    """The aiohttp session of a client given none, closed with the client."""
    # unsafe: keep cookies (a sticky JSESSIONID) from IP-address hosts too.
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        middlewares=(read_refused_upgrades,),
        request_class=KeepUpgradeSocket,
    )


async def _allowed_by_info(
    http: aiohttp.ClientSession,
    url: URL,
    names: Sequence[str],
    options: ClientOptions,
    errors: dict[str, BaseException],
) -> Sequence[str]:
    """``names`` but the websocket transports if ``/info`` says websockets are off."""
    try:
        info = await within(fetch_info(http, url, options), options.timeout, "/info answer")
    except ClientError as exc:
        errors["info"] = exc
        raise ConnectError(str(url), errors) from exc
    if not info.websocket:
        for name in names:
            if name in ("websocket", "raw_websocket"):
                errors[name] = ClientError("/info says websockets are off")
        names = [name for name in names if name not in errors]
    return names


async def _open_transport(
    name: str,
    http: aiohttp.ClientSession,
    url: URL,
    options: ClientOptions,
    errors: dict[str, BaseException],
) -> Transport | None:
    """The transport ``name`` with the session open; ``None`` if it failed (why: in ``errors``)."""
    transport = make_transport(name, http, url, options)
    try:
        await transport.open()
    except SessionClosed as exc:
        # The server answered: it closed the session at once.
        await transport.close(1000, "")
        errors[name] = exc
        raise ConnectError(str(url), errors) from exc
    except ClientError as exc:
        await transport.close(1000, "")
        errors[name] = exc
        return None
    except BaseException:
        await transport.close(1000, "")
        raise
    return transport


def make_transport(
    name: str, http: aiohttp.ClientSession, base: URL, options: ClientOptions
) -> Transport:
    """A connection of the transport ``name``, not open yet."""
    if name in ("websocket", "raw_websocket"):
        return WebSocketTransport(http, base, options, raw=name == "raw_websocket")
    return HTTP_TRANSPORTS[name](http, base, options)
