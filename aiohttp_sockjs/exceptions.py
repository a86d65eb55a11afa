"""Exceptions raised by aiohttp-sockjs.

Tree::

    SockJSError
    ├── SessionClosed   the session is closed; nothing more can be received
    ├── SessionMisuse   the application used the API wrongly (a bug in the app)
    └── BrokerError     the cluster broker cannot reach Redis when it must
"""

from __future__ import annotations

__all__ = ["BrokerError", "SessionClosed", "SessionMisuse", "SockJSError"]


class SockJSError(Exception):
    """Base class of every exception this package raises."""


class SessionClosed(SockJSError):
    """Raised by :meth:`Session.receive` once the session is closed.

    ``code`` and ``reason`` are the close frame the client was (or will be)
    sent.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"session closed: {code} {reason}")
        self.code = code
        self.reason = reason


class SessionMisuse(SockJSError, RuntimeError):
    """The application called the session API in a way it does not allow."""


class BrokerError(SockJSError):
    """The broker could not reach Redis where it must: at app start.

    Raised from the app's startup when the Redis URL does not connect (or
    the server does not answer) within the broker's ``connect_timeout``.
    Once running, the broker rides out outages on its own and raises nothing.
    """
