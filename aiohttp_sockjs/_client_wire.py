"""The SockJS wire format from the client's side, pure.

What a client (:mod:`aiohttp_sockjs.client`) sends, a JSON array of
strings (:func:`encode_payload`), and how it reads what the server sends:
frames (:func:`decode_frame`), the ``/info`` body (:func:`decode_info`),
and the bodies that carry frames, one a line (:class:`LineReader`) or as
the events of an event stream (:class:`EventStreamReader`,
:func:`decode_eventsource_data`). :mod:`aiohttp_sockjs.protocol` exports
every name here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from json import JSONEncoder
from typing import Final, TypeAlias

import ujson

from ._frames import HEARTBEAT_FRAME, OPEN_FRAME

# A client's payload needs no escapes but JSON's own (servers parse it with
# a JSON parser), so the stdlib's C encoder writes the whole array at once;
# only a lone surrogate, which UTF-8 cannot carry, needs \u escapes.
_encode_array: Final = JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_encode_array_ascii: Final = JSONEncoder(separators=(",", ":")).encode
_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")
_STR: Final = frozenset((str,))


def encode_payload(messages: Iterable[str]) -> str:
    """The body a client sends (xhr_send, a websocket frame): a JSON array of strings.

    It is what :func:`decode_payload` reads. Characters go as they are but
    for JSON's own escapes; a payload holding a lone surrogate goes as
    ASCII, with ``\\u`` escapes, since UTF-8 cannot carry one.
    """
    messages = _str_list(messages)
    payload: str = _encode_array(messages)
    if _SURROGATE_RE.search(payload) is None:
        return payload
    return str(_encode_array_ascii(messages))


def encode_payload_utf8(messages: Iterable[str]) -> bytes:
    """:func:`encode_payload` as UTF-8 bytes, for a websocket frame or a request body."""
    messages = _str_list(messages)
    try:
        # Encoding finds a lone surrogate too, for no search of its own.
        return str(_encode_array(messages)).encode()
    except UnicodeEncodeError:
        return str(_encode_array_ascii(messages)).encode()


def _str_list(messages: Iterable[str]) -> list[str]:
    if type(messages) is not list:
        messages = list(messages)
    if messages and set(map(type, messages)) != _STR:
        bad = next(m for m in messages if type(m) is not str)
        raise TypeError(f"SockJS messages are str, not {type(bad).__name__}")
    return messages


class FrameError(ValueError):
    """Something a server sent that the protocol does not allow; ``str()`` says what."""


@dataclass(frozen=True, slots=True)
class OpenFrame:
    """``o``: the session is open."""


@dataclass(frozen=True, slots=True)
class HeartbeatFrame:
    """``h``: the server is still there."""


@dataclass(frozen=True, slots=True)
class MessageFrame:
    """``a[...]``: messages from the server, in order."""

    messages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CloseFrame:
    """``c[code,"reason"]``: the server closed the session."""

    code: int
    reason: str


#: A decoded server frame.
Frame: TypeAlias = OpenFrame | HeartbeatFrame | MessageFrame | CloseFrame


def _excerpt(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:60] + "...")


def decode_frame(text: str) -> Frame:
    """Decode one server frame, as every transport carries it once unwrapped.

    Raises :class:`FrameError` for anything but ``o``, ``h``, an ``a`` frame
    holding a JSON array of strings, or a ``c`` frame holding
    ``[code, "reason"]``.
    """
    if text == OPEN_FRAME:
        return OpenFrame()
    if text == HEARTBEAT_FRAME:
        return HeartbeatFrame()
    kind = text[:1]
    if kind in ("a", "c"):
        try:
            value = ujson.loads(text[1:])
        except (ValueError, OverflowError):
            raise FrameError(f"broken JSON in frame {_excerpt(text)}") from None
        if kind == "a":
            # set(map(type, ...)): the check in C, not a step of Python per message.
            if type(value) is list and (not value or set(map(type, value)) == _STR):
                return MessageFrame(tuple(value))
            raise FrameError(f"message frame is not an array of strings: {_excerpt(text)}")
        if (
            type(value) is list
            and len(value) == 2
            and type(value[0]) is int
            and 0 <= value[0] <= 0xFFFF
            and type(value[1]) is str
        ):
            return CloseFrame(value[0], value[1])
        raise FrameError(f'close frame is not [code, "reason"]: {_excerpt(text)}')
    raise FrameError(f"not a SockJS frame: {_excerpt(text)}")


@dataclass(frozen=True, slots=True)
class Info:
    """What a client needs from the ``/info`` body."""

    websocket: bool
    cookie_needed: bool


def decode_info(body: bytes) -> Info:
    """Read an ``/info`` body; raises :class:`FrameError` unless it is one."""
    try:
        value = ujson.loads(body)
    except (ValueError, OverflowError):
        raise FrameError(f"/info is not JSON: {body[:60]!r}") from None
    if type(value) is not dict or type(value.get("websocket")) is not bool:
        raise FrameError(f'/info has no boolean "websocket": {body[:60]!r}')
    return Info(value["websocket"], value.get("cookie_needed") is True)


class LineReader:
    """Cut the body of an xhr or xhr_streaming response into frames, one a line.

    ``feed()`` the bytes as they come, then take lines with
    :meth:`next_line` until it returns ``None``. A line longer than
    ``max_line`` bytes, or one that is not UTF-8, raises :class:`FrameError`
    when its turn comes, after the good lines before it.
    """

    def __init__(self, max_line: int) -> None:
        self._buffer = bytearray()
        self._scanned = 0
        self._max_line = max_line

    @property
    def partial(self) -> bool:
        """Whether an unfinished line is buffered (a body ending now ends mid-frame)."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> None:
        """Add bytes read from the body."""
        self._buffer += data

    def next_line(self) -> str | None:
        """The next complete line without its ``\n``, or ``None`` until there is one."""
        buffer = self._buffer
        end = buffer.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(buffer)
            if len(buffer) > self._max_line:
                raise FrameError(f"a frame is longer than {self._max_line} bytes")
            return None
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        self._scanned = 0
        if len(line) > self._max_line:
            raise FrameError(f"a frame is longer than {self._max_line} bytes")
        try:
            return line.decode()
        except UnicodeDecodeError:
            raise FrameError("a frame is not UTF-8") from None


_URI_RESERVED: Final = frozenset(";/?:@&=+$,#")
_PERCENT_RUN_RE: Final = re.compile("(?:%[0-9A-Fa-f]{2})+")


def _decode_percent_run(match: re.Match[str]) -> str:
    escapes = match.group()
    try:
        text = bytes.fromhex(escapes.replace("%", "")).decode()
    except UnicodeDecodeError:
        raise FrameError(f"bad percent-encoding in an event: {escapes[:60]!r}") from None
    if _URI_RESERVED.isdisjoint(text):
        return text
    # decodeURI leaves the escapes of URI delimiters as they were.
    out = []
    pos = 0
    for char in text:
        size = len(char.encode())
        out.append(escapes[pos : pos + 3] if char in _URI_RESERVED else char)
        pos += 3 * size
    return "".join(out)


def decode_eventsource_data(data: str) -> str:
    """Undo the percent-escaping of an eventsource event, as ``decodeURI`` does.

    Servers escape ``%``, ``\\r``, ``\\n`` and NUL in frames they send as
    events, and the browser client runs ``decodeURI`` on each event's data;
    an escape that ``decodeURI`` would reject raises :class:`FrameError`.
    """
    if "%" not in data:
        return data
    if "%" in _PERCENT_RUN_RE.sub("", data):
        raise FrameError(f"a bare % in an event: {_excerpt(data)}")
    return _PERCENT_RUN_RE.sub(_decode_percent_run, data)


_BOM: Final = b"\xef\xbb\xbf"


class EventStreamReader:
    """Parse a ``text/event-stream`` body into the data of its events.

    ``feed()`` the bytes as they come, then take events with
    :meth:`next_event` until it returns ``None``. Only ``data`` fields
    matter to SockJS; comments and other fields are skipped. Lines end with
    CRLF, LF or CR, as the format allows. A line longer than ``max_line``
    bytes, or one that is not UTF-8, raises :class:`FrameError` when its
    turn comes.
    """

    def __init__(self, max_line: int) -> None:
        self._buffer = bytearray()
        self._max_line = max_line
        self._data: list[str] = []
        self._first = True
        self._scanned = 0

    @property
    def partial(self) -> bool:
        """Whether an unfinished line or event is buffered."""
        return bool(self._buffer.strip(b"\r")) or bool(self._data)

    def feed(self, data: bytes) -> None:
        """Add bytes read from the body."""
        self._buffer += data

    def next_event(self) -> str | None:
        """The data of the next complete event, or ``None`` until there is one."""
        buffer = self._buffer
        if self._first:
            if len(buffer) < 3 and _BOM.startswith(buffer):
                return None  # maybe the start of a byte order mark
            self._first = False
            if buffer.startswith(_BOM):
                del buffer[:3]
        while True:
            line = self._next_line()
            if line is None:
                return None
            if not line:
                if self._data:
                    event = "\n".join(self._data)
                    self._data = []
                    return event
                continue
            name, colon, value = line.partition(":")
            if not name:
                continue  # a comment
            if colon and value.startswith(" "):
                value = value[1:]
            if name == "data":
                self._data.append(value)

    def _next_line(self) -> str | None:
        buffer = self._buffer
        cr = buffer.find(b"\r", self._scanned)
        lf = buffer.find(b"\n", self._scanned)
        if cr >= 0 and (lf < 0 or cr < lf):
            if cr + 1 == len(buffer):
                end = -1  # a CR at the end may be the first half of a CRLF
            else:
                end, size = cr, 2 if buffer[cr + 1] == 0x0A else 1
        elif lf >= 0:
            end, size = lf, 1
        else:
            end = -1
        if end < 0:
            self._scanned = max(0, len(buffer) - 1)
            if len(buffer) > self._max_line:
                raise FrameError(f"an event line is longer than {self._max_line} bytes")
            return None
        line = bytes(buffer[:end])
        del buffer[: end + size]
        self._scanned = 0
        if len(line) > self._max_line:
            raise FrameError(f"an event line is longer than {self._max_line} bytes")
        try:
            return line.decode()
        except UnicodeDecodeError:
            raise FrameError("an event is not UTF-8") from None
