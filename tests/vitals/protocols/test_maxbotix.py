"""MaxBotix MaxSonar serial range readings: 'R', 3 or 4 digits, CR."""

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
from vitals.protocols import maxbotix as proto
from vitals.protocols.maxbotix import RangeFrame

# HRLV-MaxSonar-EZ, 620 mm (the top of a 158 cm head under a 2200 mm mount): 'R0620' CR.
HRLV_620 = bytes.fromhex("52 30 36 32 30 0d")
# HRLV, nothing detected: the top of its scale, 5000 mm.
HRLV_NO_TARGET = bytes.fromhex("52 35 30 30 30 0d")
# HRLV, a target at or inside the 300 mm minimum.
HRLV_MINIMUM = bytes.fromhex("52 30 33 30 30 0d")
# LV-MaxSonar-EZ, 24 inches (609.6 mm): 'R024' CR.
LV_24 = bytes.fromhex("52 30 32 34 0d")
# LV, nothing detected: 255 inches.
LV_NO_TARGET = bytes.fromhex("52 32 35 35 0d")

HRLV_620_FRAME = RangeFrame(620, 4)
HRLV_NO_TARGET_FRAME = RangeFrame(5000, 4)
HRLV_MINIMUM_FRAME = RangeFrame(300, 4)
LV_24_FRAME = RangeFrame(24, 3)
LV_NO_TARGET_FRAME = RangeFrame(255, 3)
FIXTURES = [
    (HRLV_620, HRLV_620_FRAME),
    (HRLV_NO_TARGET, HRLV_NO_TARGET_FRAME),
    (HRLV_MINIMUM, HRLV_MINIMUM_FRAME),
    (LV_24, LV_24_FRAME),
    (LV_NO_TARGET, LV_NO_TARGET_FRAME),
]
STREAM = b"".join(data for data, _ in FIXTURES)
FRAMES = [frame for _, frame in FIXTURES]


def test_fixtures_are_the_datasheet_ascii() -> None:
    assert HRLV_620 == b"R0620\r"
    assert LV_24 == b"R024\r"


@pytest.mark.parametrize(("data", "frame"), FIXTURES)
def test_fixtures_parse_to_their_meaning(data: bytes, frame: RangeFrame) -> None:
    assert RangeFrame.parse(data) == frame
    assert proto.framer().feed(data) == [frame]


def test_digit_count_tells_the_series_and_unit() -> None:
    assert HRLV_620_FRAME.series is proto.HRLV
    assert HRLV_620_FRAME.millimetres == Decimal(620)
    assert LV_24_FRAME.series is proto.LV
    assert LV_24_FRAME.millimetres == Decimal("609.6")


def test_no_target_and_minimum_are_recognised_per_series() -> None:
    assert HRLV_NO_TARGET_FRAME.no_target
    assert LV_NO_TARGET_FRAME.no_target
    assert not HRLV_620_FRAME.no_target
    assert not LV_24_FRAME.no_target
    assert HRLV_MINIMUM_FRAME.at_minimum
    assert RangeFrame(6, 3).at_minimum
    assert not HRLV_620_FRAME.at_minimum


def test_round_trip() -> None:
    round_trip(FRAMES, RangeFrame.parse)


def test_frames_any_split() -> None:
    assert_frames_any_split(proto.framer, STREAM * 3, FRAMES * 3)


def test_recovers_after_every_truncation() -> None:
    assert_recovers_after_every_truncation(proto.framer, HRLV_620, LV_24, LV_24_FRAME)
    assert_recovers_after_every_truncation(proto.framer, LV_24, HRLV_620, HRLV_620_FRAME)


def test_garbage_is_counted_and_skipped() -> None:
    framer = proto.framer()
    frames = framer.feed(b"\x00\xffabc" + HRLV_620 + b"R12\r" + b"R12345\r" + LV_24)
    assert frames == [HRLV_620_FRAME, LV_24_FRAME]
    assert framer.stats.discards == {
        "no sync": 5 + 1 + 2,  # leading garbage, the CR after 'R12', the '5' CR after 'R1234'
        "not 3 or 4 digits": 3,
        "no CR after the digits": 5,
    }
    assert framer.stats.frames == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"R06\r", "a range reading is 5 or 6 bytes, not 4"),
        (b"R06200\r", "a range reading is 5 or 6 bytes, not 7"),
        (b"X0620\r", "a range reading starts with 'R'"),
        (b"R0620\n", "a range reading ends with CR"),
        (b"R06x0\r", "range digits b'06x0' are not all ASCII digits"),
    ],
)
def test_parse_rejects_non_frames_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=re.escape(message)):
        RangeFrame.parse(data)


def test_frames_refuse_values_that_do_not_fit() -> None:
    with pytest.raises(FrameError, match="range 1000 does not fit 3 digits"):
        RangeFrame(1000, 3)
    with pytest.raises(FrameError, match="a range has 3 or 4 digits, not 5"):
        RangeFrame(1, 5)


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    framer = proto.framer()
    frames = framer.feed(data)
    for frame in frames:
        assert RangeFrame.parse(bytes(frame)) == frame
    assert framer.pending < proto.MAX_FRAME
    consumed = sum(len(bytes(frame)) for frame in frames)
    assert framer.stats.discarded_bytes + framer.pending + consumed == len(data)


# Noise without CR (0x0D) cannot complete a reading, so it can never forge one: at worst an
# 'R' and digits in the noise are skipped when the real reading's 'R' follows them.
NOISE = st.binary(max_size=12).map(lambda noise: noise.replace(b"\r", b""))


@given(st.lists(st.tuples(st.sampled_from(FIXTURES), NOISE), max_size=40))
def test_frames_embedded_in_noise_are_all_recovered(
    parts: list[tuple[tuple[bytes, RangeFrame], bytes]],
) -> None:
    stream = b"".join(noise + data for (data, _), noise in parts)
    found = proto.framer().feed(stream)
    assert_is_subsequence(found, [frame for (_, frame), _ in parts])
    assert len(found) == len(parts)
