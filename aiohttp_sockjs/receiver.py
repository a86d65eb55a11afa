"""The receiver interface: a connection that carries frames to the client.

Each receiving transport implements :class:`Receiver`; the session's actor
calls it, and knows no transport.
"""

from __future__ import annotations

import abc

__all__ = ["Receiver"]


class Receiver(abc.ABC):
    """A connection that carries frames to the client, as the session sees it.

    Each receiving transport implements this. The session calls these
    methods from its actor only, one at a time. A ``send_*`` method returns
    ``False`` when the connection takes no more frames (a polling request
    answered, a streaming response past its size limit, a write that
    failed); the session then forgets the receiver.
    """

    __slots__ = ()

    @abc.abstractmethod
    async def send_open(self) -> bool:
        """Tell the client the session is open."""

    @abc.abstractmethod
    async def send_heartbeat(self) -> bool:
        """Keep the connection alive."""

    @abc.abstractmethod
    async def send_messages(self, messages: list[str]) -> bool:
        """Deliver messages, in the form the session queued them."""

    @abc.abstractmethod
    async def send_close(self, code: int, reason: str) -> None:
        """Deliver a close frame and end this connection."""

    @abc.abstractmethod
    def interrupted(self) -> bool:
        """Whether the client has gone away (the connection was cut)."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Cut the connection now, dropping whatever it has not written.

        Besides the actor, the mailbox calls this when the send bound is
        crossed while the actor waits on a write to this connection: the
        write then fails, and the actor carries on. It touches the
        connection only, never the session.
        """

    #: Whether the ``*_now`` methods below can ever succeed.
    sends_now: bool = False
    #: Whether the connection carries one frame only (a polling request):
    #: after a ``*_now`` method wrote, the session lets it go, as when the
    #: awaited twin returns ``False``.
    single_frame: bool = False

    def send_messages_now(self, messages: list[str]) -> bool:
        """Deliver ``messages`` at once, without waiting, if the connection allows.

        Returns ``True`` only if the frame was written exactly as
        :meth:`send_messages` would have written it, in a call that would
        have completed without suspending and returned ``True``. Returns
        ``False`` with nothing written otherwise; the session then awaits
        :meth:`send_messages`. The default never writes. (A heartbeat's
        ping may also report ``False`` when its write found the connection
        gone: the awaited twin then fails at once, as it should.)
        """
        return False

    def send_heartbeat_now(self) -> bool:
        """:meth:`send_heartbeat` without waiting, on the terms of :meth:`send_messages_now`."""
        return False

    def send_open_now(self) -> bool:
        """:meth:`send_open` without waiting, on the terms of :meth:`send_messages_now`."""
        return False

    def release(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """The session has let go of this connection: end it if it still waits."""

    def cut_if_stuck(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Cut the connection unless its client took all that was written to it.

        Called on a connection the session let go of earlier, when it lets
        go of another or finishes. It touches the connection only, never
        the session.
        """

    def unanswered(self) -> bool:
        """Whether the liveness probe sent with the last heartbeat is still unanswered.

        A websocket sends a ping with each heartbeat; the session asks this
        at the next one. Connections that send no probe answer ``False``.
        """
        return False
