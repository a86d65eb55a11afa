"""A session's state, and its mailbox: how commands reach the actor.

:class:`Mailbox` is the base of :class:`~aiohttp_sockjs.actor.Actor` (which
applies the commands) and of :class:`~aiohttp_sockjs.session.Session` (the
application's side). It holds the session's state, and the methods through
which commands are posted: anyone may post, and the post that finds the
actor parked takes its token (see the actor's one door). Sends are checked
against the outbound bound here, by the machine's own rule, so that a sender
cannot grow memory while the actor is stuck writing to a slow client.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from .actions import Action
from .commands import OVERFLOW, Attach, Batch, Command, Incoming, Send, as_send
from .machine import SessionMachine
from .receiver import Receiver

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["Mailbox"]


class Mailbox:
    """A session's state and its mailbox (the actor's input).

    ``_slack`` is how many more characters may be posted before a send
    must be checked against the send bound the long way (``_admit_send``):
    at most half the bound minus what the machine and the mailbox hold, so
    that sends within it cross neither the bound nor the pressure mark.
    Only ``_put_send`` adds to what is held, and it takes from the slack
    as it does; the actor only takes away (it writes, or drops), which
    leaves the slack a safe underestimate. It is negative once sends are
    dropped (an overflow posted, the session finished), so that every send
    goes the long way and finds out.
    """

    #: Set by the session (the transport's name, for log lines).
    transport: str

    __slots__ = (
        "_actions",
        "_busy",
        "_close_info",
        "_close_waiter",
        "_finished",
        "_gate",
        "_handler_task",
        "_hub",
        "_id",
        "_inbox",
        "_inbox_size",
        "_inbox_waiter",
        "_machine",
        "_mailbox",
        "_overflow_posted",
        "_owed",
        "_parked",
        "_pending_incoming",
        "_pending_sends",
        "_pressured",
        "_raw",
        "_sender_turn",
        "_slack",
        "_task",
        "_traffic",
        "_websocket",
    )

    def __init__(
        self, hub: Hub[Any], session_id: str | None, *, websocket: bool, raw: bool
    ) -> None:
        self._hub = hub
        # The endpoint's counters, held here to save a lookup per batch.
        self._traffic = hub.traffic
        # The id the client chose (None for a raw websocket). Not public: it
        # is neither a secret nor a user identity, and apps have no use for it.
        self._id = session_id
        self._raw = raw
        self._websocket = websocket
        self._machine: SessionMachine[Receiver] = SessionMachine(
            hub.limits, hub.clock(), websocket=websocket
        )
        # Written by the actor only (NotifyClosed, Finished); read by anyone.
        self._close_info: tuple[int, str] | None = None
        self._finished = False
        self._close_waiter: asyncio.Future[None] | None = None
        # The mailbox. A list, not a deque: an empty deque is 760 bytes, an
        # empty list 56, and it rarely holds more than a command or two.
        self._mailbox: list[Command] = []
        self._pending_sends = 0  # characters of the Send commands in it
        self._pending_incoming = 0  # characters of the Incoming commands in it
        self._slack = 0  # see the class docstring
        self._overflow_posted = False
        # Whether the actor is idle: no step running or scheduled, no write
        # in progress, no task. Whoever turns it False owns the next step.
        # Starts False: _start schedules the first step.
        self._parked = False
        # Whether the handler's task owns the next step: it turned _parked
        # False by a send, and _HandlerRun runs the step as it suspends.
        self._owed = False
        # Actions the machine returned and the actor has yet to perform:
        # the running step's list, kept while the actor awaits a write;
        # None while the actor is parked, so an idle session holds no list.
        self._actions: list[Action[Receiver]] | None = None
        # The receiver the actor is awaiting a write to, if any.
        self._busy: Receiver | None = None
        # The inbox: made with the first message, idle sessions need none.
        self._inbox: deque[str] | None = None
        self._inbox_size = 0
        self._inbox_waiter: asyncio.Future[None] | None = None
        # Whether this session's backlog is over half its bound (published
        # to the endpoint by the actor), and until when a handler's batch may
        # wait for such sessions to drain.
        self._pressured = False
        # Set while inbound is paused; transports wait on it before reading more.
        self._gate: asyncio.Future[None] | None = None
        # The transports' per-session state (one sending request at a time).
        self._sender_turn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._handler_task: asyncio.Task[None] | None = None

    # --- the mailbox ------------------------------------------------------

    def _enter(self, command: Command, now: bool = False) -> None:
        """The one door into the session: queue ``command``; take the actor's token if it is free.

        Every way in comes here: the application's sends and close, the
        transports' connections and client messages, the sweeper's ticks,
        shutdown. The token is ``_parked``: while it is True the actor is
        idle, its mailbox empty and no action pending (asserted below under
        ``__debug__``); whoever turns it False owns the next step, and is
        the only one who may run it. The caller that takes it here either
        runs the step at once (``now``: a transport's task, the sweeper) or
        hands it on: to the handler's own task when the handler sent it
        (``_owed``; see _HandlerRun), else to the hub's loop callback. A
        command that finds the token taken waits for its owner, in order.

        One case is shorter, and taken before a command is made: client
        messages that reach a free actor when the machine says its step
        would only deliver them (``delivers_plainly``) go straight to the
        inbox, token in hand, which is all that step would do; the token is
        then put back (see ``Actor._deliver``).
        """
        if self._parked:
            if __debug__:
                assert not self._mailbox, "a parked actor is idle, its mailbox empty"
            self._parked = False
            if now:
                self._mailbox.append(command)
                self.step_parked()
                return
            self._mailbox.append(command)
            hub = self._hub
            if hub.running_handler is self:
                self._owed = True
                return
            ready = hub.ready
            if not ready:
                asyncio.get_running_loop().call_soon(hub.step_ready)
            ready.append(self)
            return
        if self._finished:
            # Found just before the session ended: do not leave it waiting.
            # (A finished actor is never parked.)
            if type(command) is Attach:
                command.receiver.release()
            elif type(command) is Incoming and command.processed is not None:
                command.processed.set_result(None)
            return
        self._mailbox.append(command)

    def _take_in(self, messages: list[str], size: int) -> None:
        raise NotImplementedError  # the actor's (see Performer._take_in)

    def step_parked(self) -> None:
        """Run the actor's step; the caller owns the token (see :meth:`_enter`)."""
        raise NotImplementedError  # the actor's (see Actor.step_parked)

    def _put_send(self, message: str) -> None:
        """Post a Send, keeping what waits for the actor within the send bound.

        The actor may be awaiting a write to a client that stopped reading;
        the sends made meanwhile wait here, so the bound is checked here too,
        by the machine's own rule, against what the machine holds plus what
        waits in the mailbox.
        """
        size = len(message)
        slack = self._slack - size
        if slack < 0:
            checked = self._admit_send(size)
            if checked is None:
                return
            slack = checked
        self._slack = slack
        self._pending_sends += size
        mailbox = self._mailbox
        if mailbox:
            # The burst's next message joins the send at the tail. A Send
            # there is taken as it is (the case of _tail_send that runs for
            # every message of a burst: 100 replies to a 100-message frame
            # cost a fifth more with the call).
            last = mailbox[-1]
            if type(last) is Send:
                last.messages.append(message)
                last.size += size
                return
            tail = self._tail_send()
            if tail is not None:
                tail.messages.append(message)
                tail.size += size
                return
        self._enter(message)

    def _put_sends(self, batch: Batch) -> None:
        """Post a batch of messages, in order.

        A batch within the bound is posted as one command; one that would
        cross it goes through :meth:`_put_send` message by message, so that
        the bound applies to each as if it had been sent alone.
        """
        size = batch.size
        slack = self._slack - size
        if slack < 0:
            held = self._machine.backlog + self._pending_sends
            if held + size > self._hub.limits.max_queue_size:
                for message in batch.messages:
                    self._put_send(message)
                return
            checked = self._admit_send(size)
            if checked is None:
                return
            slack = checked
        self._slack = slack
        self._pending_sends += size
        tail = self._tail_send()
        if tail is not None:
            tail.messages.extend(batch.messages)
            tail.size += size
            return
        self._enter(batch)

    def _tail_send(self) -> Send | None:
        """The mailbox's last command as a Send that may grow, if it is a send."""
        mailbox = self._mailbox
        if not mailbox:
            return None
        tail = as_send(mailbox[-1])
        if tail is not None:
            mailbox[-1] = tail
        return tail

    def _admit_send(self, size: int) -> int | None:
        """Apply the send bound to a send of ``size`` characters, the long way.

        Returns the new :attr:`_slack` once the send may be posted, or
        ``None`` when it must be dropped.
        """
        if self._overflow_posted or self._finished:
            return None
        # The machine's rule (admit_posted), applied to what waits here.
        verdict = self._machine.admit_posted(self._pending_sends, size)
        if verdict is not None:
            if verdict < 0:
                # Counted when the session closes for it (NotifyClosed).
                self._overflow_posted = True
                self._pending_sends = 0
                self._slack = -1
                # The sends waiting here are dropped, and the overflow goes
                # ahead of everything else.
                others = [c for c in self._mailbox if type(c) not in (Send, str, Batch)]
                self._mailbox.clear()
                busy = self._busy
                if busy is not None:
                    busy.abort()  # unblock the actor's write; see Receiver.abort
                self._enter(OVERFLOW)
                self._mailbox.extend(others)
                return None
            # drop_oldest: drop the oldest sends still waiting here, down
            # to what the machine allows.
            self._hub.overflows += 1
            mailbox = self._mailbox
            for i, command in enumerate(mailbox):
                send = as_send(command)
                if send is None:
                    continue
                mailbox[i] = send
                waiting = send.messages
                while waiting and self._pending_sends > verdict:
                    dropped = len(waiting.pop(0))
                    send.size -= dropped
                    self._pending_sends -= dropped
        slack = self._machine.slack(self._pending_sends + size)
        if slack < 0 and not self._pressured:
            # Raised here, at once, so that a handler's next message waits
            # (see _fair); only the actor lowers it, once the queue drains.
            self._pressured = True
            self._hub.pressure(True)
        return slack
