"""Our SockJS client (``aiohttp_sockjs.client``) driving a pipelined echo, for counting its cost.

``python -m benchmarks.client_load BASE_URL N [WINDOW]`` opens one
websocket session on ``BASE_URL/echo`` and echoes ``N`` messages in
windows of ``WINDOW`` (100 by default): it sends a window's messages one
:meth:`~aiohttp_sockjs.client.SockJSClient.send` at a time without waiting
for answers, then receives the window's echoes, then goes on to the next.
Every message is checked. ``benchmarks.icount`` runs it under valgrind
(the ``client_ws_pipelined`` workload) to count the client's instructions
per message next to the server's.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp_sockjs.client import connect


async def echo(base: str, n: int, window: int) -> None:
    """Echo ``n`` messages, ``window`` at a time, and check them."""
    async with connect(
        f"{base}/echo", transports="websocket", timeout=120, heartbeat_timeout=None
    ) as client:
        sent = 0
        while sent < n:
            batch = [f"m{i}" for i in range(sent, min(n, sent + window))]
            for message in batch:
                await client.send(message)
            for message in batch:
                got = await client.receive()
                if got != message:
                    raise RuntimeError(f"expected {message!r}, got {got!r}")
            sent += len(batch)


if __name__ == "__main__":
    window = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    asyncio.run(echo(sys.argv[1], int(sys.argv[2]), window))
