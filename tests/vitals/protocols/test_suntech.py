"""SunTech Advantage module packets and host commands."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.vitals.framer_checks import (
    assert_frames_any_split,
    assert_recovers_after_every_truncation,
    round_trip,
)
from vitals.errors import FrameError
from vitals.protocols import suntech as proto
from vitals.protocols.suntech import Ack, AckCode, BpData, Command, ReturnString, WordReply

# Module -> host.  The first two are the examples SunTech's manual gives (as quoted in
# ak-git/DesktopFX's tests); the rest are written from the same layout.
CUFF_258 = bytes.fromhex("3e 05 02 01 ba")  # cuff pressure 258 mmHg
BP_115_74 = bytes.fromhex(  # 115/74 mmHg, 30 beats, BP status 1, TC[6..7] = 31 07, HR 85, MAP 88
    "3e 18 73 00 4a 00 1e 01 00 00 00 00 00 00 31 07 55 00 58 00 00 00 00 e9"
)
DONE = bytes.fromhex("3e 04 4b 73")  # 'K': the cycle has ended (unprompted)
RECEIVED = bytes.fromhex("3e 04 4f 6f")  # 'O': start accepted
REFUSED = bytes.fromhex("3e 04 4e 70")  # 'N': not acknowledged
NO_PRESSURE = bytes.fromhex("3e 05 ff ff bf")  # FFFF: no cuff pressure available
BP_LOOSE_CUFF = bytes.fromhex(  # error 87 (0x57): air leak / loose cuff, 5 beats, no values
    "3e 18 00 00 00 00 05 00 00 00 00 00 00 00 00 00 00 00 00 00 57 00 00 4e"
)
RETURN_STRING = (  # 67 bytes: "LX2.0" and "SIM", NUL-padded, 8 bytes apart
    bytes.fromhex("3e 43") + b"LX2.0\0\0\0SIM" + bytes(53) + bytes.fromhex("62")
)

CUFF_FRAME = WordReply(258)
BP_FRAME = BpData(
    systolic=115,
    diastolic=74,
    mean=88,
    heart_rate=85,
    beats=30,
    bp_status=1,
    test_codes=bytes.fromhex("00 00 00 00 00 00 31 07"),
)
LOOSE_CUFF_FRAME = BpData(0, 0, 0, 0, error_code=87, beats=5)
PACKETS: dict[bytes, proto.ModulePacket] = {
    CUFF_258: CUFF_FRAME,
    BP_115_74: BP_FRAME,
    DONE: Ack(AckCode.COMPLETED),
    RECEIVED: Ack(AckCode.RECEIVED),
    REFUSED: Ack(AckCode.NOT_ACKNOWLEDGED),
    NO_PRESSURE: WordReply(0xFFFF),
    BP_LOOSE_CUFF: LOOSE_CUFF_FRAME,
    RETURN_STRING: ReturnString(b"LX2.0\0\0\0SIM" + bytes(53)),
}
STREAM = b"".join(PACKETS)

# Host -> module (the first three as in ak-git/DesktopFX; the others from nPM's opcodes).
COMMANDS: dict[bytes, Command] = {
    bytes.fromhex("3a 20 a6"): proto.START_BP,
    bytes.fromhex("3a 79 05 00 48"): proto.GET_CUFF_PRESSURE,
    bytes.fromhex("3a 79 03 00 4a"): proto.GET_BP_DATA,
    bytes.fromhex("3a 79 01 00 4c"): proto.ABORT,
    bytes.fromhex("3a 79 10 03 3a"): proto.GET_STATUS,
    bytes.fromhex("3a 79 02 40 0b"): proto.GET_RETURN_STRING,
    bytes.fromhex("3a 17 a0 00 0f"): Command(0x17, (160).to_bytes(2, "little")),
}
COMMAND_STREAM = b"".join(COMMANDS)


@pytest.mark.parametrize(("data", "frame"), PACKETS.items())
def test_packet_fixtures_parse_to_their_fields(data: bytes, frame: proto.ModulePacket) -> None:
    assert proto.parse_packet(data) == frame
    assert type(frame).parse(data) == frame


@pytest.mark.parametrize(("data", "command"), COMMANDS.items())
def test_command_fixtures_parse_and_encode(data: bytes, command: Command) -> None:
    assert Command.parse(data) == command
    assert bytes(command) == data


@pytest.mark.parametrize("data", [*PACKETS, *COMMANDS])
def test_every_byte_including_start_and_length_sums_to_zero(data: bytes) -> None:
    assert sum(data) % 256 == 0
    assert proto.checksum(data[:-1]) == data[-1]
    assert proto.checksum_ok(data)


def test_bp_data_fields_follow_the_manual_layout() -> None:
    frame = BpData.parse(BP_115_74)
    assert (frame.systolic, frame.diastolic, frame.mean, frame.heart_rate) == (115, 74, 88, 85)
    assert frame.error_code == 0
    assert frame.beats == 30


def test_error_packet_carries_its_code_and_a_plain_note() -> None:
    frame = BpData.parse(BP_LOOSE_CUFF)
    assert frame.error_code == 87
    assert "loose cuff" in proto.describe_error(frame.error_code)
    assert proto.describe_error(42) == "Module error code 42 (not documented)."


def test_every_documented_error_code_has_a_note() -> None:
    assert sorted(proto.ERROR_CODES) == [1, 2, 3, 4, 85, 86, 87, 88, 89, 90, 91, 97, 99]
    assert all(note.endswith(".") and len(note) > 20 for note in proto.ERROR_CODES.values())


def test_no_pressure_marker_is_not_a_pressure() -> None:
    assert not WordReply.parse(NO_PRESSURE).has_pressure
    assert WordReply.parse(CUFF_258).has_pressure


def test_return_string_fields() -> None:
    assert ReturnString.parse(RETURN_STRING).fields == ("LX2.0", "SIM")


def test_round_trip() -> None:
    round_trip(list(PACKETS.values()), proto.parse_packet)
    round_trip(list(COMMANDS.values()), Command.parse)
    odd = BpData(300, 200, 233, 255, beats=255, bp_status=9, spare=b"\x01\x02\x03")
    assert BpData.parse(bytes(odd)) == odd


def test_packets_any_split() -> None:
    assert_frames_any_split(proto.framer, STREAM * 2, list(PACKETS.values()) * 2)


def test_commands_any_split() -> None:
    assert_frames_any_split(proto.command_framer, COMMAND_STREAM * 2, list(COMMANDS.values()) * 2)


@pytest.mark.parametrize("cut", [CUFF_258, BP_115_74, DONE, RETURN_STRING])
@pytest.mark.parametrize("following", [CUFF_258, DONE, BP_115_74])
def test_recovers_after_every_truncation(cut: bytes, following: bytes) -> None:
    assert_recovers_after_every_truncation(proto.framer, cut, following, PACKETS[following])


@pytest.mark.parametrize("cut", [bytes.fromhex("3a 20 a6"), bytes.fromhex("3a 79 03 00 4a")])
def test_commands_recover_after_every_truncation(cut: bytes) -> None:
    following = bytes(proto.GET_CUFF_PRESSURE)
    assert_recovers_after_every_truncation(
        proto.command_framer, cut, following, proto.GET_CUFF_PRESSURE
    )


def test_garbage_is_counted_with_its_reason() -> None:
    framer = proto.framer()
    stream = (
        bytes.fromhex("01 02")  # noise: 2 bytes "no sync"
        + bytes.fromhex("3e 07")  # a '>' with no such packet length: 1 + 1 "no sync"
        + CUFF_258
        + bytes.fromhex("3e 05 02 01 bb")  # checksum off by one: 1 + 4 "no sync"
        + bytes.fromhex("3e 04 58 66")  # valid checksum, unknown letter 'X': 1 + 3 "no sync"
        + DONE
    )
    assert framer.feed(stream) == [CUFF_FRAME, Ack(AckCode.COMPLETED)]
    assert framer.stats.discards == {
        "no sync": 10,
        "unknown length": 1,
        "bad checksum": 1,
        "unknown acknowledgement 0x58": 1,
    }
    assert framer.stats.discarded_bytes == 13
    assert framer.stats.frames == 2


def test_command_garbage_is_counted_with_its_reason() -> None:
    framer = proto.command_framer()
    stream = bytes.fromhex("3a 21 a5") + bytes.fromhex("3a 20 a7") + bytes.fromhex("3a 20 a6")
    assert framer.feed(stream) == [proto.START_BP]
    assert framer.stats.discards == {"unknown opcode": 1, "no sync": 4, "bad checksum": 1}


@pytest.mark.parametrize(
    ("parse", "data", "message"),
    [
        (WordReply.parse, DONE, "a word packet is 5 bytes, not 4"),
        (WordReply.parse, b"\x3a" + CUFF_258[1:], "a module packet starts with 0x3E, not 0x3A"),
        (Ack.parse, bytes.fromhex("3e 05 4b 72"), r"length byte 5 does not match .* \(4\)"),
        (Ack.parse, bytes.fromhex("3e 04 58 66"), "unknown acknowledgement 0x58"),
        (WordReply.parse, bytes.fromhex("3e 05 02 01 bb"), r"bad checksum 0xBB \(expected 0xBA\)"),
        (proto.parse_packet, bytes.fromhex("3e 07 00 00 00 00 bb"), "unknown packet length 7"),
        (Command.parse, bytes.fromhex("3a 21 a5"), "unknown command opcode 0x21"),
        (Command.parse, bytes.fromhex("3a 79 05 49"), "command 0x79 takes 2 data bytes, not 1"),
        (Command.parse, bytes.fromhex("3a 20 a7"), r"bad checksum 0xA7 \(expected 0xA6\)"),
        (Command.parse, bytes.fromhex("3e 20"), "a command is at least 3 bytes, not 2"),
        (Command.parse, bytes.fromhex("3e 20 a2"), "a command starts with 0x3A, not 0x3E"),
    ],
)
def test_parse_rejects_non_frames_with_a_clear_error(
    parse: object, data: bytes, message: str
) -> None:
    assert callable(parse)
    with pytest.raises(FrameError, match=message):
        parse(data)


def test_values_are_range_checked() -> None:
    with pytest.raises(FrameError, match=r"word 70000 outside 0\.\.65535"):
        WordReply(70000)
    with pytest.raises(FrameError, match=r"heart rate 300 outside 0\.\.255"):
        BpData(120, 80, 93, 300)
    with pytest.raises(FrameError, match="8 test codes and 3 spare bytes"):
        BpData(120, 80, 93, 60, test_codes=b"\x00")
    with pytest.raises(FrameError, match="a return string holds 64 bytes, not 3"):
        ReturnString(b"abc")


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    framer = proto.framer()
    frames = framer.feed(data)
    for frame in frames:
        assert proto.parse_packet(bytes(frame)) == frame
    assert framer.pending < proto.MAX_PACKET_SIZE
    found = sum(len(bytes(frame)) for frame in frames)
    assert framer.stats.discarded_bytes + framer.pending + found == len(data)


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise_the_command_framer(data: bytes) -> None:
    framer = proto.command_framer()
    frames = framer.feed(data)
    found = sum(len(bytes(frame)) for frame in frames)
    assert framer.stats.discarded_bytes + framer.pending + found == len(data)


# Noise without the start byte cannot begin a frame, so every frame must come out, exactly.
_module_noise = st.binary(max_size=12).map(lambda b: b.replace(b"\x3e", b"\x3f"))
_host_noise = st.binary(max_size=12).map(lambda b: b.replace(b"\x3a", b"\x3b"))


@given(st.lists(st.tuples(st.sampled_from(list(PACKETS)), _module_noise), max_size=30))
def test_packets_embedded_in_noise_are_all_recovered(parts: list[tuple[bytes, bytes]]) -> None:
    stream = b"".join(noise + packet for packet, noise in parts)
    assert proto.framer().feed(stream) == [PACKETS[packet] for packet, _ in parts]


@given(st.lists(st.tuples(st.sampled_from(list(COMMANDS)), _host_noise), max_size=30))
def test_commands_embedded_in_noise_are_all_recovered(parts: list[tuple[bytes, bytes]]) -> None:
    stream = b"".join(noise + command for command, noise in parts)
    assert proto.command_framer().feed(stream) == [COMMANDS[command] for command, _ in parts]
