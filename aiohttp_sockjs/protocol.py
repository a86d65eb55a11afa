"""SockJS wire format as pure functions: no sockets, no aiohttp.

Everything a transport puts on the wire or reads off it is built or parsed
here: frames, the JSON encoding with the escapes the protocol demands,
per-transport framing, client payload decoding, callback and id
validation, the ``/info`` body and the iframe page, and the one escape that
client strings go through before they reach a log; and for the client
(:mod:`aiohttp_sockjs.client`), payload encoding and the decoding of server
frames, ``/info`` and streamed bodies. Keeping this free of I/O lets the
whole wire format be tested with plain function calls.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from json import JSONEncoder
from json.encoder import encode_basestring as _json_string
from typing import Final, TypeAlias

import ujson

__all__ = [
    "CLOSE_ANOTHER_CONNECTION",
    "CLOSE_GOING_AWAY",
    "CLOSE_GO_AWAY",
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_INTERRUPTED",
    "CLOSE_NORMAL",
    "CLOSE_QUEUE_OVERFLOW",
    "CLOSE_RATE_LIMIT",
    "CLOSE_TOO_BIG",
    "CLOSE_TRY_AGAIN",
    "HEARTBEAT_FRAME",
    "ID_PATTERN",
    "LOG_VALUE_LIMIT",
    "MAX_ID_LENGTH",
    "OPEN_FRAME",
    "CloseFrame",
    "EventStreamReader",
    "Frame",
    "FrameError",
    "HeartbeatFrame",
    "Info",
    "LineReader",
    "MessageFrame",
    "OpenFrame",
    "PayloadError",
    "close_frame",
    "decode_eventsource_data",
    "decode_frame",
    "decode_info",
    "decode_payload",
    "decode_websocket_payload",
    "encode_message",
    "encode_messages",
    "encode_payload",
    "encode_payload_utf8",
    "eventsource_chunk",
    "htmlfile_chunk",
    "htmlfile_prelude",
    "iframe_etag",
    "iframe_page",
    "info_body",
    "jsonp_body",
    "loggable",
    "messages_frame",
    "valid_id",
    "validate_callback",
    "xhr_chunk",
]

OPEN_FRAME: Final = "o"
HEARTBEAT_FRAME: Final = "h"

CLOSE_NORMAL: Final = (1000, "Normal closure")
CLOSE_GOING_AWAY: Final = (1001, "Going away")
CLOSE_INTERRUPTED: Final = (1002, "Connection interrupted")
CLOSE_TOO_BIG: Final = (1009, "Message too big")
#: The client sent faster than the endpoint's ``rate_limit`` allows.
CLOSE_RATE_LIMIT: Final = (1008, "Rate limit exceeded")
CLOSE_INTERNAL_ERROR: Final = (1011, "Internal error")
CLOSE_TRY_AGAIN: Final = (1013, "Try again later")
# The client stopped taking messages and its send queue hit the bound;
# 1013 ("try again later") tells it a fresh connection will work.
CLOSE_QUEUE_OVERFLOW: Final = (1013, "Send queue overflow")
CLOSE_ANOTHER_CONNECTION: Final = (2010, "Another connection still open")
CLOSE_GO_AWAY: Final = (3000, "Go away!")

# Characters the server must send as \uXXXX: browsers mangle or drop some of
# them, and U+2028/U+2029 end a line inside JavaScript string literals.
# Surrogates are added because ujson passes a lone one through raw, which no
# UTF-8 encoder accepts; \udXXX is also how the client sent it.
_ESCAPE_RE: Final = re.compile(
    "[\x00-\x1f\u200c-\u200f\u2028-\u202f\u2060-\u206f\ud800-\udfff\ufff0-\uffff]"
)
_CALLBACK_RE: Final = re.compile(r"[a-zA-Z0-9_.\-]+")
MAX_CALLBACK_LENGTH: Final = 256


class PayloadError(ValueError):
    """A client payload the protocol rejects; ``str()`` is the wire text."""


def _escape_char(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _dumps(obj: object) -> str:
    try:
        text: str = ujson.dumps(obj, ensure_ascii=False, escape_forward_slashes=False)
    except UnicodeEncodeError:
        # Some ujson versions refuse a lone surrogate instead; ASCII output
        # escapes it as \udXXX.
        return str(ujson.dumps(obj, ensure_ascii=True, escape_forward_slashes=False))
    if _ESCAPE_RE.search(text) is not None:
        text = _ESCAPE_RE.sub(_escape_char, text)
    return text


# The fast path of encode_message hands a message to _dumps when its JSON
# text holds a character to escape or a lone surrogate.
_SLOW_RE: Final = re.compile(
    "[\x00-\x1f\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff\ud800-\udfff]"
)


def encode_message(message: str) -> str:
    """Encode one message as the JSON string that goes inside an ``a`` frame."""
    if type(message) is not str:
        raise TypeError(f"SockJS messages are str, not {type(message).__name__}")
    # The stdlib's C string encoder gives the same text as _dumps for every
    # code point but the surrogates (checked over all of Unicode), at a tenth
    # of the cost of ujson.dumps with keyword arguments.
    text: str = _json_string(message)
    if _SLOW_RE.search(text) is None:
        return text
    return _dumps(message)


def encode_messages(messages: Iterable[str]) -> str:
    """Encode a whole ``a`` frame from plain message strings."""
    return messages_frame([encode_message(m) for m in messages])


def messages_frame(encoded: Sequence[str]) -> str:
    """Join messages already passed through :func:`encode_message` into a frame."""
    return "a[" + ",".join(encoded) + "]"


def close_frame(code: int, reason: str) -> str:
    """The ``c[code,"reason"]`` frame, the reason escaped like any message."""
    return "c[" + str(int(code)) + "," + _dumps(reason) + "]"


# --- per-transport framing -------------------------------------------------

XHR_STREAMING_PRELUDE: Final = b"h" * 2048 + b"\n"
EVENTSOURCE_PRELUDE: Final = b"\r\n"


def xhr_chunk(frame: str) -> bytes:
    """A frame as the xhr and xhr_streaming transports send it."""
    return (frame + "\n").encode()


_EVENTSOURCE_RE: Final = re.compile("[%\r\n\x00]")
_EVENTSOURCE_ESCAPES: Final = {"%": "%25", "\r": "%0D", "\n": "%0A", "\x00": "%00"}


def _eventsource_escape(match: re.Match[str]) -> str:
    return _EVENTSOURCE_ESCAPES[match.group()]


def eventsource_chunk(frame: str) -> bytes:
    """A frame as an event-stream event.

    The client runs ``decodeURI`` on the event data, so a bare ``%`` in a
    message would corrupt it or throw; ``\\r``, ``\\n`` and NUL would split
    or end the event.
    """
    if _EVENTSOURCE_RE.search(frame) is not None:
        frame = _EVENTSOURCE_RE.sub(_eventsource_escape, frame)
    return ("data: " + frame + "\r\n\r\n").encode()


def _js_string(frame: str) -> str:
    # A JavaScript string literal that is safe inside <script>: with "<" and
    # ">" escaped, no "</script" or "<!--" can appear in it, whatever the
    # message holds.
    text = ujson.dumps(frame, ensure_ascii=True, encode_html_chars=True)
    return str(text)


_HTMLFILE_HEAD: Final = """<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.{callback};
    c.start();
    function p(d) {{c.message(d);}};
    window.onload = function() {{c.stop();}};
  </script>"""


def htmlfile_prelude(callback: str) -> bytes:
    """The page that opens an htmlfile stream, padded past 1 KiB.

    Older browsers render nothing of a streamed page before 1 KiB arrives;
    ``callback`` must already have passed :func:`validate_callback`.
    """
    head = _HTMLFILE_HEAD.format(callback=callback)
    return (head + " " * max(0, 1025 - len(head)) + "\r\n\r\n").encode()


def htmlfile_chunk(frame: str) -> bytes:
    """A frame as a script block of the htmlfile stream."""
    return ("<script>\np(" + _js_string(frame) + ");\n</script>\r\n").encode()


def jsonp_body(callback: str, frame: str) -> bytes:
    """A frame as a JSONP answer; the ``/**/`` prefix defeats content sniffing."""
    return ("/**/" + callback + "(" + _js_string(frame) + ");\r\n").encode()


def validate_callback(callback: str | None) -> str:
    """Return ``callback`` if it is a safe JavaScript name, else raise.

    It is reflected into a script, so anything beyond ``[a-zA-Z0-9_.-]`` is
    refused: this is where the protocol's XSS hole would be.
    """
    if not callback:
        raise PayloadError('"callback" parameter required')
    if len(callback) > MAX_CALLBACK_LENGTH or _CALLBACK_RE.fullmatch(callback) is None:
        raise PayloadError('invalid "callback" parameter')
    return callback


# --- client payloads -----------------------------------------------------

#: The longest server or session id accepted, in characters. Clients make
#: short ones (sockjs-client: 8 random characters, server id 3 digits).
MAX_ID_LENGTH: Final = 128
#: A server or session id: 1 to MAX_ID_LENGTH characters, none of them
#: ``/``, ``.`` or a control character. The session routes match their ids
#: with this pattern, so any other id is a 404 before a handler runs.
ID_PATTERN: Final = rf"[^/.\x00-\x1f\x7f-\x9f]{{1,{MAX_ID_LENGTH}}}"
_ID_RE: Final = re.compile(ID_PATTERN)


def valid_id(value: str) -> bool:
    """Whether ``value`` may be a server or session id (see :data:`ID_PATTERN`)."""
    return _ID_RE.fullmatch(value) is not None


#: The most characters of one client-controlled value that reach a log line.
LOG_VALUE_LIMIT: Final = 200


def loggable(value: object, limit: int = LOG_VALUE_LIMIT) -> str:
    """A client-controlled ``value`` (a path, an origin, an id...) fit for a log line.

    Quoted and escaped like ``repr()``: line breaks, control, bidi and other
    non-printable characters come out as escapes, so a client can neither
    start a forged line nor hide text. Past ``limit`` characters the value is
    cut, and its full length is said.
    """
    text = str(value)
    if len(text) > limit:
        return f"{text[:limit]!r}... ({len(text)} characters)"
    return repr(text)


PAYLOAD_EXPECTED: Final = "Payload expected."
BROKEN_JSON: Final = "Broken JSON encoding."


def _loads(data: bytes | str) -> object:
    try:
        return ujson.loads(data)
    except (ValueError, OverflowError):
        raise PayloadError(BROKEN_JSON) from None


#: isinstance(item, str), as a C function map() can call (ujson makes no
#: str subclasses, so this is the exact type check, at half the cost of a
#: generator expression on a 100-message frame).
_is_str: Final = str.__instancecheck__


def _strings(value: object) -> list[str]:
    if type(value) is not list or not all(map(_is_str, value)):
        raise PayloadError(BROKEN_JSON)
    return value


def decode_payload(data: bytes | str) -> list[str]:
    """Decode an xhr_send/jsonp_send body: a JSON array of strings.

    Raises :class:`PayloadError` with the protocol's wire text for an empty
    body or anything that is not a JSON array of strings.
    """
    if not data:
        raise PayloadError(PAYLOAD_EXPECTED)
    return _strings(_loads(data))


def decode_websocket_payload(data: str) -> list[str]:
    """Decode a websocket text frame: a JSON array of strings or one string.

    An empty frame carries no messages.
    """
    if not data:
        return []
    # _loads() and _strings() spelled out: this runs for every websocket frame.
    try:
        value = ujson.loads(data)
    except (ValueError, OverflowError):
        raise PayloadError(BROKEN_JSON) from None
    if type(value) is list and all(map(_is_str, value)):
        return value
    if type(value) is str:
        return [value]
    raise PayloadError(BROKEN_JSON)


# --- static answers --------------------------------------------------------

GREETING: Final = b"Welcome to SockJS!\n"
DEFAULT_SOCKJS_URL: Final = "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js"


def info_body(websocket: bool, cookie_needed: bool, entropy: int | None = None) -> bytes:
    """The JSON body of ``/info``; ``entropy`` is random unless given."""
    if entropy is None:
        entropy = random.getrandbits(32)
    return ujson.dumps(
        {
            "websocket": websocket,
            "cookie_needed": cookie_needed,
            "origins": ["*:*"],
            "entropy": entropy,
        }
    ).encode()


_IFRAME_PAGE: Final = """<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="{url}"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>"""


def iframe_page(sockjs_url: str) -> bytes:
    """The hidden iframe page that loads the client from ``sockjs_url``."""
    url = (
        sockjs_url.replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )
    return _IFRAME_PAGE.format(url=url).encode()


def iframe_etag(page: bytes) -> str:
    """A strong ETag for the iframe page, stable for a given client URL."""
    return '"' + hashlib.md5(page, usedforsecurity=False).hexdigest() + '"'


# --- the client side: what a client sends and reads ------------------------


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
