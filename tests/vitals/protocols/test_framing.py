"""The framing engine and its shared decoders, independent of any one device."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitals.errors import FrameError
from vitals.protocols.framing import NEED_MORE, Found, Framer, Skip, text_line

SYNC = re.compile(rb"R\d")


def _build(line: bytes) -> bytes:
    if not re.fullmatch(rb"R\d{4}", line):
        raise FrameError(f"not a range line: {line!r}")
    return line


def _decode(buffer: bytearray, start: int) -> Found[bytes] | Skip | object:
    return text_line(buffer, start, _build, max_length=8, terminator=b"\r", sync=SYNC)


def _framer() -> Framer[bytes]:
    return Framer(_decode, max_pending=16)  # type: ignore[arg-type]


def test_lines_split_anywhere_come_out_whole() -> None:
    framer = _framer()
    out = []
    for byte in b"R1234\rR0620\r":
        out += framer.feed(bytes([byte]))
    assert out == [b"R1234", b"R0620"]


def test_noise_glued_to_a_line_costs_only_the_noise() -> None:
    framer = _framer()
    assert framer.feed(b"xyR0620\r") == [b"R0620"]
    assert framer.stats.discards == {"no sync": 2}


def test_a_bad_line_is_skipped_with_its_reason() -> None:
    framer = _framer()
    assert framer.feed(b"R12x4\rR0620\r") == [b"R0620"]
    assert framer.stats.discards == {"not a range line: b'R12x4'": 6}


def test_empty_lines_are_counted() -> None:
    framer = _framer()
    assert framer.feed(b"\r\rR0620\r") == [b"R0620"]
    assert framer.stats.discards == {"empty line": 2}


def test_a_runaway_line_does_not_swallow_the_line_inside_it() -> None:
    framer = _framer()
    assert framer.feed(b"R00000R0620\r") == [b"R0620"]
    assert framer.stats.discards["line too long"] == 6


def test_unterminated_noise_is_bounded() -> None:
    framer = _framer()
    framer.feed(b"z" * 100)
    assert framer.pending <= 16
    assert framer.stats.discarded_bytes + framer.pending == 100


def test_skip_must_discard_something() -> None:
    with pytest.raises(ValueError, match="at least one byte"):
        Skip(0, "nothing")


def test_need_more_holds_the_bytes() -> None:
    framer = _framer()
    assert framer.feed(b"R06") == []
    assert framer.pending == 3
    assert _decode(bytearray(b"R06"), 0) is NEED_MORE


@given(st.binary(max_size=512))
def test_every_byte_is_accounted_for(data: bytes) -> None:
    framer = _framer()
    frames = framer.feed(data)
    consumed = sum(len(frame) + 1 for frame in frames)
    assert consumed + framer.stats.discarded_bytes + framer.pending == len(data)
