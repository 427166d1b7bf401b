"""Contec CMS50D+ 4.6 / CMS50EW "0x7D" packages: live frames and host commands."""

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
from vitals.protocols import contec_7d as proto
from vitals.protocols.contec_7d import Command, CommandCode, LiveFrame

# Two live frames captured from a CMS50D+ 4.6 and published with their decoders:
# headrotor/contec_data: signal 5, pleth 0x33, bar 6, PR 65, SpO2 97, no PI (0xFFFF).
CAPTURED = bytes.fromhex("01 e0 85 b3 96 c1 e1 ff ff")
# MarkMLl/Contec_cms50dplus: signal 5, pleth 0x55, bar 10, PR 61, SpO2 99, no PI.
CAPTURED_2 = bytes.fromhex("01 e0 85 d5 9a bd e3 ff ff")
# Written from the spec: PR 130 (its bit 7 travels in byte 1, bit 3) with a pulse beep.
FAST_PULSE = bytes.fromhex("01 e8 c6 a0 96 82 df ff ff")
# No finger: byte-0 bit 7 ("probe error", restored from byte 1 bit 0), PR 255, SpO2 127.
FINGER_OUT = bytes.fromhex("01 e9 80 80 90 ff ff ff ff")
# Searching: byte-1 payload bit 7 (from byte 1 bit 1), pleth 64, sentinels.
SEARCHING = bytes.fromhex("01 ea 87 c0 96 ff ff ff ff")

CAPTURED_FRAME = LiveFrame(
    signal_strength=5, pleth=0x33, bar_graph=6, pulse_rate=65, spo2=97, pi_flag=True
)
CAPTURED_2_FRAME = LiveFrame(
    signal_strength=5, pleth=0x55, bar_graph=10, pulse_rate=61, spo2=99, pi_flag=True
)
FAST_FRAME = LiveFrame(
    signal_strength=6,
    pleth=0x20,
    bar_graph=6,
    pulse_rate=130,
    spo2=95,
    pulse_beep=True,
    pi_flag=True,
)
FINGER_OUT_FRAME = LiveFrame(
    signal_strength=0,
    pleth=0,
    bar_graph=0,
    pulse_rate=255,
    spo2=127,
    finger_out=True,
    pi_flag=True,
)
SEARCHING_FRAME = LiveFrame(
    signal_strength=7,
    pleth=64,
    bar_graph=6,
    pulse_rate=255,
    spo2=127,
    searching=True,
    pi_flag=True,
)
FIXTURES = [
    (CAPTURED, CAPTURED_FRAME),
    (CAPTURED_2, CAPTURED_2_FRAME),
    (FAST_PULSE, FAST_FRAME),
    (FINGER_OUT, FINGER_OUT_FRAME),
    (SEARCHING, SEARCHING_FRAME),
]
STREAM = b"".join(data for data, _ in FIXTURES)
FRAMES = [frame for _, frame in FIXTURES]

START_LIVE = bytes.fromhex("7d 81 a1 80 80 80 80 80 80")
KEEP_ALIVE = bytes.fromhex("7d 81 af 80 80 80 80 80 80")
STOP_LIVE = bytes.fromhex("7d 81 a2 80 80 80 80 80 80")


@pytest.mark.parametrize(("data", "frame"), FIXTURES)
def test_fixtures_parse_to_their_fields(data: bytes, frame: LiveFrame) -> None:
    assert LiveFrame.parse(data) == frame


@pytest.mark.parametrize(("data", "frame"), FIXTURES)
def test_frames_give_back_their_bytes(data: bytes, frame: LiveFrame) -> None:
    assert bytes(frame) == data


def test_high_byte_carries_bit_7_of_the_pulse_rate() -> None:
    assert LiveFrame.parse(FAST_PULSE).pulse_rate == 130
    assert proto.unpack_package(FAST_PULSE, proto.LIVE_TYPE, "live frame")[3] == 0x82


def test_sentinels_are_not_values() -> None:
    for data in (FINGER_OUT, SEARCHING):
        frame = LiveFrame.parse(data)
        assert not frame.has_pulse_rate
        assert not frame.has_spo2
    assert LiveFrame.parse(CAPTURED).has_spo2


@pytest.mark.parametrize("spo2", [0, 101, 126, 127, 200])
def test_spo2_outside_1_to_100_is_not_a_value(spo2: int) -> None:
    assert not LiveFrame(signal_strength=1, pleth=0, bar_graph=0, pulse_rate=70, spo2=spo2).has_spo2


def test_perfusion_index_is_carried_little_endian() -> None:
    frame = LiveFrame(
        signal_strength=1, pleth=0, bar_graph=0, pulse_rate=70, spo2=97, perfusion=0x0234
    )
    assert bytes(frame)[7:9] == bytes((0xB4, 0x82))
    assert LiveFrame.parse(bytes(frame)).perfusion == 0x0234


def test_round_trip_every_field() -> None:
    frame = LiveFrame(
        signal_strength=15,
        pleth=127,
        bar_graph=15,
        pulse_rate=254,
        spo2=100,
        perfusion=0x8001,
        finger_out=True,
        pulse_beep=True,
        spo2_dropping=True,
        search_too_long=True,
        searching=True,
        pi_flag=True,
        reserved=7,
    )
    round_trip([frame, *FRAMES], LiveFrame.parse)


def test_frames_any_split() -> None:
    assert_frames_any_split(proto.framer, STREAM * 2, FRAMES * 2)


def test_recovers_after_every_truncation() -> None:
    assert_recovers_after_every_truncation(proto.framer, CAPTURED, FAST_PULSE, FAST_FRAME)


def test_garbage_and_other_packages_are_counted_and_skipped() -> None:
    framer = proto.framer()
    stop_reply = bytes.fromhex("0c 80")
    cut_short = CAPTURED[:3]
    data = b"\x80\xff" + CAPTURED + stop_reply + FAST_PULSE + cut_short + CAPTURED_2
    assert framer.feed(data) == [CAPTURED_FRAME, FAST_FRAME, CAPTURED_2_FRAME]
    assert framer.stats.discards == {
        "no sync": 2,
        "unsupported package type 0x0c": 2,
        "truncated frame": 3,
    }
    assert framer.stats.frames == 3


def test_unknown_package_waits_for_the_next_package_start() -> None:
    framer = proto.framer()
    assert framer.feed(bytes.fromhex("0c")) == []
    assert framer.pending == 1
    assert framer.feed(bytes.fromhex("80") + CAPTURED) == [CAPTURED_FRAME]
    assert framer.stats.discards == {"unsupported package type 0x0c": 2}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (CAPTURED[:8], "a live frame is 9 bytes, not 8"),
        (b"\x02" + CAPTURED[1:], "a live frame starts with 0x01, not 0x02"),
        (START_LIVE, "a live frame starts with 0x01, not 0x7d"),
        (bytes.fromhex("01 e0 85 33 96 c1 e1 ff ff"), "bit 7 clear in byte 3"),
    ],
)
def test_parse_rejects_non_frames_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        LiveFrame.parse(data)


def test_out_of_range_fields_are_refused() -> None:
    with pytest.raises(FrameError, match=r"pleth 128 outside 0\.\.127"):
        LiveFrame(signal_strength=0, pleth=128, bar_graph=0, pulse_rate=0, spo2=0)
    with pytest.raises(FrameError, match="package type 0x81 has bit 7 set"):
        proto.pack_package(0x81, bytes(7))


# --- host commands -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "data"),
    [
        (proto.START_LIVE, START_LIVE),
        (proto.KEEP_ALIVE, KEEP_ALIVE),
        (proto.STOP_LIVE, STOP_LIVE),
        (proto.STOP_STORAGE, bytes.fromhex("7d 81 a7 80 80 80 80 80 80")),
    ],
)
def test_commands_are_the_documented_bytes(command: Command, data: bytes) -> None:
    assert bytes(command) == data
    assert Command.parse(data) == command


def test_command_meaning() -> None:
    assert Command.parse(START_LIVE).meaning is CommandCode.START_LIVE
    assert Command(0xB0).meaning is None


def test_command_parameters_round_trip() -> None:
    command = Command(0xA6, params=bytes((1, 0x81, 0, 0, 0, 0)))
    assert bytes(command) == bytes.fromhex("7d 85 a6 81 81 80 80 80 80")
    assert Command.parse(bytes(command)) == command


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (START_LIVE[:5], "a host command is 9 bytes, not 5"),
        (CAPTURED, "a host command starts with 0x7d, not 0x01"),
        (bytes.fromhex("7d 81 a1 80 80 00 80 80 80"), "bit 7 clear in byte 5"),
    ],
)
def test_command_parse_errors(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        Command.parse(data)


def test_command_framer_any_split_and_garbage() -> None:
    commands = [proto.START_LIVE, proto.KEEP_ALIVE, proto.STOP_LIVE]
    stream = b"".join(bytes(c) for c in commands)
    assert_frames_any_split(proto.command_framer, stream, commands)
    framer = proto.command_framer()
    assert framer.feed(b"\xaa" + CAPTURED + START_LIVE[:4] + KEEP_ALIVE) == [proto.KEEP_ALIVE]
    assert framer.stats.discards == {
        "no sync": 1,
        "unsupported package type 0x01": 9,
        "truncated frame": 4,
    }


# --- properties ----------------------------------------------------------------------------


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    for make in (proto.framer, proto.command_framer):
        framer = make()
        frames = framer.feed(data)
        for frame in frames:
            assert type(frame).parse(bytes(frame)) == frame
        assert framer.pending < proto.PACKAGE_SIZE
        stats = framer.stats
        assert stats.discarded_bytes + framer.pending + 9 * stats.frames == len(data)


# Noise may hold any byte except 0x01: only a 0x01 can start a live frame, so noise can never
# forge one, and a real frame's 0x01 ends whatever package the noise seemed to begin.
_NOISE = st.lists(st.integers(0, 255).filter(lambda b: b != proto.LIVE_TYPE), max_size=12)


@given(st.lists(st.tuples(st.sampled_from(FRAMES), _NOISE), max_size=30))
def test_frames_embedded_in_noise_are_all_recovered(
    parts: list[tuple[LiveFrame, list[int]]],
) -> None:
    stream = b"".join(bytes(noise) + bytes(frame) for frame, noise in parts)
    assert proto.framer().feed(stream) == [frame for frame, _ in parts]
