"""A&D standard format: weight lines, command echoes and error replies."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.vitals.framer_checks import (
    assert_frames_any_split,
    assert_is_subsequence,
    assert_recovers_after_every_truncation,
    round_trip,
)
from vitals.errors import FrameError
from vitals.protocols import and_scale as proto
from vitals.protocols.and_scale import (
    CommandCode,
    ErrorCode,
    ErrorReply,
    ScaleCommand,
    Stability,
    UnknownCommand,
    WeighMode,
    WeightLine,
)

# Fixtures written from the A&D manuals' examples, each with what it means.
# Stable gross 72.35 kg: 'ST,GS,+0072.35kg' CR LF.
STABLE_GROSS = bytes.fromhex("53 54 2c 47 53 2c 2b 30 30 37 32 2e 33 35 6b 67 0d 0a")
# Unstable net -1.20 kg.
UNSTABLE_NET = b"US,NT,-0001.20kg\r\n"
# Overload, format 1: digits blanked with spaces, the decimal point kept.
OVERLOAD = b"OL,GS,+    .  kg\r\n"
# Overload, format 2: digits set to 9s.
OVERLOAD_NINES = b"OL,GS,+9999.99kg\r\n"
# Held (averaged) gross value 63.40 kg.
HELD = b"HD,GS,+0063.40kg\r\n"
# Tare value 2.00 kg (reply to RT).
TARE = b"ST,TR,+0002.00kg\r\n"
# A gram reading with no decimal point: 12345 g.
GRAMS = b"ST,GS,+0012345 g\r\n"
# Echo of the zero command, and the two error replies.
ZERO_ECHO = b"MZ\r\n"
UNPERFORMED = b"I\r\n"
UNKNOWN = b"?\r\n"

STABLE_GROSS_LINE = WeightLine(Stability.STABLE, WeighMode.GROSS, "+0072.35", "kg")
UNSTABLE_NET_LINE = WeightLine(Stability.UNSTABLE, WeighMode.NET, "-0001.20", "kg")
OVERLOAD_LINE = WeightLine(Stability.OVERLOAD, WeighMode.GROSS, "+    .  ", "kg")
OVERLOAD_NINES_LINE = WeightLine(Stability.OVERLOAD, WeighMode.GROSS, "+9999.99", "kg")
HELD_LINE = WeightLine(Stability.HOLD, WeighMode.GROSS, "+0063.40", "kg")
TARE_LINE = WeightLine(Stability.STABLE, WeighMode.TARE, "+0002.00", "kg")
GRAMS_LINE = WeightLine(Stability.STABLE, WeighMode.GROSS, "+0012345", " g")
ZERO_ECHO_FRAME = ScaleCommand(CommandCode.ZERO)
UNPERFORMED_FRAME = ErrorReply(ErrorCode.UNPERFORMED)
UNKNOWN_FRAME = ErrorReply(ErrorCode.UNKNOWN)

FIXTURES: list[tuple[bytes, proto.DeviceLine]] = [
    (STABLE_GROSS, STABLE_GROSS_LINE),
    (UNSTABLE_NET, UNSTABLE_NET_LINE),
    (OVERLOAD, OVERLOAD_LINE),
    (OVERLOAD_NINES, OVERLOAD_NINES_LINE),
    (HELD, HELD_LINE),
    (TARE, TARE_LINE),
    (GRAMS, GRAMS_LINE),
    (ZERO_ECHO, ZERO_ECHO_FRAME),
    (UNPERFORMED, UNPERFORMED_FRAME),
    (UNKNOWN, UNKNOWN_FRAME),
]
STREAM = b"".join(data for data, _ in FIXTURES)
FRAMES: list[proto.DeviceLine] = [frame for _, frame in FIXTURES]


def test_first_fixture_is_the_manuals_example_in_ascii() -> None:
    assert STABLE_GROSS == b"ST,GS,+0072.35kg\r\n"


@pytest.mark.parametrize(("data", "frame"), FIXTURES)
def test_fixtures_decode_to_their_meaning(data: bytes, frame: proto.DeviceLine) -> None:
    assert proto.framer().feed(data) == [frame]
    assert type(frame).parse(data) == frame


@pytest.mark.parametrize(
    ("line", "written"),
    [
        (STABLE_GROSS_LINE, "72.35"),
        (UNSTABLE_NET_LINE, "-1.20"),
        (HELD_LINE, "63.40"),
        (TARE_LINE, "2.00"),
        (GRAMS_LINE, "12345"),
    ],
)
def test_weights_keep_their_written_precision(line: WeightLine, written: str) -> None:
    assert line.weight is not None
    assert str(line.weight) == written


def test_overload_never_yields_a_value() -> None:
    assert OVERLOAD_LINE.weight is None
    assert OVERLOAD_NINES_LINE.weight is None


def test_lines_built_from_values_match_the_wire() -> None:
    built = WeightLine.of(Stability.STABLE, WeighMode.GROSS, Decimal("72.35"))
    assert bytes(built) == STABLE_GROSS
    assert bytes(WeightLine.of(Stability.UNSTABLE, WeighMode.NET, Decimal("-1.20"))) == (
        UNSTABLE_NET
    )
    assert bytes(WeightLine.of(Stability.STABLE, WeighMode.GROSS, Decimal("-0.00"))).startswith(
        b"ST,GS,+0000.00"
    )
    assert bytes(WeightLine.overload(WeighMode.GROSS)) == OVERLOAD


def test_a_weight_too_wide_for_the_field_is_refused() -> None:
    with pytest.raises(FrameError, match="does not fit the 8-character field"):
        WeightLine.of(Stability.STABLE, WeighMode.GROSS, Decimal("123456.78"))


def test_round_trip() -> None:
    round_trip(FRAMES, lambda data: proto.framer().feed(data)[0])


def test_frames_any_split() -> None:
    assert_frames_any_split(proto.framer, STREAM * 2, FRAMES * 2)


@pytest.mark.parametrize(
    ("following", "expected"),
    [(UNSTABLE_NET, UNSTABLE_NET_LINE), (UNKNOWN, UNKNOWN_FRAME), (ZERO_ECHO, ZERO_ECHO_FRAME)],
)
def test_recovers_after_every_truncation(following: bytes, expected: proto.DeviceLine) -> None:
    assert_recovers_after_every_truncation(proto.framer, STABLE_GROSS, following, expected)


def test_garbage_is_counted_and_skipped() -> None:
    framer = proto.framer()
    frames = framer.feed(b"\x00\xffxyz" + STABLE_GROSS + b"garbage\r\n" + UNSTABLE_NET)
    assert frames == [STABLE_GROSS_LINE, UNSTABLE_NET_LINE]
    assert framer.stats.discards == {"no sync": 5 + 9}
    assert framer.stats.discarded_bytes == 14
    assert framer.stats.frames == 2


def test_a_malformed_line_is_skipped_with_its_reason() -> None:
    framer = proto.framer()
    assert framer.feed(b"ST,GS,+00x2.35kg\r\n" + STABLE_GROSS) == [STABLE_GROSS_LINE]
    assert framer.stats.discards == {"malformed value '+00x2.35' in a ST line": 18}


def test_a_line_without_terminator_is_dropped_as_too_long() -> None:
    framer = proto.framer()
    assert framer.feed(b"ST,GS," + b"0" * 60) == []
    assert framer.stats.discards["line too long"] == proto.MAX_LINE


@pytest.mark.parametrize(
    ("parse", "data", "message"),
    [
        (WeightLine.parse, b"ST,GS,+0072.35kg", "a weight line must end with CR LF"),
        (WeightLine.parse, b"ST,GS,+0072.35k\r\n", "a weight line is 16 characters before CR "),
        (WeightLine.parse, b"XX,GS,+0072.35kg\r\n", "unknown header 1 'XX'"),
        (WeightLine.parse, b"ST,XX,+0072.35kg\r\n", "unknown header 2 'XX'"),
        (WeightLine.parse, b"ST;GS;+0072.35kg\r\n", "a weight line separates its headers with ','"),
        (WeightLine.parse, b"ST,GS,+0072.35kx\r\n", "unknown unit 'kx'"),
        (WeightLine.parse, b"ST,GS,+    .  kg\r\n", "malformed value '+    .  ' in a ST line"),
        (WeightLine.parse, b"ST,GS,+00.72.3kg\r\n", "malformed value '+00.72.3' in a ST line"),
        (WeightLine.parse, b"ST,GS,\xb10072.35kg\r\n", "a weight line holds bytes that are not"),
        (ScaleCommand.parse, b"XX\r\n", "unknown command 'XX'"),
        (ErrorReply.parse, b"E\r\n", "'E' is not an error reply"),
        (UnknownCommand.parse, b"\r\n", "an unknown command is one non-empty line"),
    ],
)
def test_parse_rejects_non_frames_with_a_clear_error(
    parse: object, data: bytes, message: str
) -> None:
    assert callable(parse)
    with pytest.raises(FrameError, match=re.escape(message)):
        parse(data)


def test_host_commands_are_framed_known_or_not() -> None:
    framer = proto.command_framer()
    frames = framer.feed(b"RW\r\nMZ\r\nXYZ\r\n\xff\r\nCT\r\n")
    assert frames == [
        ScaleCommand(CommandCode.READ_WEIGHT),
        ScaleCommand(CommandCode.ZERO),
        UnknownCommand("XYZ"),
        ScaleCommand(CommandCode.CLEAR_TARE),
    ]
    assert framer.stats.discards == {"a command holds bytes that are not printable ASCII": 3}
    assert [bytes(frame) for frame in frames] == [b"RW\r\n", b"MZ\r\n", b"XYZ\r\n", b"CT\r\n"]


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    framer = proto.framer()
    frames = framer.feed(data)
    for frame in frames:
        assert type(frame).parse(bytes(frame)) == frame
    assert framer.pending <= proto.MAX_LINE + 2
    consumed = sum(len(bytes(frame)) for frame in frames)
    assert framer.stats.discarded_bytes + framer.pending + consumed == len(data)


@given(st.binary(max_size=512))
def test_arbitrary_host_bytes_never_raise(data: bytes) -> None:
    framer = proto.command_framer()
    frames = framer.feed(data)
    consumed = sum(len(bytes(frame)) for frame in frames)
    assert framer.stats.discarded_bytes + framer.pending + consumed == len(data)


# Noise without CR (0x0D) cannot hold a whole line, so it can never forge a frame; it is kept
# to 12 bytes so that noise glued to a whole line stays within MAX_LINE (longer unterminated
# noise is dropped as "line too long", which may take the start of the next line with it).
NOISE = st.binary(max_size=12).map(lambda noise: noise.replace(b"\r", b""))


@given(st.lists(st.tuples(st.sampled_from(FIXTURES), NOISE), max_size=30))
def test_frames_embedded_in_noise_are_all_recovered(
    parts: list[tuple[tuple[bytes, proto.DeviceLine], bytes]],
) -> None:
    stream = b"".join(noise + data for (data, _), noise in parts)
    assert_is_subsequence(proto.framer().feed(stream), [frame for (_, frame), _ in parts])
