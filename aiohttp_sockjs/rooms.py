"""Rooms: named groups of sessions, one registry per endpoint.

A session joins and leaves rooms by name (:meth:`Session.join`,
:meth:`Session.leave`); :meth:`Endpoint.broadcast` with ``room=`` reaches
the members of one room or of several (each session once). The registry
lives on the endpoint (:attr:`Endpoint.rooms`) and works in one process
with no broker; with a broker, broadcasts to rooms also reach the members
on the other processes of the cluster.

The registry is plain bookkeeping, called from the event loop's thread
only: it never sends, waits or touches a session's state. It holds the
endpoint's room limits (``max_rooms_per_session``,
``max_room_name_length``): a join past them raises
:class:`~aiohttp_sockjs.exceptions.RoomLimitExceeded` and changes nothing,
so rooms, and the presence counts made from them, stay bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from .exceptions import RoomLimitExceeded

__all__ = ["LOCAL_PROCESS", "Presence", "RoomSpec", "Rooms", "room_names"]

#: What ``room=`` accepts: one room name, or several.
RoomSpec = str | Iterable[str]


class RoomMember(Protocol):
    """What a room holds: a session, as far as rooms need to know."""

    @property
    def closed(self) -> bool:
        """Whether the session has closed (a closed session joins nothing)."""


Session = TypeVar("Session", bound=RoomMember)

#: The process name :attr:`Presence.processes` uses for an endpoint without a broker.
LOCAL_PROCESS = "local"


@dataclass(frozen=True)
class Presence:
    """Who is connected to an endpoint, across every process of the cluster.

    Returned by :meth:`Endpoint.presence` (and by the broker's and the
    publisher's ``presence()``). Only open sessions count: a closing one
    receives no more broadcasts and is not counted.
    """

    #: Open sessions in total.
    sessions: int
    #: Open sessions per room, for every room with at least one member.
    rooms: Mapping[str, int] = field(default_factory=dict)
    #: Open sessions per live process, by process id (with no broker, one
    #: entry named :data:`LOCAL_PROCESS`). A process shows up here, with its
    #: count, while its heartbeat is fresh.
    processes: Mapping[str, int] = field(default_factory=dict)


def room_names(room: RoomSpec) -> tuple[str, ...]:
    """Normalise a ``room=`` argument to a tuple of distinct names, in order.

    Raises :class:`TypeError` for anything but a string or an iterable of
    strings, so that ``room=b"x"`` or ``room=42`` fails at the call.
    """
    if isinstance(room, str):
        return (room,)
    if isinstance(room, (bytes, bytearray)) or not isinstance(room, Iterable):
        raise TypeError(f"room must be a str or an iterable of str, not {type(room).__name__}")
    names = tuple(dict.fromkeys(room))
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"room names are str, not {type(name).__name__}")
    return names


class Rooms(Generic[Session]):
    """The rooms of one endpoint: which sessions are in which room.

    Rooms exist while they have members: the last session to leave a room
    removes it. A session that has closed is in no room. A session is in
    at most ``max_rooms_per_session`` rooms, whose names are at most
    ``max_room_name_length`` characters (``None``: no limit).
    """

    __slots__ = ("_members", "_rooms_of", "max_room_name_length", "max_rooms_per_session")

    def __init__(
        self, max_rooms_per_session: int | None = None, max_room_name_length: int | None = None
    ) -> None:
        self._members: dict[str, set[Session]] = {}
        self._rooms_of: dict[Session, set[str]] = {}
        self.max_rooms_per_session = max_rooms_per_session
        self.max_room_name_length = max_room_name_length

    def __repr__(self) -> str:
        return f"<Rooms rooms={len(self._members)} sessions={len(self._rooms_of)}>"

    def __len__(self) -> int:
        """How many rooms have members."""
        return len(self._members)

    def __iter__(self) -> Iterator[str]:
        """Iterate over a snapshot of the names of the rooms that have members."""
        return iter(list(self._members))

    def __contains__(self, room: object) -> bool:
        return room in self._members

    def join(self, session: Session, room: str) -> None:
        """Put ``session`` in ``room``; joining twice is the same as once.

        A closed session joins nothing: it would never leave again. Raises
        :class:`~aiohttp_sockjs.exceptions.RoomLimitExceeded` for a name
        past ``max_room_name_length``, or a new room past
        ``max_rooms_per_session``; the session's rooms are then unchanged.
        """
        self.check_name(room)
        if session.closed:
            return
        rooms = self._rooms_of.get(session)
        if rooms is None:
            rooms = self._rooms_of[session] = set()
        elif room in rooms:
            return
        limit = self.max_rooms_per_session
        if limit is not None and len(rooms) >= limit:
            raise RoomLimitExceeded("max_rooms_per_session", limit, room)
        rooms.add(room)
        members = self._members.get(room)
        if members is None:
            members = self._members[room] = set()
        members.add(session)

    def check_name(self, room: str) -> None:
        """Raise unless ``room`` is a name a session may join.

        :class:`TypeError` for anything but a :class:`str`;
        :class:`~aiohttp_sockjs.exceptions.RoomLimitExceeded` for a name
        longer than ``max_room_name_length``.
        """
        if not isinstance(room, str):
            raise TypeError(f"room names are str, not {type(room).__name__}")
        limit = self.max_room_name_length
        if limit is not None and len(room) > limit:
            raise RoomLimitExceeded("max_room_name_length", limit, room)

    def names(self, room: RoomSpec) -> tuple[str, ...]:
        """:func:`room_names`, each checked by :meth:`check_name` (for broadcasts)."""
        names = room_names(room)
        if self.max_room_name_length is not None:
            for name in names:
                self.check_name(name)
        return names

    def leave(self, session: Session, room: str) -> None:
        """Take ``session`` out of ``room``; leaving a room it is not in does nothing."""
        rooms = self._rooms_of.get(session)
        if rooms is None or room not in rooms:
            return
        rooms.discard(room)
        if not rooms:
            del self._rooms_of[session]
        self._discard_member(room, session)

    def leave_all(self, session: Session) -> None:
        """Take ``session`` out of every room (done for you when it ends)."""
        rooms = self._rooms_of.pop(session, None)
        if rooms is not None:
            for room in rooms:
                self._discard_member(room, session)

    def _discard_member(self, room: str, session: Session) -> None:
        members = self._members.get(room)
        if members is not None:
            members.discard(session)
            if not members:
                del self._members[room]

    def rooms_of(self, session: Session) -> frozenset[str]:
        """The rooms ``session`` is in (none once it has closed)."""
        rooms = self._rooms_of.get(session)
        return frozenset(rooms) if rooms and not session.closed else frozenset()

    def members(self, room: RoomSpec) -> list[Session]:
        """The open sessions in ``room``, or in any of several rooms (each once)."""
        names = room_names(room)
        if len(names) == 1:
            found: Iterable[Session] = self._members.get(names[0], ())
        else:
            union: dict[Session, None] = {}
            for name in names:
                members = self._members.get(name)
                if members:
                    union.update(dict.fromkeys(members))
            found = union
        return [session for session in found if not session.closed]

    def count(self, room: str) -> int:
        """How many open sessions are in ``room``."""
        return sum(1 for s in self._members.get(room, ()) if not s.closed)

    def counts(self) -> dict[str, int]:
        """Open sessions per room, for every room that has one."""
        counts: dict[str, int] = {}
        for room, members in self._members.items():
            n = sum(1 for s in members if not s.closed)
            if n:
                counts[room] = n
        return counts
