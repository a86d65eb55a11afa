"""Everything that reaches past aiohttp's public API, in one place.

The rest of the package uses aiohttp's public API only. What is here is
tied to the aiohttp versions that ``pyproject.toml`` allows (3.13.2 up to,
not including, 3.15) and that CI tests (the oldest and the newest of that
range): :data:`SUPPORTED` says whether the running aiohttp has the layout
this module was written against, and ``tests/functional/test_aiohttp_internals.py``
fails on a supported version where it does not.

Only one thing is reached for: writing a websocket text frame at once,
without a coroutine, when ``WebSocketResponse.send_str`` would not have
suspended anyway. It saves a task step per frame on the hot send path.
"""

from __future__ import annotations

import inspect
from typing import Final

from aiohttp import WSMsgType, web

__all__ = ["SUPPORTED", "write_text_now"]

_TEXT: Final = WSMsgType.TEXT


def _writer_layout_known() -> bool:
    """Whether aiohttp's websocket writer has the attributes we rely on."""
    try:
        from aiohttp._websocket.writer import WebSocketWriter
    except ImportError:
        return False
    write = getattr(WebSocketWriter, "_write_websocket_frame", None)
    init = getattr(WebSocketWriter.__init__, "__code__", None)
    if write is None or init is None:
        return False
    try:
        params = list(inspect.signature(write).parameters)
    except (TypeError, ValueError):
        return False
    needed = {"transport", "protocol", "use_mask", "compress", "_closing", "_limit", "_output_size"}
    return params == ["self", "message", "opcode", "rsv"] and needed <= set(init.co_names)


#: Whether :func:`write_text_now` can ever write (the writer's layout is the
#: one this module knows). True on every aiohttp version pyproject allows.
SUPPORTED: Final = _writer_layout_known()


def write_text_now(ws: web.WebSocketResponse, data: bytes) -> bool:
    """Write ``data`` (UTF-8 text) as one websocket text frame, if that needs no waiting.

    Returns ``True`` only when the frame was written exactly as
    ``await ws.send_str(text)`` would have written it, in a call that would
    not have suspended: no permessage-deflate (compression may wait on the
    writer's lock or an executor), the writer and its transport open, and
    the bytes written since the writer last checked flow control staying
    within its limit (past it, ``send_frame`` may wait for the transport to
    drain). Returns ``False`` with nothing written otherwise; the caller
    then sends the ordinary way.
    """
    if not SUPPORTED:
        return False
    writer = ws._writer
    if writer is None or ws.closed or writer.compress or writer.use_mask or writer._closing:
        return False
    if writer.transport.is_closing():
        return False
    size = len(data)
    header = 2 if size < 126 else 4 if size < 65536 else 10
    if writer._output_size + header + size > writer._limit:
        return False
    writer._write_websocket_frame(data, _TEXT, 0)
    return True
