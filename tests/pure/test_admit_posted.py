"""The send bound on what waits in a driver's mailbox (SessionMachine.admit_posted)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aiohttp_sockjs.limits import Limits, admits
from aiohttp_sockjs.machine import SessionMachine


class Rx:
    """A receiver token."""


def machine_holding(held: int, bound: int, policy: str) -> SessionMachine[Rx]:
    limits = Limits(
        heartbeat_delay=25.0,
        disconnect_delay=5.0,
        max_queue_size=bound,
        queue_overflow=policy,  # type: ignore[arg-type]
        max_inbox_size=1 << 20,
        rate_limit=None,
    )
    machine: SessionMachine[Rx] = SessionMachine(limits, 0.0)
    machine.attach(Rx(), 0.0)  # the open frame is in flight: sends queue
    for _ in range(held):
        machine.send("x")
    return machine


@given(
    held=st.integers(0, 12),
    waiting=st.lists(st.integers(1, 6), max_size=6),
    size=st.integers(1, 15),
    bound=st.integers(1, 20),
)
def test_drop_oldest_keeps_what_one_by_one_dropping_would(
    held: int, waiting: list[int], size: int, bound: int
) -> None:
    """The answer is where dropping the oldest waiting message, one at a time, stops."""
    machine = machine_holding(min(held, bound), bound, "drop_oldest")
    backlog = machine.backlog
    posted = sum(waiting)
    verdict = machine.admit_posted(posted, size)
    if admits(backlog + posted, size, bound):
        assert verdict is None
        return
    assert verdict is not None and verdict >= 0
    # The reference: drop the oldest until the bound admits the send.
    left = list(waiting)
    while left and not admits(backlog + sum(left), size, bound):
        left.pop(0)
    kept = list(waiting)
    while kept and sum(kept) > verdict:
        kept.pop(0)
    assert kept == left


def test_close_policy_refuses_what_does_not_fit() -> None:
    machine = machine_holding(8, 10, "close")
    assert machine.admit_posted(0, 2) is None
    assert machine.admit_posted(1, 2) == -1
    # An empty queue takes any one message, however large.
    assert machine_holding(0, 10, "close").admit_posted(0, 50) is None
