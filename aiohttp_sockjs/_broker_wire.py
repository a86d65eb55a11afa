"""The broker's wire format and keys, pure: no Redis is needed to use them.

A stream entry (:class:`Entry`, :func:`encode_entry`, :func:`decode_entry`),
the keys of an endpoint's stream and of each process's presence, a
process's presence snapshot and how snapshots add up, and the values Redis
hands back as bytes or text. Used by :mod:`aiohttp_sockjs.broker`, which
exports the entry's names, and by its publishers (``_publishers.py``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .rooms import Presence

if TYPE_CHECKING:
    from .hub import BrokerEndpoint as Endpoint

log = logging.getLogger("aiohttp_sockjs.broker")

# Stream entry fields: publisher id, its sequence number, rooms (absent for
# everyone), the message. Values are bytes: the message is UTF-8 with lone
# surrogates passed through, so every SockJS message survives the trip.
ORIGIN: Final = b"o"
SEQ: Final = b"s"
ROOMS: Final = b"r"
MESSAGE: Final = b"m"


#: The prefix of every key, unless a broker or publisher is given another.
DEFAULT_NAMESPACE: Final = "sockjs"


def as_bytes(value: bytes | str) -> bytes:
    """A value Redis handed back (bytes, or text from a client that decodes), as bytes."""
    return value.encode() if isinstance(value, str) else value


def as_text(value: bytes | str) -> str:
    """A value Redis handed back, as text (for a log line or an entry id)."""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def normalise_prefix(prefix: str) -> str:
    """An endpoint's prefix as the broker's keys name it: one leading slash, none
    trailing ("" for the root)."""
    stripped = prefix.strip("/")
    return "/" + stripped if stripped else ""


def stream_key(namespace: str, prefix: str) -> str:
    """The Redis stream that carries the broadcasts of the endpoint at ``prefix``."""
    return f"{namespace}:stream:{prefix}"


def process_key(namespace: str, process_id: str) -> str:
    """The key a process's presence heartbeat is written under."""
    return f"{namespace}:process:{process_id}"


def processes_key(namespace: str) -> str:
    """The set of the processes that have written a presence heartbeat."""
    return f"{namespace}:processes"


def new_process_id() -> str:
    """A process's id among the broker's processes: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


# --- the wire format (pure) ---------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One broadcast as read back from a stream."""

    origin: str
    seq: int
    rooms: tuple[str, ...] | None
    message: str


class BadEntry(ValueError):
    """A stream entry that is not a broadcast this package wrote (or is too large)."""


def encode_entry(
    origin: str, seq: int, rooms: tuple[str, ...] | None, message: str
) -> dict[bytes, bytes]:
    """The stream fields of one broadcast."""
    fields = {
        ORIGIN: origin.encode(),
        SEQ: str(seq).encode(),
        MESSAGE: message.encode("utf-8", "surrogatepass"),
    }
    if rooms is not None:
        fields[ROOMS] = json.dumps(list(rooms)).encode()
    return fields


def decode_entry(fields: Mapping[Any, Any], max_message_size: int) -> Entry:
    """Read the fields of a stream entry; :class:`BadEntry` if they are not a broadcast."""
    if not isinstance(fields, Mapping):
        raise BadEntry("not a field map")
    origin = fields.get(ORIGIN)
    seq = fields.get(SEQ)
    message = fields.get(MESSAGE)
    if not isinstance(origin, bytes) or not isinstance(seq, bytes):
        raise BadEntry("no origin or sequence field")
    if not isinstance(message, bytes):
        raise BadEntry("no message field")
    if len(message) > max_message_size:
        raise BadEntry(f"message of {len(message)} bytes, over {max_message_size}")
    try:
        origin_text = origin.decode()
        seq_number = int(seq)
        text = message.decode("utf-8", "surrogatepass")
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise BadEntry(f"undecodable field: {exc}") from None
    rooms: tuple[str, ...] | None = None
    raw_rooms = fields.get(ROOMS)
    if raw_rooms is not None:
        if not isinstance(raw_rooms, bytes) or len(raw_rooms) > max_message_size:
            raise BadEntry("rooms field too large")
        try:
            names = json.loads(raw_rooms)
        except ValueError:
            raise BadEntry("rooms field is not JSON") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BadEntry("rooms field is not a list of names")
        rooms = tuple(names)
    return Entry(origin_text, seq_number, rooms, text)


def heartbeat_value(endpoints: Iterable[Endpoint]) -> bytes:
    """A process's presence heartbeat: sessions and room counts per endpoint, as JSON."""
    return json.dumps(
        {e.prefix: {"n": len(e), "r": e.rooms.counts()} for e in endpoints},
        separators=(",", ":"),
    ).encode()


def merge_presence(
    prefix: str, snapshots: Iterable[tuple[str, bytes | str | None]], local: Endpoint | None
) -> Presence:
    """Add up the process snapshots of ``prefix`` (and ``local``'s live counts)."""
    total = 0
    rooms: dict[str, int] = {}
    processes: dict[str, int] = {}

    def add(process: str, n: int, room_counts: Mapping[str, int]) -> None:
        nonlocal total
        total += n
        processes[process] = n
        for room, count in room_counts.items():
            rooms[room] = rooms.get(room, 0) + count

    for process, value in snapshots:
        if value is None:
            continue
        try:
            info = json.loads(value).get(prefix)
            if info is None:
                continue
            n = int(info["n"])
            room_counts = {str(k): int(v) for k, v in info["r"].items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("SockJS broker: dropped the unreadable presence of process %s", process)
            continue
        add(process, n, room_counts)
    if local is not None and local.broker is not None:
        add(local.broker.process_id, len(local), local.rooms.counts())
    return Presence(total, rooms, processes)
