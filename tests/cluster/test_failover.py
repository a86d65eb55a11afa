"""Three processes, one Redis, nginx: a process dies, an outside job publishes.

Python clients over websocket, xhr_streaming and xhr polling talk to
``/relay`` (see server.py) through nginx configured by the deployment recipe.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp

from aiohttp_sockjs.broker import Publisher, SyncPublisher

from .clients import TRANSPORTS, Relay
from .conftest import RelayCluster

MESSAGES = 10


async def open_spread(http: aiohttp.ClientSession, origin: str, processes: set[str]) -> list[Relay]:
    """Clients of every transport until each transport has a session on every process."""
    clients: list[Relay] = []
    for transport in TRANSPORTS:
        seen: set[str] = set()
        for _ in range(40):
            client = await Relay.open(http, origin, transport)
            clients.append(client)
            seen.add(client.process)
            if seen == processes:
                break
        assert seen == processes, f"{transport} sessions only reached {seen}"
    return clients


def expected_presence(clients: list[Relay], room: str) -> dict[str, object]:
    return {
        "sessions": len(clients),
        "rooms": {room: len(clients)},
        "processes": dict(Counter(c.process for c in clients)),
    }


async def wait_for_presence(
    asker: Relay, want: dict[str, object], timeout: float
) -> dict[str, object]:
    """Ask ``asker``'s process for presence until it is ``want`` (at most ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while True:
        figures = await asker.presence()
        if figures == want or time.monotonic() > deadline:
            return figures
        await asyncio.sleep(0.05)


async def chat_round(senders: list[Relay], everyone: list[Relay], tag: str) -> None:
    """Each sender says MESSAGES numbered lines to the room; everyone hears each in order."""
    for sender in senders:
        await sender.send(*(f"room:chat:{tag} {sender.sid} {i}" for i in range(MESSAGES)))
    for client in everyone:
        got = await client.take(MESSAGES * len(senders))
        by_sender: dict[str, list[int]] = {}
        for message in got:
            label, sid, number = message.split(" ")
            assert label == tag, got
            by_sender.setdefault(sid, []).append(int(number))
        want = {s.sid: list(range(MESSAGES)) for s in senders}
        assert by_sender == want, f"{client} heard {by_sender}"


async def test_sigkill_clients_move_and_presence_forgets(relay_cluster: RelayCluster) -> None:
    cluster = relay_cluster.cluster
    names = {b.name for b in cluster.backends}
    async with aiohttp.ClientSession() as http:
        clients = await open_spread(http, cluster.origin, names)
        try:
            for client in clients:
                assert await client.command("join:chat") == "joined:chat"
            want = expected_presence(clients, "chat")
            # Every process sees the same counts.
            for name in sorted(names):
                asker = next(c for c in clients if c.process == name)
                figures = await wait_for_presence(asker, want, 10)
                assert figures == want, f"presence asked on {name}"
            await chat_round([clients[0], clients[-1]], clients, "before")

            victim = cluster.by_name("p1")
            victim.kill()
            killed_at = time.monotonic()
            lost = [c for c in clients if c.process == "p1"]
            kept = [c for c in clients if c.process != "p1"]
            for client in lost:
                # The proxy ends their connections; a poll gets 502, a send 404.
                await client.wait_closed()
            # The others never noticed.
            assert not [c for c in kept if c.closed], kept

            # What a client application does: connect again (a new session,
            # which nginx can only give to a live process) and rejoin.
            moved = []
            for client in lost:
                replacement = await Relay.open(http, cluster.origin, client.transport)
                assert replacement.process in names - {"p1"}, replacement
                assert await replacement.command("join:chat") == "joined:chat"
                moved.append(replacement)
                await client.close()
            clients = kept + moved
            await chat_round([moved[0], kept[0], moved[-1]], clients, "after")

            # p1's heartbeat stops; its sessions leave the counts once its
            # presence key expires (process_ttl, 1 s here).
            want = expected_presence(clients, "chat")
            figures = await wait_for_presence(kept[0], want, relay_cluster.process_ttl + 5)
            forgotten_after = time.monotonic() - killed_at
            assert figures == want, f"presence {forgotten_after:.1f} s after the kill"
            print(f"presence forgot p1 {forgotten_after:.2f} s after SIGKILL")
            assert "Traceback" not in cluster.new_log()
        finally:
            for client in clients:
                await client.close()


async def test_external_publisher_reaches_a_room_across_processes(
    relay_cluster: RelayCluster,
) -> None:
    cluster = relay_cluster.cluster
    names = {b.name for b in cluster.backends}
    async with aiohttp.ClientSession() as http:
        clients = await open_spread(http, cluster.origin, names)
        try:
            # On every process, some sessions are in the room and some not.
            # (open_spread left at least three sessions on each process.)
            members = []
            for name in sorted(names):
                members += [c for c in clients if c.process == name][::2]
            others = [c for c in clients if c not in members]
            assert {c.process for c in members} == names == {c.process for c in others}
            for client in members:
                assert await client.command("join:team") == "joined:team"
            want = expected_presence(members, "team")
            want["sessions"] = len(clients)
            want["processes"] = dict(Counter(c.process for c in clients))
            assert await wait_for_presence(clients[0], want, 10) == want

            # A cron script: synchronous, no event loop of its own (a thread here).
            def cron() -> None:
                with SyncPublisher(relay_cluster.redis.url) as publisher:
                    for i in range(MESSAGES):
                        publisher.publish("/relay", f"sync {i}", room="team")

            await asyncio.to_thread(cron)
            async with Publisher(relay_cluster.redis.url) as publisher:
                for i in range(MESSAGES):
                    await publisher.publish("/relay", f"async {i}", room=["team", "nobody"])
            news = [f"sync {i}" for i in range(MESSAGES)] + [f"async {i}" for i in range(MESSAGES)]
            for client in members:
                assert await client.take(len(news)) == news, client
            # Now a broadcast to everyone: the others' next message is this
            # one, so nothing for the room reached them.
            await clients[1].send("all:end")
            for client in clients:
                assert await client.next() == "end", client
            assert "Traceback" not in cluster.new_log()
        finally:
            for client in clients:
                await client.close()
