"""The actor's hands: performing what the session machine answers.

:class:`Performer` is a base of :class:`~aiohttp_sockjs.actor.Actor`, which
runs the step (taking commands, asking the machine) and calls these
methods for the actions: writes to the
:class:`~aiohttp_sockjs.receiver.Receiver` (at once when the connection
takes them, else awaited), the inbox, the inbound gate, the close and
the session's end. They run only within the actor's step, token in hand
(``docs/architecture.md``, invariant 1); ``_write_now``, ``_write`` and
``_fail`` report back to the machine.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from . import protocol
from .actions import (
    Abort,
    Action,
    CutIfStuck,
    Deliver,
    Finished,
    NotifyClosed,
    PauseInbound,
    Release,
    ResumeInbound,
    SendClose,
    SendHeartbeat,
    SendMessages,
    SendOpen,
)
from .commands import WRITES, Attach, Incoming, Write
from .handler import HandlerHost
from .receiver import Receiver

__all__ = ["Performer"]

log = logging.getLogger("aiohttp_sockjs")


class Performer(HandlerHost):
    """Performs the session machine's actions, for the actor's step."""

    __slots__ = ()

    def _publish_pressure(self) -> None:
        """Tell the endpoint once this session holds no more than half its send bound.

        Called while the flag is up (the caller checks, to save a call).

        Only the mailbox raises the flag (``_put_send``, as a send crosses
        half the bound): what the machine holds plus what waits for it grows
        only there, so the actor only ever lowers it.
        """
        if self._pressured and self._machine.slack(self._pending_sends) >= 0:
            self._pressured = False
            self._hub.pressure(False)

    def _write_now(self, action: Write, actions: list[Action[Receiver]]) -> bool:
        """Perform a write without waiting, if its connection allows; report it.

        Called from :meth:`_step` only, with the step's action list, to
        which the machine's answer to ``written`` is added. A receiver's
        ``*_now`` method writes only what its awaited twin would have
        written without suspending, so reporting ``written`` here is what
        :meth:`_write` would report.
        """
        receiver = action.receiver
        if not receiver.sends_now:
            return False
        kind = type(action)
        if kind is SendMessages:
            messages = action.messages  # type: ignore[union-attr]
            ok = receiver.send_messages_now(messages)
            if ok:
                # Counted as _write counts it, here rather than in a shared
                # helper: this runs once per delivery, and a call would cost
                # as much as the counting. Most batches hold one message.
                traffic = self._traffic
                count = len(messages)
                traffic.messages_out += count
                traffic.chars_out += len(messages[0]) if count == 1 else sum(map(len, messages))
        elif kind is SendHeartbeat:
            ok = receiver.send_heartbeat_now()
            if ok:
                self._traffic.heartbeats += 1  # as _write counts it
        elif kind is SendOpen:
            ok = receiver.send_open_now()
        else:
            return False
        if not ok:
            return False
        actions.extend(
            self._machine.written(receiver, not receiver.single_frame, self._hub.clock())
        )
        return True

    async def _write(self, action: Write) -> None:
        """Perform a write the machine asked for, and report its outcome."""
        receiver = action.receiver
        self._busy = receiver
        try:
            match action:
                case SendOpen():
                    ok = await receiver.send_open()
                case SendHeartbeat():
                    self._traffic.heartbeats += 1
                    ok = await receiver.send_heartbeat()
                case SendMessages(_, messages):
                    # Counted where the batch is handed to its connection.
                    traffic = self._traffic
                    traffic.messages_out += len(messages)
                    traffic.chars_out += sum(map(len, messages))
                    ok = await receiver.send_messages(messages)
                case SendClose(_, code, reason):
                    await receiver.send_close(code, reason)
                    return
        except Exception:
            log.exception("SockJS session failed; closing it")
            self._fail()
            return
        finally:
            self._busy = None
        interrupted = not ok and receiver.interrupted()
        now = self._hub.clock()
        actions = self._machine.written(receiver, ok, now, interrupted=interrupted)
        if self._actions is None:  # not expected: _step left its list for this write
            self._actions = actions
        else:
            self._actions.extend(actions)

    def _perform(self, action: Action[Receiver]) -> None:
        """Perform an action that needs no waiting."""
        # By type rather than by match: a class pattern costs an isinstance()
        # per case tried, and the most frequent actions (each poll's Release
        # and CutIfStuck, a batch's Deliver) come first.
        kind = type(action)
        if kind is Release:
            action.receiver.release()  # type: ignore[union-attr]
        elif kind is CutIfStuck:
            action.receiver.cut_if_stuck()  # type: ignore[union-attr]
        elif kind is Deliver:
            messages = action.messages  # type: ignore[union-attr]
            self._take_in(messages, sum(map(len, messages)))
        elif kind is PauseInbound:
            self._gate = asyncio.get_running_loop().create_future()
        elif kind is ResumeInbound:
            gate = self._gate
            self._gate = None
            if gate is not None and not gate.done():
                gate.set_result(None)
        elif kind is Abort:
            action.receiver.abort()  # type: ignore[union-attr]
        elif kind is NotifyClosed:
            self._notify_closed(action.code, action.reason)  # type: ignore[union-attr]
        elif kind is Finished:
            self._finish()

    def _notify_closed(self, code: int, reason: str) -> None:
        """The session is closed (its close frame may be yet to go out): count it, tell waiters."""
        self._close_info = (code, reason)
        hub = self._hub
        closed = hub.closed
        closed[code] = closed.get(code, 0) + 1
        if self._machine.overflowed:
            hub.overflows += 1
            log.info(
                "SockJS session %s: send queue over %d characters; closing it",
                protocol.loggable(self._id or self.transport),
                self._hub.limits.max_queue_size,
            )
        elif (code, reason) == protocol.CLOSE_RATE_LIMIT:
            hub.refused["rate_limit"] += 1
            log.info(
                "SockJS session %s: over its rate limit; closing it",
                protocol.loggable(self._id or self.transport),
            )
        if self._close_waiter is not None and not self._close_waiter.done():
            self._close_waiter.set_result(None)
        waiter = self._inbox_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _finish(self) -> None:
        """The session has ended: leave the endpoint, drop what no one will take."""
        self._finished = True
        self._slack = -1
        if self._pressured:
            self._pressured = False
            self._hub.pressure(False)
        if self._actions:
            self._actions.clear()  # the running step's: nothing more to perform
        self._actions = None
        self._pending_sends = 0
        # Drop every command but the attaches, which the actor answers.
        self._mailbox[:] = [c for c in self._mailbox if type(c) in (Attach, Incoming)]
        self._hub.forget(self, self._id, self._handler_task)

    def _take_in(self, messages: list[str], size: int) -> None:
        """Append client messages to the inbox and wake the handler waiting for one."""
        inbox = self._inbox
        if inbox is None:
            self._inbox = deque(messages)
        else:
            inbox.extend(messages)
        self._inbox_size += size
        traffic = self._traffic
        traffic.messages_in += len(messages)
        traffic.chars_in += size
        waiter = self._inbox_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, cancelled: bool = False) -> None:
        """End the session after a bug (ours or a receiver's), touching no other.

        ``cancelled``: the actor was cancelled instead (shutdown's timeout,
        while it waited on a write). Either way the machine answers with no
        write: the connection is cut.
        """
        if self._finished:
            return
        machine = self._machine
        for action in machine.cancel() if cancelled else machine.fail():
            if __debug__:
                assert type(action) not in WRITES, "nothing is written after a failure"
            self._perform(action)
