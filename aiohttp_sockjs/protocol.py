"""SockJS wire format as pure functions: no sockets, no aiohttp.

Everything a transport puts on the wire or reads off it is built or parsed
here: frames, the JSON encoding with the escapes the protocol demands,
per-transport framing, client payload decoding, callback and id
validation, the ``/info`` body and the iframe page, and the one escape that
client strings go through before they reach a log; and for the client
(:mod:`aiohttp_sockjs.client`), payload encoding and the decoding of server
frames, ``/info`` and streamed bodies. Keeping this free of I/O lets the
whole wire format be tested with plain function calls.

The frames and their escapes are written in ``_frames.py``, and the
client's side in ``_client_wire.py``; this module imports their names, and
the rest of the package uses the wire format from here.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Final

import ujson

from ._client_wire import (
    CloseFrame,
    EventStreamReader,
    Frame,
    FrameError,
    HeartbeatFrame,
    Info,
    LineReader,
    MessageFrame,
    OpenFrame,
    decode_eventsource_data,
    decode_frame,
    decode_info,
    encode_payload,
    encode_payload_utf8,
)
from ._frames import (
    CLOSE_ANOTHER_CONNECTION,
    CLOSE_GO_AWAY,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_INTERRUPTED,
    CLOSE_NORMAL,
    CLOSE_QUEUE_OVERFLOW,
    CLOSE_RATE_LIMIT,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    HEARTBEAT_FRAME,
    OPEN_FRAME,
    close_frame,
    encode_message,
    encode_messages,
    messages_frame,
)

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

_CALLBACK_RE: Final = re.compile(r"[a-zA-Z0-9_.\-]+")
MAX_CALLBACK_LENGTH: Final = 256


class PayloadError(ValueError):
    """A client payload the protocol rejects; ``str()`` is the wire text."""


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
