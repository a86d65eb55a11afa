"""The load generator: minimal websocket and HTTP/1.1 clients on raw asyncio.

``python -m benchmarks.loadgen SCENARIO --port P --server-pid PID --scale S``
runs one scenario against a running server and prints one JSON line: the
figure, extra figures, and the CPU seconds the server and the generator
spent in the measured window. Every loop is bounded by a count and by a
deadline; a scenario that hits its deadline reports what it got, with
``"timed_out": true``.

Client frames are masked with an all-zero key: legal on the wire, and the
payload needs no XOR, which keeps the generator cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import time
import zlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Counts per scale: smoke (the test), quick, full.
SCALES: dict[str, dict[str, int | float]] = {
    "smoke": dict(
        echo1=300,
        echo100_sessions=10,
        echo100=600,
        lat_seconds=0.5,
        lat_sessions=2,
        bcast_sessions=20,
        bcast10k_sessions=30,
        bcast10k_rounds=2,
        hb_window=0.5,
        bcast_rounds=3,
        burst_rounds=2,
        xhr_sessions=2,
        xhr_msgs=60,
        poll_rounds=30,
        churn=30,
        idle_ws=30,
        idle_xhr=20,
        idle_seconds=0.5,
        deflate=300,
        deflate1=300,
        bcast_deflate_rounds=3,
        bcast_size=4096,
        idle_deflate=30,
        timeout=10,
        settle=0.05,
    ),
    "quick": dict(
        echo1=300000,
        echo100_sessions=100,
        echo100=200000,
        lat_seconds=2,
        lat_sessions=10,
        bcast_sessions=1000,
        bcast10k_sessions=10000,
        bcast10k_rounds=10,
        hb_window=26,
        bcast_rounds=60,
        burst_rounds=20,
        xhr_sessions=20,
        xhr_msgs=25000,
        poll_rounds=15000,
        churn=4000,
        idle_ws=5000,
        idle_xhr=2000,
        idle_seconds=2,
        deflate=100000,
        deflate1=150000,
        bcast_deflate_rounds=40,
        bcast_size=4096,
        idle_deflate=1000,
        timeout=60,
        settle=1.0,
    ),
    "full": dict(
        echo1=800000,
        echo100_sessions=100,
        echo100=500000,
        lat_seconds=5,
        lat_sessions=10,
        bcast_sessions=1000,
        bcast10k_sessions=10000,
        bcast10k_rounds=20,
        hb_window=26,
        bcast_rounds=150,
        burst_rounds=50,
        xhr_sessions=20,
        xhr_msgs=60000,
        poll_rounds=40000,
        churn=10000,
        idle_ws=5000,
        idle_xhr=2000,
        idle_seconds=5,
        deflate=250000,
        deflate1=400000,
        bcast_deflate_rounds=100,
        bcast_size=4096,
        idle_deflate=2000,
        timeout=120,
        settle=1.0,
    ),
}


def cpu_of(pid: int) -> float:
    """CPU seconds used so far by process ``pid``, all threads.

    From /proc/PID/task/*/schedstat (nanoseconds) where available: the tick
    counts of /proc/PID/stat are too coarse for an idle server.
    """
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    except (FileNotFoundError, ProcessLookupError):  # a thread ended meanwhile: ticks
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total / 1e9


def rss_of(pid: int) -> int:
    """Resident set size of ``pid`` in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _sid() -> str:
    return f"{random.getrandbits(64):016x}"


# --- websocket client --------------------------------------------------------

_ZERO_MASK = b"\x00\x00\x00\x00"


def ws_frame(payload: bytes, opcode: int = 1, rsv1: bool = False) -> bytes:
    """A client frame (masked with a zero key, so the payload is as is)."""
    b0 = 0x80 | opcode | (0x40 if rsv1 else 0)
    n = len(payload)
    if n < 126:
        head = bytes((b0, 0x80 | n))
    elif n < 65536:
        head = bytes((b0, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + _ZERO_MASK + payload


CLOSE_FRAME = ws_frame(b"\x03\xe8", opcode=8)


class WSClient(asyncio.Protocol):
    """A websocket client; text frames go to :meth:`on_text`."""

    def __init__(self, path: str, port: int, deflate: bool = False) -> None:
        self.path = path
        self.port = port
        self.offer_deflate = deflate
        self.deflate = False
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.heartbeats = 0
        self._comp: Any = None
        self._decomp: Any = None
        self._reset_comp = False
        self._reset_decomp = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # Exactly what Chromium offers.
        ext = (
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            if self.offer_deflate
            else ""
        )
        transport.write(  # type: ignore[attr-defined]
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\n{ext}\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed before open"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1").lower()
            del buf[: end + 4]
            if not head.startswith("http/1.1 101"):
                self.opened.set_exception(ConnectionError(head.split("\r\n")[0]))
                return
            self.upgraded = True
            if "permessage-deflate" in head:
                self.deflate = True
                self._reset_comp = "client_no_context_takeover" in head
                self._reset_decomp = "server_no_context_takeover" in head
                # As Chromium: zlib's default level, a 15-bit window.
                self._comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
                self._decomp = zlib.decompressobj(-15)
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1] & 0x7F
            head_len = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head_len = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head_len = 10
            end = pos + head_len + length
            if end > n:
                break
            payload = bytes(buf[pos + head_len : end])
            pos = end
            opcode = b0 & 0x0F
            if b0 & 0x40:
                if self._reset_decomp:
                    self._decomp = zlib.decompressobj(-15)
                payload = self._decomp.decompress(payload + b"\x00\x00\xff\xff")
            if opcode == 1:
                self._text(payload)
            elif opcode == 8:
                if self.transport is not None:
                    self.transport.close()
                if not self.closed.done():
                    self.closed.set_result(None)
            elif opcode == 9 and self.transport is not None:
                self.transport.write(ws_frame(payload, opcode=10))
        del buf[:pos]

    def _text(self, payload: bytes) -> None:
        first = payload[:1]
        if first == b"a":
            self.on_messages(payload)
        elif first == b"o":
            if not self.opened.done():
                self.opened.set_result(None)
        elif first == b"h":
            self.heartbeats += 1

    def on_messages(self, frame: bytes) -> None:
        """An ``a[...]`` frame arrived."""

    def frame(self, payload: bytes) -> bytes:
        """Encode a text frame, compressed when deflate was negotiated."""
        if not self.deflate:
            return ws_frame(payload)
        if self._reset_comp:
            self._comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        data = self._comp.compress(payload) + self._comp.flush(zlib.Z_SYNC_FLUSH)
        return ws_frame(data[:-4], rsv1=True)

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(CLOSE_FRAME)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


W = TypeVar("W", bound=WSClient)


async def ws_connect(factory: Callable[[], W], port: int) -> W:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(factory, HOST, port)
    await proto.opened
    return proto


async def open_many(factory: Callable[[], W], port: int, n: int, conc: int = 100) -> list[W]:
    """Open ``n`` websocket sessions, ``conc`` at a time."""
    out: list[W] = []
    sem = asyncio.Semaphore(conc)

    async def one() -> None:
        async with sem:
            out.append(await ws_connect(factory, port))

    await asyncio.gather(*(one() for _ in range(n)))
    return out


# --- HTTP/1.1 client ----------------------------------------------------------


class HTTPConn(asyncio.Protocol):
    """One keep-alive connection; requests one at a time.

    A plain response resolves ``request()``'s future with (status, body); a
    chunked response to ``stream()`` passes each chunk to ``on_data``.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.status = 0
        self.in_head = True
        self.length = -1
        self.chunked = False
        self.on_data: Callable[[bytes], None] | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        on_data: Callable[[bytes], None] | None = None,
    ) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.in_head = True
        self.on_data = on_data
        self.transport.write(
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        return self.waiter

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            if self.in_head:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).decode("latin-1").lower()
                del buf[: end + 4]
                lines = head.split("\r\n")
                self.status = int(lines[0].split()[1])
                self.length = 0
                self.chunked = False
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name == "content-length":
                        self.length = int(value)
                    elif name == "transfer-encoding" and "chunked" in value:
                        self.chunked = True
                self.in_head = False
                if self.chunked and self.on_data is not None:
                    # A stream: the request's future resolves on the headers.
                    w = self.waiter
                    if w is not None and not w.done():
                        w.set_result((self.status, b""))
            if self.chunked:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]), 16)
                if len(buf) < end + 2 + size + 2:
                    return
                chunk = bytes(buf[end + 2 : end + 2 + size])
                del buf[: end + 2 + size + 2]
                if size == 0:
                    self.in_head = True
                    if self.on_data is None:
                        self._done(b"")
                    continue
                if self.on_data is not None:
                    self.on_data(chunk)
                continue
            if len(buf) < self.length:
                return
            body = bytes(buf[: self.length])
            del buf[: self.length]
            self.in_head = True
            self._done(body)

    def _done(self, body: bytes) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result((self.status, body))


async def http_connect(port: int) -> HTTPConn:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: HTTPConn(port), HOST, port)
    return proto


# --- measurement ---------------------------------------------------------------


class Meter:
    """CPU and wall time of the server and of this process over a window."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid

    def __enter__(self) -> Meter:
        self.t0 = time.perf_counter()
        self.s0 = cpu_of(self.pid)
        self.g0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.server_cpu = cpu_of(self.pid) - self.s0
        self.gen_cpu = time.process_time() - self.g0


def result(value: float, meter: Meter, **extra: Any) -> dict[str, Any]:
    return {
        "value": value,
        "wall": meter.wall,
        "server_cpu": meter.server_cpu,
        "gen_cpu": meter.gen_cpu,
        **extra,
    }


async def _wait(fut: asyncio.Future[Any], timeout: float) -> bool:
    """Wait for ``fut`` at most ``timeout`` seconds; whether it finished."""
    try:
        await asyncio.wait_for(asyncio.shield(fut), timeout)
    except asyncio.TimeoutError:
        return False
    return True


# --- scenarios -------------------------------------------------------------------


class EchoClient(WSClient):
    """Keeps ``window`` messages in flight until ``quota`` have come back."""

    def __init__(
        self, port: int, quota: int, window: int, deflate: bool = False, prefix: str = "/echo"
    ) -> None:
        super().__init__(f"{prefix}/0/{_sid()}/websocket", port, deflate)
        self.quota = quota
        self.window = window
        self.sent = 0
        self.received = 0
        self.frames = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.raw_msg = ws_frame(b'["ping"]')

    def start(self) -> None:
        self._send(min(self.window, self.quota))

    def _send(self, k: int) -> None:
        if k <= 0:
            return
        self.sent += k
        if self.deflate:
            self.write(b"".join(self.frame(b'["ping"]') for _ in range(k)))
        else:
            self.write(self.raw_msg * k)

    def on_messages(self, frame: bytes) -> None:
        k = frame.count(b'"') >> 1
        self.frames += 1
        self.received += k
        if self.received >= self.quota:
            if not self.done.done():
                self.done.set_result(None)
            return
        self._send(min(k, self.quota - self.sent))


async def echo(
    port: int,
    pid: int,
    sessions: int,
    total: int,
    window: int,
    timeout: float,
    deflate: bool = False,
    prefix: str = "/echo",
) -> dict[str, Any]:
    quota = max(1, total // sessions)
    clients = await open_many(
        lambda: EchoClient(port, quota, window, deflate, prefix), port, sessions
    )
    everything = asyncio.gather(*(c.done for c in clients))
    with Meter(pid) as m:
        for c in clients:
            c.start()
        finished = await _wait(everything, timeout)
    got = sum(c.received for c in clients)
    negotiated = sum(c.deflate for c in clients) / sessions
    for c in clients:
        c.abort()
    everything.cancel()
    frames = sum(c.frames for c in clients)
    return result(
        got / m.wall,
        m,
        messages=got,
        msgs_per_frame=got / max(frames, 1),
        deflate_share=negotiated,
        timed_out=not finished,
    )


class LatencyClient(WSClient):
    def __init__(self, port: int, sent_at: dict[int, float], rtts: list[float]) -> None:
        super().__init__(f"/echo/0/{_sid()}/websocket", port)
        self.sent_at = sent_at
        self.rtts = rtts

    def on_messages(self, frame: bytes) -> None:
        now = time.perf_counter()
        for m in json.loads(frame[1:]):
            self.rtts.append(now - self.sent_at.pop(int(m[1:])))


async def latency(port: int, pid: int, sessions: int, seconds: float, rate: int) -> dict[str, Any]:
    sent_at: dict[int, float] = {}
    rtts: list[float] = []
    clients = await open_many(lambda: LatencyClient(port, sent_at, rtts), port, sessions)
    interval = 1.0 / rate
    seq = 0
    with Meter(pid) as m:
        start = time.perf_counter()
        end = start + seconds
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            due = int((now - start) / interval) + 1
            while seq < due:
                c = clients[seq % sessions]
                sent_at[seq] = time.perf_counter()
                c.write(ws_frame(b'["t%d"]' % seq))
                seq += 1
            await asyncio.sleep(interval)
        # Let the last replies arrive (bounded).
        deadline = time.perf_counter() + 2.0
        while sent_at and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
    for c in clients:
        c.abort()
    rtts.sort()
    if not rtts:
        raise RuntimeError("no replies")

    def pct(q: float) -> float:
        return rtts[min(len(rtts) - 1, int(len(rtts) * q))] * 1e6

    return result(
        pct(0.5),
        m,
        p90=pct(0.9),
        p99=pct(0.99),
        p999=pct(0.999),
        max=rtts[-1] * 1e6,
        messages=len(rtts),
        lost=len(sent_at),
        rate=len(rtts) / m.wall,
    )


class Listener(WSClient):
    def __init__(self, port: int, state: dict[str, Any], deflate: bool = False) -> None:
        super().__init__(f"/bcast/0/{_sid()}/websocket", port, deflate)
        self.state = state
        self.count = 0

    def on_messages(self, frame: bytes) -> None:
        st = self.state
        # Every broadcast message starts with "b"; escaped quotes inside
        # larger messages are \" and never precede a b.
        self.count += frame.count(b'"b')
        if self.count >= st["target"]:
            self.count -= st["target"]
            st["remaining"] -= 1
            if st["remaining"] == 0:
                st["done"].set_result(time.perf_counter())


async def broadcast(
    port: int,
    pid: int,
    sessions: int,
    per_round: int,
    rounds: int,
    timeout: float,
    deflate: bool = False,
    size: int = 0,
    many: bool = False,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    state: dict[str, Any] = {"target": per_round}
    clients = await open_many(lambda: Listener(port, state, deflate), port, sessions)
    negotiated = sum(c.deflate for c in clients) / sessions
    ctl = await http_connect(port)
    times: list[float] = []
    deadline = time.perf_counter() + timeout
    with Meter(pid) as m:
        for _ in range(rounds):
            if time.perf_counter() > deadline:
                break
            state["remaining"] = sessions
            state["done"] = loop.create_future()
            t0 = time.perf_counter()
            query = f"n={per_round}&size={size}" + ("&many=1" if many else "")
            status, _ = await ctl.request("POST", "/ctl/broadcast?" + query)
            assert status == 200, status
            if not await _wait(state["done"], max(0.1, deadline - time.perf_counter())):
                break
            times.append(state["done"].result() - t0)
    for c in clients:
        c.abort()
    assert ctl.transport is not None
    ctl.transport.abort()
    if not times:
        raise RuntimeError("no broadcast round completed")
    deliveries = sessions * per_round * len(times) / sum(times)
    return result(
        deliveries,
        m,
        all_ms=statistics.median(times) * 1e3,
        rounds=len(times),
        deflate_share=negotiated,
        timed_out=len(times) < rounds,
    )


async def xhr_streaming(
    port: int, pid: int, sessions: int, total: int, timeout: float
) -> dict[str, Any]:
    quota = max(1, total // sessions)
    counts = [0] * sessions
    opened = [asyncio.get_running_loop().create_future() for _ in range(sessions)]
    all_back = asyncio.get_running_loop().create_future()
    remaining = [sessions]
    sids = [_sid() for _ in range(sessions)]

    def on_data_for(i: int) -> Callable[[bytes], None]:
        tail = bytearray()

        def on_data(chunk: bytes) -> None:
            tail.extend(chunk)
            cut = tail.rfind(b"\n")
            if cut < 0:
                return
            lines = bytes(tail[:cut])
            del tail[: cut + 1]
            for line in lines.split(b"\n"):
                if line[:1] == b"a":
                    counts[i] += line.count(b'"') >> 1
                    if counts[i] >= quota:
                        remaining[0] -= 1
                        if remaining[0] == 0:
                            all_back.set_result(None)
                elif line == b"o" and not opened[i].done():
                    opened[i].set_result(None)

        return on_data

    streams = []
    senders = []
    for i in range(sessions):
        s = await http_connect(port)
        status, _ = await s.request(
            "POST", f"/echo/0/{sids[i]}/xhr_streaming", on_data=on_data_for(i)
        )
        assert status == 200, status
        streams.append(s)
        senders.append(await http_connect(port))
    await asyncio.gather(*opened)

    async def sender(i: int) -> None:
        conn = senders[i]
        path = f"/echo/0/{sids[i]}/xhr_send"
        for _ in range(quota):
            status, _ = await conn.request("POST", path, b'["ping"]')
            assert status == 204, status

    tasks = asyncio.gather(*(sender(i) for i in range(sessions)))
    with Meter(pid) as m:
        finished = await _wait(asyncio.gather(tasks, all_back), timeout)
    tasks.cancel()
    for c in streams + senders:
        assert c.transport is not None
        c.transport.abort()
    got = sum(min(c, quota) for c in counts)
    return result(got / m.wall, m, messages=got, timed_out=not finished)


async def xhr_polling(
    port: int, pid: int, sessions: int, rounds: int, timeout: float
) -> dict[str, Any]:
    per = max(1, rounds // sessions)
    done = [0]

    async def one() -> None:
        sid = _sid()
        poll = await http_connect(port)
        send = await http_connect(port)
        status, body = await poll.request("POST", f"/echo/0/{sid}/xhr")
        assert body == b"o\n", body
        for _ in range(per):
            answer = poll.request("POST", f"/echo/0/{sid}/xhr")
            status, _ = await send.request("POST", f"/echo/0/{sid}/xhr_send", b'["ping"]')
            assert status == 204, status
            status, body = await answer
            assert body.startswith(b"a["), body
            done[0] += 1
        for c in (poll, send):
            assert c.transport is not None
            c.transport.abort()

    with Meter(pid) as m:
        work = asyncio.gather(*(one() for _ in range(sessions)))
        finished = await _wait(work, timeout)
        work.cancel()
    return result(done[0] / m.wall, m, round_trips=done[0], timed_out=not finished)


async def churn(port: int, pid: int, total: int, conc: int, timeout: float) -> dict[str, Any]:
    done = [0]
    deadline = time.perf_counter() + timeout

    async def worker() -> None:
        loop = asyncio.get_running_loop()
        while done[0] < total and time.perf_counter() < deadline:
            done[0] += 1
            _, proto = await loop.create_connection(
                lambda: WSClient(f"/echo/0/{_sid()}/websocket", port), HOST, port
            )
            await proto.opened
            proto.close()
            await proto.closed
            proto.abort()

    with Meter(pid) as m:
        await asyncio.gather(*(worker() for _ in range(conc)))
    return result(done[0] / m.wall, m, sessions=done[0])


async def idle(
    port: int, pid: int, kind: str, sessions: int, seconds: float, settle: float
) -> dict[str, Any]:
    # Warm up: one session of the kind, so lazily built state is not counted.
    warm = await _idle_open(port, kind, 1)
    await asyncio.sleep(settle / 3)
    rss0 = rss_of(pid)
    conns = await _idle_open(port, kind, sessions)
    await asyncio.sleep(settle)
    rss1 = rss_of(pid)
    beats0 = [c.heartbeats for c in conns]
    with Meter(pid) as m:
        await asyncio.sleep(seconds)
    beats = [c.heartbeats - b for c, b in zip(conns, beats0, strict=False)]
    for c in conns + warm:
        c.abort()
    return result(
        (rss1 - rss0) / sessions,
        m,
        cpu_pct=100 * m.server_cpu / m.wall,
        with_heartbeat=sum(1 for b in beats if b > 0) / sessions,
        heartbeats_per_s=sum(beats) / m.wall,
        cpu_per_beat_us=1e6 * m.server_cpu / max(sum(beats), 1),
        deflate_share=sum(bool(getattr(c, "deflate", False)) for c in conns) / sessions,
    )


class _StreamIdle:
    """An idle xhr_streaming session, with the interface idle() needs."""

    def __init__(self, conn: HTTPConn) -> None:
        self.conn = conn
        self.heartbeats = 0
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_data(self, chunk: bytes) -> None:
        if not self.opened.done():
            if b"o\n" in chunk:
                self.opened.set_result(None)
            return
        self.heartbeats += chunk.split(b"\n").count(b"h")

    def abort(self) -> None:
        assert self.conn.transport is not None
        self.conn.transport.abort()


class _OneEcho(WSClient):
    """A session that offers deflate, sends one chat-sized message and waits for it back."""

    MESSAGE = b'["{\\"type\\":\\"chat\\",\\"room\\":\\"general\\",\\"text\\":\\"hello there\\"}"]'

    def __init__(self, port: int) -> None:
        super().__init__(f"/echo/0/{_sid()}/websocket", port, deflate=True)
        self.echoed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_messages(self, frame: bytes) -> None:
        if not self.echoed.done():
            self.echoed.set_result(None)


async def _idle_open(port: int, kind: str, n: int) -> list[Any]:
    if kind == "ws":
        return await open_many(lambda: WSClient(f"/echo/0/{_sid()}/websocket", port), port, n)
    if kind == "ws_deflate":
        clients = await open_many(lambda: _OneEcho(port), port, n)
        for c in clients:
            c.write(c.frame(c.MESSAGE))
        await asyncio.gather(*(c.echoed for c in clients))
        return clients
    out: list[_StreamIdle] = []
    sem = asyncio.Semaphore(100)

    async def one() -> None:
        async with sem:
            conn = await http_connect(port)
            s = _StreamIdle(conn)
            status, _ = await conn.request(
                "POST", f"/echo/0/{_sid()}/xhr_streaming", on_data=s.on_data
            )
            assert status == 200, status
            await s.opened
            out.append(s)

    await asyncio.gather(*(one() for _ in range(n)))
    return out


def scenario(name: str, port: int, pid: int, scale: str) -> Coroutine[Any, Any, dict[str, Any]]:
    """The coroutine that runs scenario ``name`` against the server on ``port``."""
    c = SCALES[scale]
    t = float(c["timeout"])
    idle_s = float(c["idle_seconds"])
    settle = float(c["settle"])
    i = int
    table: dict[str, Callable[[], Coroutine[Any, Any, dict[str, Any]]]] = {
        "ws_echo_1": lambda: echo(port, pid, 1, i(c["echo1"]), 100, t),
        "ws_echo_100": lambda: echo(port, pid, i(c["echo100_sessions"]), i(c["echo100"]), 10, t),
        "ws_echo_1_batch": lambda: echo(port, pid, 1, i(c["echo1"]), 100, t, prefix="/echob"),
        "ws_echo_100_batch": lambda: echo(
            port, pid, i(c["echo100_sessions"]), i(c["echo100"]), 10, t, prefix="/echob"
        ),
        "ws_echo_1_deflate": lambda: echo(port, pid, 1, i(c["deflate1"]), 100, t, deflate=True),
        "ws_echo_100_deflate": lambda: echo(
            port, pid, i(c["echo100_sessions"]), i(c["deflate"]), 10, t, deflate=True
        ),
        "broadcast_1_deflate": lambda: broadcast(
            port, pid, i(c["bcast_sessions"]), 1, i(c["bcast_rounds"]), t, deflate=True
        ),
        "broadcast_1_4k_deflate": lambda: broadcast(
            port,
            pid,
            i(c["bcast_sessions"]),
            1,
            i(c["bcast_deflate_rounds"]),
            t,
            deflate=True,
            size=i(c["bcast_size"]),
        ),
        "broadcast_20_deflate": lambda: broadcast(
            port, pid, i(c["bcast_sessions"]), 20, i(c["burst_rounds"]), t, deflate=True
        ),
        "ws_latency": lambda: latency(
            port, pid, i(c["lat_sessions"]), float(c["lat_seconds"]), 1000
        ),
        "ws_latency_10k": lambda: latency(
            port, pid, i(c["lat_sessions"]), float(c["lat_seconds"]), 10000
        ),
        "broadcast_1_10k": lambda: broadcast(
            port, pid, i(c["bcast10k_sessions"]), 1, i(c["bcast10k_rounds"]), 2 * t
        ),
        "broadcast_1": lambda: broadcast(
            port, pid, i(c["bcast_sessions"]), 1, i(c["bcast_rounds"]), t
        ),
        "broadcast_20": lambda: broadcast(
            port, pid, i(c["bcast_sessions"]), 20, i(c["burst_rounds"]), t
        ),
        "broadcast_20_batch": lambda: broadcast(
            port, pid, i(c["bcast_sessions"]), 20, i(c["burst_rounds"]), t, many=True
        ),
        "xhr_streaming_echo": lambda: xhr_streaming(
            port, pid, i(c["xhr_sessions"]), i(c["xhr_msgs"]), t
        ),
        "xhr_polling": lambda: xhr_polling(port, pid, i(c["xhr_sessions"]), i(c["poll_rounds"]), t),
        "ws_churn": lambda: churn(port, pid, i(c["churn"]), 10, t),
        "idle_ws": lambda: idle(port, pid, "ws", i(c["idle_ws"]), idle_s, settle),
        "idle_xhr": lambda: idle(port, pid, "xhr", i(c["idle_xhr"]), idle_s, settle),
        "idle_ws_deflate": lambda: idle(
            port, pid, "ws_deflate", i(c["idle_deflate"]), idle_s, settle
        ),
        "idle_ws_hb": lambda: idle(port, pid, "ws", i(c["idle_ws"]), idle_s, settle),
        "idle_ws_hb25": lambda: idle(
            port, pid, "ws", i(c["idle_ws"]), float(c["hb_window"]), settle
        ),
        "idle_xhr_hb": lambda: idle(port, pid, "xhr", i(c["idle_xhr"]), idle_s, settle),
    }
    # Setting up thousands of sessions is bounded too.
    return asyncio.wait_for(table[name](), 2 * t + 30)


def run(name: str, port: int, pid: int, scale: str) -> dict[str, Any]:
    """Run one scenario on a fresh event loop (uvloop when installed)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the bench extra is not installed
        return asyncio.run(scenario(name, port, pid, scale))
    result: dict[str, Any] = uvloop.run(scenario(name, port, pid, scale))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(json.dumps(run(args.scenario, args.port, args.server_pid, args.scale)), flush=True)


if __name__ == "__main__":
    main()
