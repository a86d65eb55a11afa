"""What permessage-deflate costs and saves per message, in-process.

``python -m benchmarks.deflate_costs [--reps N]`` prints one table: for
chat-sized messages (50-200 bytes of JSON) and large ones (64 KiB of JSON),
in each direction, the bytes on the wire (frame header included) and the
CPU per message of each way a server can send or receive them:

- server to client: uncompressed; deflate with context takeover (what
  aiohttp does by default: a compressor per socket, level 1, sync flush);
  deflate without context takeover (one compressor shared by all sockets,
  full flush, what ``websocket_compression=True`` does); and the same frame
  compressed once and reused for the next socket (a broadcast).
- client to server: what Chromium sends (zlib's default level, context
  takeover, 15-bit window) and what inflating it costs the server, against
  an uncompressed frame the server only has to read.

The messages are SockJS frames of generated JSON (``a["..."]`` towards the
client, ``["..."]`` towards the server), so string escaping is included.
Timings are process CPU time over many messages, best of ``--reps``.

``--inflated`` prints instead what one client frame that inflates to 1 MiB
costs the server (see :func:`inflated_costs`): the figure an operator
weighs before turning ``websocket_compression`` on.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import zlib
from collections.abc import Callable

_TEXT = """hello there how are you today the meeting moved to room three see you at
noon thanks ok great news deploy finished build failed retry later lunch"""
_WORDS = _TEXT.split()
_TRAILER = b"\x00\x00\xff\xff"


def chat_messages(n: int, rng: random.Random) -> list[str]:
    """``n`` chat-sized JSON messages, 50-200 bytes each."""
    out = []
    for i in range(n):
        text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 14)))
        msg = json.dumps(
            {
                "type": "chat",
                "room": rng.choice(["general", "random", "ops"]),
                "user": f"user{rng.randint(1, 5000)}",
                "text": text,
                "id": 1_700_000_000_000 + i,
            },
            separators=(",", ":"),
        )
        out.append(msg[:200])
    return out


def large_message(rng: random.Random, size: int = 64 * 1024) -> str:
    """About ``size`` bytes of JSON: a list of records, as an API would send."""
    rows = []
    total = 2
    i = 0
    while total < size:
        row = json.dumps(
            {
                "id": i,
                "name": f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}",
                "price": round(rng.uniform(1, 500), 2),
                "stock": rng.randint(0, 1000),
                "tags": rng.sample(_WORDS, 3),
            },
            separators=(",", ":"),
        )
        rows.append(row)
        total += len(row) + 1
        i += 1
    return "[" + ",".join(rows) + "]"


def frame_size(payload: int) -> int:
    """Bytes of a server frame (unmasked) carrying ``payload`` bytes."""
    return payload + (2 if payload < 126 else 4 if payload < 65536 else 10)


def to_client(message: str) -> bytes:
    return ("a" + json.dumps([message])).encode()


def to_server(message: str) -> bytes:
    return json.dumps([message]).encode()


def cpu_per_call(fn: Callable[[bytes], object], items: list[bytes], reps: int) -> float:
    """Best-of-``reps`` process CPU seconds per item for ``fn``."""
    best = float("inf")
    for _ in range(reps):
        t0 = time.process_time()
        for item in items:
            fn(item)
        best = min(best, (time.process_time() - t0) / len(items))
    return best


def server_sends(items: list[bytes], reps: int) -> dict[str, tuple[float, float]]:
    """Per way of sending: (mean bytes on the wire, CPU seconds per message)."""
    out: dict[str, tuple[float, float]] = {}
    mean = sum(frame_size(len(i)) for i in items) / len(items)
    out["uncompressed"] = (mean, cpu_per_call(lambda b: b, items, reps))

    per_socket = zlib.compressobj(1, zlib.DEFLATED, -15)
    sizes = [
        frame_size(len((per_socket.compress(i) + per_socket.flush(zlib.Z_SYNC_FLUSH))[:-4]))
        for i in items
    ]

    c1 = zlib.compressobj(1, zlib.DEFLATED, -15)

    def takeover(data: bytes, c: zlib._Compress = c1) -> bytes:
        return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)).removesuffix(_TRAILER)

    out["deflate, context takeover (per socket)"] = (
        sum(sizes) / len(sizes),
        cpu_per_call(takeover, items, reps),
    )

    c2 = zlib.compressobj(1, zlib.DEFLATED, -15)

    def shared(data: bytes, c: zlib._Compress = c2) -> bytes:
        return (c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)).removesuffix(_TRAILER)

    sizes = [frame_size(len(shared(i))) for i in items]
    out["deflate, no context takeover (shared)"] = (
        sum(sizes) / len(sizes),
        cpu_per_call(shared, items, reps),
    )
    memo: dict[bytes, bytes] = {}
    for i in items:
        memo[i] = shared(i)

    def reuse(data: bytes) -> bytes:
        hit = memo.get(data)
        return hit if hit is not None else shared(data)

    out["same, compressed frame reused (broadcast)"] = (
        out["deflate, no context takeover (shared)"][0],
        cpu_per_call(reuse, items, reps),
    )
    return out


def client_sends(items: list[bytes], reps: int) -> dict[str, tuple[float, float]]:
    """Chromium's frames to the server: (mean bytes, server CPU to inflate one)."""
    out: dict[str, tuple[float, float]] = {}
    mean = sum(frame_size(len(i)) + 4 for i in items) / len(items)
    out["uncompressed"] = (mean, cpu_per_call(lambda b: b, items, reps))
    chromium = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    wire = [(chromium.compress(i) + chromium.flush(zlib.Z_SYNC_FLUSH))[:-4] for i in items]
    best = float("inf")
    for _ in range(reps):
        inflate = zlib.decompressobj(-15)
        t0 = time.process_time()
        for w in wire:
            inflate.decompress(w + _TRAILER)
        best = min(best, (time.process_time() - t0) / len(wire))
    out["deflate, as Chromium sends it"] = (
        sum(frame_size(len(w)) + 4 for w in wire) / len(wire),
        best,
    )
    return out


def inflated_costs(reps: int) -> None:
    """Server CPU per inflated MiB a client can make it spend, by what it sends.

    Each payload is one 1 MiB client frame, compressed as Chromium would
    (zlib's default level). The CPU is inflating it, and inflating it and
    then what the server does with any frame: decode the UTF-8 and the
    SockJS JSON array. The wire figure says how far a client's upload goes:
    a frame of one repeated byte inflates about a thousand times.
    """
    from aiohttp_sockjs.protocol import decode_websocket_payload

    rng = random.Random(21)
    mib = 1 << 20
    messages = chat_messages(12_000, rng)
    while len(json.dumps(messages)) > mib:
        messages.pop()
    chat = json.dumps(messages)
    payloads = {
        "chat messages (JSON)": chat.encode(),
        "one message of one repeated letter": ('["' + "x" * (mib - 4) + '"]').encode(),
        "whitespace (no message at all)": b"[" + b" " * (mib - 2) + b"]",
    }
    print()
    print("| 1 MiB client frame of | Bytes on the wire | Inflate [ms per MiB] |", end="")
    print(" Inflate + decode [ms per MiB] | CPU per MB on the wire [ms] |")
    print("|---|--:|--:|--:|--:|")
    for label, payload in payloads.items():
        deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        wire = (deflate.compress(payload) + deflate.flush(zlib.Z_SYNC_FLUSH))[:-4]
        size = len(payload) / mib
        inflate_only = decoded = float("inf")
        for _ in range(reps):
            t0 = time.process_time()
            data = zlib.decompressobj(-15).decompress(wire + _TRAILER)
            t1 = time.process_time()
            decode_websocket_payload(data.decode())
            t2 = time.process_time()
            inflate_only = min(inflate_only, t1 - t0)
            decoded = min(decoded, t2 - t0)
        per_wire_mb = decoded / (len(wire) / 1e6)
        print(
            f"| {label} | {len(wire):,} | {inflate_only / size * 1e3:.2f} |"
            f" {decoded / size * 1e3:.2f} | {per_wire_mb * 1e3:,.0f} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--inflated", action="store_true", help="only the CPU per inflated MiB of client frames"
    )
    args = parser.parse_args(argv)
    if args.inflated:
        inflated_costs(args.reps)
        return
    rng = random.Random(14)
    chat = chat_messages(5000, rng)
    large = [large_message(rng) for _ in range(20)]
    print("| Messages | Direction | Sent as | Bytes on the wire | CPU per message [us] |")
    print("|---|---|---|--:|--:|")
    for label, msgs in (
        (f"chat, {min(map(len, chat))}-{max(map(len, chat))} B JSON", chat),
        (f"large, {len(large[0]) // 1024} KiB JSON", large),
    ):
        rows = [
            ("server to client", k, v)
            for k, v in server_sends([to_client(m) for m in msgs], args.reps).items()
        ]
        rows += [
            ("client to server", k, v)
            for k, v in client_sends([to_server(m) for m in msgs], args.reps).items()
        ]
        for direction, how, (size, cpu) in rows:
            print(f"| {label} | {direction} | {how} | {size:,.0f} | {cpu * 1e6:.2f} |")


if __name__ == "__main__":
    main()
