"""GY-MCU90615 binary frames (5A 5A 45 04 TO TA sum) and commands (A5 code sum)."""

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
from vitals.protocols import gy_mcu90615 as proto
from vitals.protocols.gy_mcu90615 import CommandCode, ModuleCommand, TemperatureFrame

# The protocol sheet's worked example: TO = 0x0C78 = 31.92 °C, TA = 0x0D19 = 33.53 °C.
SHEET_EXAMPLE = bytes.fromhex("5a 5a 45 04 0c 78 0d 19 a7")
# A forehead at 36.80 °C (0x0E60) in a 29.00 °C room (0x0B54).
FOREHEAD = bytes.fromhex("5a 5a 45 04 0e 60 0b 54 ca")
# Below zero: object -5.00 °C (0xFE0C), ambient -10.24 °C (0xFC00), read as signed.
FREEZING = bytes.fromhex("5a 5a 45 04 fe 0c fc 00 03")

SHEET_FRAME = TemperatureFrame(3192, 3353)
FOREHEAD_FRAME = TemperatureFrame(3680, 2900)
FREEZING_FRAME = TemperatureFrame(-500, -1024)
FIXTURES = [(SHEET_EXAMPLE, SHEET_FRAME), (FOREHEAD, FOREHEAD_FRAME), (FREEZING, FREEZING_FRAME)]
STREAM = b"".join(data for data, _ in FIXTURES)
FRAMES = [frame for _, frame in FIXTURES]

# Every command on the protocol sheet, with its checksum as printed there.
COMMANDS = [
    ("a5 45 ea", CommandCode.CONTINUOUS),
    ("a5 15 ba", CommandCode.QUERY),
    ("a5 ae 53", CommandCode.BAUD_9600),
    ("a5 af 54", CommandCode.BAUD_115200),
    ("a5 51 f6", CommandCode.STREAM_AT_POWER_UP),
    ("a5 52 f7", CommandCode.NO_STREAM_AT_POWER_UP),
]


@pytest.mark.parametrize(("data", "frame"), FIXTURES)
def test_fixtures_parse_to_their_meaning(data: bytes, frame: TemperatureFrame) -> None:
    assert TemperatureFrame.parse(data) == frame
    assert proto.framer().feed(data) == [frame]


def test_temperatures_keep_two_decimals() -> None:
    assert str(SHEET_FRAME.object_celsius) == "31.92"
    assert str(SHEET_FRAME.ambient_celsius) == "33.53"
    assert FOREHEAD_FRAME.object_celsius == Decimal("36.80")
    assert str(FOREHEAD_FRAME.object_celsius) == "36.80"
    assert str(FREEZING_FRAME.object_celsius) == "-5.00"


def test_checksum_is_the_low_byte_of_the_sum() -> None:
    assert proto.checksum(SHEET_EXAMPLE[:-1]) == 0xA7
    assert proto.checksum(bytes.fromhex("a5 45")) == 0xEA


@pytest.mark.parametrize(("hex_bytes", "code"), COMMANDS)
def test_commands_match_the_sheet(hex_bytes: str, code: CommandCode) -> None:
    data = bytes.fromhex(hex_bytes)
    assert bytes(ModuleCommand(code)) == data
    assert ModuleCommand.parse(data) == ModuleCommand(code)
    assert proto.command_framer().feed(data) == [ModuleCommand(code)]


def test_round_trip() -> None:
    round_trip(FRAMES, TemperatureFrame.parse)
    round_trip([ModuleCommand(code) for _, code in COMMANDS], ModuleCommand.parse)


def test_frames_any_split() -> None:
    assert_frames_any_split(proto.framer, STREAM * 3, FRAMES * 3)


def test_recovers_after_every_truncation() -> None:
    assert_recovers_after_every_truncation(proto.framer, SHEET_EXAMPLE, FOREHEAD, FOREHEAD_FRAME)
    assert_recovers_after_every_truncation(proto.framer, FOREHEAD, FREEZING, FREEZING_FRAME)


def test_garbage_is_counted_and_skipped() -> None:
    framer = proto.framer()
    frames = framer.feed(b"\x00\x01\x02" + SHEET_EXAMPLE + b"\x5a\x00" + FOREHEAD)
    assert frames == [SHEET_FRAME, FOREHEAD_FRAME]
    assert framer.stats.discards == {"no sync": 5}
    assert framer.stats.frames == 2


def test_bad_checksum_costs_only_its_frame() -> None:
    framer = proto.framer()
    corrupted = SHEET_EXAMPLE[:-1] + b"\xa8"
    assert framer.feed(corrupted + FOREHEAD) == [FOREHEAD_FRAME]
    assert framer.stats.discards == {"bad checksum": 9}


def test_a_header_inside_the_data_is_taken_for_a_cut_frame() -> None:
    # 5A 5A 45 04 0E | 5A 5A 45 04 … : the cut frame's 9 bytes happen to sum right (0x04),
    # but 5A 5A in the data would be a 231 °C ambient: the new frame wins.
    framer = proto.framer()
    assert proto.checksum(FOREHEAD[:5] + FREEZING[:3]) == FREEZING[3]
    assert framer.feed(FOREHEAD[:5] + FREEZING) == [FREEZING_FRAME]
    assert framer.stats.discards == {"frame cut short": 5}


def test_wrong_type_or_length_costs_one_byte_each() -> None:
    framer = proto.framer()
    assert framer.feed(bytes.fromhex("5a 5a 46") + bytes.fromhex("5a 5a 45 05") + FOREHEAD) == [
        FOREHEAD_FRAME
    ]
    assert framer.stats.discards == {"unknown data type": 1, "bad data length": 1, "no sync": 5}


def test_commands_with_a_bad_checksum_or_unknown_code_are_skipped() -> None:
    framer = proto.command_framer()
    query = bytes(ModuleCommand(CommandCode.QUERY))
    assert framer.feed(bytes.fromhex("a5 15 bb") + bytes.fromhex("a5 33 d8") + query) == [
        ModuleCommand(CommandCode.QUERY)
    ]
    assert framer.stats.discards == {
        "bad checksum": 1,
        "no sync": 2,
        "unknown command code 0x33": 3,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (SHEET_EXAMPLE[:8], "a temperature frame is 9 bytes, not 8"),
        (b"\x5a\x5b" + SHEET_EXAMPLE[2:], "a temperature frame starts with 5A 5A"),
        (bytes.fromhex("5a 5a 46 04 0c 78 0d 19 a8"), "data type 0x46 is not temperatures (0x45)"),
        (bytes.fromhex("5a 5a 45 05 0c 78 0d 19 a8"), "data length 5 is not 4"),
        (SHEET_EXAMPLE[:8] + b"\x00", "checksum 0x00 should be 0xA7"),
    ],
)
def test_frame_parse_rejects_non_frames_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=re.escape(message)):
        TemperatureFrame.parse(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes.fromhex("a5 15"), "a command is 3 bytes, not 2"),
        (bytes.fromhex("a6 15 bb"), "a command starts with A5"),
        (bytes.fromhex("a5 15 bb"), "checksum 0xBB should be 0xBA"),
        (bytes.fromhex("a5 33 d8"), "unknown command code 0x33"),
    ],
)
def test_command_parse_rejects_non_commands_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=re.escape(message)):
        ModuleCommand.parse(data)


def test_frames_refuse_values_outside_16_bits() -> None:
    with pytest.raises(FrameError, match="object temperature 40000 does not fit"):
        TemperatureFrame(40000, 0)


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    framer = proto.framer()
    frames = framer.feed(data)
    for frame in frames:
        assert TemperatureFrame.parse(bytes(frame)) == frame
    assert framer.pending < proto.FRAME_SIZE
    assert framer.stats.discarded_bytes + framer.pending + 9 * len(frames) == len(data)


@given(st.binary(max_size=512))
def test_arbitrary_command_bytes_never_raise(data: bytes) -> None:
    framer = proto.command_framer()
    frames = framer.feed(data)
    assert framer.stats.discarded_bytes + framer.pending + 3 * len(frames) == len(data)


# Noise without 0x5A cannot start a frame, so it can neither forge one nor swallow the start
# of the next.
NOISE = st.binary(max_size=12).map(lambda noise: noise.replace(b"\x5a", b""))


@given(st.lists(st.tuples(st.sampled_from(FIXTURES), NOISE), max_size=30))
def test_frames_embedded_in_noise_are_all_recovered(
    parts: list[tuple[tuple[bytes, TemperatureFrame], bytes]],
) -> None:
    stream = b"".join(noise + data for (data, _), noise in parts)
    found = proto.framer().feed(stream)
    assert_is_subsequence(found, [frame for (_, frame), _ in parts])
    assert len(found) == len(parts)
