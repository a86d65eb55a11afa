"""Everything that reaches past aiohttp's public API, in one package.

The rest of aiohttp_sockjs uses aiohttp's public API only. What is here is
tied to the aiohttp versions that ``pyproject.toml`` allows (3.13.2 up to,
not including, 3.15) and that CI tests (the oldest and the newest of that
range): :data:`SUPPORTED` says whether the running aiohttp has the layout
this package was written against, and ``tests/functional/test_aiohttp_internals.py``
fails on a supported version where it does not.

What is reached for: the websocket writer (server and client side), the
server websocket's closing state, the HTTP response writer, and how aiohttp
recognises a coroutine handler (:func:`coroutine_handler`, so that the
endpoint's one session route can hand back its transport's coroutine
without a wrapper frame per connection):

- Writing a text frame at once, without a coroutine, when
  ``WebSocketResponse.send_str`` would not have suspended anyway
  (:func:`write_text_now`). It saves a task step per frame on the hot send
  path.
- Writing a chunk of a streaming response (xhr_streaming, eventsource,
  htmlfile) at once, without a coroutine, when ``StreamResponse.write``
  would not have suspended anyway (:func:`write_stream_now`): a stream's
  frames then go out from the session's step, with no task per write.
- permessage-deflate the way the ``websocket_compression`` option does it
  (:func:`write_text_now` and :func:`send_text`): a frame shorter than the
  threshold goes out uncompressed (RSV1 clear, which RFC 7692 allows for
  any message; ``send_str`` cannot ask for that on a compressed socket),
  and a longer one is compressed without context takeover by one
  compressor shared by every socket, instead of one compressor per socket
  (about 256 KiB of zlib state each). The last compressed frames are
  remembered, so a broadcast that gives many sockets the same frame
  compresses it once (:class:`_Deflater`). The handshake answers with
  ``server_no_context_takeover`` (:func:`no_server_takeover`), so the
  browser may drop its inflate window between messages.
- The websocket close handshake (:func:`start_close`, :func:`await_close`):
  ``WebSocketResponse.close()`` closes TCP without waiting for the client's
  close frame when another task reads the socket.
- A ping written at once with a heartbeat (:func:`write_ping_now`), and
  its pong noted where aiohttp parses it (:func:`websocket_response`), so
  that an idle socket's pong does not wake its read loop.
- How many requests a connection has begun (:func:`request_number`), so
  that a session can tell whether the end of its answer is still what
  waits unsent there.
- Reads of at most 64 KiB on asyncio's own socket transports
  (:func:`small_reads`), set by the session route on every request's
  connection.
- The client's text frame written at once, masked
  (:func:`write_client_text_now`), as :func:`write_text_now` for the server.

Its modules, by what they reach for: :mod:`.writes` (frames and chunks
written at once, permessage-deflate, on the server and the client),
:mod:`.websocket` (the server websocket's handshake, pongs and close
handshake) and :mod:`.server` (the handler marker, a connection's request
count and read size). Everything is imported from here.
"""

from __future__ import annotations

from .server import coroutine_handler, request_number, small_reads
from .websocket import (
    PONGS_SUPPORTED,
    Pongs,
    await_close,
    close_answered,
    no_server_takeover,
    pongs,
    start_close,
    websocket_response,
)
from .writes import (
    FRAME_MEMO_LIMIT,
    STREAM_SUPPORTED,
    SUPPORTED,
    SYNC_COMPRESS_LIMIT,
    send_text,
    write_client_text_now,
    write_heartbeat_and_ping_now,
    write_ping_now,
    write_stream_now,
    write_text_now,
)

__all__ = [
    "FRAME_MEMO_LIMIT",
    "PONGS_SUPPORTED",
    "STREAM_SUPPORTED",
    "SUPPORTED",
    "SYNC_COMPRESS_LIMIT",
    "Pongs",
    "await_close",
    "close_answered",
    "coroutine_handler",
    "no_server_takeover",
    "pongs",
    "request_number",
    "send_text",
    "small_reads",
    "start_close",
    "websocket_response",
    "write_client_text_now",
    "write_heartbeat_and_ping_now",
    "write_ping_now",
    "write_stream_now",
    "write_text_now",
]
