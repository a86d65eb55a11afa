"""The broker's stream entry format and the room= argument, without Redis or a loop."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiohttp_sockjs.broker import BadEntry, Entry, decode_entry, encode_entry
from aiohttp_sockjs.rooms import room_names

# Any str, lone surrogates included: SockJS messages may carry them.
texts = st.text(st.characters(codec=None, exclude_categories=()))


@given(
    message=texts,
    rooms=st.none() | st.lists(texts, max_size=4).map(tuple),
    seq=st.integers(1, 2**62),
)
def test_entries_round_trip(message: str, rooms: tuple[str, ...] | None, seq: int) -> None:
    fields = encode_entry("host:1:abc", seq, rooms, message)
    assert decode_entry(fields, 1 << 30) == Entry("host:1:abc", seq, rooms, message)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({}, "no origin"),
        ({b"o": b"p", b"s": b"1"}, "no message"),
        ({b"o": b"p", b"s": b"x", b"m": b"hi"}, "undecodable"),
        ({b"o": b"p", b"s": b"1", b"m": b"\xc3"}, "undecodable"),
        ({b"o": b"p", b"s": b"1", b"m": b"12345678901"}, "over 10"),
        ({b"o": b"p", b"s": b"1", b"m": b"hi", b"r": b"{"}, "not JSON"),
        ({b"o": b"p", b"s": b"1", b"m": b"hi", b"r": b'"room"'}, "not a list"),
        ({b"o": b"p", b"s": b"1", b"m": b"hi", b"r": b"[null]"}, "not a list"),
        ([1, 2], "not a field map"),
    ],
)
def test_bad_entries_are_refused(fields: object, why: str) -> None:
    with pytest.raises(BadEntry, match=why):
        decode_entry(fields, 10)  # type: ignore[arg-type]


def test_room_names() -> None:
    assert room_names("a") == ("a",)
    assert room_names(["b", "a", "b"]) == ("b", "a")
    assert room_names(iter(("x", "y"))) == ("x", "y")
    assert room_names(()) == ()
    for bad in (b"a", 1, ["a", 2], None):
        with pytest.raises(TypeError):
            room_names(bad)  # type: ignore[arg-type]
