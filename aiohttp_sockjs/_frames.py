"""The SockJS frames the server writes, and the JSON escapes in them.

``o``, ``h``, ``a[...]`` (:func:`encode_message`, :func:`encode_messages`,
:func:`messages_frame`) and ``c[code,"reason"]`` (:func:`close_frame`,
with the close codes the server gives). Pure, as all of the wire format;
:mod:`aiohttp_sockjs.protocol` exports every name here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring as _json_string
from typing import Final

import ujson

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
