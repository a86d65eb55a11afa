"""How aiohttp's server takes a handler, and what it keeps of a connection.

Part of :mod:`aiohttp_sockjs._aiohttp` (the one place that reaches past
aiohttp's public API): a plain function marked so that aiohttp takes it
as a coroutine handler (:func:`coroutine_handler`), how many requests a
connection has begun (:func:`request_number`), and asyncio's socket
transports made to read at most 64 KiB at a time (:func:`small_reads`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any, Final, TypeVar

from aiohttp import web

_H = TypeVar("_H", bound=Callable[..., Any])


def coroutine_handler(func: _H) -> _H:
    """``func``, a plain function returning a coroutine, marked so aiohttp takes it as a handler.

    aiohttp wraps a handler that is not a coroutine function in a coroutine
    of its own (with a DeprecationWarning); a dispatching handler that
    returns the transport handler's coroutine would then cost a coroutine
    frame per live connection. Python 3.12+ has a public marker
    (``inspect.markcoroutinefunction``); on older Pythons aiohttp (before
    3.14's Python-3.14 code path) also accepts asyncio's own marker, the
    one ``asyncio.iscoroutinefunction`` reads.
    """
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        return mark(func)  # type: ignore[no-any-return]
    func._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
    return func


def request_number(request: web.BaseRequest) -> int:
    """How many requests ``request``'s connection has begun, this one included.

    aiohttp counts each request as it is parsed. ``-1`` where the count
    cannot be read (nothing is then taken to be known about the connection).
    """
    count: int = getattr(request.protocol, "_request_count", -1)
    return count


#: What asyncio's selector transports pass to ``recv()`` (``max_size``) is
#: 256 KiB. glibc serves an allocation that large with ``mmap``, so every
#: read, a 6-byte pong as well, costs an ``mmap``, ``mremap`` and
#: ``munmap`` on top of the ``recv`` (CPython issue 85451; 13 us per read
#: on the benchmark machine). aiohttp's own chunk size stays on the heap.
_READ_SIZE: Final = 2**16


def small_reads(transport: asyncio.BaseTransport | None) -> None:
    """Have asyncio's socket ``transport`` read at most 64 KiB at a time.

    Nothing for other transports (uvloop's, TLS), which read into buffers
    of their own.
    """
    # Once set, the next request on the connection finds it set (None and
    # other transports have no max_size).
    if getattr(transport, "max_size", 0) > _READ_SIZE:
        transport.max_size = _READ_SIZE  # type: ignore[union-attr]
