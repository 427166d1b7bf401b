"""Nonin OEM III serial data format #2: 5-byte frames and 25-frame packets."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.vitals.framer_checks import (
    assert_frames_any_split,
    assert_recovers_after_every_truncation,
    round_trip,
)
from vitals.errors import FrameError
from vitals.protocols import nonin as proto
from vitals.protocols.nonin import Frame, Packet, PacketAssembler, PacketValues, Perfusion

# A packet recorded from a Nonin Onyx II 9560 in format #2 (published with
# mattjlewis/NoninPulseOx).  Status 80 (81 on the SYNC frame): no alarms, no pulse indication.
# Data bytes by frame: HR 00/4A = 74 /min, SpO2 60 = 96 %, revision 94, reserved 00,
# timer 00/17 = 23, STAT2 04, SpO2-D/fast/beat-to-beat 60, reserved 00 00, E-HR 00/4A,
# E-SpO2 60, E-SpO2-D 60, reserved 00 00, HR-D 00/4A, E-HR-D 00/4A, reserved 00 00.
RECORDED_PACKET = bytes.fromhex(
    "01814300C5 0180434A0E 0180436024 0180439458 01804300C4"
    "01804100C2 01803E17D6 01803C04C1 018039601A 0180366017"
    "0180356016 01803400B5 01803400B5 01803400B5 0180354A00"
    "0180366017 0180376018 01803A00BB 01804000C1 01804A00CB"
    "0180574A22 01806900EA 01807C4A47 0180900011 0180A10022"
)
RECORDED_VALUES = PacketValues(
    heart_rate=74,
    spo2=96,
    software_revision=0x94,
    timer=23,
    stat2=0x04,
    spo2_display=96,
    spo2_fast=96,
    spo2_beat_to_beat=96,
    extended_heart_rate=74,
    extended_spo2=96,
    extended_spo2_display=96,
    heart_rate_display=74,
    extended_heart_rate_display=74,
)

# Hand-written from the status table: SYNC frame, pleth 0x43, HR MSB 0.
SYNC_FRAME = bytes.fromhex("01 81 43 00 c5")
# Finger out: SNSA (status 88), pleth 0, SpO2 marker 127 in the data byte.
FINGER_OUT = bytes.fromhex("01 88 00 7f 08")
# Artifact during a pulse with yellow perfusion (status A6), pleth 200, HR LSB 74.
ARTIFACT = bytes.fromhex("01 a6 c8 4a b9")
# SYNC frame with the sensor disconnected and out of track (status D1), HR MSB 3 (of 511).
DISCONNECTED = bytes.fromhex("01 d1 00 03 d5")
# Red and green perfusion (status 84 and 82), pleth 0x90, data 0x60.
RED = bytes.fromhex("01 84 90 60 75")
GREEN = bytes.fromhex("01 82 90 60 73")

SYNC_FRAME_PARSED = Frame(pleth=0x43, data=0, sync=True)
FINGER_OUT_PARSED = Frame(pleth=0, data=127, sensor_alarm=True)
ARTIFACT_PARSED = Frame(pleth=200, data=74, artifact=True, perfusion=Perfusion.YELLOW)
DISCONNECTED_PARSED = Frame(pleth=0, data=3, sync=True, sensor_disconnected=True, out_of_track=True)
FIXTURES = {
    SYNC_FRAME: SYNC_FRAME_PARSED,
    FINGER_OUT: FINGER_OUT_PARSED,
    ARTIFACT: ARTIFACT_PARSED,
    DISCONNECTED: DISCONNECTED_PARSED,
    RED: Frame(pleth=0x90, data=0x60, perfusion=Perfusion.RED),
    GREEN: Frame(pleth=0x90, data=0x60, perfusion=Perfusion.GREEN),
}


def frames_of(data: bytes) -> list[Frame]:
    return [Frame.parse(data[i : i + 5]) for i in range(0, len(data), 5)]


@pytest.mark.parametrize(("data", "frame"), FIXTURES.items())
def test_fixtures_parse_to_their_fields(data: bytes, frame: Frame) -> None:
    assert Frame.parse(data) == frame
    assert bytes(frame) == data


def test_checksum_is_the_sum_of_bytes_1_to_4_mod_256() -> None:
    assert proto.checksum(bytes.fromhex("01 a6 c8 4a")) == (0x01 + 0xA6 + 0xC8 + 0x4A) % 256
    assert proto.checksum(ARTIFACT) == ARTIFACT[4]


def test_recorded_packet_decodes_to_its_numbers() -> None:
    packet = Packet.parse(RECORDED_PACKET)
    assert packet.values == RECORDED_VALUES
    assert packet.frames[0].sync
    assert not any(frame.sync for frame in packet.frames[1:])
    assert [frame.pleth for frame in packet.frames[:3]] == [0x43, 0x43, 0x43]
    assert bytes(packet) == RECORDED_PACKET


def test_heart_rate_is_nine_bits_over_two_frames() -> None:
    data = PacketValues(heart_rate=300, extended_heart_rate=proto.NO_HEART_RATE).data_bytes()
    assert data[0:2] == (2, 44)  # 2 * 128 + 44 = 300
    assert data[13:15] == (3, 127)  # 511, the "no heart rate" marker
    assert PacketValues.from_data_bytes(data).heart_rate == 300


def test_reserved_bits_of_msb_and_spo2_bytes_are_ignored() -> None:
    data = list(PacketValues(heart_rate=74, spo2=96).data_bytes())
    data[0] |= 0x7C  # reserved bits of the HR MSB byte
    data[2] |= 0x80
    values = PacketValues.from_data_bytes(tuple(data))
    assert (values.heart_rate, values.spo2) == (74, 96)


def test_missing_data_markers_never_become_values() -> None:
    assert proto.reported_heart_rate(511) is None
    assert proto.reported_spo2(127) is None
    assert proto.reported_spo2(101) is None
    assert proto.reported_heart_rate(74) == 74
    assert proto.reported_spo2(100) == 100


def test_low_battery_is_stat2_bit_0() -> None:
    assert PacketValues(stat2=0x01).low_battery
    assert not RECORDED_VALUES.low_battery


def test_round_trips() -> None:
    round_trip(list(FIXTURES.values()), Frame.parse)
    round_trip([Packet.parse(RECORDED_PACKET)], Packet.parse)
    values = PacketValues(heart_rate=321, spo2=88, timer=16383, extended_heart_rate=18)
    assert PacketValues.from_data_bytes(values.data_bytes()) == values


def test_build_puts_values_in_the_data_bytes_and_sync_in_frame_1() -> None:
    template = frames_of(RECORDED_PACKET)
    packet = Packet.build(RECORDED_VALUES, tuple(template))
    assert bytes(packet) == RECORDED_PACKET


def test_frames_any_split() -> None:
    stream = RECORDED_PACKET + FINGER_OUT + ARTIFACT + DISCONNECTED + RECORDED_PACKET
    expected = frames_of(stream)
    assert_frames_any_split(proto.framer, stream, expected)


def test_recovers_after_every_truncation() -> None:
    assert_recovers_after_every_truncation(proto.framer, ARTIFACT, FINGER_OUT, FINGER_OUT_PARSED)
    assert_recovers_after_every_truncation(
        proto.framer, SYNC_FRAME, DISCONNECTED, DISCONNECTED_PARSED
    )


def test_garbage_is_counted_with_its_reason() -> None:
    framer = proto.framer()
    frames = framer.feed(b"\x7f\x80" + ARTIFACT + b"\x01\x02" + FINGER_OUT)
    assert frames == [ARTIFACT_PARSED, FINGER_OUT_PARSED]
    assert framer.stats.discards == {"no start byte": 3, "status bit 7 clear": 1}
    assert framer.stats.discarded_bytes == 4


def test_bad_checksum_costs_only_the_start_byte_and_the_frame_is_skipped() -> None:
    corrupted = ARTIFACT[:4] + bytes((ARTIFACT[4] ^ 0x10,))
    framer = proto.framer()
    assert framer.feed(corrupted + FINGER_OUT) == [FINGER_OUT_PARSED]
    assert framer.stats.discards == {"bad checksum": 1, "no start byte": 4}


def test_a_01_inside_a_bad_frame_is_tried_as_a_start() -> None:
    # pleth 01 in a corrupted frame: the search resumes right after the first 01
    framer = proto.framer()
    assert framer.feed(bytes.fromhex("01 80 01 88 00") + FINGER_OUT) == [FINGER_OUT_PARSED]
    assert framer.stats.discards == {"bad checksum": 2, "no start byte": 3}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (ARTIFACT[:4], "a Nonin frame is 5 bytes, not 4"),
        (bytes.fromhex("02 a6 c8 4a b9"), "a Nonin frame starts with 01, not 02"),
        (bytes.fromhex("01 26 c8 4a 39"), "status byte 26 lacks bit 7"),
        (bytes.fromhex("01 a6 c8 4a b8"), "checksum B8 does not match bytes 1-4 (B9)"),
    ],
)
def test_frame_parse_rejects_non_frames_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(FrameError) as error:
        Frame.parse(data)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Frame(pleth=256, data=0), "pleth 256 outside 0..255"),
        (lambda: Frame(pleth=0, data=-1), "data byte -1 outside 0..255"),
        (lambda: PacketValues(timer=16384), "timer 16384 outside 0..16383"),
        (lambda: PacketValues(extended_spo2=128), "extended spo2 128 outside 0..127"),
        (lambda: PacketValues(heart_rate=512), "heart rate 512 outside 0..511"),
    ],
)
def test_values_are_range_checked(build: Callable[[], object], message: str) -> None:
    with pytest.raises(FrameError) as error:
        build()
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (RECORDED_PACKET[:-5], "a Nonin packet is 125 bytes, not 120"),
        (RECORDED_PACKET[5:] + SYNC_FRAME, "the first frame of a packet lacks the SYNC bit"),
        (
            RECORDED_PACKET[:30] + DISCONNECTED + RECORDED_PACKET[35:],
            "frame 7 of a packet has the SYNC bit",
        ),
        (
            RECORDED_PACKET[:14] + b"\x00" + RECORDED_PACKET[15:],
            "frame 3: checksum 00 does not match bytes 1-4 (24)",
        ),
    ],
)
def test_packet_parse_rejects_non_packets(data: bytes, message: str) -> None:
    with pytest.raises(FrameError) as error:
        Packet.parse(data)
    assert str(error.value) == message


def test_assembler_builds_packets_from_the_sync_frame() -> None:
    assembler = PacketAssembler()
    frames = [FINGER_OUT_PARSED, ARTIFACT_PARSED, *frames_of(RECORDED_PACKET)]
    packets = [packet for frame in frames if (packet := assembler.add(frame)) is not None]
    assert packets == [Packet.parse(RECORDED_PACKET)]
    assert assembler.stats == proto.PacketStats(packets=1, dropped=0, orphan_frames=2)


def test_a_packet_missing_a_frame_is_dropped_and_the_next_sync_restarts() -> None:
    assembler = PacketAssembler()
    recorded = frames_of(RECORDED_PACKET)
    short = recorded[:10] + recorded[11:]  # frame 11 lost on the wire
    packets = [p for f in short + recorded if (p := assembler.add(f)) is not None]
    assert packets == [Packet.parse(RECORDED_PACKET)]
    assert assembler.stats.dropped == 1
    assert assembler.stats.packets == 1


def test_assembler_reset_forgets_the_packet_in_progress() -> None:
    assembler = PacketAssembler()
    recorded = frames_of(RECORDED_PACKET)
    for frame in recorded[:12]:
        assembler.add(frame)
    assembler.reset()
    assert [p for f in recorded[12:] if (p := assembler.add(f)) is not None] == []
    assert assembler.stats.orphan_frames == 13


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    framer = proto.framer()
    frames = framer.feed(data)
    for frame in frames:
        assert Frame.parse(bytes(frame)) == frame
    assert framer.pending < proto.FRAME_SIZE
    assert framer.stats.discarded_bytes + framer.pending + 5 * len(frames) == len(data)
    assembler = PacketAssembler()
    for frame in frames:
        assembler.add(frame)


# Noise without 01 bytes cannot forge a frame start, so every frame must come back, in order,
# and nothing else.
_NOISE = st.binary(max_size=12).map(lambda noise: noise.replace(b"\x01", b""))


@given(st.lists(st.tuples(st.sampled_from(list(FIXTURES)), _NOISE), max_size=30), _NOISE)
def test_frames_embedded_in_noise_are_all_recovered(
    parts: list[tuple[bytes, bytes]], tail: bytes
) -> None:
    stream = b"".join(noise + frame for frame, noise in parts) + tail
    framer = proto.framer()
    assert framer.feed(stream) == [FIXTURES[frame] for frame, _ in parts]
    assert framer.pending == 0
    assert framer.stats.discarded_bytes == sum(len(noise) for _, noise in parts) + len(tail)
