"""What a client sends reaches the logs escaped and capped: no forged lines.

Paths (and the ids in them), origins and websocket close reasons are the
client's; each request here makes the server log a line (or try to), and
every line must stay one printable line of bounded length.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from aiohttp_sockjs import protocol
from tests.functional.conftest import Live, Serve, server_lines
from tests.wire import raw_websocket, ws_frame

#: A logged line may hold a few capped client values and our own words.
MAX_LINE = 3 * protocol.LOG_VALUE_LIMIT + 200


async def request(server: Live, head: str, body: bytes = b"") -> int:
    """Send ``head`` (request line and headers, no blank line) and ``body``; the status."""
    reader, writer = await server.connect()
    writer.write(
        f"{head}\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    line = await asyncio.wait_for(reader.readline(), 3)
    await asyncio.wait_for(reader.read(), 3)
    writer.close()
    return int(line.split()[1])


def safe_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every server line, checked to be one printable line of bounded length."""
    lines = [r.getMessage() for r in server_lines(caplog)]
    for line in lines:
        assert line.isprintable(), line
        assert len(line) <= MAX_LINE, line[:300]
    return lines


async def test_forged_line_through_the_session_id(
    live: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """``x%0AINFO:aiohttp_sockjs:FORGED`` as a session id, then an over-cap send."""
    server = await live(max_request_size=64)
    path = "/e/000/x%0AINFO:aiohttp_sockjs:FORGED"
    await request(server, f"POST {path}/xhr HTTP/1.1")
    await request(server, f"POST {path}/xhr_send HTTP/1.1", b'["' + b"x" * 100 + b'"]')
    await server.stop()
    safe_lines(caplog)


async def test_long_session_id_is_not_logged_whole(
    live: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """An 8,000-character id on ``xhr_send`` fills no log with its length."""
    server = await live()
    await request(server, f"POST /e/000/{'i' * 8000}/xhr_send HTTP/1.1", b'["x"]')
    await server.stop()
    safe_lines(caplog)


async def test_unprintable_characters_in_a_logged_path_are_escaped(
    live: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """A valid id with a line separator and a bidi override, logged by a refusal."""
    server = await live(max_request_size=64)
    path = "/e/000/a%E2%80%A8INFO:FORGED%E2%80%AEdcba"
    assert await request(server, f"POST {path}/xhr HTTP/1.1") == 200
    assert await request(server, f"POST {path}/xhr_send HTTP/1.1", b"x" * 100) == 413
    await server.stop()
    [line] = [s for s in safe_lines(caplog) if "413" in s]
    assert "\\u2028INFO:FORGED\\u202edcba" in line


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example\u202e\u2028", "https://" + "o" * 8000 + ".example"],
    ids=["unprintable", "8000 characters"],
)
async def test_refused_origin_is_escaped_and_capped(
    live: Serve, caplog: pytest.LogCaptureFixture, origin: str
) -> None:
    """The ``Origin`` header of a refused request reaches the log escaped and cut."""
    server = await live(allowed_origins=["https://good.example"])
    reader, writer = await server.connect()
    writer.write(
        b"GET /e/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\nOrigin: "
        + origin.encode()
        + b"\r\n\r\n"
    )
    assert (await asyncio.wait_for(reader.readline(), 3)).split()[1] == b"403"
    writer.close()
    await server.stop()
    [line] = [s for s in safe_lines(caplog) if "origin" in s]
    if len(origin) > protocol.LOG_VALUE_LIMIT:
        assert line.endswith(f"({len(origin)} characters)")
    else:
        assert "evil.example\\u202e\\u2028" in line


async def test_websocket_close_reason_forges_nothing(
    live: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """A client's close frame whose reason holds a line break leaves no forged line."""
    server = await live()
    reader, writer = await raw_websocket(server.port, "/e/000/s/websocket")
    assert await asyncio.wait_for(reader.readexactly(3), 3) == b"\x81\x01o"
    reason = b"\x03\xe8bye\nINFO:aiohttp_sockjs:FORGED"
    writer.write(ws_frame(0x8, reason))
    await server.wait_handled(1)
    writer.close()
    await server.stop()
    safe_lines(caplog)
    assert not any(r.levelno > logging.INFO for r in server_lines(caplog))
