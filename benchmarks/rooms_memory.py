"""What a room costs in memory, in-process (tracemalloc).

``python -m benchmarks.rooms_memory`` opens sessions on an endpoint with
no sockets (:mod:`aiohttp_sockjs.testing`) and has them join rooms, then
prints the bytes traced per membership for:

- each session in rooms of its own (every join makes a room: the worst
  case per join), with short names and with names of the longest
  ``max_room_name_length`` allows (ASCII, and 4-byte characters);
- every session in the same rooms (a join adds a member to an existing room).

The worst case for one session is ``max_rooms_per_session`` times the
first figure with the longest names; security.rst uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tracemalloc
from collections.abc import Callable

from aiohttp_sockjs.options import Options
from aiohttp_sockjs.testing import make_endpoint, open_session


def _per_join(sessions: int, rooms: int, name: Callable[[int, int], str]) -> float:
    endpoint = make_endpoint(max_sessions=None)
    opened = [open_session(endpoint, None, f"s{i}") for i in range(sessions)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    # Names are made inside the traced window: the registry keeps them
    # alive, as it keeps the names clients send.
    for i, session in enumerate(opened):
        for r in range(rooms):
            session.join(name(i, r))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / (sessions * rooms)


async def _main(sessions: int, rooms: int) -> None:
    longest = Options().max_room_name_length
    assert longest is not None

    def short(i: int, r: int) -> str:
        return f"room:{i}:{r}"

    def long_ascii(i: int, r: int) -> str:
        return f"{i}:{r}:".ljust(longest, "x")

    def long_wide(i: int, r: int) -> str:
        return f"{i}:{r}:".ljust(longest, "\U0001f600")

    def shared(i: int, r: int) -> str:
        return f"room:{r}"

    print(f"{sessions} sessions x {rooms} rooms each; bytes per join (tracemalloc)")
    rows = [
        ("own rooms, short names (~12 chars)", short),
        (f"own rooms, {longest}-char ASCII names", long_ascii),
        (f"own rooms, {longest}-char 4-byte names", long_wide),
        ("shared rooms (a member more)", shared),
    ]
    for label, name in rows:
        print(f"  {label:<40} {_per_join(sessions, rooms, name):8.0f}")


def main() -> None:
    """Run from the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rooms_memory")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(_main(args.sessions, args.rooms))


if __name__ == "__main__":
    main()
