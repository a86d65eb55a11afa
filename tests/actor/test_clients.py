"""The table of clients: sessions and a shared rate per client, with an injected clock."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from aiohttp_sockjs import RateLimit, Session, testing
from aiohttp_sockjs.clients import MAX_IDLE_CLIENTS, Clients
from tests.actor.test_actor import Recorder, settle
from tests.wire import ManualClock


class _Socket:
    def __init__(self, peer: str) -> None:
        self.peer = (peer, 40000)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def is_closing(self) -> bool:
        return False


def from_address(peer: str) -> Any:
    return make_mocked_request("GET", "/", headers=CIMultiDict(), transport=_Socket(peer))


async def handler(session: Session) -> None:
    async for _ in session:
        pass


def endpoint_with(clock: ManualClock, **options: Any) -> Any:
    return testing.make_endpoint(handler, clock=clock, **options)


def open_from(endpoint: Any, peer: str, sid: str) -> Session:
    return testing.open_session(endpoint, Recorder(), sid, request=from_address(peer))


async def test_no_table_when_the_options_are_off() -> None:
    endpoint = endpoint_with(ManualClock(), max_sessions_per_client=None)
    assert endpoint.clients is None


async def test_sessions_are_counted_per_client_and_forgotten() -> None:
    clock = ManualClock()
    endpoint = endpoint_with(clock, max_sessions_per_client=2, disconnect_delay=1.0)
    clients: Clients = endpoint.clients
    a1, a2 = open_from(endpoint, "192.0.2.1", "a1"), open_from(endpoint, "192.0.2.1", "a2")
    b = open_from(endpoint, "192.0.2.2", "b")
    assert clients.sessions("192.0.2.1") == 2 and clients.sessions("192.0.2.2") == 1
    assert clients.refuses(from_address("192.0.2.1"))
    assert not clients.refuses(from_address("192.0.2.2"))
    await a1.close()
    await settle()
    clock.now += 2.0  # past disconnect_delay: the session is forgotten
    endpoint.sweep()
    await settle()
    assert clients.sessions("192.0.2.1") == 1
    assert not clients.refuses(from_address("192.0.2.1"))
    for session in (a2, b):
        await session.close()
    await settle()
    clock.now += 2.0
    endpoint.sweep()
    await settle()
    assert len(clients) == 0  # no rate limit: nothing is kept for a client with no session
    clients.remove(a2)  # forgetting twice does nothing
    assert len(clients) == 0


RATE = RateLimit(messages_per_second=10, bytes_per_second=None, burst=2.0)


async def test_the_rate_is_shared_by_the_clients_sessions() -> None:
    clock = ManualClock()
    endpoint = endpoint_with(clock, client_rate_limit=RATE)
    clients: Clients = endpoint.clients
    mine = [open_from(endpoint, "192.0.2.1", f"m{i}") for i in range(4)]
    theirs = open_from(endpoint, "192.0.2.2", "t")
    # 20 messages at once (10 a second, 2 seconds of burst), over any sessions.
    for i in range(20):
        assert clients.admit(mine[i % 4], 1, 1)
    assert clients.admit(theirs, 20, 20)  # another client has a bucket of its own
    assert not clients.admit(mine[0], 1, 1)  # the transport then closes that session
    # Refused messages took nothing: a tenth of a second later, one more fits.
    clock.now += 0.1
    assert clients.admit(mine[1], 1, 1)
    assert not clients.admit(mine[2], 1, 1)


async def test_a_client_cannot_refill_its_bucket_by_reconnecting() -> None:
    clock = ManualClock()
    endpoint = endpoint_with(clock, client_rate_limit=RATE, disconnect_delay=1.0)
    clients: Clients = endpoint.clients
    first = open_from(endpoint, "192.0.2.1", "s1")
    assert clients.admit(first, 20, 20)
    await first.close()
    await settle()
    clock.now += 1.5
    endpoint.sweep()
    await settle()
    assert clients.sessions("192.0.2.1") == 0
    assert len(clients) == 1  # kept while its bucket refills
    again = open_from(endpoint, "192.0.2.1", "s2")
    assert clients.admit(again, 15, 15)  # 1.5 s refilled 15 messages, no more
    assert not clients.admit(again, 1, 1)


async def test_idle_clients_are_dropped_once_refilled_and_are_bounded() -> None:
    clock = ManualClock()
    endpoint = endpoint_with(clock, client_rate_limit=RATE, disconnect_delay=1.0)
    clients: Clients = endpoint.clients
    sessions = [open_from(endpoint, f"10.0.{i // 250}.{i % 250}", f"s{i}") for i in range(600)]
    for session in sessions:
        clients.admit(session, 20, 20)
    for session in sessions:
        clients.remove(session)
    assert len(clients) == 600  # none has refilled yet
    clock.now += RATE.burst  # every bucket is full again
    last = open_from(endpoint, "192.0.2.9", "last")
    clients.admit(last, 20, 20)
    clients.remove(last)
    assert len(clients) == 1  # the refilled ones went as the next one became idle


async def test_the_idle_entries_are_capped() -> None:
    clock = ManualClock()
    clients = Clients(rate_limit=RATE, clock=clock, max_idle=50)
    assert Clients().max_idle == MAX_IDLE_CLIENTS
    endpoint = endpoint_with(clock, max_sessions_per_client=None)
    for i in range(80):
        session = open_from(endpoint, f"10.0.0.{i}", f"s{i}")
        clients.add(session)
        clients.admit(session, 1, 1)
        clients.remove(session)
        assert len(clients) == min(i + 1, 50)
    assert clients.sessions("10.0.0.79") == 0
    assert "10.0.0.0" not in clients._by_key  # the oldest went first
