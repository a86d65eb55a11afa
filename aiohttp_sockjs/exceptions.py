"""Exceptions raised by aiohttp-sockjs.

Tree::

    SockJSError
    ├── SessionClosed       the session is closed; nothing more can be received
    ├── SessionMisuse       the application used the API wrongly (a bug in the app)
    ├── RoomLimitExceeded   a join or broadcast past max_rooms_per_session or max_room_name_length
    ├── BrokerError         the cluster broker cannot reach Redis when it must
    └── ClientError         the client (aiohttp_sockjs.client) lost or never got a session
        ├── ConnectError        no transport could open a session
        ├── ConnectionLost      the connection ended without a close frame
        ├── RemoteProtocolError the server sent something that is not SockJS
        └── ResponseTimeout     the server did not answer in time (also a TimeoutError)

The server raises :class:`SessionClosed`, :class:`SessionMisuse` and
:class:`RoomLimitExceeded`; the
client raises :class:`SessionClosed` once its session is closed and the
:class:`ClientError` family when the connection fails.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "BrokerError",
    "ClientError",
    "ConnectError",
    "ConnectionLost",
    "RemoteProtocolError",
    "ResponseTimeout",
    "RoomLimitExceeded",
    "SessionClosed",
    "SessionMisuse",
    "SockJSError",
]


class SockJSError(Exception):
    """Base class of every exception this package raises."""


class SessionClosed(SockJSError):
    """The session is closed; nothing more can be received or sent.

    On the server, :meth:`Session.receive` raises it, and ``code`` and
    ``reason`` are the close frame the client was (or will be) sent. On the
    client, :meth:`SockJSClient.receive` and :meth:`SockJSClient.send` raise
    it with the close frame the server sent, or the code and reason the
    client closed with.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"session closed: {code} {reason}")
        self.code = code
        self.reason = reason


class SessionMisuse(SockJSError, RuntimeError):
    """The application called the session API in a way it does not allow."""


class RoomLimitExceeded(SockJSError):
    """A room name or a session's rooms went past a limit; nothing changed.

    :meth:`Session.join` raises it for a name longer than
    ``max_room_name_length`` or a join that would put the session in more
    than ``max_rooms_per_session`` rooms; :meth:`Endpoint.broadcast` and
    :meth:`Endpoint.broadcast_batch` for a room name longer than the limit
    (no session can be in such a room). The session goes on as it was:
    catch it to tell the client. ``option`` names the limit, ``limit`` is
    its value and ``room`` the name that went past it.
    """

    def __init__(self, option: str, limit: int, room: str) -> None:
        shown = room if len(room) <= 40 else room[:40] + "..."
        super().__init__(f"room {shown!r}: past {option}={limit}")
        self.option = option
        self.limit = limit
        self.room = room


class BrokerError(SockJSError):
    """The broker could not reach Redis where it must: at app start.

    Raised from the app's startup when the Redis URL does not connect (or
    the server does not answer) within the broker's ``connect_timeout``.
    Once running, the broker rides out outages on its own and raises nothing.
    """


class ClientError(SockJSError):
    """The client's connection to the server failed, or could not be made."""


class ConnectError(ClientError):
    """No transport could open a session.

    ``errors`` maps each transport tried, in order, to the error it failed
    with; an ``/info`` failure is under ``"info"``.
    """

    def __init__(self, url: str, errors: Mapping[str, BaseException]) -> None:
        tried = "; ".join(f"{name}: {error}" for name, error in errors.items())
        super().__init__(f"could not open a SockJS session at {url} ({tried})")
        self.url = url
        self.errors = dict(errors)


class ConnectionLost(ClientError):
    """The connection ended without the server's close frame.

    The server went away, cut a response in the middle of a frame, refused
    a request of the session, or forgot the session.
    """


class RemoteProtocolError(ClientError):
    """The server sent something the SockJS protocol does not allow."""


class ResponseTimeout(ClientError, TimeoutError):
    """The server did not answer, or sent nothing at all, within the configured time.

    Raised by the client's :meth:`~aiohttp_sockjs.client.SockJSClient.receive`
    (its ``timeout`` or ``idle_timeout``) and
    :meth:`~aiohttp_sockjs.client.SockJSClient.ping`, only that wait ended:
    the session stays open. Raised while connecting, or for the silence of
    ``heartbeat_timeout``, the session failed with it.
    """
