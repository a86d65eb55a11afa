"""Client-controlled strings: which ids are accepted, and how values are logged."""

from __future__ import annotations

import re

import pytest

from aiohttp_sockjs import protocol

CONTROLS = [chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]]


@pytest.mark.parametrize(
    "value",
    [
        "000",
        "a",
        "0" * protocol.MAX_ID_LENGTH,
        "3f2b8c1e-7d4a-4f0e-9b1a-2c5d6e7f8a9b",
        "with space",
        "caf\u00e9",
        "\u4e2d\u6587",
        "a-b_c~d!e$f'g(h)i*j+k,l;m=n:o@p%q",
    ],
)
def test_valid_ids(value: str) -> None:
    """Any non-empty id up to the cap without ``/``, ``.`` or control characters."""
    assert protocol.valid_id(value)
    assert re.fullmatch(protocol.ID_PATTERN, value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a" * (protocol.MAX_ID_LENGTH + 1),
        "a" * 8000,
        "a.b",
        ".",
        "a/b",
        "/",
        *[f"x{c}y" for c in CONTROLS],
    ],
    ids=repr,
)
def test_invalid_ids(value: str) -> None:
    """Empty, over the cap, dotted, slashed or with a control character: refused."""
    assert not protocol.valid_id(value)
    assert re.fullmatch(protocol.ID_PATTERN, value) is None


@pytest.mark.parametrize(
    "value",
    [
        "x\nINFO:aiohttp_sockjs:FORGED",
        "x\r\nINFO:aiohttp_sockjs:FORGED",
        "a\u2028b\u2029c\x85d",
        "\x1b[31mred\x1b[0m",
        "abc\u202edcba",
        "nul\x00byte",
        "lone\ud800surrogate",
        "tab\there",
    ],
    ids=repr,
)
def test_loggable_escapes_everything_unprintable(value: str) -> None:
    """No line break, control, bidi or other non-printable character gets through."""
    logged = protocol.loggable(value)
    assert logged.isprintable()
    assert "\n" not in logged and "\r" not in logged


def test_loggable_is_unambiguous() -> None:
    """Quoted, with backslashes escaped: an escape in the input is not an escape in the log."""
    assert protocol.loggable("a\nb") != protocol.loggable("a\\nb")
    assert protocol.loggable("/e/000/abc/xhr") == "'/e/000/abc/xhr'"


def test_loggable_caps_length_and_says_how_long() -> None:
    """Long values are cut at the limit and marked with their full length."""
    logged = protocol.loggable("x" * 10_000)
    assert len(logged) < protocol.LOG_VALUE_LIMIT + 40
    assert logged.startswith("'" + "x" * protocol.LOG_VALUE_LIMIT + "'")
    assert logged.endswith("(10000 characters)")
    assert protocol.loggable("\n" * 1000, limit=10) == repr("\n" * 10) + "... (1000 characters)"


def test_loggable_takes_any_object() -> None:
    """Exceptions and other objects are logged through their ``str()``."""
    assert protocol.loggable(ValueError("bad\nthing")) == "'bad\\nthing'"
