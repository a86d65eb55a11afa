"""The client's HTTP transports: long responses (streaming) and polls.

xhr_streaming, eventsource and htmlfile read frames from a long response,
opened again when it ends; xhr and JSONP polling get one answer per
request. They send with a POST to ``xhr_send``, JSONP polling with a
form to ``jsonp_send``.
"""

from __future__ import annotations

import io
import json
import random
import urllib.parse
from collections import deque
from typing import Final

import aiohttp
from yarl import URL

from . import protocol
from ._client_transports import (
    NO_TIMEOUT,
    ClientOptions,
    Transport,
    join,
    network_errors,
    read_body,
    refused,
    within,
)
from .exceptions import ClientError, ConnectionLost, RemoteProtocolError
from .protocol import Frame

_TEXT_PLAIN: Final = "text/plain;charset=UTF-8"


class _Http(Transport):
    """The HTTP transports: they receive their own way and send with xhr_send."""

    def __init__(self, http: aiohttp.ClientSession, base: URL, options: ClientOptions) -> None:
        super().__init__(http, base, options)
        self.url = join(self.session_url, self.name)
        self.frames: deque[str] = deque()
        # An error found after good frames waits until they are read.
        self.error: ClientError | None = None
        self.response: aiohttp.ClientResponse | None = None

    async def _request(self, method: str) -> aiohttp.ClientResponse:
        resp = await self.http.request(
            method, self.url, headers=self.options.headers, timeout=NO_TIMEOUT
        )
        if resp.status != 200:
            raise await refused(resp, f"{method} {self.name}")
        return resp

    async def next_frame(self, seconds: float | None, what: str) -> Frame:
        while not self.frames:
            if self.error is not None:
                raise self.error
            await self._receive(seconds, what)
        try:
            return protocol.decode_frame(self.frames.popleft())
        except protocol.FrameError as exc:
            raise RemoteProtocolError(str(exc)) from None

    async def _receive(self, seconds: float | None, what: str) -> None:
        """Read from the server until ``self.frames`` has something."""
        raise NotImplementedError

    async def send(self, messages: list[str]) -> None:
        payload = protocol.encode_payload_utf8(messages)
        url = join(self.session_url, "xhr_send")
        headers = {**self.options.headers, "Content-Type": _TEXT_PLAIN}

        async def post() -> None:
            # A file-like body: aiohttp warns about large bytes ones.
            body = io.BytesIO(payload)
            async with self.http.post(url, data=body, headers=headers, timeout=NO_TIMEOUT) as resp:
                if resp.status not in (200, 204):
                    raise await refused(resp, "xhr_send")

        await within(post(), self.options.timeout, "answer to xhr_send")

    async def close(self, code: int, reason: str) -> None:
        resp, self.response = self.response, None
        if resp is not None:
            resp.close()


class _Stream(_Http):
    """xhr_streaming and eventsource: long responses, opened again when they end."""

    method: str

    def __init__(self, http: aiohttp.ClientSession, base: URL, options: ClientOptions) -> None:
        super().__init__(http, base, options)
        self.delivered = False

    def _new_reader(self) -> None:
        raise NotImplementedError

    def _feed(self, chunk: bytes) -> None:
        raise NotImplementedError

    def _next(self) -> str | None:
        raise NotImplementedError

    def _partial(self) -> bool:
        raise NotImplementedError

    def _take_frames(self) -> None:
        try:
            while (frame := self._next()) is not None:
                self.frames.append(frame)
                self.delivered = True
        except protocol.FrameError as exc:
            self.error = RemoteProtocolError(str(exc))

    async def _receive(self, seconds: float | None, what: str) -> None:
        if self.response is None:
            self.response = await within(self._request(self.method), seconds, what)
            self._new_reader()
            self.delivered = False
        try:
            with network_errors():
                chunk = await within(self.response.content.readany(), seconds, what)
        except RuntimeError as exc:
            # aiohttp's StreamReader raises this when the connection ended
            # before the read began (the server went away under load).
            if str(exc) != "Connection closed.":
                raise
            raise ConnectionLost(f"the {self.name} response's connection closed") from exc
        if chunk:
            self._feed(chunk)
            self._take_frames()
            return
        # The response ended: at its size limit, or because the server went.
        if self._partial():
            self.error = ConnectionLost(f"the {self.name} response ended in the middle of a frame")
        elif not self.delivered:
            self.error = ConnectionLost(f"the {self.name} response ended without a frame")
        self.response.release()
        self.response = None


class _XhrStreaming(_Stream):
    name = "xhr_streaming"
    method = "POST"

    def _new_reader(self) -> None:
        self.lines = protocol.LineReader(self.options.max_frame_size)
        self.prelude = True

    def _feed(self, chunk: bytes) -> None:
        self.lines.feed(chunk)

    def _next(self) -> str | None:
        while (line := self.lines.next_line()) == "":
            pass
        if self.prelude and line is not None:
            self.prelude = False
            # Each response starts with a line of "h"s that pushes it past
            # proxy buffers; it is no frame.
            if line.strip("h") == "":
                return self._next()
        return line

    def _partial(self) -> bool:
        return self.lines.partial


class _EventSource(_Stream):
    name = "eventsource"
    method = "GET"

    def _new_reader(self) -> None:
        self.events = protocol.EventStreamReader(self.options.max_frame_size)

    def _feed(self, chunk: bytes) -> None:
        self.events.feed(chunk)

    def _next(self) -> str | None:
        data = self.events.next_event()
        return None if data is None else protocol.decode_eventsource_data(data)

    def _partial(self) -> bool:
        return self.events.partial


class _XhrPolling(_Http):
    name = "xhr"

    async def _receive(self, seconds: float | None, what: str) -> None:
        await within(self._poll(), seconds, what)

    async def _poll(self) -> None:
        self.response = await self._request("POST")
        try:
            body = await read_body(self.response, self.options.max_frame_size)
        finally:
            self.response.release()
            self.response = None
        lines = protocol.LineReader(self.options.max_frame_size)
        lines.feed(body)
        try:
            while (line := lines.next_line()) is not None:
                if line:
                    self.frames.append(line)
        except protocol.FrameError as exc:
            self.error = RemoteProtocolError(str(exc))
            return
        if lines.partial:
            self.error = ConnectionLost("an xhr answer ended in the middle of a frame")
        elif not self.frames:
            self.error = RemoteProtocolError("an xhr answer without a frame")


def _callback() -> str:
    # The name of the page's JavaScript function that the server's scripts call.
    return f"_sockjs_{random.getrandbits(32):08x}"


def _js_frame(literal: bytes) -> str:
    """The frame inside a script's ``p(...)`` or a JSONP call: a JSON string."""
    try:
        frame = json.loads(literal)
    except ValueError:  # a UnicodeDecodeError too
        raise protocol.FrameError(f"not a JSON string: {literal[:60]!r}") from None
    if not isinstance(frame, str):
        raise protocol.FrameError(f"not a JSON string: {literal[:60]!r}")
    return frame


_SCRIPT_END: Final = b"</script>"
_CHUNK_START: Final = b"<script>\np("
_CHUNK_END: Final = b");\n</script>\r\n"


class _HtmlfileReader:
    """Cut an htmlfile page into frames: a prelude page, then one script per frame."""

    def __init__(self, max_frame: int) -> None:
        self._buffer = bytearray()
        self._max = max_frame
        self._prelude = True

    @property
    def partial(self) -> bool:
        return bool(self._buffer.strip())

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self) -> str | None:
        buffer = self._buffer
        if self._prelude:
            end = buffer.find(_SCRIPT_END)
            if end < 0:
                if len(buffer) > self._max:
                    raise protocol.FrameError("no end to the htmlfile page's first script")
                return None
            del buffer[: end + len(_SCRIPT_END)]
            self._prelude = False
        # The prelude's padding, and the line breaks between scripts.
        start = len(buffer) - len(buffer.lstrip())
        if start:
            del buffer[:start]
        if len(buffer) < len(_CHUNK_START):
            return None
        if not buffer.startswith(_CHUNK_START):
            raise protocol.FrameError(f"not an htmlfile script: {bytes(buffer[:60])!r}")
        end = buffer.find(_CHUNK_END)
        if end < 0:
            if len(buffer) > self._max:
                raise protocol.FrameError(f"a frame is longer than {self._max} bytes")
            return None
        literal = bytes(buffer[len(_CHUNK_START) : end])
        del buffer[: end + len(_CHUNK_END)]
        if len(literal) > self._max:
            raise protocol.FrameError(f"a frame is longer than {self._max} bytes")
        return _js_frame(literal)


class _Htmlfile(_Stream):
    name = "htmlfile"
    method = "GET"

    def __init__(self, http: aiohttp.ClientSession, base: URL, options: ClientOptions) -> None:
        super().__init__(http, base, options)
        self.url = self.url.with_query(c=_callback())

    def _new_reader(self) -> None:
        self.page = _HtmlfileReader(self.options.max_frame_size)

    def _feed(self, chunk: bytes) -> None:
        self.page.feed(chunk)

    def _next(self) -> str | None:
        return self.page.next_frame()

    def _partial(self) -> bool:
        return self.page.partial


class _JsonpPolling(_XhrPolling):
    """JSONP polling: each poll answers one frame as a script; sends are forms."""

    name = "jsonp"

    def __init__(self, http: aiohttp.ClientSession, base: URL, options: ClientOptions) -> None:
        super().__init__(http, base, options)
        self.callback = _callback()
        self.url = self.url.with_query(c=self.callback)

    async def _poll(self) -> None:
        prefix = f"/**/{self.callback}(".encode()
        limit = self.options.max_frame_size
        self.response = await self._request("GET")
        try:
            # Room for the call around the frame; the frame is checked below.
            body = await read_body(self.response, limit + len(prefix) + 8)
        except RemoteProtocolError:
            raise RemoteProtocolError(f"a frame is longer than {limit} bytes") from None
        finally:
            self.response.release()
            self.response = None
        if not body.startswith(prefix):
            self.error = RemoteProtocolError(f"not a JSONP call of {self.callback}: {body[:60]!r}")
            return
        call = body.rstrip()
        if not call.endswith(b");"):
            self.error = ConnectionLost("a jsonp answer ended in the middle of a frame")
            return
        literal = call[len(prefix) : -2]
        if len(literal) > limit:
            self.error = RemoteProtocolError(f"a frame is longer than {limit} bytes")
            return
        try:
            self.frames.append(_js_frame(literal))
        except protocol.FrameError as exc:
            self.error = RemoteProtocolError(str(exc))

    async def send(self, messages: list[str]) -> None:
        form = urllib.parse.urlencode({"d": protocol.encode_payload(messages)}).encode()
        url = join(self.session_url, "jsonp_send")
        headers = {**self.options.headers, "Content-Type": "application/x-www-form-urlencoded"}

        async def post() -> None:
            body = io.BytesIO(form)
            async with self.http.post(url, data=body, headers=headers, timeout=NO_TIMEOUT) as resp:
                if resp.status != 200:
                    raise await refused(resp, "jsonp_send")
                await resp.read()

        await within(post(), self.options.timeout, "answer to jsonp_send")


#: The HTTP transports' classes, by name.
HTTP_TRANSPORTS: Final[dict[str, type[Transport]]] = {
    "xhr_streaming": _XhrStreaming,
    "eventsource": _EventSource,
    "xhr": _XhrPolling,
    "htmlfile": _Htmlfile,
    "jsonp": _JsonpPolling,
}
