"""The actor: the one owner at a time that applies a session's commands.

:class:`Actor` is the base of :class:`~aiohttp_sockjs.session.Session`. It
is the only caller of the session's
:class:`~aiohttp_sockjs.machine.SessionMachine`: it takes the commands of
the mailbox in order, asks the machine, and performs the actions the
machine returns through its base, :class:`~aiohttp_sockjs.performer.Performer`
(writes to the :class:`~aiohttp_sockjs.receiver.Receiver`, the inbox, the
close). See ``docs/architecture.md`` for who may do what and the invariants.

The module's functions are the seam for the transports and the endpoint:
they attach and detach connections, hand over client messages, tick,
shut down and sweep, without reaching for the session's private names.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import Any

from .actions import (
    Action,
    SendClose,
)
from .commands import (
    SHUTDOWN,
    TICK,
    WRITES,
    Attach,
    Batch,
    Close,
    Command,
    Consumed,
    Detach,
    Incoming,
    Overflow,
    Send,
    Shutdown,
    Tick,
    Write,
)
from .performer import Performer
from .receiver import Receiver

log = logging.getLogger("aiohttp_sockjs")


class Actor(Performer):
    """The session's actor: applies its commands, one owner at a time."""

    __slots__ = ()

    # --- entry points for transports and the endpoint ----------------------

    def _attach(self, receiver: Receiver) -> None:
        """A connection that can carry frames arrived.

        Taken at once when the actor is free: a poll is answered from what
        is queued before its request handler even awaits.
        """
        self._enter(Attach(receiver), now=True)

    def _detach(
        self, receiver: Receiver, interrupted: bool, client_code: int | None = None
    ) -> None:
        self._enter(Detach(receiver, interrupted, client_code))

    def _deliver(
        self, messages: list[str], size: int, wait: bool = False, charged: int | None = None
    ) -> Awaitable[None] | None:
        """Hand client messages to the session.

        Returns ``None`` when the caller may go on at once: the messages
        were taken, or may be left queued for the actor, and the inbox has
        room. Otherwise an awaitable to await first. With ``wait``, it is
        done once the actor has taken the messages (the caller checks for
        room itself, before its next delivery). Without, it is done once
        the actor has taken them, if what waits for it would pass
        ``max_inbox_size``, and then the inbox has room: a websocket reads
        no more until then.
        """
        if self._parked:
            # Taken at once (see _enter): nothing to wait for. The door's
            # plain case first, before a command is made: when all the step
            # would do is deliver (delivers_plainly), do just that, with the
            # token taken for the inbox write and put back after.
            if self._machine.delivers_plainly(size, self._inbox_size):
                self._parked = False
                self._take_in(messages, size)
                self._parked = True
                if __debug__:
                    # delivers_plainly: the inbox stays under its bound, so
                    # inbound is not paused and the caller may read on.
                    assert self._gate is None, "delivered plainly while inbound is paused"
                return None
            self._enter(Incoming(messages, size, None, charged), now=True)
            return None if wait or self._gate is None else self._room()
        self._pending_incoming += size
        processed = None
        if wait or self._pending_incoming > self._hub.limits.max_inbox_size:
            processed = asyncio.get_running_loop().create_future()
        self._enter(Incoming(messages, size, processed, charged))
        if wait or (processed is None and self._gate is None):
            return processed
        return self._read_on(processed)

    async def _read_on(self, processed: asyncio.Future[None] | None) -> None:
        """Wait until the actor has taken client messages, then for room in the inbox."""
        if processed is not None:
            await processed
        await self._room()

    async def _room(self) -> None:
        """Wait until the application's inbox has room for more client messages."""
        gate = self._gate
        if gate is not None:
            await asyncio.shield(gate)

    def _tick(self) -> None:
        """The sweeper found the deadline due (see :func:`sweep`).

        A free actor takes the tick at once, from the sweeper, so a
        heartbeat that can be written at once starts no task and schedules
        no callback. The caller must not be iterating the endpoint's
        session table: the step may finish the session, which then leaves
        it.
        """
        if self._parked:
            if not self._tick_plainly():
                self._enter(TICK, now=True)
            return
        busy = self._busy
        if busy is not None and self._machine.write_overdue(self._hub.clock()):
            # The actor is stuck writing to a client that stopped reading;
            # cut the connection, as the mailbox does on overflow (see
            # Receiver.abort): the write fails and the actor carries on.
            busy.abort()
        if TICK not in self._mailbox:
            self._enter(TICK)

    def _tick_plainly(self) -> bool:
        """The door's plain case for the sweeper's tick: a heartbeat written at once.

        The actor is free (its caller saw the token parked). When the machine
        says all the tick's step would do is send a heartbeat
        (``ticks_plainly``), the connection is live, its last probe answered,
        and it takes the heartbeat without waiting, the heartbeat is written
        here, token in hand, and the machine told (``beat``): what the step
        would have done, with no command, action list or ``written()``.
        Returns whether it did; if not, nothing was done and the tick goes
        through the door.
        """
        machine = self._machine
        now = self._hub.clock()
        receiver = machine.ticks_plainly(now)
        if (
            receiver is None
            or not receiver.sends_now
            or receiver.single_frame
            or receiver.unanswered()
            or receiver.interrupted()
        ):
            return False
        self._parked = False
        try:
            written = receiver.send_heartbeat_now()
            if written:
                self._traffic.heartbeats += 1  # as _write counts it
                machine.beat(now)
        finally:
            self._parked = True
        return written

    def _shutdown(self) -> None:
        self._enter(SHUTDOWN)

    def step_parked(self) -> None:
        """Run the actor's next step here; hand a write that must wait to a task.

        The caller has just turned ``_parked`` False (or is the endpoint's
        callback for the one who did): the actor has an empty action list,
        nothing in progress and no task, and the caller is the only one
        allowed to step it. Running :meth:`_step` here is then exactly what
        an actor task would do: the same step, in the same order. When the
        step returns a write that cannot complete at once, a task is made
        for it (:meth:`_drive`) and owns the actor until it parks again; an
        idle session holds no task at all.
        """
        if __debug__:
            assert not self._parked, "the caller took the actor's token"
        try:
            action = self._step()
        except Exception:
            log.exception("SockJS session failed; closing it")
            self._fail()
            action = None
        if action is not None:
            self._task = asyncio.ensure_future(self._drive(action))
        elif not self._finished:
            self._parked = True
        elif self._mailbox:
            self._task = asyncio.ensure_future(self._answer_late())

    async def _drive(self, action: Write) -> None:
        """The actor while it waits on writes: write, step, until it may park."""
        try:
            while True:
                await self._write(action)
                if self._finished:
                    break
                try:
                    next_action = self._step()
                except Exception:
                    log.exception("SockJS session failed; closing it")
                    self._fail()
                    break
                if next_action is None:
                    if not self._finished:
                        self._parked = True
                        return
                    break
                action = next_action
        except asyncio.CancelledError:
            # Shutdown cancels an actor stuck on a client: still end cleanly.
            self._fail(cancelled=True)
            raise
        finally:
            self._busy = None
            if self._finished:
                await self._answer_late()

    async def _answer_late(self) -> None:
        """Apply what arrived while the session was ending.

        The machine answers each connection that came with the close frame
        (its ``attach()`` on a finished session); client messages are dropped.
        """
        mailbox = self._mailbox
        machine = self._machine
        while mailbox:
            command = mailbox.pop(0)
            if type(command) is Attach:
                receiver = command.receiver
                for action in machine.attach(receiver, self._hub.clock()):
                    assert type(action) is SendClose, action
                    try:
                        await receiver.send_close(action.code, action.reason)
                    except BaseException:
                        receiver.release()
                        raise
            elif type(command) is Incoming and command.processed is not None:
                command.processed.set_result(None)

    def _step(self) -> Write | None:
        """Apply commands and perform their actions until one must be awaited.

        The one place that calls the machine, with the methods it calls
        (:meth:`_apply` and :meth:`_tick_command`; :meth:`_write_now` and
        :meth:`_write`, which report writes). Returns the write to await, or
        ``None`` once the mailbox is empty (or the session finished).
        """
        actions = self._actions
        if actions is None:
            actions = self._actions = []
        mailbox = self._mailbox
        machine = self._machine
        # Whether the last command taken was flushed with it (send_and_flush):
        # nothing has been queued since, so no flush() is due.
        flushed = False
        while True:
            if actions:
                write = self._perform_all(actions)
                if write is not None:
                    return write
            if self._finished:
                return None
            if not mailbox:
                # Every command applied: what they queued goes out together.
                batch = None if flushed else machine.flush()
                if not batch:
                    break
                actions.extend(batch)
                continue
            command = mailbox.pop(0)
            # Sends, the most frequent commands by far, before _apply's cases.
            if type(command) is str:
                messages = [command]
                size = len(command)
            elif type(command) is Send:
                messages = command.messages
                size = command.size
            elif type(command) is Batch:
                messages = list(command.messages)
                size = command.size
            else:
                flushed = False
                self._apply(command, actions)
                continue
            self._pending_sends -= size
            if mailbox:
                actions.extend(machine.send_all(messages, size))
                continue
            # The mailbox's last send: straight out when the connection
            # takes it at once (sends_plainly: send_and_flush() and
            # written() would then leave the machine as it is), and the
            # step is over with no action made. Counted as _write_now does.
            receiver = machine.sends_plainly(size, len(messages))
            if (
                receiver is not None
                and receiver.sends_now
                and not receiver.single_frame
                and receiver.send_messages_now(messages)
            ):
                traffic = self._traffic
                traffic.messages_out += len(messages)
                traffic.chars_out += size
                break
            flushed = True
            actions.extend(machine.send_and_flush(messages, size))
        # The step is over with no action left: an idle session holds no list.
        self._actions = None
        if self._pressured:
            self._publish_pressure()
        return None

    def _perform_all(self, actions: list[Action[Receiver]]) -> Write | None:
        """Perform ``actions`` in order, with what writes add, until a write must be awaited.

        Returns that write (the rest stay in ``actions``), or ``None`` once
        all are done.
        """
        while actions:
            action = actions.pop(0)
            if type(action) in WRITES:
                if self._write_now(action, actions):  # type: ignore[arg-type]
                    continue
                if self._pressured:
                    self._publish_pressure()
                return action  # type: ignore[return-value]
            self._perform(action)
        return None

    def _apply(self, command: Command, actions: list[Action[Receiver]]) -> None:
        """Apply a command other than a send: the machine's answer joins ``actions``."""
        machine = self._machine
        now = self._hub.clock()
        # By type, as _perform does, in the order of how often they come:
        # ticks (the sweeper, for every idle session), client messages, a
        # poll's attach and detach, then the rest.
        kind = type(command)
        if kind is Tick:
            actions.extend(self._tick_command(now))
        elif kind is Incoming:
            incoming: Incoming = command  # type: ignore[assignment]
            size = incoming.size
            if self._pending_incoming:
                self._pending_incoming = max(0, self._pending_incoming - size)
            actions.extend(
                machine.incoming(
                    incoming.messages, size, self._inbox_size, now, charged=incoming.charged
                )
            )
            if incoming.processed is not None:
                incoming.processed.set_result(None)
        elif kind is Attach:
            receiver = command.receiver  # type: ignore[union-attr]
            current = machine.receiver
            gone = current is not None and current.interrupted()
            actions.extend(machine.attach(receiver, now, current_gone=gone))
        elif kind is Detach:
            detach: Detach = command  # type: ignore[assignment]
            actions.extend(
                machine.detach(
                    detach.receiver,
                    now,
                    interrupted=detach.interrupted,
                    client_code=detach.client_code,
                )
            )
        elif kind is Close:
            actions.extend(machine.close(command.code, command.reason, now))  # type: ignore[union-attr]
        elif kind is Consumed:
            actions.extend(machine.consumed(self._inbox_size))
        elif kind is Overflow:
            self._overflow_posted = False
            actions.extend(machine.overflow())
        elif kind is Shutdown:
            actions.extend(machine.shutdown(now))

    def _tick_command(self, now: float) -> list[Action[Receiver]]:
        """The machine's answer to the sweeper's tick, with what the connection knows."""
        mailbox = self._mailbox
        pending = bool(mailbox) and any(type(c) is Attach for c in mailbox)
        machine = self._machine
        receiver = machine.receiver
        if receiver is None:
            return machine.tick(now, attach_pending=pending)
        return machine.tick(
            now,
            attach_pending=pending,
            lost=receiver.interrupted(),
            unanswered=receiver.unanswered(),
        )


# --- the seam: what the transports and the endpoint call ---------------------
#
# Named functions rather than the actor's methods, so that no other module
# reads a session's private names. Each is the actor's own method (the same
# function object: no call is added on the hot paths).

#: A connection that can carry frames arrived (see :meth:`Actor._attach`).
attach = Actor._attach
#: A connection ended; ``interrupted`` if its client went away.
detach = Actor._detach
#: Client messages for the session; returns what to await before going on, if anything.
deliver = Actor._deliver
#: Wait until the application's inbox has room for more client messages.
room = Actor._room
#: The sweeper found the session's deadline due.
tick = Actor._tick
#: The server is going away.
shutdown = Actor._shutdown
#: Start the actor, then the application's handler.
start = Actor._start


def inbound_paused(actor: Actor) -> bool:
    """Whether the session's inbox is full: transports wait for :func:`room` before reading more."""
    return actor._gate is not None


def finished(actor: Actor) -> bool:
    """Whether the session has finished (it has left, or is leaving, its endpoint)."""
    return actor._finished


def session_id(actor: Actor) -> str | None:
    """The id the client chose (``None`` for a raw websocket)."""
    return actor._id


def handler_task(actor: Actor) -> asyncio.Task[None] | None:
    """The task running the application's handler, while it runs."""
    return actor._handler_task


def attached(actor: Actor) -> Receiver | None:
    """The connection attached to the session, if any (read only)."""
    return actor._machine.receiver


def writing(actor: Actor) -> bool:
    """Whether the actor is waiting on a write to its client."""
    return actor._busy is not None


def backlog(actor: Actor) -> int:
    """Characters of outbound messages held: queued, being written, or posted."""
    return actor._machine.backlog + actor._pending_sends


def owns_token(actor: Actor) -> bool:
    """Whether someone holds the actor's token (it is not parked)."""
    return not actor._parked


def mailbox(actor: Actor) -> list[Command]:
    """The session's mailbox (for the test seam's invariant tests)."""
    return actor._mailbox


def machine(actor: Actor) -> Any:
    """The session's machine (for the test seam)."""
    return actor._machine


def set_machine(actor: Actor, machine: Any) -> None:
    """Put a stand-in for the session's machine (for the test seam's watch_machine)."""
    actor._machine = machine


def sender_turn(actor: Actor) -> Any:
    """The transports' per-session state for sending requests (``None`` until they set it)."""
    return actor._sender_turn


def set_sender_turn(actor: Actor, turn: Any) -> None:
    """Keep the transports' per-session state for sending requests."""
    actor._sender_turn = turn


def post_encoded(actor: Actor, raw: str, encoded: str) -> None:
    """A broadcast's message, encoded once for every session: queue the right form."""
    if actor._close_info is None:
        actor._put_send(raw if actor._raw else encoded)


def post_encoded_many(actor: Actor, raw: Batch, encoded: Batch) -> None:
    """A broadcast's batch, made once for every session: queue the right form."""
    if actor._close_info is None:
        actor._put_sends(raw if actor._raw else encoded)


def sweep(actors: Iterable[Actor], now: float) -> list[Actor]:
    """The sweeper's walk: drop dead polling and streaming connections, return the due.

    The caller ticks the sessions returned (:func:`tick`) after the walk: a
    tick may run a parked actor's step at once, and a session that
    finishes leaves the table being walked.
    """
    due = []
    for actor in actors:
        machine = actor._machine
        # A websocket session's own read loop sees its socket end and
        # detaches, so only polling and streaming requests are asked:
        # this halves the cost of a sweep over idle websockets.
        if not actor._websocket:
            receiver = machine.receiver
            if receiver is not None and receiver.interrupted():
                actor._detach(receiver, True)
        if machine.deadline <= now:
            due.append(actor)
    return due


async def shutdown_all(
    actors: list[Actor], others: Iterable[asyncio.Task[None]], timeout: float
) -> None:
    """Close every session with 1001 and wait, for at most ``timeout``, for them to end.

    ``others`` are the handlers still running for sessions that already
    left their endpoint. A handler or actor still busy after ``timeout``
    is cancelled (an actor stuck writing has its connection cut first).
    """
    for actor in actors:
        actor._shutdown()
    # Parked actors take the Shutdown from the endpoint's next callback;
    # one that must then wait on a write starts a task, waited for below.
    await asyncio.sleep(0)
    tasks = [a._task for a in actors if a._task is not None]
    handlers = [a._handler_task for a in actors if a._handler_task is not None]
    pending = [t for t in tasks + handlers if not t.done()] + list(others)
    if not pending:
        return
    _, still = await asyncio.wait(pending, timeout=timeout)
    for actor in actors:
        busy = actor._busy
        if actor._task in still and busy is not None:
            # Stuck writing to a client that stopped reading: cut it.
            busy.abort()
    for task in still:
        task.cancel()
    if still:
        await asyncio.wait(still, timeout=timeout)
